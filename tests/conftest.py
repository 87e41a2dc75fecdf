"""Shared helpers: the key cases cross a process boundary (cloudpickle's
``subprocess_pickle_echo``). Children are fresh interpreters that load with plain
``pickle.loads``; satchel is installed there, but nothing from the tests is importable, so the
objects under test must be defined where satchel pickles them by value (inside a test function,
or in a script run as ``__main__``)."""

import gc
import os
import pickle
import platform
import subprocess
import sys
import textwrap

import pytest

import satchel

#: PyPy: no reference counting (an object goes when the GC runs), no ``sys.getallocatedblocks``.
PYPY = platform.python_implementation() == "PyPy"


#: Whether started generators pickle here. On PyPy they are refused with a PicklingError
#: (its frames are not CPython's; tests/test_pypy.py checks the message).
LIVE_GENERATORS = satchel._satchel.LIVE_GENERATORS.startswith("cpython-")

#: For tests that pickle a started generator, which cannot exist where LIVE_GENERATORS is False.
needs_live_generators = pytest.mark.skipif(
    not LIVE_GENERATORS,
    reason=f"started generators are refused here: {satchel._satchel.LIVE_GENERATORS}",
)


def import_or_skip_with_cloudpickle(name):
    """``name``, a package that imports cloudpickle (loky, joblib), or a skip where it is
    missing or where cloudpickle does not import (PyPy 3.11: cloudpickle#592)."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.skip(f"{name} is not installed: {exc}")
    except AttributeError as exc:
        pytest.skip(
            f"{name} imports cloudpickle, which does not import here (cloudpickle#592): {exc}"
        )


def after_collection(expr):
    """A child expression that sees what a collection leaves: on CPython ``expr`` itself
    (reference counting frees an unreachable object at once, and the test checks that it
    did), on PyPy ``expr`` after ``gc.collect()`` (its GC frees nothing before it runs)."""
    if not PYPY:
        return expr
    return f"(__import__('gc').collect(), {expr})[1]"


#: Whether a dynamic class goes when nothing refers to it. On PyPy, a class that satchel's
#: Rust side has seen (dumped, or loaded through its constructors) stays alive for good: cpyext
#: never collects the reference cycle through the class's C type object (tests/test_pypy.py
#: shows it). Memory tests leave classes out there; they still check everything else.
CLASSES_FREED = not PYPY


def live_blocks():
    """What a leak makes grow, after a full collection: CPython's allocated memory blocks
    (``sys.getallocatedblocks``); on PyPy, which has no block count (its GC moves objects),
    the objects the GC finds alive (``gc.get_objects``), which a leaked reference keeps."""
    gc.collect()
    if hasattr(sys, "getallocatedblocks"):
        return sys.getallocatedblocks()
    gc.collect()
    return len(gc.get_objects())


_CHILD_EVAL = r"""
import pickle, sys
obj = pickle.loads(sys.stdin.buffer.read())
result = eval(compile(sys.argv[1], "<expr>", "eval"), {"obj": obj})
sys.stdout.buffer.write(pickle.dumps(result))
"""

_CHILD_ECHO = r"""
import pickle, sys
import satchel
obj = pickle.loads(sys.stdin.buffer.read())
sys.stdout.buffer.write(satchel.dumps(obj))
"""


class ChildError(AssertionError):
    pass


def _run(code, payload, *args, env=None, timeout=60):
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        input=payload,
        capture_output=True,
        check=False,
        timeout=timeout,
        env=env,
    )
    if proc.returncode != 0:
        raise ChildError(f"child failed ({proc.returncode}):\n{proc.stderr.decode()}")
    return proc.stdout


def child_eval(obj, expr, protocol=None):
    """Dump ``obj`` with satchel, load it in a fresh interpreter with plain ``pickle.loads``,
    evaluate ``expr`` there (``obj`` names the loaded object) and return the result, which
    must be plain data (it comes back through stdlib pickle)."""
    payload = satchel.dumps(obj, protocol=protocol)
    return pickle.loads(_run(_CHILD_EVAL, payload, expr))


def child_eval_bytes(payload, expr):
    """Like ``child_eval`` for an already dumped stream."""
    return pickle.loads(_run(_CHILD_EVAL, payload, expr))


_STDLIB_EVAL = r"""
import importlib.util, pickle, sys
assert importlib.util.find_spec("satchel") is None, "satchel is importable in this child"
obj = pickle.loads(sys.stdin.buffer.read())
result = eval(compile(sys.argv[1], "<expr>", "eval"), {"obj": obj})
sys.stdout.buffer.write(pickle.dumps(result, protocol=2))
"""

# Interpreters other than the running one, for portable streams (tests skip missing ones).
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OTHER_PYTHONS = {
    "cpython-3.9": "/root/.pyenv/versions/3.9.18/bin/python3",
    "cpython-3.15": os.path.join(_REPO, ".interpreters", "bin", "python3.15"),
    "pypy-3.9": "/usr/bin/pypy3",
    "pypy-3.11": os.path.join(_REPO, ".interpreters", "bin", "pypy3.11"),
}


def stdlib_eval(payload, expr, python=None):
    """Load ``payload`` with plain ``pickle.loads`` in ``python -I -S`` (this interpreter by
    default): no site-packages, so no satchel, only the stdlib. Evaluate ``expr`` there
    (``obj`` names the loaded object) and return the result, which must be plain data."""
    python = python or sys.executable
    if not os.path.exists(python):
        pytest.skip(f"{python} is not installed")
    proc = subprocess.run(
        [python, "-I", "-S", "-c", _STDLIB_EVAL, expr],
        input=payload,
        capture_output=True,
        check=False,
        timeout=60,
    )
    if proc.returncode != 0:
        raise ChildError(f"{python} -I -S failed ({proc.returncode}):\n{proc.stderr.decode()}")
    return pickle.loads(proc.stdout)


def echo(obj, protocol=None):
    """Round trip through a fresh interpreter: it loads with plain pickle and re-dumps with
    satchel; the result is loaded here."""
    return satchel.loads(_run(_CHILD_ECHO, satchel.dumps(obj, protocol=protocol)))


def run_script(source, *args, env=None, timeout=120):
    """Run ``source`` as ``__main__`` of a fresh interpreter; return its stdout bytes."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return _run(textwrap.dedent(source), b"", *args, env=full_env, timeout=timeout)


@pytest.fixture
def fresh():
    """The cross-process helpers, as a fixture for tests that prefer one."""

    class Fresh:
        eval = staticmethod(child_eval)
        eval_bytes = staticmethod(child_eval_bytes)
        echo = staticmethod(echo)
        script = staticmethod(run_script)

    return Fresh


def import_cloudpickle():
    """cloudpickle, or a skip where it is missing or does not import: on PyPy 3.11 its import
    fails with AttributeError (`Pickler.dispatch`, cloudpickle issue #592)."""
    try:
        import cloudpickle
    except ImportError as exc:
        pytest.skip(f"cloudpickle is not installed: {exc}")
    except AttributeError as exc:
        pytest.skip(f"cloudpickle does not import on this interpreter (cloudpickle#592): {exc}")
    return cloudpickle
