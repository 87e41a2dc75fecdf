"""Session snapshots: ``satchel.dump_session`` / ``satchel.load_session`` and the
``%satchel`` IPython magics.

The key cases cross a process boundary: a script runs as ``__main__`` of a fresh interpreter
and snapshots itself, and another fresh interpreter (or a stdlib-only one, or a second Jupyter
kernel) restores the snapshot and uses it.
"""

import hashlib
import json
import math
import os
import pathlib
import queue
import subprocess
import sys
import textwrap
import types

import pytest

import pythons
import satchel
from conftest import LIVE_GENERATORS, run_script
from pythons import OTHER_LABEL, compact, describe, four_arguments, producer_field
from satchel import _session

REPO = pathlib.Path(__file__).resolve().parent.parent
# Other language versions than the one running the tests (tests/pythons.py).
OTHER_VERSIONS = {p.name: p for p in pythons.OTHER_VERSIONS}


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def leftovers(directory):
    """Temporary files a dump left behind in ``directory``."""
    return sorted(p.name for p in pathlib.Path(directory).iterdir() if p.name.endswith(".tmp"))


def json_out(stdout):
    return json.loads(stdout.decode().strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# 1. A script snapshots itself; a fresh process restores it
# ---------------------------------------------------------------------------------------------

SESSION = r"""
import collections
import functools
import json
import os.path
import sys
import threading
import xml.etree.ElementTree

RATE = 1.5
data = {"values": [1, 2, 3], "nested": {"pair": (1, 2)}}
alias = data["values"]
lock = threading.Lock()
counter = {"calls": 0}


def scale(x):
    counter["calls"] += 1
    return x * RATE


def twice(x):
    return scale(scale(x))


def uses_lock():
    with lock:
        return "locked"


def parse(text):
    return xml.etree.ElementTree.fromstring(text).tag


class Account:
    fee = 2

    def __init__(self, owner, balance):
        self.owner = owner
        self.balance = balance

    def deposit(self, amount):
        self.balance += scale(amount) - self.fee
        return self.balance


class Savings(Account):
    def deposit(self, amount):
        return super().deposit(amount) + 100


accounts = [Account("ada", 10), Savings("bob", 5)]
first = accounts[0]
by_owner = {a.owner: a for a in accounts}


def make_adder(k):
    return lambda x: x + k


add3 = make_adder(3)
square = lambda x: x * x


def fact(n):
    return 1 if n < 2 else n * fact(n - 1)


def make_countdown():
    def countdown(n):
        return [] if n == 0 else [n] + countdown(n - 1)

    return countdown


countdown = make_countdown()


@functools.lru_cache(maxsize=None)
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def ticker():
    for i in range(5):
        yield i * RATE


tick = ticker()
next(tick)
Point = collections.namedtuple("Point", "x y")
origin = Point(0, 0)
join = os.path.join
namespace = globals()
"""

DUMP = r"""
import satchel as _satchel

_path, _how = sys.argv[1], sys.argv[2]
if _how == "strict":
    try:
        _satchel.dump_session(_path, strict=True)
    except _satchel.PicklingError as _exc:
        print(json.dumps({"error": str(_exc), "type": type(_exc).__name__}))
    else:
        print(json.dumps({"error": None}))
else:
    _report = _satchel.dump_session(_path)
    print(json.dumps({
        "saved": _report.saved, "skipped": [list(s) for s in _report.skipped],
        "excluded": _report.excluded, "size": _report.size, "str": str(_report),
        "repr": repr(_report),
    }))
"""

LOAD = r"""
import json, sys
import __main__
import satchel
from satchel import _session

report = satchel.load_session(sys.argv[1])
results = {
    "report_saved": report.saved,
    "report_skipped": [[s.name, s.reason] for s in report.skipped],
    "report_str": str(report),
    "scale": scale(2), "twice": twice(2),
    "calls_seen_by_global": counter["calls"],
    "globals_is_main": [f.__globals__ is vars(__main__) for f in
                        (scale, Account.deposit, Savings.deposit, add3, square, fib.__wrapped__)],
    "shared": [accounts[0] is first, by_owner["ada"] is first, data["values"] is alias,
               namespace is vars(__main__)],
    "classes": [isinstance(first, Account), isinstance(accounts[1], Account),
                type(accounts[1]) is Savings, Savings.__mro__[1] is Account],
    "deposits": [first.deposit(10), accounts[1].deposit(10)],
    "closures": [add3(4), square(5), fact(5), countdown(3), fib(60)],
    "generator": [next(tick), list(tick)] if "tick" in vars(__main__) else None,
    "namedtuple": [origin._replace(x=5), list(Point._fields), type(origin) is Point],
    "imports": [join("a", "b"), parse("<root/>")],
    "lock_restored": "lock" in vars(__main__),
}
try:
    uses_lock()
except NameError as exc:
    results["uses_lock"] = str(exc)
RATE = 10  # functions read the restored namespace: they see the new value
results["scale_after_rebinding"] = scale(2)
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def script_snapshot(tmp_path_factory):
    path = tmp_path_factory.mktemp("session") / "session.satchel"
    report = json_out(run_script(SESSION + DUMP, str(path), "dump"))
    return path, report


def test_script_snapshot_report(script_snapshot):
    path, report = script_snapshot
    # Where started generators are refused (PyPy), the session skips `tick` and says why.
    skipped = dict(report["skipped"])
    assert list(skipped) == (["lock"] if LIVE_GENERATORS else ["lock", "tick"])
    assert "_thread.lock" in skipped["lock"]
    if not LIVE_GENERATORS:
        assert "cannot pickle generator 'ticker'" in skipped["tick"]
        assert "live generator pickling is not supported" in skipped["tick"]
    saved = ["scale", "Account", "accounts", "data", "alias", "fib", "xml", "os"]
    for name in saved + (["tick"] if LIVE_GENERATORS else []):
        assert name in report["saved"], name
    assert "lock" not in report["saved"]
    assert "__builtins__" in report["excluded"] and "__name__" in report["excluded"]
    assert report["size"] == path.stat().st_size
    text = report["str"]
    assert f"saved {len(report['saved'])} objects" in text and str(path) in text
    assert "lock: " in text and "_thread.lock" in text
    assert report["repr"].startswith("<SessionReport saved")
    assert leftovers(path.parent) == []


def test_script_snapshot_loads_in_a_fresh_process(script_snapshot):
    path, dumped = script_snapshot
    got = json_out(run_script(LOAD, str(path)))
    assert got["report_saved"] == dumped["saved"]
    assert got["report_skipped"] == dumped["skipped"]
    assert "loaded" in got["report_str"] and "lock" in got["report_str"]
    assert got["scale"] == 3.0 and got["twice"] == 4.5
    # The function's global `counter` is the restored global, not a copy.
    assert got["calls_seen_by_global"] == 3
    assert got["globals_is_main"] == [True] * 6
    assert got["shared"] == [True] * 4
    assert got["classes"] == [True] * 4
    assert got["deposits"] == [23.0, 118.0]
    assert got["closures"] == [7, 25, 120, [3, 2, 1], 1548008755920]
    assert got["generator"] == ([1.5, [3.0, 4.5, 6.0]] if LIVE_GENERATORS else None)
    assert got["namedtuple"] == [[5, 0], ["x", "y"], True]
    assert got["imports"] == ["a/b", "root"]
    # Everything but the lock: it is absent, so code that uses it fails by name.
    assert got["lock_restored"] is False
    assert got["uses_lock"] == "name 'lock' is not defined"
    assert got["scale_after_rebinding"] == 20


def test_strict_raises_naming_the_global_and_keeps_the_previous_file(script_snapshot):
    path, _ = script_snapshot
    before = sha256(path)
    got = json_out(run_script(SESSION + DUMP, str(path), "strict"))
    assert got["type"] == "PicklingError"
    assert got["error"].startswith("global 'lock': ") and "_thread.lock" in got["error"]
    assert sha256(path) == before
    assert leftovers(path.parent) == []


# ---------------------------------------------------------------------------------------------
# 2. Atomic writes: a failed or interrupted dump never destroys a snapshot
# ---------------------------------------------------------------------------------------------


def make_module(source, name="session_under_test"):
    """A module whose functions and classes are defined in it (their globals are its dict)."""
    module = types.ModuleType(name)
    exec(compile(textwrap.dedent(source), f"<{name}>", "exec"), vars(module))
    return module


FLAKY = """
class Flaky:
    '''Pickles on its first `__reduce__` (the per-global trial) and then raises `error`.'''

    calls = 0

    def __init__(self, error):
        self.error = error

    def __reduce__(self):
        type(self).calls += 1
        if type(self).calls > 1:
            raise self.error
        return (int, (1,))


def work(x):
    return x * 2


numbers = list(range(1000))
"""


def test_interrupted_dump_keeps_the_previous_snapshot(tmp_path):
    module = make_module(FLAKY)
    path = tmp_path / "s.satchel"
    satchel.dump_session(path, module=module)
    before = sha256(path)
    module.flaky = module.Flaky(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        satchel.dump_session(path, module=module)
    assert module.Flaky.calls == 2  # the trial passed: the interruption came while writing
    assert sha256(path) == before
    assert leftovers(tmp_path) == []


def test_interrupted_during_the_trial_keeps_the_previous_snapshot(tmp_path):
    module = make_module(FLAKY)
    path = tmp_path / "s.satchel"
    satchel.dump_session(path, module=module)
    before = sha256(path)
    module.Flaky.calls = 1
    module.flaky = module.Flaky(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        satchel.dump_session(path, module=module)
    assert sha256(path) == before
    assert leftovers(tmp_path) == []


def test_failed_write_keeps_the_previous_snapshot(tmp_path, monkeypatch):
    module = make_module(FLAKY)
    path = tmp_path / "s.satchel"
    satchel.dump_session(path, module=module)
    before = sha256(path)
    module.numbers.append("more")

    def no_space(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space left"):
        satchel.dump_session(path, module=module)
    assert sha256(path) == before
    assert leftovers(tmp_path) == []


def test_a_global_failing_only_in_the_whole_dump_is_found_and_skipped(tmp_path):
    """The trial pickles each global once; a global that fails later (a stateful
    ``__reduce__``) is found by narrowing down, skipped with its reason, and the rest saved."""
    module = make_module(FLAKY)
    module.flaky = module.Flaky(ValueError("changed its mind"))
    path = tmp_path / "s.satchel"
    report = satchel.dump_session(path, module=module)
    assert [s.name for s in report.skipped] == ["flaky"]
    assert "changed its mind" in report.skipped[0].reason
    assert "numbers" in report.saved and "work" in report.saved
    target = types.ModuleType("target")
    loaded = satchel.load_session(path, module=target)
    assert target.work(21) == 42 and target.numbers == list(range(1000))
    assert [s.name for s in loaded.skipped] == ["flaky"]

    module.Flaky.calls = 0  # passes the trial again, fails in the whole dump
    with pytest.raises(satchel.PicklingError, match="global 'flaky': .*changed its mind"):
        satchel.dump_session(tmp_path / "strict.satchel", module=module, strict=True)
    assert not (tmp_path / "strict.satchel").exists()
    assert leftovers(tmp_path) == []


def test_a_symlinked_snapshot_is_replaced_through_the_link(tmp_path):
    module = make_module("x = 1")
    real, link = tmp_path / "real.satchel", tmp_path / "link.satchel"
    satchel.dump_session(real, module=module)
    link.symlink_to(real)
    module.x = 2
    report = satchel.dump_session(link, module=module)
    assert link.is_symlink() and report.size == real.stat().st_size
    target = types.ModuleType("target")
    satchel.load_session(real, module=target)
    assert target.x == 2
    assert leftovers(tmp_path) == []


def test_the_file_keeps_its_permissions_when_replaced(tmp_path):
    module = make_module("x = 1")
    path = tmp_path / "s.satchel"
    path.write_bytes(b"old")
    path.chmod(0o640)
    satchel.dump_session(path, module=module)
    assert path.stat().st_mode & 0o777 == 0o640


# ---------------------------------------------------------------------------------------------
# 3. What is saved, and the file
# ---------------------------------------------------------------------------------------------

CLOSURE_OVER_LOCK = """
import threading

lock = threading.Lock()
guarded = (lambda held: (lambda: held.locked()))(lock)
reads_lock_global = lambda: lock.locked()
big = bytes(range(256)) * 20000
"""


def test_a_closure_over_an_unpicklable_object_is_skipped_with_the_path(tmp_path):
    report = satchel.dump_session(tmp_path / "s.satchel", module=make_module(CLOSURE_OVER_LOCK))
    reasons = dict(report.skipped)
    assert sorted(reasons) == ["guarded", "lock"]
    assert "closure cell 'held'" in reasons["guarded"] and "_thread.lock" in reasons["guarded"]
    # A function reading the lock as a global does not carry it: it is saved.
    assert "reads_lock_global" in report.saved and "threading" in report.saved
    text = str(report)
    assert "skipped 2:" in text and "guarded: " in text and "lock: " in text


def test_file_is_a_zstd_satchel_stream(tmp_path):
    module = make_module(CLOSURE_OVER_LOCK)
    satchel.dump_session(tmp_path / "a", module=module)
    info = satchel.inspect((tmp_path / "a").read_bytes())
    assert info["compression"] == "zstd" and info["mode"] == "nonportable"
    satchel.dump_session(tmp_path / "b", module=module, compress=False)
    assert satchel.inspect((tmp_path / "b").read_bytes())["compression"] is None
    assert (tmp_path / "b").stat().st_size > 10 * (tmp_path / "a").stat().st_size
    payload = satchel.loads((tmp_path / "b").read_bytes())
    assert payload["format"] == "satchel-session/1"
    assert payload["module"] == "session_under_test"
    assert [name for name, _ in payload["skipped"]] == ["lock", "guarded"]  # namespace order
    assert sorted(payload["saved"]) == ["big", "reads_lock_global", "threading"]


NUMPY_SCRIPT = r"""
import json, sys
import numpy as np
import satchel

path, action = sys.argv[1], sys.argv[2]
if action == "dump":
    rng = np.random.default_rng(3)
    walk = 100 + np.cumsum(rng.normal(0, 0.5, 500_000))
    codes = rng.integers(0, 40, 300_000).astype(np.int32)
    grid = np.asfortranarray(rng.normal(size=(400, 300)))
    frozen = np.frombuffer(bytes(range(256)) * 512, dtype=np.uint16)

    def summary():
        return [float(walk.sum()), int(codes.sum()), float(grid[3, 7]), int(frozen[-1])]

    report = satchel.dump_session(path)
    info = satchel.inspect(open(path, "rb").read())
    print(json.dumps({"saved": sorted(report.saved), "summary": summary(),
                      "buffers": info["out_of_band_buffers"]}))
else:
    satchel.load_session(path)
    print(json.dumps({"summary": summary(),
                      "writeable": [walk.flags.writeable, codes.flags.writeable,
                                    grid.flags.f_contiguous, frozen.flags.writeable]}))
"""


def test_numpy_session_round_trips_across_processes(tmp_path):
    """Arrays leave the body and come back with their values, order and writeability."""
    pytest.importorskip(
        "numpy", reason="numpy has no wheel for this interpreter (PyPy 3.11: none published)"
    )
    path = tmp_path / "arrays.satchel"
    saved = json_out(run_script(NUMPY_SCRIPT, str(path), "dump"))
    assert {"walk", "codes", "grid", "frozen", "summary"} <= set(saved["saved"])
    assert saved["buffers"] == 4
    assert path.stat().st_size < 0.8 * (500_000 * 8 + 300_000 * 4 + 400 * 300 * 8)
    got = json_out(run_script(NUMPY_SCRIPT, str(path), "load"))
    assert got["summary"] == saved["summary"]
    assert got["writeable"] == [True, True, True, False]


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs /proc/self/maps")
def test_large_snapshots_are_read_into_private_memory_and_freed(tmp_path, monkeypatch):
    """A snapshot of 1 MiB or more is read into memory of the loader's own (anonymous, huge
    pages where the kernel has them), parsed in place through a read-only view and freed after
    the load. It is never mapped from the file: another program shortening the file meanwhile
    killed the loader with SIGBUS (test_reliability.py has that race)."""
    module = make_module("import os\nblob = os.urandom(3 << 20)\nsize = len(blob)\n")
    path = tmp_path / "big.satchel"
    satchel.dump_session(path, module=module)
    assert path.stat().st_size > 1 << 20
    seen = []
    real = satchel.loads

    def spy(data, **kwargs):
        seen.extend([type(data).__name__, memoryview(data).readonly])
        seen.append(str(path) in pathlib.Path("/proc/self/maps").read_text())
        seen.extend([data, data.obj])
        return real(data, **kwargs)

    monkeypatch.setattr(satchel, "loads", spy)
    target = make_module("")
    report = satchel.load_session(path, module=target)
    assert seen[:3] == ["memoryview", True, False]
    with pytest.raises(ValueError, match="released"):
        len(seen[3])
    assert seen[4].closed  # the anonymous map
    assert target.blob == module.blob and report.size == path.stat().st_size


def test_a_failed_load_leaves_the_namespace_untouched(tmp_path):
    """Loading is all or nothing: a global that cannot be rebuilt (a module importable where
    the snapshot was made, missing here) fails the load before any name is assigned."""
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "helper_only_here.py").write_text("def value():\n    return 1\n")
    path = tmp_path / "s.satchel"
    dump = "import sys, helper_only_here\nx = 1\n__import__('satchel').dump_session(sys.argv[1])"
    run_script(dump, str(path), env={"PYTHONPATH": str(modules)})
    load = textwrap.dedent(
        """
        import json, sys
        import satchel
        x = "before"
        try:
            satchel.load_session(sys.argv[1])
        except ModuleNotFoundError as exc:
            print(json.dumps([str(exc), x, "helper_only_here" in globals()]))
        """
    )
    got = json_out(run_script(load, str(path)))
    assert got == ["No module named 'helper_only_here'", "before", False]


def test_load_session_rejects_other_files(tmp_path):
    path = tmp_path / "other.pkl"
    with open(path, "wb") as f:
        satchel.dump([1, 2], f)
    with pytest.raises(satchel.UnpicklingError, match="not a satchel session snapshot"):
        satchel.load_session(path, module=types.ModuleType("t"))


def test_dump_session_has_no_default_path():
    with pytest.raises(TypeError):
        satchel.dump_session()


MODULE_SCRIPT = r"""
import json, sys, types
import satchel
from satchel import _session

