"""Write the seed corpus: real satchel streams of every kind, small, one per file.

    .venv/bin/python fuzz/make_corpus.py            # writes fuzz/corpus/{loads,signed}/seed-*
    .venv/bin/python fuzz/make_corpus.py buffers-   # only the seeds whose name starts so

The ``buffers-*`` seeds (format 1.3: compressed streams whose large buffers travel out of
band) also go to fuzz/corpus/buffers, the seeds of fuzz_buffers.py.

Run as a script: what it defines lives in ``__main__``, so satchel ships it by value. The
streams are deterministic for one interpreter build (nonportable ones carry its bytecode and
fingerprint; another build loads them as IncompatibleInterpreter, still an exception).
"""

import dataclasses
import enum
import os
import pathlib
import sys

from checks import KEY  # the key of every signed seed

import satchel

HERE = pathlib.Path(__file__).resolve().parent

RATE = 1.25


def scale(x, k=3):
    return x * k * RATE


def make_closure(n):
    data = {"n": n, "items": [1, 2.5, "three", b"four", (None, True)]}

    def inner(x):
        return [x + n, data, RATE]

    return inner


def fact(n):  # recursive: skeleton + state
    return 1 if n <= 1 else n * fact(n - 1)


class Point:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x, self.y = x, y

    def norm(self):
        return (self.x**2 + self.y**2) ** 0.5


class Tree:
    def __init__(self, value, children=()):
        self.value, self.children = value, list(children)

    def __setstate__(self, state):  # BUILD calls this on load
        self.__dict__.update(state)

    def __eq__(self, other):
        return isinstance(other, Tree) and self.value == other.value

    def __hash__(self):
        return hash(self.value)


class Color(enum.Enum):
    RED = 1
    GREEN = 2


@dataclasses.dataclass
class Record:
    name: str
    tags: list = dataclasses.field(default_factory=list)


def running_mean(values):
    total = count = 0
    for v in values:
        total, count = total + v, count + 1
        yield total / count


def with_block(items):
    import contextlib

    with contextlib.suppress(KeyError):
        for i, item in enumerate(items):
            try:
                yield i, item
            finally:
                pass


def suspended(gen, steps):
    for _ in range(steps):
        next(gen)
    return gen


def seeds():
    """(name, kwargs for dumps, object) for each seed."""
    closure = make_closure(7)
    tree = Tree(1, [Tree(2), Tree(3)])
    done = running_mean([1])
    list(done)
    return [
        ("plain-data", {}, {"a": [1, 2.0, "x", b"y", (None, True)], "s": {1, 2}, 3: 2**70}),
        ("plain-data-p2", {"protocol": 2}, [1, "two", (3.0,), {"four": b"4"}]),
        ("lean-closure", {}, closure),
        ("lean-closure-p2", {"protocol": 2}, closure),
        ("lean-lambda-default", {}, lambda x, k=RATE: scale(x) + k),
        ("lean-recursive", {}, fact),
        ("lean-dynamic-class", {}, [Point, Point(3, 4), tree, {tree: Color.RED}]),
        ("lean-enum-dataclass", {}, [Color, Record("r", ["t"])]),
        ("lean-generator-suspended", {}, suspended(running_mean([2, 4, 6, 8]), 2)),
        ("lean-generator-with", {}, suspended(with_block(["a", "b", "c"]), 2)),
        ("lean-generator-created", {}, running_mean([1, 2])),
        ("lean-generator-finished", {}, done),
        ("standalone-nonportable", {"standalone": True}, closure),
        ("standalone-portable", {"mode": "portable"}, [scale, Point]),
        ("portable-lean", {"mode": "portable", "standalone": False}, closure),
        ("compressed-closure", {"compress": True}, [closure, list(range(200))]),
        ("compressed-class", {"compress": True}, [Point, tree]),
        ("compressed-generator", {"compress": True}, suspended(running_mean([1, 2, 3]), 1)),
        ("compressed-plain", {"compress": True}, {"zeros": bytes(5000), "r": list(range(50))}),
    ]


