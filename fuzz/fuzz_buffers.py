"""atheris target: the out-of-band buffers of compressed streams (format 1.3: the
``load_zstd_buffers`` wrapper, src/envelope/header.rs and buffers.rs), seeds fuzz/corpus/buffers.

    .venv/bin/python fuzz/fuzz_buffers.py WORKDIR fuzz/corpus/buffers \\
        -max_total_time=300 -timeout=10 -rss_limit_mb=3072

A custom mutator takes the wrapper apart (oob.py) and changes what a damaged or hostile stream
could: flags and itemsize (values and int encodings), chunks (dropped, repeated, swapped,
moved, split at element boundaries, empty, skippable, with trailing frames), frames that lie
about their content size, chunk contents re-encoded (shuffled by another element size, or
mutated), buffers dropped or repeated, bytes-opcode lengths off by a few, raw byte mutations.
Every input then goes through inspect, signed loads, and ``checks.check_buffers``: both
decoders (``satchel.loads``, ``pickle.loads``) against the reference decoder. The seeds carry no
code, so nothing here runs shipped bytecode.
"""

import faulthandler
import random
import sys

import atheris
import checks

oob = checks.oob
INTACT = checks.signed_seeds()
_started = []
_counts = {}

SEEDS = [p.read_bytes() for p in sorted((checks.CORPUS / "buffers").glob("seed-*"))]
K_VALUES = (0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 63, 64, 65, 128, 255)


def _int_token(rng, value):
    how = rng.choice("KKKKKIMJ")
    if how == "I" and rng.random() < 0.5:
        text = rng.choice([b"0", b"+", b"00", b"0x", b" ", b"-"]) + str(value).encode()
        return oob.int_token(text, "I")
    return oob.int_token(value, how)


def _pick_buffer(rng, w):
    return rng.choice(w.buffers) if w.buffers else None


def _reencode(rng, content, declared=None):
    block = rng.choice([1 << 17, 1 << 17, 4096, 65536, rng.randrange(1, 1 << 17)])
    return oob.frame(content, declared=declared, block=block, rle=rng.random() < 0.8)


