"""The out-of-band buffers of a compressed stream (format 1.3, docs/FORMAT.md "Compression"),
by hand: read and write the wrapper, write zstd frames (raw and RLE blocks, any declared size),
and a reference decoder written from the format's rules, not from satchel's code.

    GLOBAL _satchel_boot_1.load_zstd_buffers  MARK  frame
        (MARK flags itemsize [check] chunk_frame... TUPLE) for each buffer
    TUPLE REDUCE STOP

Format 1.4: flags bit 2 ("checked") says an 8-byte check comes before the chunks and every
chunk frame ends with zstd's content checksum; the check is sha256 over the flags, element
size, chunk count and each frame's length and last 4 bytes (``compute_check``).

The reference decodes each zstd frame with ``satchel._satchel.zstd_decompress`` (one frame, no
shuffling: the same zstd library) and does the rest itself: the size rules, the exact fill,
unshuffling with numpy, ``bytes``/``bytearray`` by the flags, then ``pickle.loads(body,
buffers=...)``. ``checks.check_buffers`` holds satchel's two decoders (``satchel.loads`` and
``pickle.loads`` through the bootstrap) to it.
"""

import dataclasses
import pickle
import struct

GLOBAL_LINE = b"c_satchel_boot_1\nload_zstd_buffers\n"
MAX_CHUNK = 64 << 20  # a chunk declaring more is refused
MAX_RATIO = 1 << 16  # a frame may declare at most len * MAX_RATIO + SLACK bytes
SLACK = 1 << 20
FLAG_READONLY = 1
FLAG_CHECKED = 2
CHECK_LEN = 8

ZSTD_MAGIC = 0xFD2FB528
_LEGACY = range(0xFD2FB522, 0xFD2FB528)  # zstd v0.2-v0.7 frames (libzstd's legacy decoders)
_BLOCK = 1 << 17  # largest zstd block


@dataclasses.dataclass
class Buffer:
    flags: bytes  # the opcode as written: K x, I digits \n, M xx, J xxxx
    itemsize: bytes
    chunks: list
    check: bytes = None  # format 1.4: the bytes before the chunks, when flags say "checked"


@dataclasses.dataclass
class Wrapper:
    head: bytes  # the satchel header, before the wrapper's GLOBAL
    frame: bytes  # the body's zstd frame
    buffers: list
    tail: bytes  # after STOP (a signature trailer, or garbage)


class _Bad(Exception):
    pass


