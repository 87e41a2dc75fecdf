"""What ``tests/test_dill_suite.py`` and ``tests/test_bug_reports.py`` share: a child script
run over many units (catalog objects, bug-report cases) in fresh interpreters, restarted after
a unit on which it died or hung, and the receiver, a fresh interpreter that loads every stream
with plain ``pickle.loads`` (``dill.loads`` for dill's own streams) and judges what it got.

A child appends records to a pickle file as it goes: ``("units", [...])`` (once, when it lists
its own work), ``("start", unit)`` before a unit and ``("done", unit, result)`` after it, so the
parent knows which unit a dead child was on."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

CHILD_TIMEOUT = 300  # seconds per child run; a whole catalog takes about 10 s

# The receiver's main loop; a prelude defines ``judge(obj)``, which turns a loaded object into
# plain data for the parent (a description, or what a check returns).
_RECEIVER_MAIN = r"""
import pickle as _pickle, re as _re, sys as _sys, warnings as _warnings
_warnings.simplefilter("ignore")


def _error(exc):
    t = type(exc)
    name = f"{getattr(t, '__module__', '?')}.{getattr(t, '__qualname__', t.__name__)}"
    return ("err", name, _re.sub(r"0x[0-9a-fA-F]+", "0x?", str(exc))[:500])


def _receive(out_path, todo_path, streams_path):
    todo = _pickle.load(open(todo_path, "rb"))
    streams = _pickle.load(open(streams_path, "rb"))
    with open(out_path, "ab") as out:
        for unit in todo:
            _pickle.dump(("start", unit), out)
            out.flush()
            try:
                if unit[1] == "dill":
                    import dill
                    obj = dill.loads(streams[unit])
                else:
                    obj = _pickle.loads(streams[unit])
                got = ("ok", judge(obj))
            except BaseException as exc:
                got = _error(exc)
            _pickle.dump(("done", unit, got), out)
            out.flush()


_receive(*_sys.argv[1:4])
"""


def read_records(path):
    records = []
    if not path.exists():
        return records
    with open(path, "rb") as f:
        while True:
            try:
                records.append(pickle.load(f))
            except EOFError:
                return records
            except pickle.UnpicklingError:  # a record cut short by the child's death
                return records


def run_resumable(script, tmp, extra_args=(), todo=None):
    """Run ``script`` (code, or a Path to run) over its units (``None``: the child lists them
    first), restarting after a unit on which the child died or hung. Returns
    ({unit: result}, {unit: why it crashed})."""
    results, crashed, attempt = {}, {}, 0
    units = todo
    while True:
        attempt += 1
        out = tmp / f"out-{attempt}.pkl"
        todo_path = tmp / f"todo-{attempt}.pkl"
        todo_path.write_bytes(pickle.dumps(units))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        run = [str(script)] if isinstance(script, Path) else ["-c", script]  # a file, or code
        cmd = [sys.executable, *run, str(out), str(todo_path), *map(str, extra_args)]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, check=False, timeout=CHILD_TIMEOUT, env=env, cwd=tmp
            )
            rc, err = proc.returncode, proc.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired as exc:
            rc, err = "timeout", (exc.stderr or b"").decode(errors="replace")
        started = None
        for rec in read_records(out):
            if rec[0] == "units":
                units = rec[1]
            elif rec[0] == "start":
                started = rec[1]
            else:
                results[rec[1]] = rec[2]
                started = None
        if rc == 0:
            return results, crashed
        assert units is not None, f"the child died before listing its work ({rc}):\n{err}"
        assert started is not None, f"the child failed outside any unit ({rc}):\n{err}"
        crashed[started] = f"child died ({rc}): {err.strip().splitlines()[-1:] or ''}"
        units = units[units.index(started) + 1 :]
        if not units:
            return results, crashed


def load_in_fresh_process(prelude, streams, tmp):
    """Load every stream of ``streams`` ({(name, label): bytes}; label "dill" loads with
    ``dill.loads``) in fresh interpreters and judge it with the ``judge(obj)`` that ``prelude``
    (code) defines. Returns {(name, label): ("ok", judged) | ("err", exception type, message)
    | ("crash", "the receiver died", why)}."""
    streams_path = tmp / "streams.pkl"
    streams_path.write_bytes(pickle.dumps(streams))
    recv = tmp / "recv"
    recv.mkdir()
    loaded, crashed = run_resumable(prelude + _RECEIVER_MAIN, recv, [streams_path], sorted(streams))
    for unit, why in crashed.items():
        loaded[unit] = ("crash", "the receiver died", why)
    return loaded