source = '''
import math
radius = 2.0
shared = [1, 2]
pair = (shared, shared)
def area():
    return round(math.pi * radius ** 2, 6)
class Circle:
    def __init__(self, r):
        self.r = r
    def area(self):
        return round(math.pi * self.r ** 2, 6)
unit = Circle(1)
'''
if sys.argv[2] == "dump":
    module = types.ModuleType("geometry")
    exec(source, vars(module))
    report = satchel.dump_session(sys.argv[1], module=module)
    print(json.dumps(report.saved))
else:
    target = types.ModuleType("restored")
    report = satchel.load_session(sys.argv[1], module=target)
    target.radius = 1.0
    print(json.dumps({
        "area": target.area(), "unit": target.unit.area(),
        "globals": target.area.__globals__ is vars(target),
        "shared": target.pair[0] is target.pair[1] is target.shared,
        "main_untouched": "area" not in vars(sys.modules["__main__"]),
        "module": report.module,
    }))
"""


def test_module_argument_round_trip_across_processes(tmp_path):
    path = tmp_path / "geometry.satchel"
    saved = json_out(run_script(MODULE_SCRIPT, str(path), "dump"))
    assert saved == ["math", "radius", "shared", "pair", "area", "Circle", "unit"]
    got = json_out(run_script(MODULE_SCRIPT, str(path), "load"))
    assert got == {
        "area": 3.141593,
        "unit": 3.141593,
        "globals": True,
        "shared": True,
        "main_untouched": True,
        "module": "geometry",
    }


# ---------------------------------------------------------------------------------------------
# 4. Progress
# ---------------------------------------------------------------------------------------------


def test_progress_names_each_global_and_counts(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(satchel._session, "PROGRESS_INTERVAL", 0.0)  # every update shows
    module = make_module("a = list(range(10))\nb = 'text'\ndef c():\n    return a\n")
    satchel.dump_session(tmp_path / "s", module=module, progress=True)
    err = capsys.readouterr().err
    assert "\r" in err
    assert "satchel: [1/3] pickling a" in err
    assert "satchel: [2/3] pickling b" in err
    assert "satchel: [3/3] pickling c" in err
    assert "satchel: writing 3 objects (~" in err
    # A function (anything the C pickler hands to satchel) shows as it is written.
    assert "satchel: [3/3] writing c (" in err
    assert "satchel: compressing ~" in err and "satchel: syncing " in err
    assert err.endswith("\r")  # the status line is cleared at the end


def test_no_progress_when_not_a_terminal_or_disabled(tmp_path, capsys):
    module = make_module("a = 1")
    satchel.dump_session(tmp_path / "s", module=module)  # capsys: stderr is not a terminal
    satchel.dump_session(tmp_path / "s", module=module, progress=False)
    assert capsys.readouterr().err == ""


TTY_SCRIPT = r"""
import os, sys
import satchel
from satchel import _session

