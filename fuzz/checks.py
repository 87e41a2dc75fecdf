"""The contracts every fuzzed input is held to, shared by the atheris targets and
tests/test_fuzz_corpus.py. A Python exception is the expected end of a bad input; an
AssertionError from here is a finding (as are a signal, a hang and memory growth, which the
runner sees).

- ``inspect`` runs nothing (no global looked up, no code built, nothing imported) and raises
  only ``satchel.UnpicklingError``;
- ``loads(data, key=KEY)`` of anything but an intact signed stream is ``SignatureError``, raised
  before any global is looked up;
- unsigned ``loads`` ends in a result or an exception (of any kind: a mutated stream may call
  any constructor with any arguments);
- a compressed stream with out-of-band buffers (format 1.3) whose header and body are a seed's
  (only the ``load_zstd_buffers`` wrapper changed) loads, through ``satchel.loads`` and plain
  ``pickle.loads`` alike, to exactly what the format's reference decoder (oob.py) makes of it,
  or fails as that decoder does, with ``UnpicklingError``, ``ValueError`` or ``MemoryError``
  (``check_buffers``);
- C code prints nothing through ``sys.excepthook`` during a load (``check_printed``).

A Rust panic is ``pyo3_runtime.PanicException``, a ``BaseException``: the checks turn it into
an AssertionError (a finding). ``SATCHEL_FUZZ_SKIP_OPEN=1`` counts the open findings of
``OPEN`` instead, so a fuzzing run goes on exploring past a bug it already knows.
"""

import importlib.util
import os
import pathlib
import pickle
import sys

import satchel

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
# The key of every signed seed (make_corpus.py signs with it).
KEY = b"satchel-fuzz-key"
OTHER_KEY = b"not-the-key"

# Audit events that mean a stream ran: a global resolved, code unmarshalled, built or run.
_RUNS = frozenset({"pickle.find_class", "marshal.loads", "exec", "compile", "function.__new__"})
_seen = []
_installed = []
_printed = []


# CPython 3.11's PyByteArray_FromStringAndSize frees the new object on a failed allocation
# before it sets ob_exports, so the deallocator reads garbage and prints this SystemError (the
# caller still gets MemoryError). The C unpickler's BYTEARRAY8 with a huge size
# (b"\x80\x05\x96" + 8 bytes + b".") and satchel's writable out-of-band buffers allocate
# that way. Not a finding when the load ended in MemoryError.
BYTEARRAY_OOM = "SystemError: deallocated bytearray object has exported buffers"
_oom = []


def check_printed():
    """Nothing went to sys.excepthook since the last call (install() hooks it), but
    BYTEARRAY_OOM after a MemoryError."""
    printed, _printed[:] = list(_printed), []
    if _oom:
        printed = [p for p in printed if p != BYTEARRAY_OOM]
        del _oom[:]
    assert not printed, f"printed by C code during the load: {printed[:3]}"


def _audit(event, args):
    if event in _RUNS:
        _seen.append(event)


# Address space of a process running the checks. The C unpickler sizes its memo array by the
# largest LONG_BINPUT index (CPython gh-115952, not fixed in 3.11): an 8-byte input can make it
# allocate and zero tens of GB. Bounded, that is a MemoryError; fuzz/README.md has the finding.
MEMORY_LIMIT = 2 << 30


def limit_memory(limit=MEMORY_LIMIT):
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def install():
    """Quiet the noise a damaged stream makes (warnings, errors in __del__), warm satchel's
    lazy imports, then watch what runs. Call once per process."""
    import warnings

    warnings.simplefilter("ignore")
    sys.unraisablehook = lambda unraisable: None
    # C code reports what it cannot raise with PyErr_Print (sys.excepthook): a bytearray
    # deallocated while a buffer export is still open, for one. A finding (check_printed).
    # Still printed: atheris reports an uncaught exception through the same hook.
    hook = sys.excepthook

    def excepthook(kind, value, tb):
        _printed.append(f"{kind.__name__}: {value}")
        hook(kind, value, tb)

    sys.excepthook = excepthook
    for path in sorted(CORPUS.glob("*/seed-*")):
        try:
            satchel.inspect(path.read_bytes())
        except satchel.UnpicklingError:
            pass
    if not _installed:
        sys.addaudithook(_audit)
        _installed.append(True)


