"""Portable classes whose stdlib machinery differs between Python versions: enums
(Flag and IntFlag included), namedtuple and typing.NamedTuple classes, dataclasses, and
annotations on 3.14+ (PEP 649). Each travels as what it was made of and is rebuilt by the
receiver's own stdlib (src/reduce/portable_class.rs), so a stream loads on every version.

The feature tests load in the venv (satchel installed) and, with nothing but the stdlib, in
CPython 3.9, 3.13 and PyPy 3.9. The last test is the issue's acceptance: one standalone
portable stream of closures, methods, dataclasses, enums and NamedTuples, written by the
interpreter running the tests, loads in every other interpreter present (3.9 to 3.15, PyPy 3.9
and 3.11). Run on 3.11 it checks 3.11 -> 3.15; run on 3.15 (tools/test_other_pythons.sh) it
checks 3.15 -> 3.9, 3.11, 3.14, PyPy. Missing interpreters are skipped, with the reason.
"""

import collections
import dataclasses
import enum
import json
import subprocess
import sys
import typing

import pytest
from test_portable import INTERPRETERS, eval_in, interpreter, portable, run_script_file

import satchel

RECEIVERS = ["venv", "cpython-3.9", "cpython-3.13", "pypy3"]


@pytest.fixture(params=RECEIVERS)
def receiver(request):
    if request.param != "venv":
        interpreter(request.param)
    return request.param


# ---------------------------------------------------------------------------------------------
# Enums: the members and the class body; the metaclass's bookkeeping is the receiver's
# ---------------------------------------------------------------------------------------------


def test_intflag_flag_and_intenum(receiver):
    # Values out of ascending order: 3.11+ then iterates with `_iter_member_by_def_`, which
    # 3.9's enum does not have (the bug this fixes).
    class Perm(enum.IntFlag):
        R = 4
        W = 2
        X = 1

    class Style(enum.Flag):
        BOLD = enum.auto()
        ITALIC = enum.auto()

        def describe(self):
            return f"style {self.value}"

    class Level(enum.IntEnum):
        LOW = 1
        HIGH = 3

        @classmethod
        def _missing_(cls, value):
            return cls.LOW

    expr = """(
        int(obj[1]), [m.name for m in obj[0]], bool(obj[1] & obj[0].W), obj[0](6) == obj[1],
        isinstance(obj[1], int), int(obj[0].R | obj[0].X), obj[3].describe(),
        (obj[2].BOLD | obj[2].ITALIC).value, obj[2].BOLD in obj[3], obj[4].HIGH + 1,
        obj[4](99) is obj[4].LOW, obj[4].HIGH > obj[4].LOW, type(obj[1]) is obj[0],
    )"""
    data = portable((Perm, Perm.R | Perm.W, Style, Style.BOLD | Style.ITALIC, Level))
    expected = (6, ["R", "W", "X"], True, True, True, 5, "style 3", 3, True, 4, True, True, True)
    assert eval_in(receiver, data, expr) == expected


def test_enum_state_leaves_the_machinery_out():
    """What travels is what the class body defined: no `_member_map_`, `_iter_member_`,
    `Flag.__or__`... (the receiver's enum makes its own)."""

    class Perm(enum.IntFlag):
        R = 4
        W = 2

        def label(self):
            return self.name.lower()

    data = satchel.dumps(Perm, mode="portable", standalone=False)
    for name in (b"_member_map_", b"_iter_member_", b"_flag_mask_", b"_new_member_", b"__or__"):
        assert name not in data, name
    assert b"label" in data


# ---------------------------------------------------------------------------------------------
# namedtuple and typing.NamedTuple: rebuilt by collections.namedtuple
# ---------------------------------------------------------------------------------------------


def test_collections_namedtuple(receiver):
    P = collections.namedtuple("P", "x y z", defaults=[0, 1])

    class Sub(P):
        __slots__ = ()

        def total(self):
            return self.x + self.y + self.z

    expr = """(
        list(obj[1]), obj[0]._fields, obj[0]._field_defaults, list(obj[0](5)),
        list(obj[1]._replace(y=7)), obj[1]._asdict(), obj[0].__module__, obj[2].total(),
        isinstance(obj[2], obj[0]), type(obj[1]) is obj[0], repr(obj[1]),
    )"""
    expected = (
        [1, 2, 3],
        ("x", "y", "z"),
        {"y": 0, "z": 1},
        [5, 0, 1],
        [1, 7, 3],
        {"x": 1, "y": 2, "z": 3},
        __name__,
        6,
        True,
        True,
        "P(x=1, y=2, z=3)",
    )
    assert eval_in(receiver, portable((P, P(1, 2, 3), Sub(1, 2, 3))), expr) == expected