_session.PROGRESS_DELAY = 0  # a terminal shows the line once a save runs this long
numbers = list(range(100))
def total():
    return sum(numbers)
satchel.dump_session(sys.argv[1])  # progress=None: on only because stderr is a terminal
"""


def test_progress_is_on_by_default_on_a_terminal(tmp_path):
    import pty

    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", TTY_SCRIPT, str(tmp_path / "s")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=terminal,
            timeout=120,
            check=False,
        )
        os.close(terminal)
        terminal = None
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child is gone and everything was read
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        if terminal is not None:
            os.close(terminal)
        os.close(controller)
    assert proc.returncode == 0
    err = b"".join(chunks).decode()
    assert "satchel: [1/6] pickling os" in err and "satchel: [6/6] pickling total" in err
    assert "satchel: writing 6 objects" in err and err.endswith("\r")


# ---------------------------------------------------------------------------------------------
# 4b. One function encoder: a session function is satchel.dumps's encoding without globals
# ---------------------------------------------------------------------------------------------

ONE_ENCODER = r"""
import io, json, pickle, sys
import satchel
from satchel import _session

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]


def f(x, y=(1, 2), *, allowed=frozenset(WORDS), n=2):
    "Doc."
    return x in allowed and WORDS


ns = vars(sys.modules["__main__"])
session = _session._SessionPickler(io.BytesIO(), ns, mode=sys.argv[1])
plain = satchel.Pickler(io.BytesIO(), mode=sys.argv[1])
s, d = session.reducer_override(f), plain.reducer_override(f)
s_extra, d_extra = dict(s[2][2]), dict(d[2][2])
s_module, d_module = s_extra.pop("__module__"), d_extra.pop("__module__", "(derived)")
out = io.BytesIO()
_session._SessionPickler(out, ns, mode=sys.argv[1]).dump(f)
print(json.dumps({
    "constructor": s[0] is d[0], "setter": s[5] is d[5],
    "code": pickle.dumps(s[1][0]) == pickle.dumps(d[1][0]),
    "closure": pickle.dumps(s[1][2:], 5) == pickle.dumps(d[1][2:], 5),
    "globals": [s[1][1] is _session._NAMESPACE, isinstance(d[1][1], dict)],
    "sent": [sorted(s[2][0]), sorted(d[2][0])],
    "defaults": s[2][1] == d[2][1],
    "extra": pickle.dumps(s_extra, 5) == pickle.dumps(d_extra, 5),
    "kwdefaults": sorted(s_extra["__kwdefaults__"]),
    "module": [s_module, d_module],
    "stream": out.getvalue().hex(),
}))
"""


@pytest.mark.parametrize("mode", ["nonportable", "portable"])
def test_session_function_encodes_as_dumps_does(tmp_path, mode):
    """The session path uses satchel.dumps's function encoder (reduce/function.rs): the same
    constructor, code, closure, defaults and attributes, with sorted frozensets in kwdefaults
    (the stream does not depend on PYTHONHASHSEED), only the globals replaced by the session
    namespace's placeholder and ``__module__`` always sent."""
    script = tmp_path / "one_encoder.py"  # portable mode needs the source in a file
    script.write_text(ONE_ENCODER)
    runs = []
    for seed in ("1", "2"):
        proc = subprocess.run(
            [sys.executable, str(script), mode],
            capture_output=True,
            timeout=120,
            check=False,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert proc.returncode == 0, proc.stderr.decode()
        runs.append(json_out(proc.stdout))
    got = runs[0]
    stream = got.pop("stream")
    assert got == {
        "constructor": True,
        "setter": True,
        "code": True,
        "closure": True,
        "globals": [True, True],
        "sent": [[], ["WORDS"]],
        "defaults": True,
        "extra": True,
        "kwdefaults": ["allowed", "n"],
        "module": ["__main__", "(derived)"],
    }
    assert runs[1]["stream"] == stream  # frozensets sorted: the same bytes under any hash seed


# ---------------------------------------------------------------------------------------------
# 5. Other interpreters
# ---------------------------------------------------------------------------------------------

PORTABLE_SESSION = r"""
import json
import os.path

RATE = 1.5
items = [1, 2, 3]
view = items


def scale(x):
    return x * RATE


class Account:
    def __init__(self, owner, balance):
        self.owner = owner
        self.balance = balance

    def deposit(self, amount):
        self.balance += scale(amount)
        return self.balance


class Savings(Account):
    def deposit(self, amount):
        return super().deposit(amount) + 100


accounts = [Account("ada", 10), Savings("bob", 5)]
add = (lambda k: (lambda x: x + k))(3)
join = os.path.join

import sys as _sys
__import__("satchel").dump_session(_sys.argv[1], **json.loads(_sys.argv[2]))
"""

# What load_session does, in an interpreter without satchel: plain pickle.loads, then the
# saved globals assigned into __main__ (the functions' globals are __main__'s dict).
STDLIB_RESTORE = r"""
import importlib.util, json, pickle, sys
import __main__
assert importlib.util.find_spec("satchel") is None
try:
    payload = pickle.loads(open(sys.argv[1], "rb").read())
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
    raise SystemExit(0)
vars(__main__).update(payload["saved"])
print(json.dumps({
    "format": payload["format"],
    "results": [scale(2), accounts[0].deposit(2), accounts[1].deposit(2), add(4), join("a", "b")],
    "shared": view is items, "globals": scale.__globals__ is vars(__main__),
    "subclass": isinstance(accounts[1], Account),
}))
"""


def snapshot_from_file_script(tmp_path, **kwargs):
    """Portable mode needs source: the session runs from a file."""
    script = tmp_path / "session_script.py"
    script.write_text(PORTABLE_SESSION)
    path = tmp_path / "portable.satchel"
    subprocess.run(
        [sys.executable, str(script), str(path), json.dumps(kwargs)],
        check=True,
        timeout=120,
        capture_output=True,
    )
    return path


def run_stdlib(python, path):
    proc = subprocess.run(
        [python, "-I", "-S", "-c", STDLIB_RESTORE, str(path)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return json_out(proc.stdout)


@pytest.mark.parametrize("name", list(OTHER_VERSIONS))
def test_portable_snapshot_loads_on_other_interpreters(tmp_path, name):
    other = OTHER_VERSIONS[name]
    python = pythons.need(other)
    # CPython 3.14+ decodes zstd with its stdlib; the others get an uncompressed snapshot.
    compress = other.impl == "cpython" and other.version >= (3, 14)
    path = snapshot_from_file_script(tmp_path, mode="portable", compress=compress)
    info = satchel.inspect(path.read_bytes())
    assert info["mode"] == "portable" and info["standalone"]
    assert info["compression"] == ("zstd" if compress else None)
    got = run_stdlib(python, path)
    assert got == {
        "format": "satchel-session/1",
        "results": [3.0, 13.0, 108.0, 7, "a/b"],
        "shared": True,
        "globals": True,
        "subclass": True,
    }


def test_portable_snapshot_loads_with_load_session(tmp_path):
    path = snapshot_from_file_script(tmp_path, mode="portable")
    code = "import satchel, sys; satchel.load_session(sys.argv[1]); print(scale(2), add(1))"
    assert run_script(code, str(path)).split() == [b"3.0", b"4"]


def test_nonportable_snapshot_refused_by_another_version(tmp_path):
    other = pythons.other_cpython()
    path = snapshot_from_file_script(tmp_path, standalone=True)
    got = run_stdlib(other.path, path)
    assert got["error"] == "IncompatibleInterpreter"
    made_by = describe(satchel._satchel.LABEL)
    assert got["message"].startswith(f"stream made by {made_by}; this is {other.label} (bytecode ")
    assert got["message"].endswith("): re-dump with mode='portable'")


FORGED_LOAD = r"""
import json, sys
import satchel
from satchel import _session
sentinel = "untouched"
try:
    satchel.load_session(sys.argv[1])
except satchel.IncompatibleInterpreter as exc:
    print(json.dumps({"message": str(exc), "unpickling": isinstance(exc, satchel.UnpicklingError),
                      "sentinel": sentinel, "scale": "scale" in globals()}))
"""


def test_load_session_raises_the_fingerprint_error(tmp_path):
    """A lean snapshot whose header names another interpreter build: load_session raises
    IncompatibleInterpreter before anything is built or assigned."""
    path = snapshot_from_file_script(tmp_path)
    data = four_arguments(path.read_bytes())
    header_size = satchel.inspect(data)["header_size"]
    head = data[:header_size]
    mine = b"C\x10" + satchel.FINGERPRINT
    assert head.count(mine) == 1
    other = hashlib.sha256(b"another interpreter").digest()[:16]
    label = producer_field(compact(satchel._satchel.LABEL))  # "cp311/3495" on 3.11
    head = head.replace(mine, b"C\x10" + other).replace(label, producer_field(OTHER_LABEL))
    path.write_bytes(head + data[header_size:])
    got = json_out(run_script(FORGED_LOAD, str(path)))
    assert got["message"] == (
        f"stream made by {describe(OTHER_LABEL)}; "
        f"this is {describe(satchel._satchel.LABEL)}: re-dump with mode='portable'"
    )
    assert got["unpickling"] is True
    assert got["sentinel"] == "untouched" and got["scale"] is False


# ---------------------------------------------------------------------------------------------
# 6. IPython: the magics in a real Jupyter kernel
# ---------------------------------------------------------------------------------------------

CELL_DEFS = """\
import math
import threading
offset = 10
def area(r):
    return round(math.pi * r * r, 3) + offset
class Counter:
    def __init__(self, start):
        self.n = start
    def bump(self, k=1):
        self.n += k
        return self.n
counter = Counter(5)
def make_scaler(factor):
    return lambda x: x * factor + offset
scaler = make_scaler(3)
shout = lambda s: s.upper() + "!"
_helper = 42
lock = threading.Lock()
"""
CELL_USE = "counter.bump(2); counter.n"
EXPR = 'print(repr((area(2), counter.bump(2), scaler(4), shout("hi"), _helper)))'
CHECK = (
    "print(repr((area.__globals__ is get_ipython().user_ns, 'lock' in dir(), "
    "type(counter).__name__, isinstance(counter, Counter))))"
)


class Kernel:
    """A Jupyter kernel of this venv's Python, started from a kernelspec in a temp dir."""

    def __init__(self, root):
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        kernels = root / "kernels"
        spec = kernels / "satchel-test"
        spec.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        spec.joinpath("kernel.json").write_text(
            json.dumps({"argv": argv, "display_name": "satchel test", "language": "python"})
        )
        env = dict(
            os.environ,
            IPYTHONDIR=str(root / "ipython"),
            JUPYTER_RUNTIME_DIR=str(root / "runtime"),
            JUPYTER_PLATFORM_DIRS="1",
        )
        self.manager = KernelManager(
            kernel_name="satchel-test",
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]),
        )
        self.manager.start_kernel(env=env, cwd=str(root))
        self.client = self.manager.client()
        self.client.start_channels()
        try:
            self.client.wait_for_ready(timeout=90)
        except BaseException:
            self.shutdown()
            raise

    def run(self, code, timeout=90):
        """Execute one cell; its stdout and results, or an AssertionError with the traceback."""
        out, errors = [], []

        def hook(msg):
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                (out if content["name"] == "stdout" else errors).append(content["text"])
            elif kind == "execute_result":
                out.append(content["data"]["text/plain"] + "\n")
            elif kind == "error":
                errors.append("\n".join(content["traceback"]))

        try:
            reply = self.client.execute_interactive(code, timeout=timeout, output_hook=hook)
        except (TimeoutError, queue.Empty) as exc:
            raise AssertionError(f"cell timed out after {timeout} s: {code!r}") from exc
        assert reply["content"]["status"] == "ok", "".join(errors)
        return "".join(out)

    def shutdown(self):
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=False)


