"""Dynamic classes (defined at run time, pickled by value): instances, inheritance,
metaclasses, slots, descriptors, ABCs, enums, dataclasses, named tuples, typing constructs,
and the class tracker (identity across loads, no state overwrite, content-derived ids)."""

import abc
import collections
import dataclasses
import enum
import pickle
import subprocess
import sys
import typing

import pytest

import satchel
from conftest import child_eval, child_eval_bytes, echo, run_script


def test_instance_with_methods_round_trips():
    class Counter:
        start = 10

        def __init__(self, n):
            self.n = n

        def bump(self, k=1):
            self.n += k
            return self.n

        def total(self):
            return self.start + self.n

        def __repr__(self):
            return f"Counter({self.n})"

    c = Counter(3)
    result = child_eval(
        c,
        "(type(obj).__name__, type(obj).__qualname__.endswith('Counter'), obj.n, obj.bump(),"
        " obj.bump(5), obj.total(), repr(obj), isinstance(obj, type(obj)))",
    )
    assert result == ("Counter", True, 3, 4, 9, 19, "Counter(9)", True)

    back = echo(c)
    assert back.bump() == 4 and back.total() == 14


def test_class_object_itself_round_trips():
    class Point:
        def __init__(self, x, y):
            self.x, self.y = x, y

        def norm2(self):
            return self.x * self.x + self.y * self.y

    assert child_eval(Point, "(obj(3, 4).norm2(), obj.__name__, isinstance(obj, type))") == (
        25,
        "Point",
        True,
    )


def test_inheritance_from_dynamic_class():
    class Base:
        kind = "base"

        def hello(self):
            return f"hello from {self.kind}"

        def overridden(self):
            return "base"

    class Child(Base):
        kind = "child"

        def overridden(self):
            return "child+" + super().overridden()

    result = child_eval(
        (Child(), Base()),
        "(obj[0].hello(), obj[0].overridden(), obj[1].overridden(),"
        " issubclass(type(obj[0]), type(obj[1])), type(obj[0]).__mro__[1] is type(obj[1]))",
    )
    assert result == ("hello from child", "child+base", "base", True, True)


def test_inheritance_from_builtins():
    class D(dict):
        def total(self):
            return sum(self.values())

    class L(list):
        def second(self):
            return self[1]

    class I(int):
        def double(self):
            return int(self) * 2

    d = D(a=1, b=2)
    d.extra = "attr"
    lst = L([5, 6, 7])
    i = I(21)
    result = child_eval(
        (d, lst, i),
        "(obj[0].total(), dict(obj[0]), obj[0].extra, isinstance(obj[0], dict),"
        " obj[1].second(), list(obj[1]), isinstance(obj[1], list),"
        " obj[2].double(), obj[2] + 1, isinstance(obj[2], int), type(obj[2]).__name__)",
    )
    assert result == (3, {"a": 1, "b": 2}, "attr", True, 6, [5, 6, 7], True, 42, 22, True, "I")


def test_custom_metaclass():
    class Meta(type):
        def __new__(mcs, name, bases, ns, **kw):
            ns.setdefault("tag", name.lower())
            return super().__new__(mcs, name, bases, ns)

        def describe(cls):
            return f"<{cls.tag}>"

    class Thing(metaclass=Meta):
        def method(self):
            return type(self).describe()

    result = child_eval(
        (Thing, Thing()),
        "(type(obj[0]).__name__, obj[0].describe(), obj[1].method(), obj[0].tag,"
        " type(obj[1]) is obj[0], isinstance(obj[0], type(obj[0])))",
    )
    assert result == ("Meta", "<thing>", "<thing>", "thing", True, True)


def test_slots_string_and_tuple_forms():
    class One:
        __slots__ = "value"  # noqa: PLC0205

        def __init__(self, v):
            self.value = v

        def get(self):
            return self.value

    class Two:
        __slots__ = ("x", "y")

        def __init__(self, x, y):
            self.x = x
            self.y = y

        def s(self):
            return self.x + self.y

    class Partial:
        __slots__ = ("a", "b")

    p = Partial()
    p.a = "only a"

    result = child_eval(
        (One(5), Two(1, 2), p),
        "(obj[0].get(), obj[0].value, obj[1].s(), (obj[1].x, obj[1].y),"
        " hasattr(obj[0], '__dict__'), hasattr(obj[1], '__dict__'),"
        " type(obj[0]).__slots__, type(obj[1]).__slots__,"
        " obj[2].a, hasattr(obj[2], 'b'))",
    )
    assert result == (5, 5, 3, (1, 2), False, False, "value", ("x", "y"), "only a", False)


