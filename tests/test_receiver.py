"""What a receiver without satchel (or on another interpreter) is told: every error names
satchel and the fix that works for the stream it got.

The stdlib-only receiver is this interpreter under ``-I -S``: no site-packages, so no satchel,
but the same build (so only satchel's absence is tested)."""

import hashlib
import io
import pickle
import subprocess
import sys
import types

import pytest

import satchel
from pythons import four_arguments, packed

LEAN_MODULE = satchel._satchel.LEAN_MODULE_NAME
NEEDS_SATCHEL = f"ModuleNotFoundError: No module named '{LEAN_MODULE}'"

_STDLIB_LOAD = r"""
import pickle, sys
try:
    import satchel
except ImportError:
    pass
else:
    raise SystemExit("satchel is importable here")
obj = pickle.loads(sys.stdin.buffer.read())
print(repr(obj(2) if callable(obj) else list(obj)))
"""


def stdlib_load(data):
    """Load ``data`` with plain pickle in a stdlib-only interpreter: (exit code, last line)."""
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _STDLIB_LOAD],
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
    )
    out = (proc.stdout or proc.stderr).decode().strip().splitlines()
    return proc.returncode, without_site_hint(out[-1]) if out else ""


def without_site_hint(line):
    """3.15+ adds a hint to a ModuleNotFoundError when ``-S`` disabled site initialization
    ("... Site initialization is disabled, did you forget ..."); a receiver that simply lacks
    satchel (the case the message is for) does not get it."""
    return line.split(". Site initialization is disabled")[0]


def lean_stream(**kwargs):
    k = 3
    return satchel.dumps(lambda x: x * k, **kwargs)


def test_the_message_names_satchel_and_both_fixes():
    assert "satchel 1_5+" in LEAN_MODULE and "standalone=True" in LEAN_MODULE
    # It is a module name: an import stops at a dot, so there must be none.
    assert "." not in LEAN_MODULE


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"protocol": 2},
        {"protocol": 0},
        {"compress": True},
        {"mode": "portable", "standalone": False},
    ],
    ids=["lean", "lean-p2", "lean-p0", "compressed", "portable-lean"],
)
def test_lean_stream_without_satchel(kwargs):
    code, last = stdlib_load(lean_stream(**kwargs))
    assert code == 1
    assert last == NEEDS_SATCHEL


def test_lean_stream_with_satchel_installed_but_not_imported():
    """Where satchel is installed, plain pickle finds the module on disk (satchel not yet
    imported): the name is a real module there."""
    code = (
        "import pickle, sys; obj = pickle.loads(sys.stdin.buffer.read()); "
        "assert 'satchel' in sys.modules; print(obj(2))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        input=lean_stream(),
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout.decode().strip() == "6"


def test_standalone_stream_needs_no_satchel():
    assert stdlib_load(lean_stream(standalone=True)) == (0, "6")


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="3.14 decodes zstd with the stdlib")
def test_standalone_compressed_stream_without_satchel():
    code, last = stdlib_load(lean_stream(standalone=True, compress=True))
    assert code == 1
    assert "UnpicklingError" in last
    assert "needs satchel (pip install satchel) or Python 3.14+" in last
    assert "compress=False" in last


def test_standalone_suspended_generator_without_satchel():
    """standalone=True is no fix for a started generator: the message says satchel."""

    def gen():
        yield 1
        yield 2

    g = gen()
    next(g)
    if not satchel._satchel.LIVE_GENERATORS.startswith("cpython"):
        pytest.skip(f"no live generators here: {satchel._satchel.LIVE_GENERATORS}")
    code, last = stdlib_load(satchel.dumps(g, standalone=True))
    assert code == 1
    assert "needs satchel on the receiver (pip install satchel)" in last


def test_old_lean_header_still_loads():
    """Streams before format 1.4 named ``_satchel_boot_1.check``, format 1.4's named
    ``LEAN_MODULE_1_4``, both with four arguments: still read, by satchel and by plain
    pickle."""
    data = four_arguments(lean_stream())
    v14 = data.replace(
        b"c" + LEAN_MODULE.encode() + b"\nc\n",
        b"c" + satchel._satchel.LEAN_MODULE_1_4_NAME.encode() + b"\nc\n",
        1,
    ).replace(b"\x8c\x05" + satchel.FORMAT_VERSION.encode(), b"\x8c\x051.4.0", 1)
    assert satchel.inspect(v14)["format_version"] == "1.4.0"
    assert satchel.loads(v14)(2) == 6
    assert pickle.loads(v14)(2) == 6
    old = data.replace(
        b"c" + LEAN_MODULE.encode() + b"\nc\n", b"c_satchel_boot_1\ncheck\n", 1
    ).replace(b"\x8c\x05" + satchel.FORMAT_VERSION.encode(), b"\x8c\x051.3.0", 1)
    assert old != data
    info = satchel.inspect(old)
    assert info["format_version"] == "1.3.0"
    assert info["header_size"] == satchel.inspect(data)["header_size"] - (len(data) - len(old))
    assert satchel.loads(old)(2) == 6
    assert pickle.loads(old)(2) == 6