def test_jupyter_kernel_save_then_load_in_a_new_kernel(tmp_path):
    pytest.importorskip("jupyter_client")
    pytest.importorskip("ipykernel")
    path = tmp_path / "notebook session.satchel"  # a space: the magic takes quoted paths
    first = Kernel(tmp_path)
    try:
        first.run(CELL_DEFS)
        assert first.run(CELL_USE).strip() == "7"
        first.run("%load_ext satchel")
        saved = first.run(f'%satchel save "{path}"')
        expected = first.run(EXPR)
    finally:
        first.shutdown()
    # math, threading, offset, area, Counter, counter, make_scaler, scaler, shout, _helper
    assert f"satchel: saved 10 objects ({_session.format_size(path.stat().st_size)})" in saved
    assert str(path) in saved
    assert "skipped 1:" in saved and "lock: " in saved and "_thread.lock" in saved
    assert expected.strip() == repr((round(math.pi * 4, 3) + 10, 9, 22, "HI!", 42))

    second = Kernel(tmp_path)
    try:
        second.run("%load_ext satchel")
        loaded = second.run(f'%satchel load "{path}"')
        got = second.run(EXPR)
        checks = second.run(CHECK)
    finally:
        second.shutdown()
    assert "satchel: loaded 10 objects" in loaded and "lock: " in loaded
    assert got == expected
    assert checks.strip() == "(True, False, 'Counter', True)"