def test_property_classmethod_staticmethod():
    class Temp:
        scale = "C"

        def __init__(self, c):
            self._c = c

        @property
        def fahrenheit(self):
            return self._c * 9 / 5 + 32

        @fahrenheit.setter
        def fahrenheit(self, f):
            self._c = (f - 32) * 5 / 9

        @classmethod
        def boiling(cls):
            return cls(100)

        @staticmethod
        def freezing_point():
            return 0

    t = Temp(0)
    result = child_eval(
        t,
        "(obj.fahrenheit, setattr(obj, 'fahrenheit', 212), obj._c, type(obj).boiling()._c,"
        " type(obj).boiling().fahrenheit, type(obj).freezing_point(), obj.freezing_point(),"
        " type(type(obj).__dict__['boiling']).__name__,"
        " type(type(obj).__dict__['freezing_point']).__name__,"
        " type(type(obj).__dict__['fahrenheit']).__name__)",
    )
    assert result == (
        32.0,
        None,
        100.0,
        100,
        212.0,
        0,
        0,
        "classmethod",
        "staticmethod",
        "property",
    )


def test_init_subclass_of_dynamic_base():
    class Plugin:
        registry: typing.ClassVar[dict] = {}

        def __init_subclass__(cls, name=None, **kw):
            super().__init_subclass__(**kw)
            cls.plugin_name = name or cls.__name__.lower()
            Plugin.registry[cls.plugin_name] = cls.__name__

    class Alpha(Plugin, name="a"):
        def run(self):
            return self.plugin_name

    # The subclass keeps the value its hook computed at definition time; the base ships with
    # its hook, so defining a new subclass in the child triggers it there.
    result = child_eval(
        (Plugin, Alpha, Alpha()),
        "(obj[1].plugin_name, obj[2].run(), obj[0].registry.get('a'), obj[1].__mro__[1] is obj[0],"
        " type('Beta', (obj[0],), {}).plugin_name, obj[0].registry.get('beta'),"
        " type('Gamma', (obj[0],), {}, name='g').plugin_name, obj[0].registry.get('g'))",
    )
    assert result == ("a", "a", "Alpha", True, "beta", "Beta", "g", "Gamma")


def test_abc_abstractmethod_and_register():
    class Shape(abc.ABC):
        @abc.abstractmethod
        def area(self): ...

        def describe(self):
            return f"area={self.area()}"

    class Square(Shape):
        def __init__(self, s):
            self.s = s

        def area(self):
            return self.s**2

    class Virtual:
        pass

    Shape.register(Virtual)
    assert isinstance(Virtual(), Shape)

    result = child_eval(
        (Shape, Square(3), Virtual()),
        "(obj[1].describe(), isinstance(obj[1], obj[0]), isinstance(obj[2], obj[0]),"
        " issubclass(type(obj[2]), obj[0]), sorted(obj[0].__abstractmethods__),"
        " __import__('inspect').isabstract(obj[0]))",
    )
    assert result == ("area=9", True, True, True, ["area"], True)


def test_abc_instantiation_refused_in_child():
    class Base(abc.ABC):
        @abc.abstractmethod
        def run(self): ...

    source = f"""
        import pickle
        Base = pickle.loads({satchel.dumps(Base)!r})
        try:
            Base()
        except TypeError as e:
            print("TypeError", "abstract" in str(e))
        else:
            print("instantiated")
    """
    assert run_script(source).split() == [b"TypeError", b"True"]


def test_enum_class_syntax_members_identity():
    class Color(enum.Enum):
        RED = 1
        GREEN = 2
        BLUE = "b"

        def label(self):
            return self.name.lower()

    result = child_eval(
        (Color.RED, Color.RED, Color, Color.BLUE),
        "(obj[0] is obj[1], type(obj[0]) is obj[2], obj[2](1) is obj[0], obj[2]['BLUE'] is obj[3],"
        " obj[0].label(), [m.name for m in obj[2]], obj[3].value, obj[0].value,"
        " isinstance(obj[0], __import__('enum').Enum))",
    )
    assert result == (True, True, True, True, "red", ["RED", "GREEN", "BLUE"], "b", 1, True)