def _elements(rng, n, k):
    """A cut point at an element boundary of ``n`` bytes of ``k``-byte elements."""
    return rng.randrange(n // k + 1) * k if k else 0


def mutate_wrapper(rng, w):
    """One structural change to ``w`` (in place)."""
    b = _pick_buffer(rng, w)
    op = rng.randrange(17)
    if b is None and op < 12:
        op = 12
    k = oob.int_value(b.itemsize, "satchel") if b and b.itemsize[:1] == b"K" else 1
    if op == 0:  # flags
        b.flags = _int_token(rng, rng.choice((0, 1, 1, 2, 3, 4, 129, 255, rng.randrange(256))))
    elif op == 1:  # itemsize, chunks untouched (unshuffled by the wrong size, or refused)
        b.itemsize = _int_token(rng, rng.choice(K_VALUES + (rng.randrange(256),)))
    elif op == 2:  # re-shuffle by another element size that divides every chunk: same data
        chunks = oob.decoded_chunks(b)
        if chunks:
            sizes = [k2 for k2 in K_VALUES if k2 and all(len(c) % k2 == 0 for c in chunks)]
            k2 = rng.choice(sizes) if sizes else 1
            b.itemsize = oob.int_token(k2)
            b.chunks = [_reencode(rng, oob.shuffle(c, k2)) for c in chunks]
    elif op == 3:  # re-chunk at element boundaries (empty chunks sometimes)
        chunks = oob.decoded_chunks(b)
        if chunks:
            data = b"".join(chunks)
            cuts = sorted(_elements(rng, len(data), k) for _ in range(rng.randrange(1, 5)))
            if rng.random() < 0.3:
                cuts.append(cuts[-1])  # an empty chunk
            pieces = [data[a:z] for a, z in zip([0] + cuts, cuts + [len(data)])]
            b.chunks = [_reencode(rng, oob.shuffle(p, k)) for p in pieces]
    elif op == 4 and b.chunks:  # drop / repeat / swap chunks
        i = rng.randrange(len(b.chunks))
        how = rng.randrange(3)
        if how == 0:
            del b.chunks[i]
        elif how == 1:
            b.chunks.insert(i, b.chunks[i])
        else:
            j = rng.randrange(len(b.chunks))
            b.chunks[i], b.chunks[j] = b.chunks[j], b.chunks[i]
    elif op == 5 and b.chunks:  # a chunk that lies about its size
        chunks = oob.decoded_chunks(b)
        i = rng.randrange(len(b.chunks))
        content = oob.shuffle(chunks[i], k) if chunks else b"\0" * 64
        n = len(content)
        declared = rng.choice(
            [0, 1, n - 1, n + 1, n - k, n + k, 2 * n, n // 2, 64 << 20, (64 << 20) + k]
            + [(len(b.chunks[i]) << 16) + (1 << 20), 2**32 - 1, 2**63, rng.randrange(1 << 24)]
        )
        b.chunks[i] = _reencode(rng, content, max(0, declared))
    elif op == 6 and b.chunks:  # a chunk's content changed (re-encoded, declared truthfully)
        chunks = oob.decoded_chunks(b)
        if chunks:
            i = rng.randrange(len(chunks))
            raw = oob.shuffle(chunks[i], k)
            new = atheris.Mutate(raw, len(raw) + 64) if rng.random() < 0.7 else raw[: len(raw) // 2]
            b.chunks[i] = _reencode(rng, new)
    elif op == 7 and b.chunks:  # raw byte mutation of a chunk's frame
        i = rng.randrange(len(b.chunks))
        b.chunks[i] = atheris.Mutate(b.chunks[i], len(b.chunks[i]) + 32)
    elif op == 8:  # empty / skippable / trailing frames
        extra = rng.choice(
            [oob.frame(b""), oob.skippable(b"x" * rng.randrange(4)), oob.frame(b"\0" * k)]
        )
        if b.chunks and rng.random() < 0.5:
            i = rng.randrange(len(b.chunks))
            b.chunks[i] = b.chunks[i] + extra if rng.random() < 0.5 else extra + b.chunks[i]
        else:
            b.chunks.insert(rng.randrange(len(b.chunks) + 1), extra)
    elif op == 9 and b.chunks:  # a chunk moved to another buffer
        other = rng.choice(w.buffers)
        other.chunks.insert(rng.randrange(len(other.chunks) + 1), b.chunks.pop())
    elif op == 10:  # many tiny chunks that each declare as much as their length allows
        n = rng.choice([1, 2, 8, 64, 256])
        size = ((rng.randrange(1, 40) << 16) + (1 << 20)) // max(k, 1) * max(k, 1)
        lie = oob.frame(b"", declared=min(size, 64 << 20))
        b.chunks[rng.randrange(len(b.chunks) + 1) :] = [lie] * n
    elif op == 11:  # buffers: drop / repeat / swap / empty
        i = w.buffers.index(b)
        how = rng.randrange(4)
        if how == 0:
            del w.buffers[i]
        elif how == 1:
            w.buffers.insert(i, oob.Buffer(b.flags, b.itemsize, list(b.chunks), b.check))
        elif how == 2:
            j = rng.randrange(len(w.buffers))
            w.buffers[i], w.buffers[j] = w.buffers[j], w.buffers[i]
        else:
            w.buffers.insert(i, oob.Buffer(b.flags, b.itemsize, []))
    elif op == 12:  # a buffer added
        content = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64))) * 1024
        k2 = rng.choice((1, 2, 4, 8))
        content = content[: len(content) // k2 * k2]
        buf = oob.Buffer(oob.int_token(rng.randrange(2)), oob.int_token(k2), [])
        buf.chunks.append(_reencode(rng, oob.shuffle(content, k2)))
        w.buffers.insert(rng.randrange(len(w.buffers) + 1), buf)
    elif op == 13:  # the body's frame: lies about its size, or re-encoded
        try:
            body = checks.satchel._satchel.zstd_decompress(w.frame)
        except Exception:  # noqa: BLE001
            body = None
        if body is not None:
            declared = rng.choice([None, None, len(body) + 1, max(0, len(body) - 1), 0])
            w.frame = _reencode(rng, body, declared)
    elif op == 14:  # raw byte mutation of the body's frame
        w.frame = atheris.Mutate(w.frame, len(w.frame) + 32)
    elif op == 15:  # something after STOP
        w.tail = rng.choice([b"", b".", b"\0" * 8, bytes(rng.randrange(256) for _ in range(4))])
    return w


def custom_mutator(data, max_size, seed):
    rng = random.Random(seed)
    w = oob.parse(data)
    if w is None and SEEDS and rng.random() < 0.9:
        # libFuzzer's own mutations and input reduction leave bytes that are no stream:
        # most of the time start again from a seed (coverage is Python-side only, so it
        # would not steer back to real streams).
        w = oob.parse(rng.choice(SEEDS))
    if w is None or rng.random() < 0.04:
        return atheris.Mutate(data, max_size)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        try:
            w = mutate_wrapper(rng, w)
        except (ValueError, IndexError, ZeroDivisionError):
            pass
    # Format 1.4 checks refuse nearly every mutation of a checked buffer; most of the time
    # make the check true again (or drop it), so the decoders' other rules are reached.
    for b in w.buffers:
        if rng.random() < 0.8:
            oob.reseal(b)
    out = oob.write(w)
    if rng.random() < 0.05:  # a bytes opcode whose length is off by a few
        at = [i for i in range(len(out) - 5) if out[i] in b"CB" and out[i - 1] in b"(Kt\x00"]
        if at:
            i = rng.choice(at)
            out = bytearray(out)
            out[i + 1] = (out[i + 1] + rng.choice((-2, -1, 1, 2, 8))) & 0xFF
            out = bytes(out)
    if len(out) > max_size:
        return atheris.Mutate(data, max_size)
    return out


def TestOneInput(data):
    if not _started:
        faulthandler.enable()
        _started.append(True)
    checks.check_inspect(data)
    checks.check_signed(data, INTACT)
    outcome = checks.check_buffers(data)
    checks.check_printed()
    _counts[outcome] = _counts.get(outcome, 0) + 1
    n = sum(_counts.values())
    if n & (n - 1) == 0 and n >= 1024:
        print(f"satchel: {n} inputs {_counts}, open findings {checks.open_counts}", file=sys.stderr)


if __name__ == "__main__":
    checks.install()
    checks.buffer_seeds()
    checks.limit_memory()
    atheris.instrument_all()
    atheris.Setup(sys.argv, TestOneInput, custom_mutator=custom_mutator)
    atheris.Fuzz()