IPYTHON_SCRIPT = r"""
import json
from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance()
outputs = []
for cell in ["x = 1\n_private = 2\nIn_data = [x]", "x + 1", "_ * 2", "%load_ext satchel",
             "%satchel save", "%satchel save --fast s.satchel", "%satchel dump s.satchel",
             "%satchel save s.satchel"]:
    result = shell.run_cell(cell, store_history=True)
    outputs.append(type(result.error_in_exec).__name__ if result.error_in_exec else None)
import satchel
from satchel import _session
report = satchel.load_session("s.satchel", module=__import__("types").ModuleType("t"))
hidden = [n for n in ("In", "Out", "_", "__", "___", "_i", "_ii", "_iii", "_i1", "_2", "_ih",
                      "_oh", "_dh", "exit", "quit", "get_ipython", "open") if n in shell.user_ns]
shell.run_cell("%unload_ext satchel")
gone = shell.run_cell("%satchel save s.satchel").error_in_exec
print(json.dumps({"saved": report.saved, "outputs": outputs, "hidden": hidden,
                  "unloaded": type(gone).__name__}))
"""


def test_ipython_namespace_rules_and_usage_errors(tmp_path):
    pytest.importorskip("IPython", reason="IPython is not installed for this interpreter")
    got = json_out(run_script(f"import os\nos.chdir({str(tmp_path)!r})\n" + IPYTHON_SCRIPT))
    # IPython's own names are left out; the user's, `_private` included, are saved.
    assert got["saved"] == ["x", "_private", "In_data"]
    assert len(got["hidden"]) == 17, got["hidden"]  # they were all there to leave out
    assert got["outputs"][:4] == [None, None, None, None]
    assert got["outputs"][4:7] == ["UsageError"] * 3
    assert got["outputs"][7] is None
    assert got["unloaded"] == "UsageError"
