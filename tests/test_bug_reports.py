"""Objects from real cloudpickle and dill bug reports (the issue is linked above each case),
shipped to a fresh interpreter by cloudpickle 3.1.2 and by satchel (nonportable and portable).

Every case is defined in a script run as ``__main__`` (so its functions and classes are pickled
by value, as in a notebook or a Dask task), dumped there as ``(obj, check)``, and loaded in
another fresh interpreter with plain ``pickle.loads``, where ``check(obj)`` exercises it (calls
the function, instantiates the class, checks isinstance and equality); the repr of what it
returns must equal the repr of what ``check`` returns on the original object in the sender.

Where cloudpickle does not import (PyPy 3.11, cloudpickle#592), its column is not run and
satchel's is held to the same lists (plus ``PYPY_FAILS``, what PyPy cannot do, with the reason):
the reference is then the check's result on the original object, in the sender. Every refusal
must be a PicklingError.

A case belongs here if cloudpickle 3.1.2 handles it (asserted, so the list stays honest);
``CLOUDPICKLE_FAILS`` holds reports still open against cloudpickle, with the reason it fails:
satchel handles some (asserted like the others), and ``SATCHEL_FAILS`` lists the rest with
why, so that a fix shows.

    .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_bug_reports.py
"""

import subprocess
import sys

import fresh_units
import pytest

