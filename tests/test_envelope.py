"""The stream envelope: the header every stream that needs satchel starts with (format
version, flags, interpreter fingerprint, producer), the standalone payload, zstd compression
and ``satchel.inspect``.

The key cases cross a process boundary: a fresh interpreter with satchel installed (the venv's),
and stdlib-only interpreters run with ``-I -S`` (no satchel anywhere), which is what a
standalone stream is for. Interpreters that are not installed are skipped, with the reason.
"""

import functools
import hashlib
import io
import json
import operator
import pathlib
import pickle
import pickletools
import random
import subprocess
import sys

import pytest

import _satchel_boot_1
import pythons
import satchel
from conftest import child_eval_bytes, run_script
from pythons import (
    OTHER_LABEL,
    compact,
    describe,
    four_arguments,
    packed,
    packed_label,
    producer_field,
)

MiB = 1 << 20
LABEL = satchel._satchel.LABEL  # "CPython 3.11/3495" on 3.11
REPO = pathlib.Path(__file__).resolve().parent.parent
# Interpreters with this one's bytecode (its own base, other builds of its version) and of other
# language versions, as the running interpreter sees them (tests/pythons.py).
SAME_BYTECODE = {p.name: p for p in pythons.SAME_VERSION}
OTHER_VERSIONS = {p.name: p for p in pythons.OTHER_VERSIONS}
STDLIB_HERE = "stdlib-here"  # this interpreter, -I -S: stdlib only, this fingerprint


