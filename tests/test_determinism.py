"""Determinism across processes: the same ``__main__`` code, pickled by value in interpreters
with different string-hash seeds, must give the same bytes.

String hashing changes the iteration order of sets and frozensets of strings (a function's
``x in {"a", "b"}`` constant, a set-valued class attribute) and of anything derived from
them; a stream that depends on that order differs from run to run, which defeats caching
and content addressing of pickled code.

Out of scope on purpose: set *data* (a bare ``{"x", "y"}`` in the pickled value) is written by
the C pickler in iteration order, as with the stdlib (``test_hypothesis.py`` checks that
satchel leaves plain data to it), and a dataclass with a set default bakes the set's repr into
the generated ``__doc__`` at class creation. Neither appears below.
"""

import pickle
import sys

import pytest

import satchel
from conftest import child_eval, child_eval_bytes, run_script

HASH_SEEDS = ["1", "12345", "random"]

SCRIPT = r'''
import abc
import dataclasses
import enum
import sys

import satchel

SCALE = 10
NAMES = ("alpha", "beta")


def make_counter(start):
    count = start

    def bump(step=1, *, twice=False):
        nonlocal count
        count += step * (2 if twice else 1)
        return count

    def peek():
        return count

    return bump, peek


def adder(k):
    return lambda x: x + k


def is_letter(x):
    return x in {"a", "b", "c", "d"}


def is_known(x):
    return x in frozenset({"red", "green", "blue", "cyan", "magenta"})


def scaled(x):
    """Reads module globals."""
    return [x * SCALE, NAMES]


class Shape:
    TAGS = {"round", "flat", "solid", "hollow", "shiny", "matte"}
    limits = {"lo": 0, "hi": 9}

    def __init__(self, size):
        self._size = size

    def grow(self, by=1):
        return Shape(self._size + by)

    @property
    def size(self):
        return self._size

    @classmethod
    def unit(cls):
        return cls(1)

    @staticmethod
    def describe():
        return "shape"

    def tagged(self, tag):
        return tag in self.TAGS


class Base(abc.ABC):
    @abc.abstractmethod
    def area(self): ...

    @abc.abstractmethod
    def name(self): ...

    def label(self):
        return f"{self.name()}:{self.area()}"


class Square(Base):
    def __init__(self, side):
        self.side = side

    def area(self):
        return self.side * self.side

    def name(self):
        return "square"


class Color(enum.Enum):
    RED = "r"
    GREEN = "g"
    BLUE = "b"

    def shout(self):
        return self.name.upper() + "!"


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int = 0
    tags: tuple = ("p", "q")

    def norm1(self):
        return abs(self.x) + abs(self.y)


bump, peek = make_counter(100)
objects = {
    "bump": bump,
    "peek": peek,
    "add5": adder(5),
    "is_letter": is_letter,
    "is_known": is_known,
    "scaled": scaled,
    "Shape": Shape,
    "Base": Base,
    "Square": Square,
    "Color": Color,
    "Point": Point,
    "point": Point(3, -4),
}
protocol = int(sys.argv[1])
sys.stdout.buffer.write(satchel.dumps(objects, protocol=protocol))
'''

CHECK = """(
    obj["bump"](2), obj["bump"](1, twice=True), obj["peek"](),
    obj["add5"](1),
    [obj["is_letter"](c) for c in "adz"], obj["is_known"]("cyan"), obj["is_known"]("x"),
    obj["scaled"](2),
    obj["Shape"](3).grow(2).size, obj["Shape"].unit().size, obj["Shape"].describe(),
    sorted(obj["Shape"].TAGS), obj["Shape"](1).tagged("matte"), obj["Shape"].limits,
    sorted(obj["Base"].__abstractmethods__), obj["Square"](3).label(),
    isinstance(obj["Square"](1), obj["Base"]),
    (lambda B: (type(B).__name__, B.__name__))(obj["Base"]),
    [(c.name, c.value) for c in obj["Color"]], obj["Color"]("g").shout(),
    obj["Color"].RED is obj["Color"]["RED"],
    obj["point"] == obj["Point"](3, -4), obj["point"].norm1(), obj["point"].tags,
    obj["Point"].__dataclass_params__.frozen,
    [f.name for f in __import__("dataclasses").fields(obj["Point"])],
)"""

EXPECTED = (
    102,
    104,
    104,
    6,
    [True, True, False],
    True,
    False,
    [20, ("alpha", "beta")],
    5,
    1,
    "shape",
    ["flat", "hollow", "matte", "round", "shiny", "solid"],
    True,
    {"lo": 0, "hi": 9},
    ["area", "name"],
    "square:9",
    True,
    ("ABCMeta", "Base"),
    [("RED", "r"), ("GREEN", "g"), ("BLUE", "b")],
    "GREEN!",
    True,
    True,
    7,
    ("p", "q"),
    True,
    ["x", "y", "tags"],
)


def _streams(protocol):
    return {
        seed: run_script(SCRIPT, str(protocol), env={"PYTHONHASHSEED": seed}) for seed in HASH_SEEDS
    }


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_bytes_identical_across_hash_seeds(protocol):
    streams = _streams(protocol)
    first = streams[HASH_SEEDS[0]]
    assert first
    for seed, stream in streams.items():
        assert stream == first, f"PYTHONHASHSEED={seed} differs from {HASH_SEEDS[0]}"


@pytest.mark.parametrize("seed", HASH_SEEDS)
def test_stream_loads_and_works_in_fresh_process(seed):
    stream = run_script(SCRIPT, str(pickle.HIGHEST_PROTOCOL), env={"PYTHONHASHSEED": seed})
    assert child_eval_bytes(stream, CHECK) == EXPECTED


def _spare(arg_1, arg_2):
    return None  # the same constants as `inner` below: the compiler shares one tuple for both


@pytest.mark.skipif(
    sys.implementation.name == "pypy",
    reason="the case under test is CPython's: code objects sharing a constant tuple, which "
    "marshal marks by reference count (PyPy's compiler shares none)",
)
def test_function_bytes_survive_a_trip_through_other_processes():
    # cloudpickle's test_dynamic_func_deterministic_roundtrip and its chained-pickling tests: a
    # function loaded from a stream and dumped again gives the bytes it came from. marshal marks
    # shared constants by reference count, and `inner`'s constant tuple is shared with `_spare`
    # here but not in a process that loaded it from a stream.
    def outer():
        def inner(arg_1, arg_2):
            return None

        return inner

    inner = outer()
    assert inner.__code__.co_consts is _spare.__code__.co_consts  # the case under test
    here = satchel.dumps(inner)
    redump = "__import__('satchel').dumps(obj)"
    there = child_eval(inner, redump)
    assert there == here
    assert child_eval_bytes(there, redump) == here  # and twice removed