CASES_SCRIPT = r"""
import abc, collections, contextvars, dataclasses, decimal, enum, functools, logging, operator
import re, types, typing

CASES = {}


def case(url):
    def register(make):
        CASES[make.__name__] = (url, make)
        return make
    return register


# --- typing ---------------------------------------------------------------------------------

@case("https://github.com/cloudpipe/cloudpickle/issues/196")
def generic_alias():
    return typing.Sequence[int], lambda o: (o == typing.Sequence[int], typing.get_args(o) == (int,))


@case("https://github.com/cloudpipe/cloudpickle/issues/200")
def annotated_function():
    def blah() -> typing.List[int]:
        return [5]
    return blah, lambda f: (f(), f.__annotations__["return"] == typing.List[int])


T = typing.TypeVar("T")


class Base(typing.Generic[T]):
    foo = "bar"

    @property
    def prop(self):
        return "bar-property"


class Child(Base):
    pass


@case("https://github.com/cloudpipe/cloudpickle/issues/463")
def generic_subclass_class_attribute():
    return Child(), lambda o: (o.foo, o.prop, isinstance(o, Base), type(o).__name__)


X = typing.TypeVar("X")


class Input(typing.Generic[X]):
    pass


class Lero:
    a: Input[int]


@case("https://github.com/cloudpipe/cloudpickle/issues/347")
def generic_annotation():
    def check(o):
        hint = type(o).__annotations__["a"]
        return typing.get_origin(hint).__name__, typing.get_args(hint)
    return Lero(), check


@case("https://github.com/cloudpipe/cloudpickle/issues/507")
def generic_hierarchy():
    class DerivedInt(Base[int]):
        pass

    class DerivedT(Base[T]):
        pass

    class LeafT(DerivedT[T]):
        pass

    def check(classes):
        d_int, d_t, leaf = classes
        return (
            [c.__name__ for c in leaf.__mro__],
            typing.get_args(d_int.__orig_bases__[0]) == (int,),
            [p.__name__ for p in leaf.__parameters__],
            leaf[str]().foo,
        )
    return (DerivedInt, DerivedT, LeafT), check


@case("https://github.com/cloudpipe/cloudpickle/pull/350")
def dynamic_typevar_and_paramspec():
    N = typing.TypeVar("N", bound=int)
    P = typing.ParamSpec("P")

    def apply(f: typing.Callable[P, N], *args: P.args, **kwargs: P.kwargs) -> N:
        return f(*args, **kwargs)

    def check(f):
        hints = f.__annotations__
        n = hints["return"]
        return (f(operator.add, 2, 3), n.__name__, n.__bound__ is int,
                typing.get_args(hints["f"])[0].__name__)
    return apply, check


@case("https://github.com/cloudpipe/cloudpickle/issues/460")
def typing_namedtuple():
    class Record(typing.NamedTuple):
        value: int
        label: str = "x"

    return Record(10), lambda r: (r.value, r.label, r._fields, r._replace(value=3).value,
                                  isinstance(r, tuple))


@case("https://github.com/cloudpipe/cloudpickle/issues/399")
def typing_context_manager_annotation():
    def use(factory: typing.ContextManager[int]) -> int:
        with factory as value:
            return value

    import contextlib
    return use, lambda f: f(contextlib.nullcontext(7))


@typing.runtime_checkable
class SupportsClose(typing.Protocol):
    def close(self) -> None: ...


class Closer:
    def close(self):
        return None


@case("https://github.com/python/cpython/pull/13585")
def runtime_protocol():
    return (SupportsClose, Closer()), lambda o: (isinstance(o[1], o[0]), isinstance(1, o[0]))


# --- namedtuple, dataclasses ------------------------------------------------------------------

Pair = collections.namedtuple("Pair", ["x", "y"])


@case("https://github.com/cloudpipe/cloudpickle/issues/119")
def function_using_namedtuple():
    def f():
        return Pair(1, 2)
    return f, lambda f: (f(), f()._fields, f().y)


@case("https://github.com/cloudpipe/cloudpickle/issues/386")
def local_dataclass_asdict():
    @dataclasses.dataclass
    class potato:
        drink: int

    return potato, lambda c: (dataclasses.asdict(c(-42)), [f.name for f in dataclasses.fields(c)])


@dataclasses.dataclass
class Range:
    start: int
    end: int


@case("https://github.com/cloudpipe/cloudpickle/issues/424")
def dataclass_instance_fields():
    return Range(1, 2), lambda v: (
        [f.name for f in dataclasses.fields(v)], dataclasses.asdict(v), v == type(v)(1, 2))


@case("https://github.com/uqfoundation/dill/issues/396")
def dataclass_default_factory():
    @dataclasses.dataclass(frozen=True)
    class A:
        a: typing.List[str] = dataclasses.field(default_factory=lambda: ["test"])
        b: int = 3

    return A(), lambda o: (o.a, o.b, type(o)().a, o == type(o)(), type(o)().a is not o.a)


# --- enums ----------------------------------------------------------------------------------

@case("https://github.com/cloudpipe/cloudpickle/issues/244")
def int_enum_class():
    class Color(enum.IntEnum):
        RED = 1
        GREEN = 2

    return Color, lambda c: (c.RED.value, c(2).name, isinstance(c.RED, int), list(c.__members__))


@case("https://github.com/cloudpipe/cloudpickle/pull/246")
def flag_enum_with_methods():
    class Perm(enum.Flag):
        R = 4
        W = 2
        X = 1

        def describe(self):
            return "".join(p.name.lower() for p in type(self) if p in self)

        @classmethod
        def parse(cls, text):
            return functools.reduce(operator.or_, (cls[ch.upper()] for ch in text))

    def check(rw):
        perm = type(rw)
        return (rw.describe(), perm.R in rw, perm.X in rw, perm.parse("rx").value,
                rw is perm.R | perm.W)
    return Perm.R | Perm.W, check


# --- abc, metaclasses, descriptors ------------------------------------------------------------

@case("https://github.com/cloudpipe/cloudpickle/issues/302")
def abcmeta_subclass_after_isinstance():
    class Item(abc.ABC):
        pass

    MyItem = type("MyItem", (Item,), {"id": 1})
    isinstance(dict().values(), MyItem)  # fills the ABC negative cache before pickling
    return MyItem(), lambda o: (isinstance(o, Item), isinstance({}.values(), type(o)), o.id)


@case("https://github.com/cloudpipe/cloudpickle/pull/189")
def abc_registration_and_abstract_methods():
    class Shape(abc.ABC):
        @abc.abstractmethod
        def area(self): ...

    class Square(Shape):
        def area(self):
            return 4

    Shape.register(tuple)

    def check(classes):
        shape, square = classes
        try:
            shape()
            abstract = False
        except TypeError:
            abstract = True
        return abstract, square().area(), issubclass(tuple, shape), isinstance((), shape)
    return (Shape, Square), check


class dec(property):
    def __init__(self, func):
        self.func = func

    def __get__(self, obj, cls):
        if obj is None:
            return self
        return "dec_{}".format(self.func(obj))


class TestClass:
    def __init__(self, x):
        self.x = x

    @dec
    def test_property(self):
        return self.x


@case("https://github.com/cloudpipe/cloudpickle/issues/243")
def property_subclass():
    return TestClass("test"), lambda t: (t.test_property, isinstance(type(t).test_property, property))


@case("https://github.com/cloudpipe/cloudpickle/issues/40")
def classmethod_staticmethod_chain():
    class A:
        scale = 3

        @classmethod
        def test(cls):
            return cls.helper(cls.scale)

        @staticmethod
        def helper(x):
            return x * 2

        @property
        def twice(self):
            return self.test() * 2

    return A(), lambda a: (type(a).test(), a.twice, a.helper(5))


@case("https://github.com/cloudpipe/cloudpickle/issues/527")
def init_subclass_with_argument():
    class Base:
        registry = []

        def __init_subclass__(cls, /, arg, **kwargs):
            super().__init_subclass__(**kwargs)
            cls.arg = arg
            Base.registry.append(arg)

    class Child(Base, arg="hello"):
        pass

    return Child, lambda c: (c.arg, c.__mro__[1].__name__)


@case("https://github.com/cloudpipe/cloudpickle/issues/482")
def metaclass_with_instance_registry():
    class SingletonMeta(type):
        def __call__(cls, *args, **kwargs):
            if "_instance" not in cls.__dict__:
                cls._instance = super().__call__(*args, **kwargs)
            return cls._instance

    class Config(metaclass=SingletonMeta):
        def __init__(self, value=1):
            self.value = value

    return Config, lambda c: (c(5).value, c() is c(), type(c).__name__)


@case("https://github.com/cloudpipe/cloudpickle/pull/600")
def explicit_subclass_override():
    class Parent:
        version = 1

    class Kid(Parent):
        version = 1

    def check(classes):
        parent, kid = classes
        parent.version = 2
        return kid.version, parent.version
    return (Parent, Kid), check


class Matrix:
    def __init__(self, n):
        self.n = n

    def __class_getitem__(cls, item):
        return f"{cls.__name__}[{item.__name__}]"


@case("https://github.com/cloudpipe/cloudpickle/pull/318")
def class_getitem():
    return Matrix(2), lambda m: (type(m)[int], m.n)


# --- functions, closures --------------------------------------------------------------------

@case("https://github.com/cloudpipe/cloudpickle/issues/62")
def self_referencing_nested_function():
    def f():
        def g():
            return g
        return g
    return f(), lambda g: g() is g


@case("https://github.com/uqfoundation/dill/issues/211")
def closure_with_function_attribute():
    def foo():
        def _foo():
            if not hasattr(_foo, "_counter"):
                _foo._counter = 0
            _foo._counter += 1
            return _foo._counter
        return _foo

    f = foo()
    f()
    f()
    return f, lambda f: (f(), f())


@case("https://github.com/uqfoundation/dill/issues/458")
def closure_through_a_dict():
    def f():
        d = {}

        def g():
            return d
        d["g"] = g
        return g
    return f(), lambda g: g()["g"] is g


@case("https://github.com/cloudpipe/cloudpickle/issues/76")
def exec_defined_function():
    namespace = {}
    exec("def f(x):\n    return x * 3\n", namespace)
    return namespace["f"], lambda f: f(4)


@case("https://github.com/uqfoundation/dill/issues/95")
def partial_of_builtin():
    return functools.partial(operator.add, 1), lambda p: (p(2), p.args)


@case("https://github.com/mrocklin/multipledispatch/issues/19")
def decorated_function():
    def identity(f):
        @functools.wraps(f)
        def newf(*args, **kwargs):
            return f(*args, **kwargs)
        return newf

    @identity
    def foo(x):
        return x + 1

    return foo, lambda f: (f(1), f.__name__, f.__wrapped__(10))


@case("https://github.com/cloudpipe/cloudpickle/issues/178")
def lru_cache_wrapped():
    @functools.lru_cache(maxsize=16)
    def square(n):
        return n * n

    square(3)
    return square, lambda f: (f(4), f.cache_info().maxsize, f.__wrapped__(5))


@case("https://github.com/cloudpipe/cloudpickle/issues/438")
def cached_property_class():
    class MyExample:
        def __init__(self, foo):
            self.foo = foo

        @functools.cached_property
        def bar(self):
            return self.foo * 3

    return MyExample(2), lambda o: (o.bar, type(o)(5).bar)


@case("https://github.com/mrocklin/multipledispatch/issues/94")
def singledispatch_function():
    @functools.singledispatch
    def describe(x):
        return "object"

    @describe.register
    def _(x: int):
        return "int"

    @describe.register(list)
    def _(x):
        return "list of " + str(len(x))

    return describe, lambda f: (f(1), f([1, 2]), f("s"))


# --- stdlib objects -------------------------------------------------------------------------

@case("https://github.com/cloudpipe/cloudpickle/issues/94")
def named_logger():
    log = logging.getLogger("satchel.bugreports")
    return log, lambda l: (l.name, l is logging.getLogger("satchel.bugreports"))


@case("https://github.com/cloudpipe/cloudpickle/pull/160")
def root_logger():
    return logging.getLogger(), lambda l: l is logging.getLogger()


@case("https://github.com/cloudpipe/cloudpickle/issues/387")
def function_using_module_contextvar():
    var = contextvars.ContextVar("request_id", default="none")

    def current():
        return var.get()
    return current, lambda f: f()


@case("https://github.com/cloudpipe/cloudpickle/issues/86")
def closure_over_set_regex_decimal():
    s = {1, 2}
    pattern = re.compile(r"(\d+)-(\w+)", re.IGNORECASE)
    ctx = decimal.Context(prec=5, rounding=decimal.ROUND_DOWN)
    ns = types.SimpleNamespace(a=1, b=[2])

    def g(text):
        m = pattern.match(text)
        return len(s), m.groups(), str(ctx.divide(decimal.Decimal(1), decimal.Decimal(3))), ns.b
    return g, lambda g: g("12-Ab")
"""