def test_enum_members_identity_across_streams_in_one_child():
    class Mood(enum.Enum):
        HAPPY = 1
        SAD = 2

    a = satchel.dumps(Mood.HAPPY)
    b = satchel.dumps(Mood.HAPPY)
    c = satchel.dumps(Mood)
    result = child_eval(
        (a, b, c),
        "(lambda L: (L(obj[0]) is L(obj[1]), type(L(obj[0])) is L(obj[2])))"
        "(__import__('pickle').loads)",
    )
    assert result == (True, True)


def test_enum_functional_api():
    Color = enum.Enum("Color", "RED GREEN")
    Animal = enum.Enum("Animal", [("CAT", 10), ("DOG", 20)])
    result = child_eval(
        (Color.RED, Color.RED, Color, Animal.DOG, Animal),
        "(obj[0] is obj[1], type(obj[0]) is obj[2], [m.name for m in obj[2]],"
        " [m.value for m in obj[2]], obj[3].value, type(obj[3]) is obj[4], obj[4](10).name)",
    )
    assert result == (True, True, ["RED", "GREEN"], [1, 2], 20, True, "CAT")


def test_int_enum_and_flag():
    class Level(enum.IntEnum):
        LOW = 1
        HIGH = 5

    class Perm(enum.Flag):
        R = 4
        W = 2
        X = 1

    rw = Perm.R | Perm.W
    result = child_eval(
        (Level.HIGH, Level, Perm.R, rw, Perm),
        "(obj[0] == 5, obj[0] + 1, type(obj[0]) is obj[1], obj[1](1).name, isinstance(obj[0], int),"
        " type(obj[2]) is obj[4], obj[2] is obj[4].R, obj[3] == (obj[4].R | obj[4].W),"
        " obj[3].value, bool(obj[4].W in obj[3]), bool(obj[4].X in obj[3]), type(obj[3]) is obj[4])",
    )
    assert result == (True, 6, True, "LOW", True, True, True, True, 6, True, False, True)


def test_enum_in_process_identity():
    class E(enum.Enum):
        A = 1

    assert satchel.loads(satchel.dumps(E.A)) is E.A
    assert satchel.loads(satchel.dumps(E)) is E


def test_dataclass_fields_asdict_replace_default_factory():
    @dataclasses.dataclass
    class Item:
        name: str
        qty: int = 1
        tags: list = dataclasses.field(default_factory=list)

        def label(self):
            return f"{self.name}x{self.qty}"

    it = Item("apple", 3, ["fruit"])
    result = child_eval(
        (it, Item),
        "(lambda dc: ([f.name for f in dc.fields(obj[0])], dc.asdict(obj[0]),"
        " dc.asdict(dc.replace(obj[0], qty=9)), obj[0].label(), dc.is_dataclass(obj[0]),"
        " dc.asdict(obj[1]('pear')), obj[1]('x').tags is not obj[1]('y').tags,"
        " obj[0] == obj[1]('apple', 3, ['fruit']), repr(obj[1]('z')).endswith(\"Item(name='z', qty=1, tags=[])\"),"
        " [f.name for f in dc.fields(obj[1])]))(__import__('dataclasses'))",
    )
    assert result == (
        ["name", "qty", "tags"],
        {"name": "apple", "qty": 3, "tags": ["fruit"]},
        {"name": "apple", "qty": 9, "tags": ["fruit"]},
        "applex3",
        True,
        {"name": "pear", "qty": 1, "tags": []},
        True,
        True,
        True,
        ["name", "qty", "tags"],
    )


def test_dataclass_frozen():
    @dataclasses.dataclass(frozen=True)
    class P:
        x: int
        y: int = 0

    source = f"""
        import dataclasses, pickle
        P, p = pickle.loads({satchel.dumps((P, P(1, 2)))!r})
        try:
            p.x = 5
        except dataclasses.FrozenInstanceError:
            print("frozen")
        print(hash(p) == hash(P(1, 2)), p == P(1, 2), dataclasses.replace(p, y=7).y,
              [f.name for f in dataclasses.fields(p)], p.x)
    """
    assert run_script(source).decode().split() == [
        "frozen",
        "True",
        "True",
        "7",
        "['x',",
        "'y']",
        "1",
    ]