def test_typing_namedtuple(receiver):
    class Pair(typing.NamedTuple):
        """A pair."""

        left: int
        right: str = "r"

        def swap(self):
            return (self.right, self.left)

        def __repr__(self):
            return f"<pair {self.left}>"

    expr = """(
        obj[1].swap(), repr(obj[1]), obj[0].__doc__, list(obj[0].__annotations__),
        obj[0](4).right, obj[0]._fields, list(obj[0](1, "x")), type(obj[1]) is obj[0],
        obj[0].__orig_bases__[0].__name__,
    )"""
    expected = (
        ("b", 3),
        "<pair 3>",
        "A pair.",
        ["left", "right"],
        "r",
        ("left", "right"),
        [1, "x"],
        True,
        "NamedTuple",
    )
    assert eval_in(receiver, portable((Pair, Pair(3, "b"))), expr) == expected


def test_namedtuple_class_identity_in_one_process():
    """The class is tracked by its content id, as other classes: two loads give one class."""
    P = collections.namedtuple("P", "a b")
    data = satchel.dumps((P, P(1, 2)), mode="portable", standalone=False)
    code = r"""
import pickle, sys
data = sys.stdin.buffer.read()
first, second = pickle.loads(data), pickle.loads(data)
print(first[0] is second[0], type(second[1]) is first[0], first[1] == second[1])
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], input=data, capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.split() == [b"True"] * 3


@pytest.mark.skipif(sys.version_info < (3, 11), reason="generic NamedTuple needs 3.11+")
def test_generic_namedtuple_is_refused():
    T = typing.TypeVar("T")

    class Box(typing.NamedTuple, typing.Generic[T]):
        item: T

    with pytest.raises(satchel.PicklingError, match="namedtuple .*Box.* other bases"):
        satchel.dumps(Box, mode="portable")


# ---------------------------------------------------------------------------------------------
# Dataclasses: fields and options as plain data, @dataclass run again by the receiver
# ---------------------------------------------------------------------------------------------


def test_dataclass_fields_options_and_inheritance(receiver):
    @dataclasses.dataclass
    class Base:
        ident: int
        meta: dict = dataclasses.field(
            default_factory=dict, repr=False, hash=False, compare=False, metadata={"k": 1}
        )

    @dataclasses.dataclass(eq=True, unsafe_hash=True)
    class Item(Base):
        scale: dataclasses.InitVar[int] = 1
        label: str = "x"
        limit: typing.ClassVar[int] = 10

        def __post_init__(self, scale):
            self.ident *= scale

    expr = """(
        repr(obj[0](2, scale=3)), [f.name for f in __import__("dataclasses").fields(obj[0])],
        obj[0].limit, hash(obj[0](1)) == hash(obj[0](1)), obj[0](1) == obj[0](1),
        __import__("dataclasses").fields(obj[0])[1].metadata["k"], obj[1].ident,
        obj[0](5).meta, issubclass(obj[0], obj[2]), obj[0].__dataclass_params__.unsafe_hash,
    )"""
    expected = (
        "Item(ident=6, label='x')",
        ["ident", "meta", "label"],
        10,
        True,
        True,
        1,
        8,
        {},
        True,
        True,
    )
    result = eval_in(receiver, portable((Item, Item(4, scale=2), Base)), expr)
    assert result[0].endswith(expected[0])
    assert result[1:] == expected[1:]


def test_dataclass_state_is_version_neutral():
    """No `_DataclassParams` (its slots differ between versions), no `dataclasses._replace`
    (3.13+), no generated method in the stream."""

    @dataclasses.dataclass(order=True)
    class Point:
        x: int
        y: int = 0

    data = satchel.dumps(Point, mode="portable", standalone=False)
    for name in (b"_DataclassParams", b"_replace", b"__dataclass_fields__", b"__init__"):
        assert name not in data, name
    assert b"make_field" in data and b"dataclass_setstate" in data


def test_dataclass_with_slots_is_refused():
    @dataclasses.dataclass(slots=True)
    class Slotted:
        x: int

    with pytest.raises(satchel.PicklingError, match=r"dataclass .*Slotted.*slots=True"):
        satchel.dumps(Slotted, mode="portable")


# ---------------------------------------------------------------------------------------------
# Annotations on 3.14+ (PEP 649): evaluated on the sender; forward references as text
# ---------------------------------------------------------------------------------------------

LAZY_ANNOTATIONS = sys.version_info >= (3, 14)

FORWARD_SCRIPT = r"""
import dataclasses, sys
import satchel