def run_stdlib(python, code, payload=b"", *args, timeout=60):
    """``code`` in ``python -I -S``: no site-packages, so no satchel. ``python`` is a path, or
    ``STDLIB_HERE`` for this interpreter."""
    argv = pythons.stdlib_here() if python == STDLIB_HERE else [python, "-I", "-S"]
    return subprocess.run(
        [*argv, "-c", code, *args],
        input=payload,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def run_venv(code, payload=b"", *args, timeout=60):
    """``code`` in a fresh interpreter of the venv (satchel installed)."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        input=payload,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


# A stdlib-only receiver: plain pickle.loads, then ``sys.argv[1]`` evaluated with ``obj``.
STDLIB_EVAL = r"""
import importlib.util, pickle, sys
assert importlib.util.find_spec("satchel") is None, "satchel is importable in this child"
obj = pickle.loads(sys.stdin.buffer.read())
result = eval(compile(sys.argv[1], "<expr>", "eval"), {"obj": obj})
sys.stdout.buffer.write(pickle.dumps(result, protocol=2))
"""


def stdlib_eval(python, payload, expr):
    proc = run_stdlib(python, STDLIB_EVAL, payload, expr)
    assert proc.returncode == 0, f"{python} failed ({proc.returncode}):\n{proc.stderr.decode()}"
    return pickle.loads(proc.stdout)


def header_of(data):
    return data[: satchel.inspect(data)["header_size"]]


def forge(data, old, new):
    """``data`` with ``old`` replaced by ``new`` (exactly once) inside its header; if the
    header is a frame of its own (PROTO FRAME n ...), the frame gets its new length. A packed
    lean header is first written with its four arguments (``pythons.four_arguments``), which
    the same check takes; ``test_forged_packed_header`` forges packed ones."""
    data = four_arguments(data)
    size = satchel.inspect(data)["header_size"]
    head = data[:size]
    assert head.count(old) == 1, (old, head)
    head = head.replace(old, new)
    if head[:1] == pickle.PROTO and head[2:3] == pickle.FRAME:
        head = head[:3] + (len(head) - 11).to_bytes(8, "little") + head[11:]
    return head + data[size:]


def short_str(text):
    """A header string at protocol 4+ (SHORT_BINUNICODE)."""
    return pickle.SHORT_BINUNICODE + bytes([len(text)]) + text.encode()


OTHER_FINGERPRINT = hashlib.sha256(b"impl=cpython;version=other;forged").digest()[:16]


def closure_stream(**kwargs):
    k = 7
    return satchel.dumps((lambda x: x * k, [1, 2]), **kwargs)


# ---------------------------------------------------------------------------------------------
# 1. Fingerprint
# ---------------------------------------------------------------------------------------------


def test_fingerprint_rust_and_bootstrap_agree():
    assert satchel._satchel.FINGERPRINT_TEXT == _satchel_boot_1._fingerprint_text()
    assert satchel.FINGERPRINT == _satchel_boot_1.FINGERPRINT
    assert satchel._satchel.LABEL == _satchel_boot_1.LABEL
    text = _satchel_boot_1._fingerprint_text()
    assert satchel.FINGERPRINT == hashlib.sha256(text.encode()).digest()[:16]
    assert isinstance(satchel.FINGERPRINT, bytes) and len(satchel.FINGERPRINT) == 16
    # What it covers (micro version left out: one minor shares its bytecode).
    fields = dict(part.split("=", 1) for part in text.split(";"))
    assert fields["impl"] == sys.implementation.name
    version = "{}.{}".format(*sys.version_info[:2])
    assert fields["version"] == version
    assert fields["format"] == satchel.FORMAT_VERSION.split(".")[0]
    implementation = {"cpython": "CPython", "pypy": "PyPy"}[sys.implementation.name]
    assert LABEL.startswith(f"{implementation} {version}/")


def test_fingerprint_in_a_fresh_process_matches():
    code = "import satchel, _satchel_boot_1; print(satchel.FINGERPRINT.hex(), _satchel_boot_1.FINGERPRINT.hex())"
    proc = run_venv(code)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.split() == [satchel.FINGERPRINT.hex().encode()] * 2


def test_same_bytecode_interpreters_compute_the_same_fingerprint():
    """The bootstrap's fingerprint, computed by stdlib-only builds of this version from the
    embedded source (this interpreter's own too), equals satchel's: a nonportable stream loads
    there (test 4 below)."""
    source = satchel._satchel.BOOTSTRAP_SOURCE
    code = "import sys; ns = {}; exec(sys.stdin.read(), ns); print(ns['FINGERPRINT'].hex())"
    receivers = [STDLIB_HERE] + [p.path for p in SAME_BYTECODE.values() if p.exists]
    for path in receivers:
        proc = run_stdlib(path, code, source.encode())
        assert proc.returncode == 0, proc.stderr.decode()
        assert proc.stdout.decode().strip() == satchel.FINGERPRINT.hex(), path


# ---------------------------------------------------------------------------------------------
# 2. Sizes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_lean_header_size(protocol):
    data = closure_stream(protocol=protocol)
    info = satchel.inspect(data)
    print(f"\nlean header, protocol {protocol}: {info['header_size']} bytes")
    assert not info["standalone"]
    assert info["header_size"] <= 96


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_lean_header_is_packed(protocol):
    """Format 1.5's lean header: its module (the message), then one bytes argument of 25
    (version, flags, fingerprint, producer packed): 65 bytes (format 1.4's: 85, or 83 without
    its PROTO), read back as the full label."""
    if sys.implementation.name not in ("cpython", "pypy"):
        pytest.skip("only CPython and PyPy labels have a packed form")
    data = closure_stream(protocol=protocol)
    head = header_of(data)
    lean = satchel._satchel.LEAN_MODULE_NAME.encode()
    assert len(head) == len(lean) + 34 == 65
    major, minor, patch = map(int, satchel.FORMAT_VERSION.split("."))
    flags = satchel._satchel._wire()["FLAG_NONPORTABLE"]
    assert packed(head) == (
        bytes([major, minor, patch, flags]) + satchel.FINGERPRINT + packed_label(LABEL)
    )
    assert head == b"c" + lean + b"\nc\nC\x19" + packed(head) + b"\x85R0"
    info = satchel.inspect(data)
    assert info["producer"] == LABEL and info["format_version"] == satchel.FORMAT_VERSION
    # Its four-argument form (protocols 0-1, other implementations) is read alike.
    assert satchel.loads(four_arguments(data))[0](2) == 14
    assert pickle.loads(four_arguments(data))[0](2) == 14
    # A standalone header keeps the full label (its own bootstrap's check prints it as is).
    alone = header_of(closure_stream(protocol=max(protocol, 3), standalone=True))
    assert producer_field(LABEL) in alone


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_a_small_body_after_a_header_has_no_frame_and_one_proto(protocol):
    """The header has no PROTO (the body's own follows it) and a small body in one frame loses
    its FRAME header: 11 bytes of a ~300-byte task stream. Every unpickler reads it."""
    data = closure_stream(protocol=protocol)
    ops = [op.name for op, _, _ in pickletools.genops(data)]
    assert ops.count("PROTO") == (1 if protocol >= 2 else 0)
    assert "FRAME" not in ops
    info = satchel.inspect(data)
    assert info["protocol"] == (protocol if protocol >= 2 else None)
    for load in (pickle.loads, pickle._loads, satchel.loads):
        f, args = load(data)
        assert (f(2), args) == (14, [1, 2])
    assert child_eval_bytes(data, "(obj[0](3), obj[1])") == (21, [1, 2])
    # Cut between two of its opcodes, satchel.loads calls it truncated, as it does inside a
    # frame (plain pickle says "Ran out of input", EOFError, as for any pickle without frames).
    for cut in range(1, 12):
        with pytest.raises(pickle.UnpicklingError):
            satchel.loads(data[:-cut])


def test_only_small_one_frame_bodies_lose_their_frame():
    k = 3
    big = satchel.dumps((lambda x: x * k, list(range(5000))))
    assert [op.name for op, _, _ in pickletools.genops(big)].count("FRAME") >= 1
    assert pickle.loads(big)[0](2) == 6
    # What has no header is the stdlib's pickle, byte for byte.
    assert satchel.dumps([1, 2]) == pickle.dumps([1, 2], protocol=5)
    # A compressed stream keeps its header's PROTO and its body as the pickler wrote it.
    packed = closure_stream(compress=True)
    assert packed[:2] == b"\x80\x05"
    assert pickle.loads(packed)[0](2) == 14


@pytest.mark.parametrize("mode", ["nonportable", "portable"])
@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_standalone_header_size(mode, protocol):
    data = closure_stream(protocol=protocol, mode=mode, standalone=True)
    info = satchel.inspect(data)
    print(
        f"\nstandalone {mode} header, protocol {protocol}: {info['header_size']} bytes "
        f"(payload {info['standalone_payload_size']})"
    )
    assert info["standalone"]
    assert info["header_size"] <= 4096


def test_minifier_may_rename_parameters():
    """The standalone minifier (python/satchel/_standalone.py) gives parameters short names:
    that is only sound while no call in the bootstrap passes a parameter of one of the
    bootstrap's own functions by keyword."""
    import ast

    loader = (
        pathlib.Path(__file__).resolve().parent.parent / "bootstrap" / "loader.py"
    ).read_text()
    for source in (satchel._satchel.BOOTSTRAP_SOURCE, loader):
        tree = ast.parse(source)
        defs = ast.FunctionDef | ast.AsyncFunctionDef
        own = {n.name for n in ast.walk(tree) if isinstance(n, defs)}
        by_keyword = [
            ast.unparse(call)
            for call in ast.walk(tree)
            if isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id in own
            and any(k.arg is not None for k in call.keywords)
        ]
        assert not by_keyword


# ---------------------------------------------------------------------------------------------
# 3. The header check runs before the body
# ---------------------------------------------------------------------------------------------


class CreateFile:
    """Unpickling it creates ``path``: a visible side effect of the body running."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "x"))


class Announce:
    def __reduce__(self):
        return (print, ("BODY RAN",))


# Loads with plain pickle.loads (or satchel.loads) and reports on its last stdout line.
CHILD_REPORT = r"""
import json, pickle, sys
data = sys.stdin.buffer.read()
try:
    if sys.argv[1] == "satchel":
        import satchel
        obj = satchel.loads(data)
    elif sys.argv[1] == "pickle, 1.4.0 receiver":
        # What a 1.4.0 receiver has: format 1.4's lean module, whose check is the bootstrap's
        # check(version, flags, fingerprint, producer), in Python, and not format 1.5's module.
        import satchel, _satchel_boot_1
        sys.modules[satchel._satchel.LEAN_MODULE_1_4_NAME].c = _satchel_boot_1.check
        new = satchel._satchel.LEAN_MODULE_NAME
        del sys.modules[new]

        class Absent:
            def find_spec(self, name, path=None, target=None):
                if name == new:
                    raise ModuleNotFoundError("No module named %r" % name, name=name)

        sys.meta_path.insert(0, Absent())
        obj = pickle.loads(data)
    else:
        obj = pickle.loads(data)
except Exception as exc:
    import satchel
    report = {
        "error": type(exc).__module__ + "." + type(exc).__qualname__,
        "message": str(exc),
        "interpreter": isinstance(exc, satchel.IncompatibleInterpreter),
        "format": isinstance(exc, satchel.IncompatibleFormat),
        "satchel": isinstance(exc, satchel.UnpicklingError),
    }
else:
    report = {"result": obj[0](6)}
sys.stdout.flush()
print("REPORT " + json.dumps(report))
"""


def side_effect_stream(path, protocol=5):
    k = 7
    return satchel.dumps((lambda x: x * k, CreateFile(str(path)), Announce()), protocol=protocol)


def report_of(data, loader):
    proc = run_venv(CHILD_REPORT, data, loader)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert lines and lines[-1].startswith("REPORT "), proc.stdout
    return json.loads(lines[-1][len("REPORT ") :]), lines[:-1]


@pytest.mark.parametrize("loader", ["pickle", "satchel"])
def test_side_effect_control(tmp_path, loader):
    """Without forging, the body runs in the child: the side effects below are observable."""
    path = tmp_path / "ran"
    report, printed = report_of(side_effect_stream(path), loader)
    assert report == {"result": 42}
    assert printed == ["BODY RAN"]
    assert path.exists()


def _forge_fingerprint(data, protocol):
    if protocol >= 2:
        # From protocol 2 on the header writes the fingerprint as SHORT_BINBYTES (the
        # unpickler accepts the opcode whatever the protocol).
        return forge(data, b"C\x10" + satchel.FINGERPRINT, b"C\x10" + OTHER_FINGERPRINT)
    # Below protocol 2 the header is text: the fingerprint is hex there.
    return forge(data, satchel.FINGERPRINT.hex().encode(), OTHER_FINGERPRINT.hex().encode())


@pytest.mark.parametrize("loader", ["pickle", "satchel"])
@pytest.mark.parametrize("protocol", [2, 3, 5])
def test_forged_fingerprint_raises_before_the_body(tmp_path, loader, protocol):
    path = tmp_path / "ran"
    data = _forge_fingerprint(side_effect_stream(path, protocol), protocol)
    # A lean header names its producer compactly; a full label there reads as well.
    data = forge(data, producer_field(compact(LABEL)), producer_field(OTHER_LABEL))
    info = satchel.inspect(data)
    assert info["producer"] == OTHER_LABEL
    assert info["fingerprint"] == OTHER_FINGERPRINT.hex()
    assert info["matches_this_interpreter"] is False

    report, printed = report_of(data, loader)
    assert report.get("interpreter") is True, report
    assert report["satchel"] is True
    message = report["message"]
    assert describe(OTHER_LABEL) in message  # the producer
    assert describe(LABEL) in message  # this interpreter
    assert "re-dump with mode='portable'" in message
    # Nothing of the body ran.
    assert printed == []
    assert not path.exists()


@pytest.mark.parametrize("loader", ["pickle", "satchel"])
def test_forged_newer_minor_raises_incompatible_format_before_the_body(tmp_path, loader):
    path = tmp_path / "ran"
    data = forge(side_effect_stream(path), short_str(satchel.FORMAT_VERSION), short_str("1.99.0"))
    assert satchel.inspect(data)["format_version"] == "1.99.0"
    report, printed = report_of(data, loader)
    assert report.get("format") is True, report
    assert report["satchel"] is True and report["interpreter"] is False
    assert "1.99.0" in report["message"] and satchel.FORMAT_VERSION in report["message"]
    assert printed == []
    assert not path.exists()


@pytest.mark.parametrize("loader", ["pickle", "satchel"])
def test_forged_older_minor_still_loads(tmp_path, loader):
    path = tmp_path / "ran"
    data = forge(side_effect_stream(path), short_str(satchel.FORMAT_VERSION), short_str("1.0.0"))
    assert satchel.inspect(data)["format_version"] == "1.0.0"
    report, printed = report_of(data, loader)
    assert report == {"result": 42}
    assert printed == ["BODY RAN"] and path.exists()


def test_a_1_4_0_receiver_is_told_what_it_needs(tmp_path):
    """A 1.4.0 receiver has format 1.4's lean module only (its check takes four arguments):
    format 1.5's lean header names a module it lacks, whose name says what it needs, before
    anything of the body runs. A format 1.4 stream still loads here."""
    path = tmp_path / "ran"
    report, printed = report_of(side_effect_stream(path), "pickle, 1.4.0 receiver")
    lean = satchel._satchel.LEAN_MODULE_NAME
    assert report["error"] == "builtins.ModuleNotFoundError", report
    assert report["message"] == f"No module named '{lean}'"
    assert "satchel 1_5+" in lean and "standalone=True" in lean
    assert printed == [] and not path.exists()
    # A 1.4 stream: format 1.4's module, four arguments, version 1.4.0.
    old = four_arguments(side_effect_stream(path)).replace(
        b"c" + lean.encode() + b"\nc\n",
        b"c" + satchel._satchel.LEAN_MODULE_1_4_NAME.encode() + b"\nc\n",
        1,
    )
    old = old.replace(short_str(satchel.FORMAT_VERSION), short_str("1.4.0"), 1)
    assert satchel.inspect(old)["format_version"] == "1.4.0"
    for loader in ("pickle, 1.4.0 receiver", "pickle", "satchel"):
        report, printed = report_of(old, loader)
        assert report == {"result": 42} and printed == ["BODY RAN"] and path.exists(), loader
        path.unlink()


@pytest.mark.parametrize("loader", ["pickle", "satchel"])
def test_forged_packed_header(tmp_path, loader):
    """Each field of a packed lean header, forged: another build (its packed label read back
    as the full one), a newer minor, an older one, a cut argument. Nothing of the body runs
    unless it loads."""
    path = tmp_path / "ran"
    data = side_effect_stream(path)
    p = packed(data)
    assert p is not None and data.count(p) == 1
    other = packed_label("CPython 3.0/1")
    forged = data.replace(p, p[:4] + OTHER_FINGERPRINT + other)
    assert satchel.inspect(forged)["producer"] == "CPython 3.0/1"
    report, printed = report_of(forged, loader)
    assert report.get("interpreter") is True, report
    assert describe("CPython 3.0/1") in report["message"]
    assert describe(LABEL) in report["message"]
    assert printed == [] and not path.exists()

    newer = data.replace(p, bytes([p[0], 99, 0]) + p[3:])
    assert satchel.inspect(newer)["format_version"] == "1.99.0"
    report, printed = report_of(newer, loader)
    assert report.get("format") is True, report
    assert "1.99.0" in report["message"] and printed == []

    older = data.replace(p, bytes([p[0], 0, 0]) + p[3:])
    report, printed = report_of(older, loader)
    assert report == {"result": 42} and printed == ["BODY RAN"]
    path.unlink()

    # A packed argument of another length (and not from a newer format) is corrupt.
    cut = data.replace(b"C\x19" + p, b"C\x18" + p[:24])
    report, printed = report_of(cut, loader)
    assert report.get("satchel") is True and "packed header" in report["message"], report
    assert printed == [] and not path.exists()


def test_future_major_raises_incompatible_format():
    """A stream of a future major names its own bootstrap module (``_satchel_boot_2``) and
    version 2.x. ``satchel.loads`` has parsed the header before running anything, so it can
    say what is wrong instead of letting the body's import fail (plain ``pickle.loads``
    cannot: the GLOBAL fails before ``check`` runs)."""
    data = forge(closure_stream(), short_str(satchel.FORMAT_VERSION), short_str("2.0.0"))
    lean = satchel._satchel.LEAN_MODULE_NAME.encode()
    data = forge(data, b"c" + lean + b"\nc\n", b"c_satchel_boot_2\ncheck\n")
    assert satchel.inspect(data)["format_version"] == "2.0.0"
    with pytest.raises(satchel.IncompatibleFormat, match="2.0.0"):
        satchel.loads(data)


# ---------------------------------------------------------------------------------------------
# 4. Cross-interpreter: a nonportable standalone stream
# ---------------------------------------------------------------------------------------------

NONPORTABLE_SCRIPT = r"""
import sys

import satchel


class Account:
    def __init__(self, owner, balance):
        self.owner = owner
        self.balance = balance

    def deposit(self, amount):
        self.balance += amount
        return (self.owner, self.balance)


def make_scaler(factor):
    offset = 1

    def scale(x):
        return x * factor + offset

    return scale


obj = (make_scaler(3), Account("ada", 10))
sys.stdout.buffer.write(satchel.dumps(obj, mode="nonportable", standalone=True))
"""

NONPORTABLE_EXPR = """(
    obj[0](5), obj[0].__name__, obj[1].deposit(5), type(obj[1]).__name__,
    type(obj[1]).__module__, __import__("sys").modules["_satchel_boot_1"].FORMAT_VERSION,
)"""


@pytest.fixture(scope="module")
def nonportable_standalone():
    data = run_script(NONPORTABLE_SCRIPT)
    info = satchel.inspect(data)
    assert info["mode"] == "nonportable" and info["standalone"]
    return data


def _expected_nonportable():
    return (16, "scale", ("ada", 15), "Account", "__main__", satchel.FORMAT_VERSION)


@pytest.mark.parametrize("name", [STDLIB_HERE, *SAME_BYTECODE])
def test_nonportable_standalone_loads_on_same_bytecode_without_satchel(
    nonportable_standalone, name
):
    python = name if name == STDLIB_HERE else pythons.need(SAME_BYTECODE[name])
    assert stdlib_eval(python, nonportable_standalone, NONPORTABLE_EXPR) == _expected_nonportable()


def test_nonportable_standalone_loads_where_satchel_is_installed(nonportable_standalone):
    assert child_eval_bytes(nonportable_standalone, NONPORTABLE_EXPR) == _expected_nonportable()


@pytest.mark.parametrize("name", list(OTHER_VERSIONS))
def test_nonportable_standalone_refused_by_other_versions(nonportable_standalone, name):
    other = OTHER_VERSIONS[name]
    python = pythons.need(other)
    proc = run_stdlib(python, STDLIB_EVAL, nonportable_standalone, NONPORTABLE_EXPR)
    stderr = proc.stderr.decode()
    assert proc.returncode == 1, (proc.returncode, stderr)
    assert "IncompatibleInterpreter" in stderr
    assert "re-dump with mode='portable'" in stderr
    assert f"stream made by {describe(LABEL)}" in stderr
    assert f"this is {other.label} (bytecode" in stderr
    assert proc.stdout == b""


# ---------------------------------------------------------------------------------------------
# 5. Truncated and corrupted headers
# ---------------------------------------------------------------------------------------------

STREAM_KINDS = {
    "lean-p2": dict(protocol=2),
    "lean-p3": dict(protocol=3),
    "lean-p5": dict(protocol=5),
    "standalone-nonportable-p5": dict(protocol=5, standalone=True),
    "standalone-portable-p4": dict(protocol=4, mode="portable"),
}


def _plain_prefixes(data):
    """Prefix lengths that stop right after PROTO, or right after PROTO FRAME: byte for byte a
    truncated plain pickle, so satchel cannot know a header was meant (and satchel.loads
    raises what pickle.loads raises)."""
    if data[:1] != pickle.PROTO:
        return set()
    if data[2:3] == pickle.FRAME:
        return {2, 11}
    return {2}


@pytest.mark.parametrize("kind", list(STREAM_KINDS))
def test_truncated_header_raises_satchel_error(kind):
    data = closure_stream(**STREAM_KINDS[kind])
    size = satchel.inspect(data)["header_size"]
    plain = _plain_prefixes(data)
    wrong = []
    for n in range(1, size):
        prefix = data[:n]
        try:
            satchel.loads(prefix)
        except satchel.UnpicklingError as exc:
            if "header" not in str(exc):
                wrong.append((n, repr(exc)))
        except Exception as exc:
            if n in plain:
                # Indistinguishable from a truncated plain pickle: the stdlib's own error.
                with pytest.raises(type(exc)):
                    pickle.loads(prefix)
            else:
                wrong.append((n, repr(exc)))
        else:
            wrong.append((n, "loaded"))
    assert not wrong, f"{len(wrong)} of {size - 1} prefixes: {wrong[:10]}"


@pytest.mark.parametrize("kind", ["lean-p5", "standalone-portable-p4"])
def test_header_without_body_is_reported(kind):
    """The whole header and nothing after it: a truncated stream the structural check can
    see (inspect reports body_size 0)."""
    data = closure_stream(**STREAM_KINDS[kind])
    head = header_of(data)
    assert satchel.inspect(head)["body_size"] == 0
    with pytest.raises(satchel.UnpicklingError, match="header|truncated"):
        satchel.loads(head)


# Plain pickle.loads of every prefix; progress on stderr names the prefix if the child dies.
CHILD_PREFIXES = r"""
import collections, json, pickle, sys
data = sys.stdin.buffer.read()
outcomes = collections.Counter()
for n in range(1, int(sys.argv[1]) + 1):
    sys.stderr.write("%d\n" % n)
    try:
        pickle.loads(data[:n])
    except Exception as exc:
        outcomes[type(exc).__name__] += 1
    else:
        outcomes["loaded"] += 1
sys.stdout.write(json.dumps(outcomes))
"""


# Lean streams need satchel on the receiver; standalone ones also go to this interpreter
# without site-packages (stdlib only).
PREFIX_CASES = [(kind, "venv") for kind in STREAM_KINDS] + [
    (kind, STDLIB_HERE) for kind in STREAM_KINDS if "standalone" in kind
]


@pytest.mark.parametrize(("kind", "receiver"), PREFIX_CASES)
def test_truncated_header_never_crashes_plain_pickle(kind, receiver):
    data = closure_stream(**STREAM_KINDS[kind])
    size = satchel.inspect(data)["header_size"]
    if receiver == "venv":
        proc = run_venv(CHILD_PREFIXES, data, str(size))
    else:
        proc = run_stdlib(STDLIB_HERE, CHILD_PREFIXES, data, str(size))
    last = proc.stderr.decode().split()[-1:] or ["none"]
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode} at prefix {last}"
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    outcomes = json.loads(proc.stdout)
    print(f"\n{kind} on {receiver}: {outcomes}")
    assert "loaded" not in outcomes
    assert sum(outcomes.values()) == size


# One child runs every flipped stream: satchel.inspect classifies it, satchel.loads loads it,
# and for a stream that no longer has a satchel header pickle.loads gives the comparison.
CHILD_FLIPS = r"""
import json, pickle, sys
import satchel

spec = pickle.loads(sys.stdin.buffer.read())
data = spec["data"]
# What a stream that is no longer satchel's should load as: plain pickle.loads. On PyPy,
# satchel's plain unpickling (satchel._pypy.safe_loads): PyPy's own unpickler crashes on some
# damaged streams, and a LONG_BINPUT index of 2**31 makes it grow its memo list to that many
# slots (tens of GB: the child was killed by the OOM killer, or by the test's timeout on a
# loaded machine); satchel gives those to the pure-Python unpickler.
if sys.implementation.name == "pypy":
    from satchel._pypy import safe_loads as reference
else:
    reference = pickle.loads


def outcome(load, stream):
    try:
        obj = load(stream)
    except Exception as exc:
        return {
            "error": type(exc).__module__ + "." + type(exc).__qualname__,
            "unpickling": isinstance(exc, pickle.UnpicklingError),
            "message": str(exc)[:120],
        }
    try:
        good = obj[0](6) == 42 and obj[1] == [1, 2]
    except Exception:
        good = False
    return {"result": "ok" if good else "WRONG", "type": type(obj).__name__}


results = []
for pos, xor in spec["cases"]:
    sys.stderr.write("%d %d\n" % (pos, xor))
    bad = bytearray(data)
    bad[pos] ^= xor
    bad = bytes(bad)
    try:
        kind = "recognized" if satchel.inspect(bad)["satchel_header"] else "not satchel"
    except satchel.UnpicklingError as exc:
        kind = "not satchel" if "not a pickle stream" in str(exc) else "corrupt"
    entry = {"pos": pos, "xor": xor, "kind": kind, "satchel": outcome(satchel.loads, bad)}
    if kind == "not satchel":
        entry["pickle"] = outcome(reference, bad)
    results.append(entry)
sys.stdout.write(json.dumps(results))
"""

FLIP_KINDS = {
    "lean-p5": (dict(protocol=5), "all", 200),
    "lean-p2": (dict(protocol=2), "all", 100),
    "standalone-portable-outside-blob": (dict(protocol=5, mode="portable"), "outside", 150),
    "standalone-portable-blob": (dict(protocol=5, mode="portable"), "blob", 50),
}


def _flip_cases(data, region, count, seed):
    info = satchel.inspect(data)
    size = info["header_size"]
    payload = info["standalone_payload_size"]
    if payload:
        # The zlib blob is the one bytes argument of that size in the header.
        blob_len = payload.to_bytes(4, "little")
        blob_start = data.index(pickle.BINBYTES + blob_len) + 5
        blob = range(blob_start, blob_start + payload)
    else:
        blob = range(0)
    positions = {
        "all": range(size),
        "blob": blob,
        "outside": [p for p in range(size) if p not in blob],
    }[region]
    rng = random.Random(seed)
    return [(rng.choice(positions), rng.randrange(1, 256)) for _ in range(count)]


@pytest.mark.parametrize("kind", list(FLIP_KINDS))
def test_header_byte_flips(kind):
    """Seeded single-byte flips in the header, loaded with ``satchel.loads`` in a child (so a
    crash or a hang is seen). The contract checked, by what ``satchel.inspect`` makes of the
    flipped stream:

    - still a well-formed satchel header: it loads the right result, or raises a
      ``pickle.UnpicklingError`` subclass (``IncompatibleInterpreter`` for a fingerprint,
      ``IncompatibleFormat`` for a newer version, ``satchel.UnpicklingError`` otherwise);
    - a corrupt satchel header: ``satchel.UnpicklingError`` "corrupt satchel header: ...";
    - no longer a satchel stream at all (the flip hit the PROTO/FRAME/GLOBAL opcodes or the
      bootstrap module's name): byte for byte some plain pickle, so ``satchel.loads`` must
      behave as ``pickle.loads`` does (the same exception type).
    Never a wrong result, never a crash or a hang.
    """
    kwargs, region, count = FLIP_KINDS[kind]
    data = closure_stream(**kwargs)
    cases = _flip_cases(data, region, count, seed=20240601)
    proc = run_venv(CHILD_FLIPS, pickle.dumps({"data": data, "cases": cases}), timeout=120)
    last = proc.stderr.decode().splitlines()[-1:]
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode} at case {last}"
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    results = json.loads(proc.stdout)
    assert len(results) == count

    summary = {}
    bad = {}
    for entry in results:
        got = entry["satchel"]
        what = got.get("result") or got["error"]
        summary[(entry["kind"], what)] = summary.get((entry["kind"], what), 0) + 1
        if entry["kind"] == "not satchel":
            # Some other plain pickle now: whatever pickle.loads makes of it, satchel too.
            ok = got.get("error") == entry["pickle"].get("error") and got.get("type") == entry[
                "pickle"
            ].get("type")
        elif got.get("result") == "WRONG":
            ok = False
        elif entry["kind"] == "recognized":
            ok = got.get("result") == "ok" or got.get("unpickling", False)
        else:
            ok = got.get("unpickling", False) and "corrupt satchel header" in got["message"]
        if not ok:
            key = (entry["kind"], what)
            bad.setdefault(key, []).append((entry["pos"], entry["xor"], got.get("message")))
    print(f"\n{kind}: " + ", ".join(f"{k}: {v}" for k, v in sorted(summary.items())))
    assert not bad, "\n".join(
        f"{key}: {len(cases)} case(s), e.g. pos/xor/message {cases[0]}"
        for key, cases in bad.items()
    )


# ---------------------------------------------------------------------------------------------
# 6. Compression
# ---------------------------------------------------------------------------------------------


def test_compress_true_round_trips_in_a_fresh_process():
    k = 3
    obj = (lambda x: x + k, list(range(1000)), "text" * 100)
    data = satchel.dumps(obj, compress=True)
    info = satchel.inspect(data)
    assert info["compression"] == "zstd"
    assert info["compressed_body_size"] < info["body_size"]
    assert child_eval_bytes(data, "(obj[0](1), obj[1][-1], len(obj[2]))") == (4, 999, 400)
    assert satchel.loads(data)[0](2) == 5


def test_compress_true_on_plain_data():
    obj = {"numbers": list(range(100)), "text": "abc" * 50}
    data = satchel.dumps(obj, compress=True)
    assert satchel.inspect(data)["compression"] == "zstd"
    assert child_eval_bytes(data, "obj") == obj


def test_large_by_value_stream_compressed_automatically():
    k = 2
    big = b"ab" * MiB  # 2 MiB, compresses well
    data = satchel.dumps((lambda x: x * k, big))
    info = satchel.inspect(data)
    assert info["compression"] == "zstd"
    assert len(data) < MiB // 4
    assert child_eval_bytes(data, "(obj[0](21), len(obj[1]), obj[1][:4])") == (42, 2 * MiB, b"abab")


def test_small_by_value_stream_not_compressed():
    k = 2
    data = satchel.dumps((lambda x: x * k, b"ab" * (MiB // 8)))
    assert satchel.inspect(data)["compression"] is None


def test_large_stream_not_compressed_when_told_or_standalone():
    k = 2
    obj = (lambda x: x * k, b"ab" * MiB)
    assert satchel.inspect(satchel.dumps(obj, compress=False))["compression"] is None
    info = satchel.inspect(satchel.dumps(obj, standalone=True))
    assert info["standalone"] and info["compression"] is None


@pytest.mark.parametrize(
    "obj",
    [b"x" * (2 * MiB), [str(i) for i in range(300_000)], {"blob": bytes(range(256)) * 8192}],
    ids=["bytes", "list-of-str", "dict"],
)
def test_large_plain_data_is_the_stdlib_stream(obj):
    data = satchel.dumps(obj)
    assert len(data) > MiB
    assert data == pickle.dumps(obj, protocol=satchel.DEFAULT_PROTOCOL)


@pytest.mark.parametrize(
    "kwargs",
    [dict(protocol=2), dict(buffer_callback=lambda buf: None)],
    ids=["protocol-2", "buffer_callback"],
)
def test_compress_true_refuses(kwargs):
    k = 1
    with pytest.raises(ValueError, match="compress"):
        satchel.dumps(lambda x: x + k, compress=True, **kwargs)


def _compressed_for(python):
    """A compressed standalone stream ``python`` can get past the header of: this interpreter's
    nonportable closure stream, or for another version a portable one of stdlib objects."""
    if python == STDLIB_HERE:
        return closure_stream(standalone=True, compress=True)
    obj = (functools.partial(operator.mul, 7), [1, 2])
    return satchel.dumps(obj, mode="portable", standalone=True, compress=True)


def test_compressed_standalone_without_satchel_names_the_decoder():
    """A stdlib-only receiver older than 3.14 has no zstd decoder: this interpreter if it is
    older, else another CPython."""
    here = sys.version_info < (3, 14)
    python = STDLIB_HERE if here else pythons.other_cpython(below=(3, 14)).path
    data = _compressed_for(python)
    info = satchel.inspect(data)
    assert info["standalone"] and info["compression"] == "zstd"
    proc = run_stdlib(python, STDLIB_EVAL, data, "obj[0](6)")
    stderr = proc.stderr.decode()
    assert proc.returncode == 1, (proc.returncode, stderr)
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("_satchel_boot_1.UnpicklingError:"), stderr
    assert "satchel" in last.split(":", 1)[1] and "3.14" in last
    # Where satchel is installed, the same stream loads.
    assert child_eval_bytes(data, "(obj[0](6), obj[1])") == (42, [1, 2])


def test_compressed_standalone_loads_with_the_stdlib_decoder():
    """Python 3.14+ decodes the body with compression.zstd: no satchel needed."""
    here = sys.version_info >= (3, 14)
    python = STDLIB_HERE if here else pythons.other_cpython(at_least=(3, 14)).path
    data = _compressed_for(python)
    assert satchel.inspect(data)["compression"] == "zstd"
    assert stdlib_eval(python, data, "(obj[0](6), obj[1])") == (42, [1, 2])


# ---------------------------------------------------------------------------------------------
# 7. inspect()
# ---------------------------------------------------------------------------------------------

INSPECT_KEYS = {
    "satchel_header",
    "format_version",
    "protocol",
    "mode",
    "producer",
    "fingerprint",
    "matches_this_interpreter",
    "standalone",
    "standalone_payload_size",
    "compression",
    "header_size",
    "body_size",
    "suspended_generators",
    "needs_satchel",
    "signed",
}


def _common(info, data):
    assert info["format_version"] == satchel.FORMAT_VERSION
    assert info["producer"] == LABEL
    assert info["fingerprint"] == satchel.FINGERPRINT.hex()
    assert info["matches_this_interpreter"] is True
    assert info["signed"] is False
    # A header written after its body says whether it holds a started generator (format
    # 1.4), so inspect knows even for a compressed body it does not decompress.
    assert info["suspended_generators"] is False
    # Lean nonportable streams name satchel's bytecode constructors; the others do not.
    lean_nonportable = info["mode"] == "nonportable" and not info["standalone"]
    assert info["needs_satchel"] is lean_nonportable
    assert info["header_size"] + info["body_size"] == len(data)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_inspect_lean(protocol):
    data = closure_stream(protocol=protocol)
    info = satchel.inspect(data)
    assert set(info) == INSPECT_KEYS
    _common(info, data)
    assert info["protocol"] == protocol
    assert info["mode"] == "nonportable"
    assert info["standalone"] is False and info["standalone_payload_size"] == 0
    assert info["compression"] is None
    # The body after the header is a complete pickle of its own.
    assert pickle.loads(data[info["header_size"] :])[1] == [1, 2]


def test_inspect_standalone():
    data = closure_stream(standalone=True)
    info = satchel.inspect(data)
    assert set(info) == INSPECT_KEYS
    _common(info, data)
    assert info["mode"] == "nonportable" and info["standalone"] is True
    assert 0 < info["standalone_payload_size"] < info["header_size"]


def test_inspect_compressed():
    data = closure_stream(compress=True)
    info = satchel.inspect(data)
    assert set(info) == INSPECT_KEYS | {"compressed_body_size", "out_of_band_buffers"}
    _common(info, data)
    assert info["compression"] == "zstd"
    assert 0 < info["compressed_body_size"] < info["body_size"]


def test_inspect_portable():
    data = closure_stream(mode="portable")
    info = satchel.inspect(data)
    _common(info, data)
    assert info["mode"] == "portable"
    assert info["standalone"] is True  # the default in portable mode
    lean = satchel.inspect(closure_stream(mode="portable", standalone=False))
    assert lean["mode"] == "portable" and lean["standalone"] is False
    assert lean["standalone_payload_size"] == 0


def test_inspect_forged_interpreter():
    data = forge(closure_stream(), b"C\x10" + satchel.FINGERPRINT, b"C\x10" + OTHER_FINGERPRINT)
    # A lean header names its producer compactly; a full label there reads as well.
    data = forge(data, producer_field(compact(LABEL)), producer_field(OTHER_LABEL))
    info = satchel.inspect(data)
    assert info["producer"] == OTHER_LABEL
    assert info["matches_this_interpreter"] is False


@pytest.mark.parametrize(
    "data, protocol",
    [
        (satchel.dumps({"a": 1}), 5),
        (pickle.dumps([1, 2], protocol=5), 5),
        (pickle.dumps({"a": 1}, protocol=2), 2),
        (pickle.dumps({"a": 1}, protocol=0), None),
        (satchel.dumps({"a": 1}, key=b"k"), 5),
    ],
    ids=["satchel-plain-data", "plain-p5", "plain-p2", "plain-p0", "signed-plain"],
)
def test_inspect_plain_pickle(data, protocol):
    """satchel's own output for plain data has no header: inspect says so (it is not
    "corrupt"), and what little it can tell without running anything."""
    info = satchel.inspect(data)
    assert info["satchel_header"] is False
    assert "plain pickle with no satchel header" in info["about"]
    # The same keys as a satchel stream's report: no header, the whole stream is its body.
    assert INSPECT_KEYS <= set(info)
    assert info["header_size"] == 0 and info["body_size"] == len(data) - 44 * info["signed"]
    assert info["format_version"] is None and info["mode"] is None
    assert info["protocol"] == protocol
    assert info["needs_satchel"] is False
    assert info["signed"] is (b"SATCHEL-SIG1" in data)


@pytest.mark.parametrize(
    "data, reason",
    [(b"", "it is empty"), (b"not a pickle", "it does not end with the STOP opcode")],
    ids=["empty", "text"],
)
def test_inspect_rejects_what_is_not_a_pickle(data, reason):
    with pytest.raises(satchel.UnpicklingError, match=f"not a pickle stream: {reason}"):
        satchel.inspect(data)


def test_inspect_does_not_run_the_body(tmp_path):
    path = tmp_path / "ran"
    info = satchel.inspect(side_effect_stream(path))
    assert info["mode"] == "nonportable"
    assert not path.exists()


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "satchel", "inspect", *map(str, args)],
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("mode", ["nonportable", "portable"])
def test_cli_inspect(tmp_path, mode):
    path = tmp_path / "stream.pkl"
    path.write_bytes(closure_stream(mode=mode))
    proc = _cli(path)
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    print("\n" + out)
    fields = dict(line.split(None, 1) for line in out.splitlines())
    assert fields["producer"] == LABEL
    assert fields["mode"] == mode
    assert fields["format_version"] == satchel.FORMAT_VERSION


def test_cli_inspect_plain_pickle(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps([1, 2], protocol=5))
    proc = _cli(path)
    assert proc.returncode == 0, proc.stderr.decode()
    fields = dict(line.split(None, 1) for line in proc.stdout.decode().splitlines())
    assert fields["satchel_header"] == "False" and fields["protocol"] == "5"


def test_cli_inspect_not_a_pickle(tmp_path):
    path = tmp_path / "text.txt"
    path.write_bytes(b"hello\n")
    proc = _cli(path)
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert str(path) in proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode()


@pytest.mark.parametrize("target", ["missing.bin", "a-directory"])
def test_cli_inspect_unreadable_file(tmp_path, target):
    """A file that cannot be read: one line naming it and why, a non-zero exit, no
    traceback."""
    (tmp_path / "a-directory").mkdir()
    proc = _cli(tmp_path / target)
    assert proc.returncode == 2
    assert proc.stdout == b""
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"cannot read {tmp_path / target}" in err
    assert ("No such file" if target == "missing.bin" else "Is a directory") in err


# ---------------------------------------------------------------------------------------------
# 8. dump and Pickler with the keywords
# ---------------------------------------------------------------------------------------------


def _streams_in(data):
    """Split concatenated pickles (each ends where pickle.load stops)."""
    f = io.BytesIO(data)
    bounds = []
    while f.tell() < len(data):
        start = f.tell()
        pickle.load(f)
        bounds.append((start, f.tell()))
    return [data[a:b] for a, b in bounds]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(mode="portable"),
        dict(mode="portable", standalone=False),
        dict(standalone=True),
        dict(compress=True),
        dict(mode="portable", compress=True),
        dict(protocol=3, standalone=True, compress=True),
    ],
    ids=repr,
)
def test_dump_with_keywords(tmp_path, kwargs):
    k = 5
    path = tmp_path / "out.pkl"
    with open(path, "wb") as f:
        satchel.dump((lambda x: x * k, [1, 2]), f, **kwargs)
    data = path.read_bytes()
    info = satchel.inspect(data)
    assert info["mode"] == kwargs.get("mode", "nonportable")
    assert info["standalone"] == kwargs.get("standalone", kwargs.get("mode") == "portable")
    assert info["compression"] == ("zstd" if kwargs.get("compress") else None)
    assert child_eval_bytes(data, "(obj[0](2), obj[1])") == (10, [1, 2])


def test_dump_of_plain_data_writes_the_header():
    buf = io.BytesIO()
    satchel.dump([1, 2], buf)
    data = buf.getvalue()
    info = satchel.inspect(data)
    assert info["mode"] == "nonportable" and not info["standalone"]
    assert data[info["header_size"] :] == pickle.dumps([1, 2], protocol=5)
    assert child_eval_bytes(data, "obj") == [1, 2]


def test_pickler_portable_writes_a_standalone_header_each_dump(tmp_path):
    k = 4
    path = tmp_path / "two.pkl"
    with open(path, "wb") as f:
        pickler = satchel.Pickler(f, mode="portable")
        pickler.dump(lambda x: x + k)
        pickler.dump([1, 2])
    streams = _streams_in(path.read_bytes())
    assert len(streams) == 2
    for stream in streams:
        info = satchel.inspect(stream)
        assert info["mode"] == "portable" and info["standalone"], info
        assert info["header_size"] + info["body_size"] == len(stream)
    # Both load, one after the other, in a stdlib-only interpreter of another version.
    code = r"""
import pickle, sys
with open(sys.argv[1], "rb") as f:
    first = pickle.load(f)
    second = pickle.load(f)
print(first(1), second)
"""
    receivers = {pythons.other_cpython().path}  # skips if there is none
    oldest = pythons.BY_NAME["cpython-3.9"]
    if oldest.exists and oldest in pythons.OTHER_VERSIONS:
        receivers.add(oldest.path)
    for python in sorted(receivers):
        proc = run_stdlib(python, code, b"", str(path))
        assert proc.returncode == 0, proc.stderr.decode()
        assert proc.stdout.decode().split() == ["5", "[1,", "2]"]


def test_pickler_keywords(tmp_path):
    k = 4
    buf = io.BytesIO()
    satchel.Pickler(buf, compress=True, standalone=False).dump((lambda x: x + k, [1, 2]))
    data = buf.getvalue()
    info = satchel.inspect(data)
    assert info["compression"] == "zstd" and not info["standalone"]
    assert child_eval_bytes(data, "(obj[0](1), obj[1])") == (5, [1, 2])
    buf = io.BytesIO()
    satchel.Pickler(buf, 4, mode="nonportable", standalone=True).dump([1, 2])
    info = satchel.inspect(buf.getvalue())
    assert info["standalone"] and info["protocol"] == 4 and info["mode"] == "nonportable"
