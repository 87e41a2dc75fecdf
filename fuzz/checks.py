"""The contracts every fuzzed input is held to, shared by the atheris targets and
tests/test_fuzz_corpus.py. A Python exception is the expected end of a bad input; an
AssertionError from here is a finding (as are a signal, a hang and memory growth, which the
runner sees).

- ``inspect`` runs nothing (no global looked up, no code built, nothing imported) and raises
  only ``satchel.UnpicklingError``;
- ``loads(data, key=KEY)`` of anything but an intact signed stream is ``SignatureError``, raised
  before any global is looked up;
- unsigned ``loads`` ends in a result or an exception (of any kind: a mutated stream may call
  any constructor with any arguments).
"""

import pathlib
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


def check_loads(data):
    del _seen[:]
    try:
        obj = satchel.loads(data)
    except Exception:  # noqa: BLE001 (any exception is an allowed end)
        del _seen[:]
        return "error"
    del obj  # finalizers (a loaded generator's finally block) run here
    del _seen[:]
    return "loaded"