class _Reader:
    def __init__(self, data, pos):
        self.data, self.pos = data, pos

    def peek(self):
        return self.data[self.pos] if self.pos < len(self.data) else None

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise _Bad("truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def expect(self, op):
        if self.take(1) != op:
            raise _Bad(f"expected {op!r}")

    def bytes(self):
        op = self.take(1)
        if op == b"C":
            n = self.take(1)[0]
        elif op == b"B":
            (n,) = struct.unpack("<I", self.take(4))
        elif op == b"\x8e":
            (n,) = struct.unpack("<Q", self.take(8))
        else:
            raise _Bad("expected bytes")
        return self.take(n)

    def int_token(self):
        op = self.take(1)
        if op == b"K":
            return op + self.take(1)
        if op == b"M":
            return op + self.take(2)
        if op == b"J":
            return op + self.take(4)
        if op == b"I":
            end = self.data.find(b"\n", self.pos)
            if end < 0:
                raise _Bad("truncated")
            return op + self.take(end + 1 - self.pos)
        raise _Bad("expected an int")


def parse(data):
    """The wrapper of ``data`` (None when it has no well-formed one). Ints and bytes in any of
    the encodings the C unpickler reads (K I M J, C B BINBYTES8)."""
    at = data.find(GLOBAL_LINE)
    if at < 0:
        return None
    r = _Reader(data, at + len(GLOBAL_LINE))
    try:
        r.expect(b"(")
        frame = r.bytes()
        buffers = []
        while r.peek() == ord("("):
            r.pos += 1
            flags, itemsize = r.int_token(), r.int_token()
            check = r.bytes() if _checked(flags) and r.peek() != ord("t") else None
            chunks = []
            while r.peek() != ord("t"):
                chunks.append(r.bytes())
            r.pos += 1
            buffers.append(Buffer(flags, itemsize, chunks, check))
        for op in (b"t", b"R", b"."):
            r.expect(op)
    except _Bad:
        return None
    return Wrapper(data[:at], frame, buffers, data[r.pos :])


def _checked(flags_token):
    for reader in ("satchel", "pickle"):
        try:
            return bool(int_value(flags_token, reader) & FLAG_CHECKED)
        except _Bad:
            pass
    return False


def compute_check(flags, itemsize, frames):
    """The check of a buffer (format 1.4), as satchel's buffers.rs computes it."""
    import hashlib

    h = hashlib.sha256(b"satchel buffer check 1\0" + bytes([flags, itemsize]))
    h.update(struct.pack("<Q", len(frames)))
    for fr in frames:
        h.update(struct.pack("<Q", len(fr)) + fr[-4:])
    return h.digest()[:CHECK_LEN]


def has_checksum(fr):
    """Whether a zstd frame says it ends with a content checksum."""
    return len(fr) >= 9 and struct.unpack("<I", fr[:4])[0] == ZSTD_MAGIC and fr[4] & 0x04 != 0


def reseal(b):
    """After a mutation: a checked buffer whose chunks all carry checksums gets its check
    recomputed; one with a chunk re-encoded here (``frame`` writes no checksum) becomes an
    unchecked (format 1.3) buffer, so that the decoders' size rules are still reached."""
    try:
        flags, k = int_value(b.flags, "satchel"), int_value(b.itemsize, "satchel")
    except _Bad:
        return
    if not flags & FLAG_CHECKED:
        return
    if all(has_checksum(c) for c in b.chunks):
        b.check = compute_check(flags, k, b.chunks)
    else:
        b.flags, b.check = int_token(flags & ~FLAG_CHECKED), None


def int_token(value, how="K"):
    if how == "K":
        return b"K" + bytes([value & 0xFF])
    if how == "M":
        return b"M" + struct.pack("<H", value & 0xFFFF)
    if how == "J":
        return b"J" + struct.pack("<i", value)
    return b"I" + (value if isinstance(value, bytes) else str(value).encode()) + b"\n"


def bytes_token(b, how=None):
    if how is None:
        how = "C" if len(b) < 256 else "B"
    if how == "C" and len(b) < 256:
        return b"C" + bytes([len(b)]) + b
    if how == "8":
        return b"\x8e" + struct.pack("<Q", len(b)) + b
    return b"B" + struct.pack("<I", len(b)) + b


def write(w):
    out = bytearray(w.head + GLOBAL_LINE + b"(" + bytes_token(w.frame))
    for b in w.buffers:
        check = bytes_token(b.check) if b.check is not None else b""
        chunks = b"".join(bytes_token(c) for c in b.chunks)
        out += b"(" + b.flags + b.itemsize + check + chunks + b"t"
    return bytes(out + b"tR." + w.tail)


def int_value(token, reader):
    """The value the ``reader`` ("satchel": the Rust header parser, "pickle": the C unpickler
    and the pyo3 u8 extraction of ``zstd_load_buffers``) takes from an int token; _Bad when it
    refuses it."""
    op, arg = token[:1], token[1:]
    if op == b"K":
        return arg[0]
    if reader == "pickle":
        try:  # the C unpickler's INT reads with strtol(base 0): b"010" is 8, b"01" True
            value = pickle.loads(token + b".")
        except Exception:  # noqa: BLE001
            raise _Bad("bad int") from None
        if not isinstance(value, int) or not 0 <= value <= 255:
            raise _Bad("not a u8")
        return int(value)
    if op != b"I":
        raise _Bad("expected flags")
    # The Rust header parser: canonical decimal only (ASCII digits, no sign, no leading zero),
    # on a line of at most 255 bytes, read as a u8.
    text = arg[:-1]
    canonical = text.isascii() and text.isdigit() and (len(text) == 1 or text[:1] != b"0")
    if len(text) > 255 or not canonical or int(text) > 255:
        raise _Bad("bad flags")
    return int(text)


# ---------------------------------------------------------------------------------------------
# zstd frames by hand
# ---------------------------------------------------------------------------------------------


def frame(content, declared=None, block=_BLOCK, rle=True):
    """A zstd frame holding ``content`` (raw blocks, RLE where a block is one repeated byte)
    that declares ``declared`` bytes (default: its length; single segment, so no window)."""
    declared = len(content) if declared is None else declared
    if declared < 256:
        fhd, fcs = 0x20, bytes([declared])
    elif declared < 65536 + 256:
        fhd, fcs = 0x60, struct.pack("<H", declared - 256)
    elif declared < 1 << 32:
        fhd, fcs = 0xA0, struct.pack("<I", declared)
    else:
        fhd, fcs = 0xE0, struct.pack("<Q", declared & (2**64 - 1))
    out = bytearray(struct.pack("<I", ZSTD_MAGIC) + bytes([fhd]) + fcs)
    block = max(1, min(block, _BLOCK))
    pieces = [content[i : i + block] for i in range(0, len(content), block)] or [b""]
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        if rle and len(piece) > 1 and piece.count(piece[:1]) == len(piece):
            out += struct.pack("<I", len(piece) << 3 | 1 << 1 | last)[:3] + piece[:1]
        else:
            out += struct.pack("<I", len(piece) << 3 | last)[:3] + piece
    return bytes(out)


def skippable(payload=b"", magic=0x184D2A50):
    return struct.pack("<II", magic, len(payload)) + payload


class Legacy(Exception):
    """A legacy (v0.x) zstd frame: its declared size is libzstd's business; not judged."""


def content_size(fr):
    """What libzstd's ZSTD_getFrameContentSize says: the declared size, 0 for a skippable
    frame; _Bad for an error or an unknown size (satchel refuses both)."""
    if len(fr) < 4:
        raise _Bad("not a zstd frame")
    (magic,) = struct.unpack("<I", fr[:4])
    if magic & 0xFFFFFFF0 == 0x184D2A50:
        if len(fr) < 8:
            raise _Bad("short skippable frame")
        return 0
    if magic in _LEGACY:
        raise Legacy()
    if magic != ZSTD_MAGIC or len(fr) < 5:
        raise _Bad("not a zstd frame")
    fhd = fr[4]
    fcs_flag, single, dict_flag = fhd >> 6, fhd >> 5 & 1, fhd & 3
    if fhd & 0x08:
        raise _Bad("reserved bit")
    pos = 5
    if not single:
        if len(fr) < 6:
            raise _Bad("truncated frame header")
        if (fr[5] >> 3) + 10 > 31:
            raise _Bad("window too large")
        pos += 1
    pos += (0, 1, 2, 4)[dict_flag]
    size = (1 if single else 0, 2, 4, 8)[fcs_flag]
    if len(fr) < pos + size:
        raise _Bad("truncated frame header")
    if size == 0:
        raise _Bad("no content size")
    value = int.from_bytes(fr[pos : pos + size], "little")
    if size == 2:
        value += 256
    return value


def _checked_size(fr):
    size = content_size(fr)
    if size > len(fr) * MAX_RATIO + SLACK:
        raise _Bad("a zstd frame claims more than its length allows")
    return size


def _decode(fr, size):
    import satchel

    try:
        out = satchel._satchel.zstd_decompress(fr)
    except (pickle.UnpicklingError, MemoryError) as exc:  # MemoryError: checks.MEMORY_LIMIT
        raise _Bad(f"zstd: {exc!r}") from None
    if len(out) != size:
        raise _Bad(f"a zstd frame declared {size} bytes and held {len(out)}")
    return out


def shuffle(data, k):
    import numpy as np

    if k <= 1 or not data:
        return bytes(data)
    return np.frombuffer(data, np.uint8).reshape(-1, k).T.tobytes()


def unshuffle(data, k):
    import numpy as np

    if k <= 1 or not data:
        return bytes(data)
    return np.frombuffer(data, np.uint8).reshape(k, -1).T.tobytes()


def reference(w, reader):
    """What a decoder following the format's rules makes of wrapper ``w``, read as ``reader``
    reads it: ("value", obj), ("error", why), ("either", obj) (a clear error is right too) or
    ("unjudged", why) (a legacy zstd frame)."""
    try:
        body_size = _checked_size(w.frame)
        specs = []
        for i, b in enumerate(w.buffers):
            flags = int_value(b.flags, reader)
            k = int_value(b.itemsize, reader)
            if flags & ~(FLAG_READONLY | FLAG_CHECKED):
                raise _Bad(f"buffer {i} has unknown flags {flags}")
            # The elements after flags and itemsize: the check first when the flags say so.
            chunks = ([b.check] if b.check is not None else []) + list(b.chunks)
            if flags & FLAG_CHECKED:
                check, chunks = (chunks[0], chunks[1:]) if chunks else (None, [])
                intact = (
                    check is not None
                    and len(check) == CHECK_LEN
                    and all(has_checksum(c) for c in chunks)
                    and check == compute_check(flags, k, chunks)
                )
                if not intact:
                    raise _Bad(f"buffer {i} fails its check")
            if not chunks:
                raise _Bad(f"buffer {i} has no chunks")
            if k == 0:
                raise _Bad(f"buffer {i} has element size 0")
            sizes = []
            for c in chunks:
                size = _checked_size(c)
                if size > MAX_CHUNK or size % k:
                    raise _Bad(f"buffer {i} has a chunk of {size} bytes (elements of {k})")
                sizes.append(size)
            specs.append((flags, k, sizes, chunks))
        body = _decode(w.frame, body_size)
        buffers = []
        for flags, k, sizes, chunks in specs:
            data = b"".join(unshuffle(_decode(c, n), k) for c, n in zip(chunks, sizes))
            buffers.append(data if flags & FLAG_READONLY else bytearray(data))
    except _Bad as exc:
        return "error", str(exc)
    except Legacy:
        return "unjudged", "legacy zstd frame"
    try:
        value = pickle.loads(body, buffers=buffers)
    except Exception as exc:  # noqa: BLE001 (the body's own error: the decoders raise too)
        return "error", f"body: {exc!r}"[:200]
    # The format does not say whether a chunk may be empty (satchel never writes one): a
    # decoder may refuse it, or decode it as nothing.
    empty = any(content_size(c) == 0 for b in w.buffers for c in b.chunks)
    return ("either" if empty else "value"), value


def body(w):
    """The body ``w``'s frame decodes to under the format's rules (None if it does not)."""
    try:
        return _decode(w.frame, _checked_size(w.frame))
    except (_Bad, Legacy):
        return None


def decoded_chunks(b):
    """The decoded, unshuffled chunks of buffer ``b`` as satchel wrote them (None if any does
    not decode)."""
    try:
        k = int_value(b.itemsize, "satchel") or 1
        return [unshuffle(_decode(c, _checked_size(c)), k) for c in b.chunks]
    except (_Bad, Legacy, ValueError):
        return None


def same(a, b):
    """Equal values, types, dtypes, shapes, memory order and writability."""
    import numpy as np

    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return (
            a.dtype == b.dtype
            and a.shape == b.shape
            and a.flags.writeable == b.flags.writeable
            and a.flags.c_contiguous == b.flags.c_contiguous
            and a.flags.f_contiguous == b.flags.f_contiguous
            and a.tobytes(order="A") == b.tobytes(order="A")
        )
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b