def signed_seeds():
    """The intact signed streams: the only inputs ``loads(key=KEY)`` may load."""
    return {p.read_bytes() for p in CORPUS.glob("*/seed-*") if satchel_signed(p.read_bytes())}


def satchel_signed(data):
    return data[-44:-32] == b"SATCHEL-SIG1"


def check_inspect(data):
    del _seen[:]
    try:
        satchel.inspect(data)
    except satchel.UnpicklingError:
        pass
    assert not _seen, f"inspect ran something: {_seen}"


def check_signed(data, intact):
    """``intact``: the set of signed streams that may load (their MAC is right)."""
    for key in (KEY, [OTHER_KEY, KEY]):
        del _seen[:]
        try:
            obj = satchel.loads(data, key=key)
        except satchel.SignatureError:
            assert not _seen, f"SignatureError after the stream ran: {_seen}"
            assert data not in intact, "an intact signed stream was refused"
            continue
        except Exception:  # noqa: BLE001 (any exception is an allowed end)
            obj = None
        assert data in intact, "a stream that is not an intact signed stream got past the key"
        del obj
    del _seen[:]
    try:
        satchel.loads(data, key=OTHER_KEY)
    except satchel.SignatureError:
        assert not _seen, f"SignatureError after the stream ran: {_seen}"
    else:
        raise AssertionError("loaded under the wrong key")


# Code objects travel as marshal bytes (nonportable mode): a bytes argument (or, below protocol
# 3, the latin-1 text of _codecs.encode) starting with marshal's TYPE_CODE, with or without
# FLAG_REF. Shorter arguments are never code.
_CODE_TYPES = (0x63, 0xE3)
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def code_blobs(data, depth=0):
    """The marshalled code objects a stream carries, in the order the unpickler meets them
    (pickletools reads opcodes as the C unpickler does, to the first error or STOP), looking
    into zstd frames (decoded as satchel decodes them, bounded)."""
    found = []
    try:
        for _op, arg, _pos in _ops_until_error(data):
            if isinstance(arg, str) and len(arg) >= 32 and ord(arg[0]) in _CODE_TYPES:
                try:
                    arg = arg.encode("latin-1")
                except UnicodeEncodeError:
                    continue
            if not isinstance(arg, (bytes, bytearray)) or len(arg) < 32:
                continue
            if arg[0] in _CODE_TYPES:
                found.append(bytes(arg))
            elif arg[:4] == _ZSTD_MAGIC and depth < 2:
                try:
                    body = satchel._satchel.zstd_decompress(bytes(arg))
                except Exception:  # noqa: BLE001 (any exception is an allowed end)
                    continue
                found.extend(code_blobs(body, depth + 1))
    except Exception:  # noqa: BLE001 (any exception is an allowed end)
        pass
    return found


def _ops_until_error(data):
    """The opcodes pickletools reads before the first error (where the unpickler stops too)."""
    import pickletools
    import warnings

    ops = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pickletools on damaged protocol-0 strings
            for op in pickletools.genops(data):
                ops.append(op)
    except Exception:  # noqa: BLE001
        pass
    return ops


def intact_code():
    """Every code blob of every seed: bytecode exactly as satchel wrote it."""
    return {b for p in CORPUS.glob("*/seed-*") for b in code_blobs(p.read_bytes())}


def damaged_code(data, intact):
    """Whether ``data`` carries a code object that is not byte for byte one satchel wrote: the
    class of input whose unsigned load may run damaged bytecode (fuzz/README.md)."""
    return any(b not in intact for b in code_blobs(data))


# Open findings (fuzz/README.md, fuzz/crashes/buffers-*): a panic's message, or a name.
# Fixed: "chunk size must be non-zero" (buffers-empty-chunk, 4939ae6).
OPEN = {}  # name: why (none open; "int-token", buffers-int-token-octal, fixed in the parser)
SKIP_OPEN = bool(os.environ.get("SATCHEL_FUZZ_SKIP_OPEN"))
open_counts = {}


def _open(exc):
    """Whether ``exc`` (a panic, or an OPEN name) is an open finding that this run skips."""
    if SKIP_OPEN and str(exc) in OPEN:
        open_counts[str(exc)] = open_counts.get(str(exc), 0) + 1
        return True
    return False