_SENDER = (
    CASES_SCRIPT
    + r"""

import pickle, sys
import satchel

DUMPERS = {
    "satchel": satchel.dumps,
    "portable": lambda o: satchel.dumps(o, mode="portable"),
}
try:
    import cloudpickle
    DUMPERS["cloudpickle"] = cloudpickle.dumps
except (ImportError, AttributeError):  # PyPy 3.11: cloudpickle#592
    pass


def main(out_path, todo_path):
    todo = pickle.load(open(todo_path, "rb"))
    with open(out_path, "ab") as out:
        if todo is None:
            todo = list(CASES)
            pickle.dump(("units", todo), out)
        for name in todo:
            pickle.dump(("start", name), out)
            out.flush()
            url, make = CASES[name]
            fresh, fresh_check = make()  # checking may change an object: check a twin
            rec = {"url": url, "expected": repr(fresh_check(fresh))}
            obj, check = make()
            for label, dump in DUMPERS.items():
                try:
                    rec[label] = ("ok", dump((obj, check)))
                except Exception as exc:
                    rec[label] = ("err", f"{type(exc).__name__}: {exc}"[:500],
                                  isinstance(exc, pickle.PicklingError))
            pickle.dump(("done", name, rec), out)
            out.flush()


main(*sys.argv[1:3])
"""
)