def test_dataclass_classvar_initvar_kw_only():
    @dataclasses.dataclass
    class C:
        counter: typing.ClassVar[int] = 0
        a: int
        scale: dataclasses.InitVar[int] = 1
        _: dataclasses.KW_ONLY
        b: int = 2

        def __post_init__(self, scale):
            self.a *= scale

    result = child_eval(
        C,
        "(lambda dc: ([f.name for f in dc.fields(obj)], dc.asdict(obj(3, 2, b=5)), obj.counter,"
        " dc.asdict(obj(4))))(__import__('dataclasses'))",
    )
    assert result == (["a", "b"], {"a": 6, "b": 5}, 0, {"a": 4, "b": 2})


def test_typing_namedtuple_and_collections_namedtuple():
    class Pt(typing.NamedTuple):
        x: int
        y: int = 0

        def dist2(self):
            return self.x**2 + self.y**2

    Pair = collections.namedtuple("Pair", ["left", "right"], defaults=[None])
    result = child_eval(
        (Pt(3, 4), Pair(1), Pt, Pair),
        "(obj[0].dist2(), obj[0].x, obj[0]._asdict(), tuple(obj[0]), obj[2]._fields,"
        " obj[2](1).y, type(obj[0]) is obj[2], obj[1].left, obj[1].right, tuple(obj[1]._replace(right=2)),"
        " obj[3]._fields, type(obj[1]) is obj[3], isinstance(obj[1], tuple))",
    )
    assert result == (
        25,
        3,
        {"x": 3, "y": 4},
        (3, 4),
        ("x", "y"),
        0,
        True,
        1,
        None,
        (1, 2),
        ("left", "right"),
        True,
        True,
    )


def test_typeddict():
    class Movie(typing.TypedDict):
        title: str
        year: int

    class Partial(typing.TypedDict, total=False):
        note: str

    result = child_eval(
        (Movie, Partial, Movie(title="x", year=1)),
        "(obj[0].__name__, sorted(obj[0].__annotations__), sorted(obj[0].__required_keys__),"
        " obj[0](title='t', year=2), obj[1].__total__, sorted(obj[1].__optional_keys__),"
        " obj[2], type(obj[2]) is dict)",
    )
    assert result == (
        "Movie",
        ["title", "year"],
        ["title", "year"],
        {"title": "t", "year": 2},
        False,
        ["note"],
        {"title": "x", "year": 1},
        True,
    )


def test_typevar_paramspec_newtype():
    T = typing.TypeVar("T")
    N = typing.TypeVar("N", int, float)
    B_co = typing.TypeVar("B_co", bound=str, covariant=True)
    P = typing.ParamSpec("P")
    UserId = typing.NewType("UserId", int)

    def deco(f: typing.Callable[P, T]) -> typing.Callable[P, T]:
        return f

    result = child_eval(
        (T, N, B_co, P, UserId, deco, T),
        "(type(obj[0]).__name__, obj[0].__name__, obj[1].__constraints__, obj[2].__bound__,"
        " obj[2].__covariant__, type(obj[3]).__name__, obj[3].__name__, obj[4](5), obj[4].__name__,"
        " obj[4].__supertype__ is int, obj[5](len)('ab'), obj[6] is obj[0],"
        " obj[5].__annotations__['return'].__args__[-1] is obj[0])",
    )
    assert result == (
        "TypeVar",
        "T",
        (int, float),
        str,
        True,
        "ParamSpec",
        "P",
        5,
        "UserId",
        True,
        2,
        True,
        True,
    )


def test_typevar_identity_across_streams_in_one_child():
    T = typing.TypeVar("T")
    a, b = satchel.dumps(T), satchel.dumps(T)
    result = child_eval(
        (a, b),
        "(lambda L: L(obj[0]) is L(obj[1]))(__import__('pickle').loads)",
    )
    assert result is True


def test_generic_class_with_local_typevar():
    T = typing.TypeVar("T")

    class Box(typing.Generic[T]):
        def __init__(self, item: T):
            self.item = item

        def get(self) -> T:
            return self.item

    result = child_eval(
        (T, Box, Box[int], Box("x")),
        "(obj[1].__parameters__[0] is obj[0], obj[2].__origin__ is obj[1],"
        " obj[2].__args__ == (int,), obj[3].get(), obj[1][str](3).get(),"
        " type(obj[3]) is obj[1], obj[1].__orig_bases__[0].__args__[0] is obj[0])",
    )
    assert result == (True, True, True, "x", 3, True, True)