def _panic(exc):
    """A BaseException out of a load (pyo3's PanicException): "open" when it is a known open
    finding this run skips, else an AssertionError (atheris reports those clearly)."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        raise exc
    if not _open(exc):
        raise AssertionError(f"Rust panic ({type(exc).__name__}): {exc}") from exc
    return "open"


def check_loads(data):
    del _seen[:]
    try:
        obj = satchel.loads(data)
    except Exception as exc:  # noqa: BLE001 (any exception is an allowed end)
        del _seen[:]
        if isinstance(exc, MemoryError):
            _oom.append(True)
        return "error"
    except BaseException as exc:  # noqa: BLE001 (a Rust panic: a finding, unless skipped)
        return _panic(exc)
    del obj  # finalizers (a loaded generator's finally block) run here
    del _seen[:]
    return "loaded"


# ---------------------------------------------------------------------------------------------
# Out-of-band buffers (format 1.3): both decoders against the reference (oob.py)
# ---------------------------------------------------------------------------------------------

_spec = importlib.util.spec_from_file_location("satchel_fuzz_oob", HERE / "oob.py")
oob = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(oob)

# The errors that say "bad stream". MemoryError: the decoder allocates what a stream declares
# (bounded by half of the memory available), and the checks run under MEMORY_LIMIT.
CLEAR = (pickle.UnpicklingError, ValueError, MemoryError)
_seed_parts = {}


def buffer_seeds():
    """The headers and bodies of the seeds with out-of-band buffers: a stream with one of the
    headers, a well-formed wrapper and a body frame that decodes to one of the bodies (or does
    not decode) is judged against the reference."""
    if not _seed_parts:
        heads, bodies = set(), set()
        for p in sorted(CORPUS.glob("*/seed-*")):
            w = oob.parse(p.read_bytes())
            if w is not None and w.buffers:
                heads.add(w.head)
                bodies.add(oob.body(w))
        _seed_parts.update(heads=heads, bodies=bodies)
    return _seed_parts


def _load(loader, data):
    try:
        return "value", loader(data)
    except Exception as exc:  # noqa: BLE001 (judged below)
        if isinstance(exc, MemoryError):
            _oom.append(True)
        return "raised", exc
    except BaseException as exc:  # noqa: BLE001 (a Rust panic)
        return _panic(exc), exc


def check_buffers(data):
    """``satchel.loads`` and ``pickle.loads`` of ``data``. Judged (the header a seed's, the
    wrapper well formed, nothing after STOP, the body frame a seed's body or undecodable): each ends as the reference does for the way it
    reads the ints (the Rust header parser or the unpickler): the same value (type, dtype,
    shape, bytes, writability), or a clear error (``CLEAR``); and a value that loads
    re-dumps and loads to itself. Not judged: a result or any exception. Returns the outcome."""
    w = oob.parse(data)
    seeds = buffer_seeds()
    judged = w is not None and not w.tail and w.head in seeds["heads"]
    if judged:
        body = oob.body(w)
        judged = body is None or body in seeds["bodies"]
    values = {}
    for name, loader, reader in (
        ("satchel.loads", satchel.loads, "satchel"),
        ("pickle.loads", pickle.loads, "pickle"),
    ):
        how, got = _load(loader, data)
        if how == "open" or not judged:
            continue
        want_how, want = oob.reference(w, reader)
        if how == "raised":
            assert isinstance(got, CLEAR), f"{name}: not a clear error: {got!r}"[:500]
            assert want_how != "value" or isinstance(got, MemoryError), (
                f"{name} refused a stream the format allows: {got!r}"[:500]
            )
            continue
        assert want_how != "error", f"{name} loaded a stream the format refuses ({want})"
        if want_how in ("value", "either"):
            assert oob.same(got, want), f"{name} returned other data than the reference"
        values[name] = got
    # Both loaded: they must agree (an int token they read apart was buffers-int-token-octal;
    # the Rust parser now refuses every token the unpickler could read otherwise).
    if len(values) == 2:
        assert oob.same(*values.values()), "satchel.loads and pickle.loads disagree"
    if values:
        got = next(iter(values.values()))
        try:
            again = satchel.loads(satchel.dumps(got, compress=True))
        except (MemoryError, pickle.PicklingError):  # a memoryview (READONLY_BUFFER of a
            return "loaded"  # bytearray) does not pickle
        assert oob.same(got, again), "a loaded value does not round-trip"
        return "loaded"
    return "judged" if judged else "not judged"