# The receiver (tests/fresh_units.py) calls the check that travelled with each object.
_JUDGE = r"""
def judge(pair):
    obj, check = pair
    return repr(check(obj))
"""

_PYPY = sys.implementation.name == "pypy"

# Reports still open against cloudpickle 3.1.2 that satchel handles: case -> why cloudpickle
# fails (measured; the test checks that it still does).
CLOUDPICKLE_FAILS = {
    "dynamic_typevar_and_paramspec": "a ParamSpec defined in __main__ is pickled by name",
    "property_subclass": "an instance of a property subclass defined in __main__",
    "init_subclass_with_argument": "the class keyword argument is not passed again",
    "explicit_subclass_override": "the subclass's copy of a base attribute is dropped",
    "lru_cache_wrapped": "an lru_cache wrapper is pickled by name",
    **(
        {"cached_property_class": "cached_property holds an RLock before Python 3.12"}
        if sys.version_info < (3, 12)
        else {}
    ),
    "singledispatch_function": "the dispatch cache is a WeakKeyDictionary",
    "function_using_module_contextvar": "a ContextVar does not pickle",
}

# Reports open against cloudpickle that satchel does not handle either: case -> why. They
# stay here so that a fix shows (the test fails when one passes: move it up).
SATCHEL_FAILS = {
    "property_subclass": (
        "refused with a PicklingError naming the attribute: a property subclass's instance "
        "keeps fget/fset in C fields that no stdlib call can set on a new object"
    ),
    "init_subclass_with_argument": (
        "loads wrong: the class is rebuilt without its class keyword (arg=...), which "
        "__init_subclass__ requires; Python keeps no record of class keywords"
    ),
    # Not on PyPy, where an RLock pickles (as a new, unheld lock: PyPy's RLock keeps
    # object's reduction) and a ContextVar is a Python object (PyPy's _contextvars) that
    # pickles by value as a new variable with the same name and default.
    **(
        {"cached_property_class": "refused: cached_property holds an RLock before Python 3.12"}
        if sys.version_info < (3, 12) and not _PYPY
        else {}
    ),
    **(
        {
            "function_using_module_contextvar": (
                "refused with a PicklingError naming the closure cell: a ContextVar's identity "
                "cannot cross processes"
            )
        }
        if not _PYPY
        else {}
    ),
}

# Cases satchel handles on CPython but not on PyPy: case -> why (what PyPy lacks). Only ever
# remove entries: the test fails when one passes.
PYPY_FAILS = {}