def test_class_identity_two_streams_one_child():
    class Widget:
        def ping(self):
            return "pong"

    a = satchel.dumps(Widget())
    b = satchel.dumps(Widget())
    c = satchel.dumps(Widget)
    result = child_eval(
        (a, b, c),
        "(lambda L: (lambda x, y, z: (type(x) is type(y), type(x) is z, x.ping(), y is not x))"
        "(L(obj[0]), L(obj[1]), L(obj[2])))(__import__('pickle').loads)",
    )
    assert result == (True, True, "pong", True)


def test_class_identity_via_run_script():
    class Gadget:
        value = 1

    a = satchel.dumps(Gadget())
    b = satchel.dumps([Gadget, Gadget()])
    source = f"""
        import pickle
        x = pickle.loads({a!r})
        cls, y = pickle.loads({b!r})
        print(type(x) is type(y), type(x) is cls)
    """
    assert run_script(source).split() == [b"True", b"True"]


def test_in_process_identity():
    class Local:
        pass

    assert satchel.loads(satchel.dumps(Local)) is Local
    inst = Local()
    assert type(satchel.loads(satchel.dumps(inst))) is Local
    assert pickle.loads(satchel.dumps(Local)) is Local


def test_reload_does_not_overwrite_tracked_class_state():
    # cloudpickle issue #439.
    class C:
        attr = "original"

    payload = satchel.dumps(C)
    result = child_eval(
        payload,
        "(lambda L: (lambda c: (setattr(c, 'attr', 'modified'), L(obj) is c, c.attr,"
        " L(obj).attr))(L(obj)))(__import__('pickle').loads)",
    )
    assert result == (None, True, "modified", "modified")

    # In process: the defining process's class keeps its own state too.
    C.attr = "changed here"
    assert satchel.loads(payload) is C
    assert C.attr == "changed here"


def test_reload_does_not_overwrite_via_instance_stream():
    class K:
        attr = 1

        def get(self):
            return self.attr

    payload = satchel.dumps(K())
    source = f"""
        import pickle
        a = pickle.loads({payload!r})
        type(a).attr = 42
        b = pickle.loads({payload!r})
        print(type(a) is type(b), b.get(), type(b).attr)
    """
    assert run_script(source).split() == [b"True", b"42", b"42"]


_DETERMINISTIC_SCRIPT = r"""
import sys
import satchel

class Config:
    names = frozenset({"alpha", "beta", "gamma", "delta"})
    flags = {"x", "y", "z", "w"}
    level = 3

    def check(self, name):
        return name in {"one", "two", "three", "four"}

    @property
    def doubled(self):
        return self.level * 2

    @classmethod
    def make(cls):
        return cls()

sys.stdout.buffer.write(satchel.dumps(Config))
"""


def test_deterministic_class_bytes_across_processes():
    outputs = [run_script(_DETERMINISTIC_SCRIPT, env={"PYTHONHASHSEED": s}) for s in "123"]
    assert outputs[0] == outputs[1] == outputs[2]
    cls = pickle.loads(outputs[0])
    assert cls().check("two") and cls.make().doubled == 6
    assert cls.names == frozenset({"alpha", "beta", "gamma", "delta"})


_SET_DEFAULT_SCRIPT = r"""
import sys
import satchel

class Filter:
    def accept(self, name, allowed=frozenset({"alpha", "beta", "gamma", "delta"})):
        return name in allowed

sys.stdout.buffer.write(satchel.dumps(Filter))
"""


def test_deterministic_class_bytes_with_frozenset_method_default():
    # A frozenset default is part of the class definition just like a frozenset constant in
    # the code; its iteration order depends on PYTHONHASHSEED.
    outputs = {run_script(_SET_DEFAULT_SCRIPT, env={"PYTHONHASHSEED": s}) for s in "1234"}
    assert len(outputs) == 1
    assert pickle.loads(outputs.pop())().accept("beta")