@dataclasses.dataclass
class Node:
    value: int
    child: Node = None  # the class itself: defined by the time the stream is made
    later: Later = None  # never defined: travels as the text "Later"
    items: list[Missing] = None  # so is this one, inside a generic alias


def walk(node: Node, depth: Unknown = 0) -> int:
    return depth if node is None else walk(node.child, depth + 1)


sys.stdout.buffer.write(satchel.dumps((Node, Node(1, Node(2)), walk), mode="portable"))
"""


@pytest.mark.skipif(not LAZY_ANNOTATIONS, reason="annotations are lazy (PEP 649) on 3.14+ only")
@pytest.mark.parametrize("name", ["venv", "cpython-3.9", "cpython-3.13", "pypy3"])
def test_forward_references_travel_as_text(name):
    data = run_script_file(FORWARD_SCRIPT, name="forward_refs.py")
    expr = """(
        [f.name for f in __import__("dataclasses").fields(obj[0])],
        obj[0].__annotations__["later"], obj[0].__annotations__["items"],
        obj[2].__annotations__["depth"],
        obj[0].__annotations__["child"] is obj[0], obj[2](obj[1]),
        obj[2].__annotations__["node"] is obj[0],
    )"""
    expected = (
        ["value", "child", "later", "items"],
        "Later",
        "list[Missing]",
        "Unknown",
        True,
        2,
        True,
    )
    assert eval_in(name, data, expr) == expected


# ---------------------------------------------------------------------------------------------
# The acceptance: this interpreter's standalone portable stream, every receiver
# ---------------------------------------------------------------------------------------------

ACCEPTANCE_SCRIPT = r"""
import collections, dataclasses, enum, json, sys, typing
import satchel


def make_counter(start):
    count = start

    def bump(step=1):
        nonlocal count
        count += step
        return count

    return bump, lambda: count


class Shape:
    def __init__(self, size):
        self.size = size

    def area(self):
        return self.size**2

    @classmethod
    def unit(cls):
        return cls(1)


class Square(Shape):
    def area(self):
        return super().area() + 0


@dataclasses.dataclass(frozen=True, order=True)
class Point:
    x: int
    y: int = 0
    tags: list = dataclasses.field(default_factory=list, compare=False)

    def norm1(self):
        return abs(self.x) + abs(self.y)


class Color(enum.Enum):
    RED = 1
    GREEN = 2

    def shout(self):
        return self.name + "!"


class Perm(enum.IntFlag):
    R = 4
    W = 2
    X = 1


Pt = collections.namedtuple("Pt", "a b", defaults=[0])


class Pair(typing.NamedTuple):
    left: int
    right: str = "r"

    def swap(self):
        return (self.right, self.left)


bump, peek = make_counter(10)
obj = [bump, peek, Square(3), Point(1, -2, ["t"]), Color.GREEN, Perm.R | Perm.W, Pt(1), Pair(2)]
CHECK = '''[
    obj[0](5), obj[1](), obj[2].area(), type(obj[2]).unit().area(), repr(obj[3]),
    obj[3].norm1(), obj[3] < type(obj[3])(2), type(obj[3])(0).tags, obj[4].shout(),
    type(obj[4])(1).name, int(obj[5]), [m.name for m in type(obj[5])], bool(obj[5] & 2),
    list(obj[6]), type(obj[6])._fields, obj[7].swap(), list(type(obj[7]).__annotations__),
]'''
data = satchel.dumps(obj, mode="portable")
expected = eval(CHECK, {"obj": obj})  # noqa: S307 (the test's own expression)
sys.stdout.write(json.dumps({"stream": data.hex(), "check": CHECK, "expected": expected}))
"""

ACCEPTANCE_RECEIVERS = ["venv", *INTERPRETERS]


@pytest.fixture(scope="module")
def acceptance():
    """The stream, the check and the value this interpreter computed for it."""
    made = json.loads(run_script_file(ACCEPTANCE_SCRIPT, name="acceptance_classes.py"))
    return bytes.fromhex(made["stream"]), made["check"], made["expected"]


@pytest.mark.parametrize("name", ACCEPTANCE_RECEIVERS)
def test_standalone_portable_stream_loads_everywhere(acceptance, name):
    data, check, expected = acceptance
    info = satchel.inspect(data)
    assert info["mode"] == "portable" and info["standalone"]
    got = eval_in(name, data, check)
    assert json.loads(json.dumps(got)) == expected
