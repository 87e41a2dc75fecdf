"""Exceptions keep their chain (__context__, __cause__, __suppress_context__) across a
process boundary; pickle drops it. Exceptions without a chain keep the stdlib's bytes."""

import pickle

import pytest

import satchel
from conftest import OTHER_PYTHONS, PYPY, child_eval, run_script, stdlib_eval


def _chained():
    try:
        try:
            raise KeyError("first")
        except KeyError as first:
            raise ValueError("second") from first
    except ValueError as second:
        return second


def test_cause_and_context_travel():
    exc = _chained()
    expr = "(repr(obj), repr(obj.__cause__), repr(obj.__context__), obj.__suppress_context__)"
    assert child_eval(exc, expr) == (
        "ValueError('second')",
        "KeyError('first')",
        "KeyError('first')",
        True,
    )


def test_implicit_context_travels():
    try:
        try:
            {}["k"]
        except KeyError:
            raise RuntimeError("while handling")  # noqa: B904 (the implicit chain is the point)
    except RuntimeError as e:
        exc = e
    expr = "(repr(obj.__context__), obj.__cause__, obj.__suppress_context__)"
    assert child_eval(exc, expr) == ("KeyError('k')", None, False)


_CHAINED_SCRIPT = """
import sys, satchel
try:
    try:
        raise KeyError("first")
    except KeyError as first:
        raise ValueError("second") from first
except ValueError as second:
    second.seen = [second]
    sys.stdout.buffer.write(satchel.dumps(second, mode=sys.argv[1]))
"""


def _chained_stream(mode):
    """A chained exception dumped in a fresh process: a library in this one (tblib) may have
    registered its own reduction."""
    return run_script(_CHAINED_SCRIPT, mode)


def test_the_chain_is_set_by_setattr_so_pypy_receivers_keep_it():
    """PyPy's BaseException.__setstate__ fills __dict__ (where the chain is not read): the
    stream sets each attribute with setattr itself, stdlib only, on every receiver."""
    data = _chained_stream("portable")
    assert b"_satchel_boot" not in data
    expr = (
        "(repr(obj.__cause__), repr(obj.__context__), obj.__suppress_context__,"
        " obj.seen[0] is obj, sorted(vars(obj)))"
    )
    want = ("KeyError('first')", "KeyError('first')", True, True, ["seen"])
    for python in (None, OTHER_PYTHONS["pypy-3.11"], OTHER_PYTHONS["pypy-3.9"]):
        assert stdlib_eval(data, expr, python) == want, python


@pytest.mark.skipif(PYPY, reason="made on PyPy, the chain is set by setattr (a PyPy receiver)")
def test_a_nonportable_chain_loads_under_an_allow_list_of_its_classes():
    """Only CPython loads a nonportable CPython stream, so its chain travels in the state dict
    (BUILD), as before: an allow= list naming the exception classes is enough, not setattr."""
    data = _chained_stream("nonportable")
    loaded = satchel.loads(data, allow=["builtins.ValueError", "builtins.KeyError"])
    assert repr(loaded.__cause__) == "KeyError('first')" and loaded.__suppress_context__


def test_unchained_exception_is_left_to_the_stdlib():
    """No chain: satchel leaves the exception to the pickler's own reduction (copyreg's, where
    a library such as tblib registered one), so the stream names nothing of satchel's."""
    exc = ValueError("plain", 3)
    data = satchel.dumps(exc)
    assert b"_satchel_boot" not in data
    loaded = pickle.loads(data)
    assert type(loaded) is ValueError and loaded.args == ("plain", 3)
