"""Compressed streams with out-of-band buffers (format 1.3, docs/FORMAT.md "Compression").

With ``compress=True`` and protocol 5, buffers of 64 KiB and more (numpy arrays, PickleBuffer)
leave the body and travel as zstd chunks, byte-shuffled by element size when that compresses
better, as the arguments of ``load_zstd_buffers``. What the receiver gets must be what an
uncompressed stream gives: the same values, dtypes, memory order, writeability, and ``bytes``
for a read-only buffer, ``bytearray`` for a writable one. Damaged streams raise
``UnpicklingError``; they never crash or give wrong data.
"""

import io
import pathlib
import pickle
import struct
import threading

import pytest

# No numpy wheel exists for PyPy 3.11 (and a sid interpreter cannot build one): the buffers
# these tests compress are numpy arrays.
np = pytest.importorskip(
    "numpy", reason="numpy has no wheel for this interpreter (PyPy 3.11: none published)"
)

import _satchel_boot_1  # noqa: E402
import satchel  # noqa: E402
from conftest import child_eval_bytes  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20


def arrays():
    rng = np.random.default_rng(7)
    records = np.zeros(70_000, dtype=[("id", "<i4"), ("x", "<f4"), ("label", "S7")])
    records["id"] = np.arange(records.size)
    records["x"] = rng.uniform(0, 100, records.size)
    records["label"] = np.array([b"alpha", b"beta", b"gamma"])[rng.integers(0, 3, records.size)]
    return {
        "walk": 100 + np.cumsum(rng.normal(0, 0.5, 400_000)),  # float64, shuffles well
        "noise": rng.standard_normal(100_000),
        "f32": np.round(20 + rng.normal(0, 0.5, 300_000), 1).astype(np.float32),
        "i16": rng.integers(-300, 300, 200_000).astype(np.int16),
        "u8": rng.integers(0, 4, 300_000).astype(np.uint8),
        "s3": np.array([b"abc", b"xyz", b"q"] * 40_000, dtype="S3"),  # itemsize 3
        "records": records,  # itemsize 15
        "fortran": np.asfortranarray(rng.normal(size=(300, 200))),
        "big": np.arange(3 * MiB // 8, dtype=np.int64),  # several chunks
        "small": np.arange(100, dtype=np.float64),  # stays in the body
    }


def captured_buffers(data):
    """Load ``data`` with plain pickle while recording what load_zstd_buffers received:
    ``[(flags, itemsize, number of chunks)]`` (format 1.4: flags 2, "checked", says that an
    8-byte check comes before the chunks)."""
    seen = []
    real = _satchel_boot_1.load_zstd_buffers

    def spy(frame, *buffers):
        seen.extend((b[0], b[1], len(b) - 2 - (b[0] & 2) // 2) for b in buffers)
        return real(frame, *buffers)

    _satchel_boot_1.load_zstd_buffers = spy
    try:
        value = pickle.loads(data)
    finally:
        _satchel_boot_1.load_zstd_buffers = real
    return value, seen


def assert_same_arrays(got, want):
    assert got.keys() == want.keys()
    for name, a in want.items():
        b = got[name]
        assert b.dtype == a.dtype and b.shape == a.shape, name
        assert np.array_equal(b, a), name
        assert b.flags.f_contiguous == a.flags.f_contiguous, name
        assert b.flags.writeable, name


def test_arrays_round_trip_in_a_fresh_process():
    obj = arrays()
    data = satchel.dumps(obj, compress=True)
    info = satchel.inspect(data)
    assert info["compression"] == "zstd" and info["format_version"] == satchel.FORMAT_VERSION
    assert info["out_of_band_buffers"] == len(obj) - 1  # all but "small"
    assert info["needs_satchel"] is True
    # The child loads with plain pickle.loads (satchel installed): the bootstrap decodes.
    check = (
        "{k: (str(v.dtype), v.shape, v.flags.f_contiguous, v.flags.writeable, v.tobytes()) "
        "for k, v in obj.items()}"
    )
    want = {
        k: (str(v.dtype), v.shape, v.flags.f_contiguous, True, v.tobytes()) for k, v in obj.items()
    }
    assert child_eval_bytes(data, check) == want
    assert_same_arrays(satchel.loads(data), obj)
    assert_same_arrays(pickle.loads(data), obj)


def test_buffers_are_shuffled_only_when_it_pays():
    obj = arrays()
    data = satchel.dumps(obj, compress=True)
    _, seen = captured_buffers(data)
    order = [k for k in obj if k != "small"]  # the body names them in dict order
    by_name = dict(zip(order, seen))
    assert by_name["walk"][1] == 8  # a random walk: exponent bytes compress after shuffling
    assert by_name["u8"][1] == 1  # one-byte elements are never shuffled
    assert by_name["big"][2] == 3  # 3 MiB in 1 MiB chunks
    assert all(flags == 2 for flags, _, _ in seen)  # checked; numpy arrays are writable
    # Shuffling is what makes the stream smaller than one zstd frame of the same body.
    single = satchel.dumps(obj, compress=True, protocol=4)
    assert satchel.inspect(single)["out_of_band_buffers"] == 0
    assert len(data) < 0.9 * len(single)


def test_stream_is_smaller_than_uncompressed_and_carries_no_copy_in_the_body():
    walk = arrays()["walk"]
    data = satchel.dumps({"walk": walk, "f": lambda x: x + 1}, compress=True)
    assert len(data) < 0.8 * walk.nbytes
    value = satchel.loads(data)
    assert np.array_equal(value["walk"], walk) and value["f"](1) == 2


def test_readonly_buffers_load_as_bytes_and_writable_as_bytearray():
    ro = pickle.PickleBuffer(b"r" * (100 * KiB))
    rw = pickle.PickleBuffer(bytearray(b"w" * (100 * KiB)))
    frozen = np.frombuffer(bytes(range(256)) * 1024, dtype=np.uint32)  # read-only array
    data = satchel.dumps([ro, rw, frozen], compress=True)
    assert satchel.inspect(data)["out_of_band_buffers"] == 3
    _, seen = captured_buffers(data)
    assert [flags for flags, _, _ in seen] == [3, 2, 3]  # 1 read-only, 2 checked
    for loader in (satchel.loads, pickle.loads):
        got = loader(data)
        plain = pickle.loads(pickle.dumps([ro, rw, frozen], protocol=5))
        assert [type(x) for x in got[:2]] == [type(x) for x in plain[:2]] == [bytes, bytearray]
        assert got[0] == bytes(ro) and got[1] == bytes(rw)
        assert not got[2].flags.writeable and np.array_equal(got[2], frozen)


def test_small_buffers_stay_in_the_body():
    obj = [np.arange(1000, dtype=np.float64), pickle.PickleBuffer(b"x" * (64 * KiB - 1))]
    data = satchel.dumps(obj, compress=True)
    assert satchel.inspect(data)["out_of_band_buffers"] == 0
    got = satchel.loads(data)
    assert np.array_equal(got[0], obj[0]) and got[1] == b"x" * (64 * KiB - 1)


@pytest.mark.parametrize(
    "kwargs",
    [dict(protocol=4), dict(standalone=True), dict(compress=None), dict(compress=False)],
    ids=["protocol-4", "standalone", "auto", "uncompressed"],
)
def test_no_out_of_band_buffers_unless_lean_protocol_5_compress_true(kwargs):
    k = 2
    obj = (lambda x: x * k, np.arange(MiB // 8, dtype=np.int64))
    data = satchel.dumps(obj, **{"compress": True, **kwargs})
    info = satchel.inspect(data)
    assert info.get("out_of_band_buffers", 0) == 0
    got = satchel.loads(data)
    assert got[0](4) == 8 and np.array_equal(got[1], obj[1])


def test_pickler_and_dump_write_loadable_streams():
    a, b = np.arange(MiB // 8, dtype=np.int64), np.linspace(0, 1, 300_000)
    f = io.BytesIO()
    p = satchel.Pickler(f, compress=True)
    p.dump({"a": a})
    p.dump([b, a])
    satchel.dump(b, f, compress=True)
    f.seek(0)
    first, second, third = satchel.load(f), satchel.load(f), satchel.load(f)
    assert np.array_equal(first["a"], a)
    assert np.array_equal(second[0], b) and np.array_equal(second[1], a)
    assert np.array_equal(third, b)
    assert f.read() == b""


def test_a_failed_dump_leaves_nothing_behind():
    """The buffers and body a failed dump had collected do not leak into the next one."""
    a, b = np.arange(200_000, dtype=np.int64), np.ones(100_000)
    f = io.BytesIO()
    p = satchel.Pickler(f, compress=True)
    with pytest.raises(pickle.PicklingError, match="lock"):
        p.dump([a, threading.Lock()])
    assert f.getvalue() == b""
    p.dump({"b": b})
    f.seek(0)
    got = satchel.load(f)
    assert list(got) == ["b"] and np.array_equal(got["b"], b)


def test_read_only_buffers_are_loaded_in_place_and_writable_ones_copied():
    """satchel.loads parses a read-only buffer (a memoryview of bytes, a read-only mmap:
    load_session) like bytes; a writable one, which another thread could change while the
    frames decode, goes through a copy (or plain pickle.loads)."""
    obj = {"walk": arrays()["walk"], "f": lambda x: x * 2}
    data = satchel.dumps(obj, compress=True)
    for view in (memoryview(data), memoryview(bytearray(data)), bytearray(data)):
        got = satchel.loads(view)
        assert np.array_equal(got["walk"], obj["walk"]) and got["f"](3) == 6
    plain = satchel.dumps(obj, compress=False)
    got = satchel.loads(memoryview(plain))
    assert np.array_equal(got["walk"], obj["walk"]) and got["f"](3) == 6
    with pytest.raises(satchel.UnpicklingError, match="corrupt satchel header"):
        satchel.loads(memoryview(data[:60]))


def test_buffers_keyword_conflicts_with_a_stream_that_carries_buffers():
    data = satchel.dumps(np.arange(MiB // 8), compress=True)
    with pytest.raises(ValueError, match="carries its own"):
        satchel.loads(data, buffers=[])


def test_signed_streams_cover_the_buffers():
    data = satchel.dumps(np.arange(MiB // 8), compress=True, key=b"k")
    assert np.array_equal(satchel.loads(data, key=b"k"), np.arange(MiB // 8))
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 1
    with pytest.raises(satchel.SignatureError):
        satchel.loads(bytes(damaged), key=b"k")


def test_allow_lists_apply_to_the_body():
    data = satchel.dumps({"a": np.arange(MiB // 8)}, compress=True)
    with pytest.raises(pickle.UnpicklingError, match="numpy"):
        satchel.loads(data, allow="data")
    got = satchel.loads(data, allow=lambda module, name: module.split(".")[0] == "numpy")
    assert np.array_equal(got["a"], np.arange(MiB // 8))


# ---------------------------------------------------------------------------------------------
# Damaged streams: an UnpicklingError, never a crash or wrong data.
# ---------------------------------------------------------------------------------------------


def wrapper_parts(obj):
    """A real stream of ``obj`` taken apart: (header, body frame, buffer tuples)."""
    data = satchel.dumps(obj, compress=True)
    seen = []
    real = _satchel_boot_1.load_zstd_buffers

    def spy(frame, *buffers):
        seen.append((frame, buffers))
        return real(frame, *buffers)

    _satchel_boot_1.load_zstd_buffers = spy
    try:
        pickle.loads(data)
    finally:
        _satchel_boot_1.load_zstd_buffers = real
    ((frame, buffers),) = seen
    return data[: satchel.inspect(data)["header_size"]], frame, list(buffers)


def build_stream(head, frame, buffers):
    """``head`` + ``load_zstd_buffers(frame, *buffers)`` written by hand."""

    def b(x):
        if isinstance(x, int):
            return b"K" + bytes([x])
        if len(x) < 256:
            return b"C" + bytes([len(x)]) + x
        return b"B" + struct.pack("<I", len(x)) + x

    out = bytearray(head + b"c_satchel_boot_1\nload_zstd_buffers\n(" + b(frame))
    for flags, itemsize, *chunks in buffers:
        out += b"(" + b(flags) + b(itemsize)
        out += b"".join(b(c) for c in chunks) + b"t"
    out += b"tR."
    return bytes(out)


def raw_zstd_frame(content):
    """A zstd frame of raw blocks without a content checksum (RFC 8878: single segment, 4-byte
    content size): what format 1.3 frames lacked."""
    out = bytearray(b"\x28\xb5\x2f\xfd\xa0" + struct.pack("<I", len(content)))
    pieces = [content[i : i + (128 << 10)] for i in range(0, len(content), 128 << 10)]
    for i, piece in enumerate(pieces):
        out += struct.pack("<I", len(piece) << 3 | (i == len(pieces) - 1))[:3] + piece
    return bytes(out)


def test_hand_made_stream_loads():
    """build_stream writes what satchel writes: the damaged variants below differ only where
    they say."""
    arr = 100 + np.cumsum(np.ones(100_000))
    head, frame, buffers = wrapper_parts(arr)
    data = build_stream(head, frame, buffers)
    assert data == satchel.dumps(arr, compress=True)
    assert np.array_equal(satchel.loads(data), arr)


@pytest.mark.parametrize(
    "case, message",
    [
        ("flags", "unknown flags"),
        ("itemsize0", "element size 0"),
        ("ragged", "elements of 8 bytes"),
        ("garbage", "not a zstd frame"),
        ("truncated", "corrupt satchel body"),
        ("bomb", "claims"),
        ("missing", "buffer"),
        ("no-chunks", "no chunks"),
        ("empty-chunk", "a chunk of 0 bytes"),
        ("not-bytes", "expected bytes|not \\(flags"),
        ("check", "fails its check"),
        ("check-itemsize", "fails its check"),
        ("check-no-checksum", "fails its check"),
        ("check-without-flag", "not a zstd frame"),
        ("unchecked-with-check", "has a check but no check flag|not a zstd frame"),
    ],
)
def test_damaged_buffers_are_unpickling_errors(case, message):
    arr = np.arange(70_000, dtype=np.uint8)  # one unshuffled chunk of 70,000 bytes
    head, frame, buffers = wrapper_parts(arr)
    ((flags, itemsize, check, chunk),) = buffers
    assert (flags, itemsize, len(check)) == (2, 1, 8)
    # The same chunk without zstd's content checksum (format 1.3 frames had none).
    plain = raw_zstd_frame(satchel._satchel.zstd_decompress(chunk))
    bomb = satchel.dumps(bytes(8 * MiB), compress=True, protocol=4)
    bomb = bomb[-satchel.inspect(bomb)["compressed_body_size"] - 3 : -3][:40]
    spec = {
        "flags": [(4, 1, chunk)],
        "itemsize0": [(0, 0, chunk)],
        "ragged": None,  # below: 70,001 bytes declared as 8-byte elements
        "garbage": [(0, 1, b"\x00" * 64)],
        "truncated": [(0, 1, chunk[:-20])],
        "bomb": [(0, 1, bomb)],
        "missing": [],  # the body names a buffer the stream does not carry
        "no-chunks": [(0, 1)],
        # A well-formed frame of no bytes (single segment, size 0, one empty last raw block):
        # found by fuzzing (fuzz/crashes/buffers-empty-chunk), it panicked in the unshuffle.
        "empty-chunk": [(0, 8, chunk, b"\x28\xb5\x2f\xfd\x20\x00\x01\x00\x00")],
        "not-bytes": [(0, 1, 3)],
        # Format 1.4 (flags 2): the check binds flags, element size and the frames' checksums.
        "check": [(2, 1, bytes(8), chunk)],
        "check-itemsize": [(2, 2, check, chunk)],  # 70,000 is a multiple of 2: only the check
        "check-no-checksum": [(2, 1, check, plain)],
        "check-without-flag": [(0, 1, check, chunk)],  # the check is read as a chunk
        "unchecked-with-check": [(0, 1, check)],
    }[case]
    if case == "ragged":
        spec = [(0, 8, wrapper_parts(np.arange(70_001, dtype=np.uint8))[2][0][3])]
    data = build_stream(head, frame, spec)
    for loader in (satchel.loads, pickle.loads):
        with pytest.raises(pickle.UnpicklingError, match=message):
            loader(data)


def test_truncated_streams_are_unpickling_errors():
    data = satchel.dumps(arrays(), compress=True)
    for cut in range(len(data) - 1, 0, -len(data) // 97):
        with pytest.raises(pickle.UnpicklingError):
            satchel.loads(data[:cut])


# ---------------------------------------------------------------------------------------------
# A committed format-1.3 stream keeps loading (tests/data/, written by make_fixture_values):
# the compat matrix's fixtures are too small to carry buffers out of band.
# ---------------------------------------------------------------------------------------------

FIXTURE = pathlib.Path(__file__).resolve().parent / "data" / "buffers-format-1.3.satchel"


def make_fixture_values():
    """What the fixture holds: every element size path (1, 2, 4, 8, a 15-byte record), a
    buffer of several chunks, Fortran order, read-only and writable PickleBuffers, and a small
    array that stays in the body. Pure arithmetic, so any numpy computes the same values.

    Regenerate (only for a new format):
    ``satchel.dumps(make_fixture_values(), compress=True)`` written to FIXTURE."""
    n = 70_000
    records = np.zeros(n, dtype=[("id", "<i4"), ("x", "<f4"), ("label", "S7")])
    records["id"] = np.arange(n)
    records["x"] = np.arange(n) * 0.5
    records["label"] = np.array([b"alpha", b"beta", b"gamma"])[np.arange(n) % 3]
    grid = (np.arange(300 * 100) % 11).reshape(300, 100).astype(np.float64)
    return {
        "u8": (np.arange(100_000) % 7).astype(np.uint8),
        "i16": (np.arange(50_000) % 300 - 150).astype(np.int16),
        "f32": (np.arange(40_000) * 0.1).astype(np.float32),
        "f64": np.cumsum(np.sin(np.arange(20_000) / 50.0)),
        "big": np.arange(300_000, dtype=np.int64) * 3,
        "records": records,
        "fortran": np.asfortranarray(grid),
        "ro": pickle.PickleBuffer(b"r" * 70_000),
        "rw": pickle.PickleBuffer(bytearray(b"w" * 70_000)),
        "small": np.arange(10),
    }


def test_committed_format_1_3_stream_still_loads():
    data = FIXTURE.read_bytes()
    info = satchel.inspect(data)
    assert info["format_version"] == "1.3.0" and info["out_of_band_buffers"] == 9
    want = make_fixture_values()
    for loader in (satchel.loads, pickle.loads):
        got = loader(data)
        assert got.keys() == want.keys()
        assert got["ro"] == b"r" * 70_000 and type(got["ro"]) is bytes
        assert got["rw"] == bytearray(b"w" * 70_000) and type(got["rw"]) is bytearray
        for name in want.keys() - {"ro", "rw"}:
            a, b = want[name], got[name]
            assert b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b), name
            assert b.flags.f_contiguous == a.flags.f_contiguous and b.flags.writeable, name