# Portable mode refuses these by design: case -> (why, what its error says).
PORTABLE_REFUSES = {
    "exec_defined_function": (
        "portable mode ships a function's source, and exec'd code has none on disk",
        "its source is not available",
    ),
}

MODES = ("satchel", "portable")


def _cloudpickle_imports():
    """Whether cloudpickle, the reference, imports here (not on PyPy 3.11: cloudpickle#592)."""
    probe = subprocess.run(
        [sys.executable, "-c", "import cloudpickle"], capture_output=True, check=False, timeout=60
    )
    return probe.returncode == 0


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bug-reports")
    (tmp / "send").mkdir()
    # A file, not `python -c`: portable mode ships source, which it reads from there.
    script = tmp / "bug_reports_main.py"
    script.write_text(_SENDER)
    sent, crashed = fresh_units.run_resumable(script, tmp / "send")
    assert not crashed, f"the sender died: {crashed}"
    streams = {
        (name, label): rec[label][1]
        for name, rec in sent.items()
        for label in ("cloudpickle", *MODES)
        if label in rec and rec[label][0] == "ok"
    }
    loaded = fresh_units.load_in_fresh_process(_JUDGE, streams, tmp)
    return sent, loaded


def _names():
    import re

    return re.findall(r"^def (\w+)\(\):", CASES_SCRIPT, re.M)


def _outcome(sent, loaded, name, label):
    rec = sent[name]
    if rec[label][0] != "ok":
        return f"dump failed: {rec[label][1]}"
    got = loaded[(name, label)]
    if got[0] != "ok":
        return f"load or check failed in a fresh process: {got[1]}: {got[2]}"
    if got[1] != rec["expected"]:
        return f"check returned {got[1]!r}, the original gives {rec['expected']!r}"
    return "ok"


@pytest.fixture(scope="module")
def reference():
    """Whether cloudpickle's column runs here."""
    return _cloudpickle_imports()


@pytest.mark.parametrize("name", _names())
def test_bug_report(results, reference, name):
    sent, loaded = results
    assert name in sent, f"{name} was not run"
    if reference:
        cp = _outcome(sent, loaded, name, "cloudpickle")
        if name in CLOUDPICKLE_FAILS:
            assert cp != "ok", f"cloudpickle handles {name} now: move it to the main list"
        else:
            assert cp == "ok", (
                f"cloudpickle 3.1.2 does not handle {name} ({sent[name]['url']}): {cp}"
            )
    # Without cloudpickle (PyPy), satchel's side is held to the same lists: what satchel
    # handles on CPython it must handle here, unless PYPY_FAILS says why not.
    for label in MODES:
        rec = sent[name][label]
        if rec[0] != "ok":
            assert rec[2], (
                f"{name}: {label} refuses it with something else than a PicklingError: {rec[1]}"
            )
    outcomes = {label: _outcome(sent, loaded, name, label) for label in MODES}
    fails = {**SATCHEL_FAILS, **(PYPY_FAILS if _PYPY else {})}
    if name in fails:
        assert all(v != "ok" for v in outcomes.values()), f"{name} passes now: {outcomes}"
        return
    if name in PORTABLE_REFUSES:
        marker = PORTABLE_REFUSES[name][1]
        assert marker in outcomes.pop("portable"), f"{name}: portable mode should refuse it"
    problems = {k: v for k, v in outcomes.items() if v != "ok"}
    assert not problems, f"{name} ({sent[name]['url']}): {problems}"


def test_every_case_ran_and_counts(results, reference, capsys):
    """Every case was dumped in every mode and each stream went through a fresh receiver;
    prints the counts."""
    sent, loaded = results
    names = _names()
    assert sorted(sent) == sorted(names)
    labels = ("cloudpickle", *MODES) if reference else MODES
    parts = []
    for label in labels:
        refused = [n for n in names if sent[n][label][0] != "ok"]
        assert all((n, label) in loaded for n in names if n not in refused)
        ok = sum(1 for n in names if _outcome(sent, loaded, n, label) == "ok")
        parts.append(f"{label}: {ok} ok, {len(refused)} refused")
    fails = len(SATCHEL_FAILS) + (len(PYPY_FAILS) if _PYPY else 0)
    with capsys.disabled():
        print(
            f"\nbug reports on {sys.implementation.name} {sys.version_info[:2]}, {len(names)} "
            f"cases: {'; '.join(parts)}; satchel's listed failures {fails}"
            + ("" if reference else " (no cloudpickle here: cloudpickle#592)")
        )
