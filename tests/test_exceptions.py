"""Exceptions keep their chain (__context__, __cause__, __suppress_context__) across a
process boundary; pickle drops it. Exceptions without a chain keep the stdlib's bytes."""

import pickle
import sys

import pytest

import satchel
from conftest import child_eval

# PyPy's BaseException.__setstate__ puts every key in the instance dict: a loaded exception has
# `__cause__`/`__context__` entries there while its chain stays empty. A receiver-side bug that
# only a bootstrap constructor could work around (not done: a format change).
PYPY_SETSTATE = pytest.mark.skipif(
    sys.implementation.name == "pypy",
    reason="PyPy's BaseException.__setstate__ does not set the chain (it fills __dict__)",
)


def _chained():
    try:
        try:
            raise KeyError("first")
        except KeyError as first:
            raise ValueError("second") from first
    except ValueError as second:
        return second


@PYPY_SETSTATE
def test_cause_and_context_travel():
    exc = _chained()
    expr = "(repr(obj), repr(obj.__cause__), repr(obj.__context__), obj.__suppress_context__)"
    assert child_eval(exc, expr) == (
        "ValueError('second')",
        "KeyError('first')",
        "KeyError('first')",
        True,
    )


@PYPY_SETSTATE
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


def test_unchained_exception_is_left_to_the_stdlib():
    """No chain: satchel leaves the exception to the pickler's own reduction (copyreg's, where
    a library such as tblib registered one), so the stream names nothing of satchel's."""
    exc = ValueError("plain", 3)
    data = satchel.dumps(exc)
    assert b"_satchel_boot" not in data
    loaded = pickle.loads(data)
    assert type(loaded) is ValueError and loaded.args == ("plain", 3)
