"""``satchel.load`` and ``satchel.Unpickler``: the file twins of ``satchel.loads`` (``key=``,
``allow=``, the header read and checked before anything runs), reading exactly one stream from
a file that may hold more; and what ``allow=`` entries and callables mean."""

import io
import os
import pickle
import pickletools
import subprocess
import sys

import pytest

import satchel
from pythons import four_arguments
from satchel._load import read_stream

KEY = b"k" * 32


class Pipe(io.RawIOBase):
    """A file that can neither seek nor peek (a pipe or a socket): reading past a stream
    would lose what follows it."""

    def __init__(self, data):
        self._data = memoryview(data)
        self._pos = 0
        self.reads = 0

    def readable(self):
        return True

    def readinto(self, buf):
        self.reads += 1
        n = min(len(buf), len(self._data) - self._pos)
        buf[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n

    def readline(self, size=-1):
        end = bytes(self._data[self._pos :]).find(b"\n")
        n = len(self._data) - self._pos if end < 0 else end + 1
        out = bytes(self._data[self._pos : self._pos + n])
        self._pos += n
        return out

    def rest(self):
        return bytes(self._data[self._pos :])


def streams():
    k = 3
    return [
        ("lean", satchel.dumps(lambda x: x * k)),
        ("plain", satchel.dumps({"a": [1, 2]})),
        ("standalone", satchel.dumps(lambda x: x * k, standalone=True)),
        ("portable", satchel.dumps(lambda x: x * k, mode="portable")),
        ("compressed", satchel.dumps(lambda x: x * k, compress=True)),
        ("protocol-0", satchel.dumps(lambda x: x * k, protocol=0)),
        ("signed", satchel.dumps(lambda x: x * k, key=KEY)),
    ]


def check(name, obj):
    if name == "plain":
        assert obj == {"a": [1, 2]}
    else:
        assert obj(2) == 6


@pytest.mark.parametrize("kind", ["bytesio", "file", "pipe"])
def test_load_reads_one_stream_at_a_time(tmp_path, kind):
    """Several streams back to back in one file load one by one, each read exactly: what
    follows is left for the next load (a pipe cannot give back what was read too far)."""
    data = b"".join(s for _, s in streams()) + b"TAIL"
    path = tmp_path / "many.bin"
    path.write_bytes(data)
    f = {"bytesio": lambda: io.BytesIO(data), "file": lambda: open(path, "rb")}.get(
        kind, lambda: Pipe(data)
    )()
    with f:
        for name, _ in streams():
            check(name, satchel.load(f, key=KEY if name == "signed" else None))
        assert (f.rest() if kind == "pipe" else f.read()) == b"TAIL"


def test_load_takes_key_and_allow(tmp_path):
    k = 5
    path = tmp_path / "signed.bin"
    with open(path, "wb") as f:
        satchel.dump(lambda x: x + k, f, key=KEY)
    with open(path, "rb") as f:
        assert satchel.load(f, key=KEY)(1) == 6
    with open(path, "rb") as f, pytest.raises(satchel.SignatureError):
        satchel.load(f, key=b"wrong key")
    with pytest.raises(satchel.SignatureError, match="not signed"):
        satchel.load(Pipe(satchel.dumps(1)), key=KEY)
    data = satchel.dumps(os.path.join)
    assert satchel.load(io.BytesIO(data), allow=["posixpath.*"]) is os.path.join
    with pytest.raises(satchel.UnpicklingError, match="'posixpath.join' is not allowed"):
        satchel.load(io.BytesIO(data), allow="data")


def test_signed_load_verifies_before_anything_runs(tmp_path):
    marker = tmp_path / "ran"
    data = satchel.dumps(_Touch(str(marker)), key=KEY)
    tampered = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(satchel.SignatureError):
        satchel.load(io.BytesIO(tampered), key=KEY)
    with pytest.raises(satchel.SignatureError):
        satchel.Unpickler(io.BytesIO(tampered), key=KEY).load()
    assert not marker.exists()
    satchel.load(io.BytesIO(data), key=KEY).close()  # the load ran open(marker, "w")
    assert marker.exists()


class _Touch:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_load_keeps_pickle_keywords():
    data = satchel.dumps(pickle.PickleBuffer(b"abc"), buffer_callback=lambda b: False)
    assert satchel.load(io.BytesIO(data), buffers=[b"abc"]) == b"abc"
    with pytest.raises(TypeError):
        satchel.load(io.BytesIO(satchel.dumps(1)), no_such_keyword=1)


def test_load_of_an_empty_or_cut_file():
    """Without key= or allow=, load unpickles from the file as pickle.load does, with its
    errors; with them, the stream is read first and satchel says what is wrong with it."""
    with pytest.raises(EOFError):
        satchel.load(io.BytesIO(b""))
    with pytest.raises(EOFError):
        satchel.load(io.BytesIO(b""), allow="data")
    k = 1
    data = satchel.dumps(lambda x: x + k)
    # A small body has no frame (docs/FORMAT.md): pickle.load says a file cut inside it ran
    # out of input (EOFError), as it does for any pickle without frames; inside a frame it
    # says the data was truncated (UnpicklingError).
    with pytest.raises((EOFError, pickle.UnpicklingError)):
        satchel.load(io.BytesIO(data[:-5]))
    with pytest.raises(satchel.UnpicklingError, match="truncated"):
        satchel.load(io.BytesIO(data[:-5]), allow=[])
    with pytest.raises(satchel.UnpicklingError, match="not a pickle stream: unknown opcode"):
        satchel.load(io.BytesIO(b"\xff\xff"), allow=[])


def test_future_major_from_a_file_is_incompatible_format():
    """load parses the header as loads does: a future major says so instead of failing on its
    bootstrap module's import."""
    k = 1
    data = four_arguments(satchel.dumps(lambda x: x + k))
    lean = satchel._satchel.LEAN_MODULE_NAME.encode()
    data = data.replace(b"c" + lean + b"\nc\n", b"c_satchel_boot_2\ncheck\n").replace(
        b"\x8c\x05" + satchel.FORMAT_VERSION.encode(), b"\x8c\x052.0.0"
    )
    with pytest.raises(satchel.IncompatibleFormat, match="2.0.0"):
        satchel.load(io.BytesIO(data))


def test_read_stream_reads_frames_whole():
    """A framed body is read a frame at a time, not an opcode at a time."""
    big = {"n": list(range(50_000)), "s": ["x" * i for i in range(300)]}
    data = satchel.dumps(big)
    pipe = Pipe(data)
    assert bytes(read_stream(pipe)) == data
    assert pipe.reads < 50, pipe.reads


def _minimal_arg(arg):
    """The shortest valid argument for a pickletools argument descriptor."""
    if arg is None:
        return b""
    if arg.n > 0:
        return bytes(arg.n)
    return {
        pickletools.UP_TO_NEWLINE: b"1\n",
        pickletools.TAKEN_FROM_ARGUMENT1: b"\x00",
        pickletools.TAKEN_FROM_ARGUMENT4: b"\x00" * 4,
        pickletools.TAKEN_FROM_ARGUMENT4U: b"\x00" * 4,
        pickletools.TAKEN_FROM_ARGUMENT8U: b"\x00" * 8,
    }[arg.n]


@pytest.mark.parametrize("op", pickletools.opcodes, ids=lambda op: op.name)
def test_extent_knows_every_opcode(op):
    """The walker's table agrees with pickletools' description of every opcode."""
    arg = _minimal_arg(op.arg)
    if op.name in ("GLOBAL", "INST"):
        arg = b"a\nb\n"
    data = op.code.encode("latin-1") + arg + b"."
    if op.name == "STOP":
        data = b"."
    assert satchel._satchel._pickle_extent(data, 0) == (0, len(data), 0)
    assert satchel._satchel._pickle_extent(data + b"more", 0) == (0, len(data), 0)


# ---------------------------------------------------------------------------------------------
# Unpickler
# ---------------------------------------------------------------------------------------------


def test_unpickler_is_a_pickle_unpickler_with_key_and_allow():
    k = 2
    data = satchel.dumps(lambda x: x * k, key=KEY) + satchel.dumps(os.path.join, key=KEY)
    u = satchel.Unpickler(io.BytesIO(data), key=KEY, allow=["posixpath.*"])
    assert isinstance(u, pickle.Unpickler)
    assert u.load()(4) == 8
    assert u.load() is os.path.join
    with pytest.raises(EOFError):
        u.load()
    with pytest.raises(satchel.UnpicklingError, match="is not allowed"):
        satchel.Unpickler(io.BytesIO(satchel.dumps(os.path.join)), allow="data").load()


def test_unpickler_subclass_hooks_apply_to_the_body():
    """find_class and persistent_load of a subclass see the body's globals and ids (never the
    header's: satchel reads that itself)."""

    class Holder:
        def __init__(self, ref):
            self.ref = ref

    class P(satchel.Pickler):
        def persistent_id(self, obj):
            return "ID" if obj == "persisted" else None

    buf = io.BytesIO()
    P(buf).dump([Holder("persisted"), os.path.join])
    seen = []

    class U(satchel.Unpickler):
        def find_class(self, module, name):
            seen.append((module, name))
            return super().find_class(module, name)

        def persistent_load(self, pid):
            return f"loaded {pid}"

    buf.seek(0)
    holder, join = U(buf).load()
    assert holder.ref == "loaded ID" and join is os.path.join
    assert ("posixpath", "join") in seen
    assert not any(m == satchel._satchel.LEAN_MODULE_NAME for m, _ in seen)


# ---------------------------------------------------------------------------------------------
# allow=: entries and callables
# ---------------------------------------------------------------------------------------------


def test_module_star_covers_submodules():
    np = pytest.importorskip("numpy")
    arr = np.arange(6, dtype=np.int32).reshape(2, 3)
    data = satchel.dumps(arr)
    got = satchel.loads(data, allow=["numpy.*"])
    assert (got == arr).all() and got.dtype == arr.dtype
    assert (satchel.load(io.BytesIO(data), allow=["numpy.*"]) == arr).all()
    # A submodule's entry does not cover its parent or its siblings.
    with pytest.raises(satchel.UnpicklingError, match="'numpy.* is not allowed"):
        satchel.loads(data, allow=["numpy.random.*"])


def test_star_does_not_match_a_longer_name():
    data = pickle.dumps(os.path.join)  # posixpath.join
    with pytest.raises(satchel.UnpicklingError, match="'posixpath.join' is not allowed"):
        satchel.loads(data, allow=["posix.*"])
    assert satchel.loads(data, allow=["posixpath.*"]) is os.path.join


def test_allow_callable_gets_module_and_name():
    np = pytest.importorskip("numpy")
    data = satchel.dumps(np.arange(3))
    asked = []

    def allow(module, name):
        asked.append((module, name))
        return module.split(".")[0] == "numpy"

    assert list(satchel.loads(data, allow=allow)) == [0, 1, 2]
    assert asked and all(m.startswith("numpy") for m, _ in asked)


@pytest.mark.parametrize(
    "bad", [lambda name: True, lambda: True, lambda a, b, c: True], ids=["one", "none", "three"]
)
def test_allow_callable_with_another_signature_is_refused_up_front(bad):
    data = pickle.dumps(os.path.join)
    with pytest.raises(ValueError, match=r"cannot be called as allow\(module, name\)"):
        satchel.loads(data, allow=bad)
    with pytest.raises(ValueError, match=r"allow\(module, name\)"):
        satchel.load(io.BytesIO(data), allow=bad)


def test_allow_callable_without_a_signature_is_taken_on_trust():
    data = pickle.dumps(os.path.join)
    # A builtin with no introspectable signature: called as allow(module, name).
    assert satchel.loads(data, allow=max) is os.path.join  # max("posixpath", "join") is truthy


def test_load_is_not_the_stdlibs():
    assert satchel.load is not pickle.load
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import satchel, inspect\n"
            "p = inspect.signature(satchel.load).parameters\n"
            "print(sorted(n for n in ('key', 'allow') if n in p and p[n].default is None))",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout.decode().strip() == "['allow', 'key']"