# ---------------------------------------------------------------------------------------------
# Another interpreter: the advice depends on what the stream holds (header flags, format 1.4)
# ---------------------------------------------------------------------------------------------

OTHER_FINGERPRINT = hashlib.sha256(b"another interpreter").digest()[:16]


def from_another_interpreter(data):
    """``data`` as if another interpreter build had written it (its fingerprint), in a packed
    lean header or in four arguments."""
    size = satchel.inspect(data)["header_size"]
    p = packed(data[:size])
    if p is not None:
        fp, other = p, p[:4] + OTHER_FINGERPRINT + p[20:]
    else:
        fp, other = b"C\x10" + satchel.FINGERPRINT, b"C\x10" + OTHER_FINGERPRINT
    assert data[:size].count(fp) == 1
    return data[:size].replace(fp, other) + data[size:]


def started():
    def gen():
        total = 0
        for v in range(3):
            total += v
            yield total

    g = gen()
    next(g)
    return g


def _live():
    if not satchel._satchel.LIVE_GENERATORS.startswith("cpython"):
        pytest.skip(f"no live generators here: {satchel._satchel.LIVE_GENERATORS}")


@pytest.mark.parametrize("loader", [satchel.loads, pickle.loads], ids=["satchel", "pickle"])
def test_closure_from_another_interpreter_advises_portable(loader):
    data = from_another_interpreter(lean_stream())
    with pytest.raises(satchel.IncompatibleInterpreter, match=r"re-dump with mode='portable'$"):
        loader(data)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("loader", [satchel.loads, pickle.loads], ids=["satchel", "pickle"])
def test_started_generator_from_another_interpreter_does_not_advise_portable(loader, compress):
    _live()
    data = satchel.dumps([started(), 1], compress=compress)
    assert satchel.inspect(data)["suspended_generators"] is True
    with pytest.raises(satchel.IncompatibleInterpreter) as info:
        loader(from_another_interpreter(data))
    message = str(info.value)
    assert "portable" not in message
    assert "it holds a started generator, whose frame resumes only on" in message
    assert message.endswith(": load it there")


def test_not_started_generator_is_no_started_generator():
    """A generator before its first next() travels as its function and arguments: portable
    mode takes it, so the advice stays."""

    def gen():
        yield 1

    data = satchel.dumps(gen())
    assert satchel.inspect(data)["suspended_generators"] is False
    with pytest.raises(satchel.IncompatibleInterpreter, match="mode='portable'"):
        satchel.loads(from_another_interpreter(data))


@pytest.mark.parametrize("how", ["dump", "Pickler", "Pickler-compressed"])
def test_streamed_header_hedges(how):
    """``dump`` writes its header before the body, so it cannot know what the body holds: the
    advice says when it does not apply. A compressing Pickler buffers its body and knows."""
    _live()
    f = io.BytesIO()
    if how == "dump":
        satchel.dump(started(), f)
    else:
        satchel.Pickler(f, compress=how.endswith("compressed")).dump(started())
    data = f.getvalue()
    with pytest.raises(satchel.IncompatibleInterpreter) as info:
        satchel.loads(from_another_interpreter(data))
    message = str(info.value)
    if how == "Pickler-compressed":
        assert satchel.inspect(data)["suspended_generators"] is True
        assert "portable" not in message and "it holds a started generator" in message
    else:
        name, _, bytecode = satchel._satchel.LABEL.partition("/")
        assert message.endswith(
            "re-dump with mode='portable' (a started generator cannot be: load it on "
            f"{name} (bytecode {bytecode}))"
        ), message


def test_session_snapshot_records_generators(tmp_path):
    """dump_session writes through a compressing Pickler: its header knows."""
    _live()
    module = types.ModuleType("snapshot_ns")
    module.g = started()
    sys.modules["snapshot_ns"] = module
    try:
        satchel.dump_session(tmp_path / "s.satchel", module=module)
    finally:
        del sys.modules["snapshot_ns"]
    info = satchel.inspect((tmp_path / "s.satchel").read_bytes())
    assert info["suspended_generators"] is True