def test_identical_definitions_alive_together_stay_distinct():
    def make():
        class Twin:
            def who(self):
                return id(type(self))

        return Twin

    first, second = make(), make()
    assert first is not second
    result = child_eval(
        (first, second, first()),
        "(obj[0] is not obj[1], type(obj[2]) is obj[0], obj[0].__name__ == obj[1].__name__)",
    )
    assert result == (True, True, True)

    a, b = satchel.dumps(first), satchel.dumps(second)
    result = child_eval(
        (a, b),
        "(lambda L: L(obj[0]) is not L(obj[1]))(__import__('pickle').loads)",
    )
    assert result is True


_MODEL_SCRIPT = r"""
import sys
import satchel

class Model:
    settings = {SETTINGS}

    def predict(self):
        return {VALUE}

sys.stdout.buffer.write(satchel.dumps(Model))
"""


def test_different_definitions_with_same_name_are_different_classes():
    # Two programs (or a notebook cell run twice) define a class with the same module and
    # qualname but different contents; a receiver that loaded one must not hand back that one
    # for the other. Each variant differs from the base in one thing only.
    def variant(value, settings):
        source = _MODEL_SCRIPT.replace("{VALUE}", value).replace("{SETTINGS}", settings)
        return run_script(source)

    base = variant("1", '{"a": 1}')
    other_constant = variant("2", '{"a": 1}')
    other_settings = variant("1", '{"a": 2}')
    result = child_eval(
        (base, other_constant, other_settings),
        "(lambda L: (lambda b, c, s: (b().predict(), c().predict(), b.settings, s.settings,"
        " b is not c, b is not s))(L(obj[0]), L(obj[1]), L(obj[2])))"
        "(__import__('pickle').loads)",
    )
    assert result == (1, 2, {"a": 1}, {"a": 2}, True, True)


def test_self_referencing_class():
    class Node:
        def __init__(self, nxt=None):
            self.nxt = nxt

        def clone(self, factory=None):
            factory = factory or Node.default_factory
            return factory()

        def kind(self):
            return type(self) is Node

    Node.default_factory = Node
    Node.me = Node

    def method_with_default(self, cls=Node):
        return cls

    Node.with_default = method_with_default

    result = child_eval(
        (Node, Node(Node())),
        "(obj[0].me is obj[0], obj[0].default_factory is obj[0], obj[1].kind(),"
        " type(obj[1].clone()) is obj[0], obj[1].with_default() is obj[0],"
        " type(obj[1].nxt) is obj[0])",
    )
    assert result == (True, True, True, True, True, True)


def test_instance_referencing_its_class_in_dict():
    class Holder:
        pass

    h = Holder()
    h.mapping = {"cls": Holder, "self": h}
    h.own = [h]
    result = child_eval(
        h,
        "(obj.mapping['cls'] is type(obj), obj.mapping['self'] is obj, obj.own[0] is obj)",
    )
    assert result == (True, True, True)


def test_mutually_recursive_classes():
    class A:
        def partner(self):
            return B

    class B:
        def partner(self):
            return A

    A.other = B
    B.other = A
    result = child_eval(
        A,
        "(obj.other.other is obj, obj().partner() is obj.other, obj.other().partner() is obj)",
    )
    assert result == (True, True, True)


def test_class_with_docstring_and_module():
    class Documented:
        """Some docs."""

    result = child_eval(
        Documented,
        "(obj.__doc__, obj.__module__, obj.__name__)",
    )
    # (cloudpickle 3.1.2 does not keep a dynamic class's __qualname__ either.)
    assert result == ("Some docs.", Documented.__module__, "Documented")


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_class_all_protocols(protocol):
    class V:
        def __init__(self, v):
            self.v = v

        def get(self):
            return self.v

    assert child_eval(V(7), "obj.get()", protocol=protocol) == 7


def test_child_eval_bytes_helper_with_class():
    class Q:
        z = 5

    assert child_eval_bytes(satchel.dumps(Q), "obj.z") == 5


# --- class ids: what travels decides identity --------------------------------------------------

_MAKE_SCRIPT = r"""
import sys
import satchel

def make(k):
    class C:
        def f(self):
            return k
    return C

sys.stdout.buffer.write(satchel.dumps(make(int(sys.argv[1]))))
"""


