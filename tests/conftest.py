"""Shared helpers: the key cases cross a process boundary (cloudpickle's
``subprocess_pickle_echo``). Children are fresh interpreters that load with plain
``pickle.loads``; satchel is installed there, but nothing from the tests is importable, so the
objects under test must be defined where satchel pickles them by value (inside a test function,
or in a script run as ``__main__``)."""

import os
import pickle
import subprocess
import sys
import textwrap

import pytest

import satchel

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