def buffer_seeds():
    """(name, kwargs, object): compressed streams with out-of-band buffers (format 1.3), one
    element size each (1, 2, 4, 8, 13 structured, 16), read-only, multi-chunk, several buffers.
    Values compress well, so every stream stays a few KB."""
    import pickle

    import numpy as np

    def readonly(a):
        a.setflags(write=False)
        return a

    rec = np.zeros(6000, dtype=[("id", "<i4"), ("x", "<f8"), ("tag", "u1")])  # itemsize 13
    rec["id"], rec["x"], rec["tag"] = np.arange(6000), np.arange(6000) * 0.25, np.arange(6000) % 7
    big_rec = np.zeros(90_000, dtype=rec.dtype)  # 1.17 MB: chunks of 80,659 elements
    big_rec["id"], big_rec["x"] = np.arange(90_000), np.arange(90_000) * 0.5
    z = {"compress": True}
    return [
        ("buffers-u1", z, np.arange(70_000, dtype=np.uint8)),
        ("buffers-i2", z, np.arange(40_000, dtype=np.int16)),
        ("buffers-f2", z, np.arange(40_000, dtype=np.float16)),
        ("buffers-f4", z, np.arange(20_000, dtype=np.float32)),
        ("buffers-f8", z, np.arange(10_000) * 0.5),
        ("buffers-i8-fortran", z, np.asfortranarray(np.arange(12_000).reshape(100, 120))),
        ("buffers-c16", z, np.arange(5000, dtype=np.complex128)),
        ("buffers-structured", z, rec),
        ("buffers-readonly", z, readonly(np.arange(20_000, dtype=np.int32))),
        ("buffers-multichunk-i4", z, np.arange(300_000, dtype=np.int32)),  # 1.2 MB: 2 chunks
        ("buffers-multichunk-i8", z, np.arange(280_000)),  # 2.2 MB: 3 chunks
        ("buffers-multichunk-structured", z, big_rec),
        ("buffers-bytes", z, pickle.PickleBuffer(bytes(range(256)) * 300)),  # read-only
        ("buffers-bytearray", z, pickle.PickleBuffer(bytearray(b"satchel" * 10_000))),
        (
            "buffers-mixed",
            z,
            {
                "a": np.arange(17_000, dtype=np.float32),
                "small": np.arange(10),  # in band
                "b": np.full(9000, 7, dtype=np.uint64),
                "c": [readonly(np.ones(70_000, dtype=np.bool_))],
            },
        ),
    ]


def main(only=()):
    loads_dir = HERE / "corpus" / "loads"
    signed_dir = HERE / "corpus" / "signed"
    buffers_dir = HERE / "corpus" / "buffers"
    for d in (loads_dir, signed_dir, buffers_dir):
        d.mkdir(parents=True, exist_ok=True)
    written = 0
    for name, kwargs, obj in seeds() + buffer_seeds():
        if only and not name.startswith(tuple(only)):
            continue
        data = satchel.dumps(obj, **kwargs)
        (loads_dir / f"seed-{name}").write_bytes(data)
        signed = satchel.dumps(obj, key=KEY, **kwargs)
        assert satchel.inspect(signed)["signed"] if "plain" not in name else True
        (signed_dir / f"seed-{name}").write_bytes(signed)
        written += 2
        # Signed streams also go to the loads target: unsigned loads of them, and mutations.
        if name in ("lean-closure", "standalone-nonportable", "compressed-closure"):
            (loads_dir / f"seed-signed-{name}").write_bytes(signed)
            written += 1
        if name.startswith("buffers-"):
            assert satchel.inspect(data)["out_of_band_buffers"], name
            (buffers_dir / f"seed-{name}").write_bytes(data)
            written += 1
            if name in ("buffers-multichunk-i4", "buffers-readonly"):
                (buffers_dir / f"seed-signed-{name}").write_bytes(signed)
                written += 1
    print(f"{written} seeds in {HERE.relative_to(HERE.parent)}/corpus", file=sys.stderr)


if __name__ == "__main__":
    os.chdir(HERE)
    main(sys.argv[1:])