def test_classes_differing_only_in_closure_contents_stay_distinct_on_the_receiver():
    # Same source, different closure value: a receiver that saw the first must not hand it back
    # for the second (the id covers closure contents, globals read and attribute values).
    one = run_script(_MAKE_SCRIPT, "1")
    two = run_script(_MAKE_SCRIPT, "2")
    assert child_eval_bytes(
        pickle.dumps((one, two)),
        "(lambda a, b: (a is b, a().f(), b().f()))"
        "(__import__('pickle').loads(obj[0]), __import__('pickle').loads(obj[1]))",
    ) == (False, 1, 2)


def test_content_id_covers_globals_and_instance_attributes():
    from satchel import _satchel

    def make(limit, label):
        class Settings:
            def __init__(self):
                self.label = label

        class C:
            config = Settings()

            def top(self):
                return min(limit, 3)

        return C

    a, b, c = make(1, "x"), make(1, "y"), make(2, "x")
    ids = {_satchel._content_id(k) for k in (a, b, c)}
    assert None not in ids and len(ids) == 3
    assert _satchel._content_id(make(1, "x")) == _satchel._content_id(a)


def test_class_with_undescribable_attribute_gets_a_random_id():
    import threading

    from satchel import _satchel

    def make():
        class Guarded:
            lock_type = threading.Lock  # a builtin: describable
            data = memoryview(b"abc")  # no __reduce_ex__: not describable

        return Guarded

    assert _satchel._content_id(make()) is None
    # ... and it still pickles (only the memoryview does not; the class id is not the problem)
    first, second = make(), make()
    assert satchel.dumps(first.lock_type) == satchel.dumps(second.lock_type)


def test_subclass_keeps_its_module_and_doc():
    def make():
        class A:
            "Doc"

        class B(A):
            "Doc"

        return B

    assert child_eval(make(), "(obj.__module__, obj.__doc__, obj.__qualname__)") == (
        __name__,
        "Doc",
        "test_subclass_keeps_its_module_and_doc.<locals>.make.<locals>.B",
    )


def test_class_with_unhashable_metaclass_round_trips():
    def make():
        class Meta(type):
            def __eq__(cls, other):
                return cls is other

        class C(metaclass=Meta):
            x = 5

        return C

    assert child_eval(make(), "(obj.x, type(obj).__name__)") == (5, "Meta")


def test_reloading_a_known_class_does_not_rerun_init_subclass():
    # Loading a class that is already known must not build a throwaway skeleton whose
    # __init_subclass__ would overwrite a registry entry with an empty class.
    script = r"""
import sys
import satchel

class Base:
    registry = {}
    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        Base.registry[cls.__name__] = cls

class Plugin(Base):
    def run(self):
        return "ran"

sys.stdout.buffer.write(satchel.dumps(Plugin))
"""
    payload = run_script(script)
    got = child_eval_bytes(
        pickle.dumps(payload),
        "(lambda p: (lambda a, b: (a is b, a.registry['Plugin'] is a, a.registry['Plugin']().run()))"
        "(__import__('pickle').loads(p), __import__('pickle').loads(p)))(obj)",
    )
    assert got == (True, True, "ran")


def test_typevar_variance_is_part_of_its_identity():
    def covariant():
        return typing.TypeVar("T", covariant=True)

    def contravariant():
        return typing.TypeVar("T", contravariant=True)

    got = child_eval(
        (covariant(), contravariant()),
        "(obj[0] is obj[1], obj[0].__covariant__, obj[1].__contravariant__)",
    )
    assert got == (False, True, True)


# --- self-referencing class members -------------------------------------------------------------
# Anything in a class dict that refers back to the class is built before the class state is set
# (pickle builds a state before it calls the setter), so none of it may need the finished class:
# a bound method travels as `MethodType(func, self)`, never as `getattr(A, name)` on a skeleton.

_MODES = ["nonportable", "portable"]


def _child_eval_mode(obj, expr, mode):
    return child_eval_bytes(satchel.dumps(obj, mode=mode), expr)


@pytest.mark.parametrize("mode", _MODES)
def test_class_dict_holding_its_own_bound_classmethods(mode):
    import functools

    class Descriptor:
        def __init__(self, owner):
            self.owner = owner

        def __get__(self, obj, objtype=None):
            return self.owner.__name__

    class A:
        prefix = ">"

        @classmethod
        def up(cls, v):
            return cls.prefix + v.upper()

        @staticmethod
        def twice(v):
            return v * 2

        def low(self, v):
            return v.lower()

    A.handlers = {"name": A.up, "twice": A.twice}
    A.chain = [A.up, A.handlers, (A.up,)]
    A.part = functools.partial(A.up, "p")
    A.default = A()
    A.bound_on_instance = A.default.low
    A.desc = Descriptor(A)

    got = _child_eval_mode(
        A,
        "(obj.handlers['name']('a'), obj.handlers['twice']('b'), obj.chain[0]('c'),"
        " obj.chain[1] is obj.handlers, obj.chain[2][0]('d'), obj.part(),"
        " obj.handlers['name'].__self__ is obj, obj.handlers['name'].__func__ is obj.up.__func__,"
        " type(obj.default) is obj, obj.bound_on_instance('E'),"
        " obj.bound_on_instance.__self__ is obj.default, obj.desc, obj().desc)",
        mode,
    )
    assert got == (">A", "bb", ">C", True, ">D", ">P", True, True, True, "e", True, "A", "A")


@pytest.mark.parametrize("mode", _MODES)
def test_enum_dict_holding_its_own_bound_classmethod(mode):
    class Color(enum.Enum):
        RED = 1
        BLUE = 2

        @classmethod
        def parse(cls, text):
            return cls[text.upper()]

    Color._parsers = {"default": Color.parse}
    got = _child_eval_mode(
        Color,
        "(obj._parsers['default']('red') is obj.RED, obj._parsers['default'].__self__ is obj)",
        mode,
    )
    assert got == (True, True)


_PYDANTIC_MODEL = r"""
import sys
import satchel
from pydantic import BaseModel, computed_field, field_validator, model_validator


class User(BaseModel):
    name: str
    age: int = 0
    tags: list[str] = []

    @field_validator("name")
    @classmethod
    def strip_name(cls, v):
        return v.strip().title()

    @field_validator("tags", mode="before")
    @classmethod
    def split_tags(cls, v):
        return v.split(",") if isinstance(v, str) else v

    @model_validator(mode="after")
    def check_age(self):
        if self.age < 0:
            raise ValueError("age must not be negative")
        return self

    @computed_field
    @property
    def label(self) -> str:
        return f"{self.name} ({self.age})"


sys.stdout.buffer.write(satchel.dumps((User, User(name=" ada ", age=36)), mode=sys.argv[1]))
"""

_PYDANTIC_CHECK = """(lambda U, u: (
    u.label, type(u) is U, U(name="  grace hopper ", age=85, tags="a,b").model_dump(),
    sorted(U.model_json_schema(mode="serialization")["properties"]),
    U.model_validate_json('{"name": "linus", "tags": "x"}').label,
))(*obj)"""


@pytest.mark.parametrize("mode", _MODES)
def test_pydantic_model_with_validators_loads_in_a_fresh_process(mode, tmp_path):
    pytest.importorskip("pydantic", minversion="2")
    # A script file, not `python -c`: portable mode needs the methods' source.
    script = tmp_path / "model.py"
    script.write_text(_PYDANTIC_MODEL)
    payload = subprocess.run(
        [sys.executable, str(script), mode], capture_output=True, check=True, timeout=120
    ).stdout
    got = child_eval_bytes(payload, _PYDANTIC_CHECK)
    assert got == (
        "Ada (36)",
        True,
        {"name": "Grace Hopper", "age": 85, "tags": ["a", "b"], "label": "Grace Hopper (85)"},
        ["age", "label", "name", "tags"],
        "Linus (0)",
    )
    # The model validator travelled too: a negative age is refused on the receiver.
    refused = run_script(
        f"""
        import pickle
        User, _ = pickle.loads({payload!r})
        try:
            User(name="x", age=-1)
        except Exception as e:
            print(type(e).__name__, "must not be negative" in str(e))
        """
    )
    assert refused.split() == [b"ValidationError", b"True"]


@pytest.mark.skipif(sys.version_info < (3, 13), reason="__firstlineno__ is new in 3.13")
def test_firstlineno_survives_the_round_trip():
    # Setting __module__ drops __firstlineno__ (3.13+), so the state sets __module__ first.
    class Located:
        def method(self):
            return 1

    assert child_eval(Located, "obj.__dict__.get('__firstlineno__')") == Located.__firstlineno__
