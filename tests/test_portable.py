"""Portable mode end to end: functions travel as source and are recompiled by the receiver,
classes and dataclasses are rebuilt there, and a standalone portable stream loads with
nothing but the stdlib in every interpreter a receiver may run (CPython 3.9 to 3.15,
Debian's 3.11, PyPy 3.9 and 3.11 if present), each with ``-I -S``.

Objects are defined inside the test functions (or in a script run as ``__main__``), so satchel
pickles them by value; their source is this file (or the script), found through linecache.
Interpreters that are not installed are skipped, with the reason.
"""

import dataclasses
import enum
import functools
import linecache
import os
import pathlib
import pickle
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest

import satchel
from conftest import child_eval_bytes

PYENV = "/root/.pyenv/versions/{}/bin/python3"
SID = pathlib.Path(__file__).resolve().parent.parent / ".interpreters" / "bin"
INTERPRETERS = {
    "cpython-3.9": PYENV.format("3.9.18"),
    "cpython-3.10": PYENV.format("3.10.13"),
    "cpython-3.11": PYENV.format("3.11.7"),
    "cpython-3.12": PYENV.format("3.12.1"),
    "cpython-3.13": PYENV.format("3.13.0"),
    "debian-3.11": "/usr/bin/python3.11",
    # `make interpreters` provisions these (compat-matrix/provision.sh).
    "cpython-3.14": str(SID / "python3.14"),
    "cpython-3.15": str(SID / "python3.15"),
    "pypy3": shutil.which("pypy3") or "pypy3",
    "pypy3.11": str(SID / "pypy3.11"),
}
# The feature tests load in the venv (satchel installed) and in the oldest and the newest
# stdlib-only CPython (other bytecode: only recompiled source can work there).
FEATURE_RECEIVERS = ["venv", "cpython-3.9", "cpython-3.13"]

STDLIB_EVAL = r"""
import importlib.util, pickle, sys
assert importlib.util.find_spec("satchel") is None, "satchel is importable in this child"
obj = pickle.loads(sys.stdin.buffer.read())
result = eval(compile(sys.argv[1], "<expr>", "eval"), {"obj": obj})
sys.stdout.buffer.write(pickle.dumps(result, protocol=2))
"""


def interpreter(name):
    path = INTERPRETERS[name]
    if not (os.path.isabs(path) and os.path.exists(path)):
        pytest.skip(f"{name} ({path}) not installed")
    return path


def eval_in(name, payload, expr):
    """Load ``payload`` with plain pickle.loads in receiver ``name`` and evaluate ``expr``."""
    if name == "venv":
        return child_eval_bytes(payload, expr)
    python = interpreter(name)
    proc = subprocess.run(
        [python, "-I", "-S", "-c", STDLIB_EVAL, expr],
        input=payload,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"{name} failed ({proc.returncode}):\n{proc.stderr.decode()}"
    return pickle.loads(proc.stdout)


def run_script_file(source, *args, env=None, name="script.py"):
    """Like conftest's ``run_script``, from a file: ``python -c`` code has no source lines
    (linecache knows no ``<string>``), and portable mode ships source. The file lives in a
    fixed directory so that the stream (which names it in ``co_filename``) is the same for
    the same script."""
    directory = os.path.join(tempfile.gettempdir(), "satchel-test-portable")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(textwrap.dedent(source))
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, path, *args],
        capture_output=True,
        timeout=120,
        env=full_env,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"script failed ({proc.returncode}):\n{proc.stderr.decode()}")
    return proc.stdout


def portable(obj):
    data = satchel.dumps(obj, mode="portable")
    info = satchel.inspect(data)
    assert info["mode"] == "portable" and info["standalone"]
    return data


@pytest.fixture(params=FEATURE_RECEIVERS)
def receiver(request):
    if request.param != "venv":
        interpreter(request.param)
    return request.param


# ---------------------------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------------------------


def test_closure_with_shared_cells(receiver):
    def make_counter(start):
        count = start

        def bump(step=1, *, twice=False):
            nonlocal count
            count += step * (2 if twice else 1)
            return count

        def peek():
            return count

        return bump, peek

    bump, peek = make_counter(10)
    expr = "(obj[0](), obj[0](5, twice=True), obj[1](), obj[0].__kwdefaults__, obj[0].__defaults__)"
    assert eval_in(receiver, portable((bump, peek)), expr) == (11, 21, 21, {"twice": False}, (1,))


def test_two_lambdas_on_one_line(receiver):
    k = 10
    pair = (lambda x: x + k, lambda x: x * k)
    assert eval_in(receiver, portable(pair), "[f(3) for f in obj]") == [13, 30]


def test_decorated_functions(receiver):
    registered = []

    def register(fn):
        registered.append(fn.__name__)
        return fn

    def add_one(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs) + 1

        return wrapper

    @register
    def double(x):
        return 2 * x

    @add_one
    def triple(x):
        """Three times x."""
        return 3 * x

    expr = """(
        obj[0](4), obj[0].__name__, obj[0].__code__.co_firstlineno,
        obj[1](4), obj[1].__name__, obj[1].__doc__, obj[1].__wrapped__(4),
        obj[1].__qualname__.rsplit(".", 1)[-1],
    )"""
    expected = (
        8,
        "double",
        double.__code__.co_firstlineno,
        13,
        "triple",
        "Three times x.",
        12,
        "triple",
    )
    assert eval_in(receiver, portable((double, triple)), expr) == expected


def test_nested_closures(receiver):
    def outer(a):
        def middle(b):
            def inner(c):
                return (a, b, c, a + b + c)

            return inner

        return middle

    assert eval_in(receiver, portable(outer(1)(20)), "obj(300)") == (1, 20, 300, 321)
    assert eval_in(receiver, portable(outer(1)), "obj(2)(3)") == (1, 2, 3, 6)


def test_recursive_and_mutually_recursive(receiver):
    def fact(n):
        return 1 if n <= 1 else n * fact(n - 1)

    def is_even(n):
        return True if n == 0 else is_odd(n - 1)

    def is_odd(n):
        return False if n == 0 else is_even(n - 1)

    expr = "(obj[0](10), obj[1](10), obj[2](7), obj[1](7))"
    expected = (3628800, True, True, False)
    assert eval_in(receiver, portable((fact, is_even, is_odd)), expr) == expected


def test_functools_partial(receiver):
    def power(base, exp, *, scale=1):
        return scale * base**exp

    cube = functools.partial(power, exp=3)
    scaled = functools.partial(power, 2, scale=10)
    expr = "(obj[0](2), obj[1](5), obj[0].keywords, obj[1].args, type(obj[0]).__name__)"
    expected = (8, 320, {"exp": 3}, (2,), "partial")
    assert eval_in(receiver, portable((cube, scaled)), expr) == expected


def test_function_from_an_ipython_like_cell(receiver):
    """A notebook cell: code compiled from a string whose text linecache holds (IPython
    registers each cell there), run in a ``__main__``-like namespace."""
    source = "RATE = 3\n\ndef cell_func(x, n=2):\n    return [x * RATE] * n\n\nsquare = lambda y: y * y\n"
    filename = "<ipython-input-7-0123456789ab>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        namespace = {"__name__": "__main__"}
        exec(compile(source, filename, "exec"), namespace)
        data = portable((namespace["cell_func"], namespace["square"]))
    finally:
        del linecache.cache[filename]
    expr = "(obj[0](5), obj[1](4), obj[0].__code__.co_filename, obj[0].__code__.co_firstlineno)"
    assert eval_in(receiver, data, expr) == ([15, 15], 16, filename, 3)


def test_async_def_function(receiver):
    async def fetch(x, delay=0):
        await __import__("asyncio").sleep(delay)
        return x * 10

    expr = "(__import__('asyncio').run(obj(4)), __import__('inspect').iscoroutinefunction(obj))"
    assert eval_in(receiver, portable(fetch), expr) == (40, True)


def test_generator_function(receiver):
    def squares(n):
        for i in range(n):
            yield i * i

    expr = "(list(obj(5)), __import__('inspect').isgeneratorfunction(obj))"
    assert eval_in(receiver, portable(squares), expr) == ([0, 1, 4, 9, 16], True)


# ---------------------------------------------------------------------------------------------
# Classes
# ---------------------------------------------------------------------------------------------


def test_methods_using_super(receiver):
    class Base:
        def __init__(self, name):
            self.name = name

        def greet(self):
            return "hello " + self.name

        @classmethod
        def make(cls):
            return cls("made")

    class Child(Base):
        def __init__(self, name, extra=""):
            super().__init__(name)
            self.extra = extra

        def greet(self):
            return super().greet() + "!" + self.extra

        @classmethod
        def make(cls):
            made = super().make()
            made.extra = "?"
            return made

    expr = """(
        obj("ada", "x").greet(), obj.make().greet(), [c.__name__ for c in obj.__mro__],
        isinstance(obj("a", "b"), obj.__mro__[1]),
    )"""
    assert eval_in(receiver, portable(Child), expr) == (
        "hello ada!x",
        "hello made!?",
        ["Child", "Base", "object"],
        True,
    )


def test_property_classmethod_staticmethod(receiver):
    class Temperature:
        scale = "C"

        def __init__(self, degrees):
            self._degrees = degrees

        @property
        def degrees(self):
            return self._degrees

        @degrees.setter
        def degrees(self, value):
            self._degrees = max(value, -273)

        @classmethod
        def freezing(cls):
            return cls(0)

        @staticmethod
        def to_f(c):
            return c * 9 / 5 + 32

    def probe(t):
        t.degrees = -500
        return t.degrees

    expr = """(
        obj[0].degrees, obj[1].freezing().degrees, obj[1].to_f(100), obj[2](obj[1](5)),
        type(obj[1].__dict__["to_f"]).__name__, type(obj[1].__dict__["freezing"]).__name__,
        type(obj[1].__dict__["degrees"]).__name__, obj[1].scale,
    )"""
    expected = (21, 0, 212.0, -273, "staticmethod", "classmethod", "property", "C")
    assert eval_in(receiver, portable((Temperature(21), Temperature, probe)), expr) == expected


def test_dataclass(receiver):
    @dataclasses.dataclass(frozen=True, order=True)
    class Point:
        x: int
        y: int = 0
        tags: list = dataclasses.field(default_factory=list, compare=False)

        def norm1(self):
            return abs(self.x) + abs(self.y)

        def mutate(self):
            try:
                self.x = 99
            except dataclasses.FrozenInstanceError:
                return "frozen"
            return "mutable"

    expr = """(
        repr(obj[0]), obj[0].norm1(), obj[0].mutate(),
        obj[1](1, 2) < obj[1](1, 3), sorted([obj[1](2), obj[1](1, 5), obj[1](1)]) ==
        [obj[1](1), obj[1](1, 5), obj[1](2)],
        obj[1](0) == obj[1](0, 0, ["ignored"]), hash(obj[1](3, 4)) == hash(obj[1](3, 4)),
        obj[1](0).tags is not obj[1](0).tags, obj[1](0).tags,
        [f.name for f in __import__("dataclasses").fields(obj[1])],
        obj[1].__dataclass_params__.frozen, obj[1].__dataclass_params__.order,
        obj[0] == obj[1](3, -4, ["a"]), type(obj[0]) is obj[1],
    )"""
    expected = (
        "Point(x=3, y=-4, tags=['a'])",
        7,
        "frozen",
        True,
        True,
        True,
        True,
        True,
        [],
        ["x", "y", "tags"],
        True,
        True,
        True,
        True,
    )
    p = Point(3, -4, ["a"])
    data = portable((p, Point))
    result = eval_in(receiver, data, expr)
    # The repr names the local qualname here; only its tail is the same everywhere.
    assert result[0].endswith(expected[0])
    assert result[1:] == expected[1:]


def test_enum_class_and_functional_api(receiver):
    class Color(enum.Enum):
        RED = "r"
        GREEN = "g"

        def shout(self):
            return self.name + "!"

    Mood = enum.Enum("Mood", "HAPPY SAD")
    Level = enum.IntEnum("Level", [("LOW", 1), ("HIGH", 10)])

    expr = """(
        [(m.name, m.value) for m in obj[0]], obj[0]("g").shout(), obj[1] is obj[0].GREEN,
        obj[0]["RED"] is obj[0].RED, [(m.name, m.value) for m in obj[2]], obj[3] is obj[2].SAD,
        obj[4].HIGH > 5, obj[4](10).name, isinstance(obj[1], obj[0]),
    )"""
    expected = (
        [("RED", "r"), ("GREEN", "g")],
        "GREEN!",
        True,
        True,
        [("HAPPY", 1), ("SAD", 2)],
        True,
        True,
        "HIGH",
        True,
    )
    data = portable((Color, Color.GREEN, Mood, Mood.SAD, Level))
    assert eval_in(receiver, data, expr) == expected


# ---------------------------------------------------------------------------------------------
# Generators (function + arguments, both modes)
# ---------------------------------------------------------------------------------------------


def _countdown():
    def countdown(n, step=1):
        while n > 0:
            yield n
            n -= step

    return countdown


def test_not_started_generator_portable(receiver):
    gen = _countdown()(7, step=2)
    expr = "(type(obj).__name__, list(obj), list(obj))"
    assert eval_in(receiver, portable(gen), expr) == ("generator", [7, 5, 3, 1], [])


def test_not_started_generator_nonportable():
    gen = _countdown()(7, step=2)
    data = satchel.dumps(gen)
    assert satchel.inspect(data)["mode"] == "nonportable"
    assert child_eval_bytes(data, "(type(obj).__name__, list(obj))") == ("generator", [7, 5, 3, 1])


def test_started_generator_is_refused_in_portable_mode():
    gen = _countdown()(3)
    assert next(gen) == 3
    live = str(satchel._satchel.LIVE_GENERATORS).startswith("cpython-")
    # Without a frame layout (PyPy) no mode pickles it: the message says so, and does not
    # advise mode='nonportable'.
    match = (
        "portable mode: it is suspended at line .*Use mode='nonportable'"
        if live
        else "live generator pickling is not supported on "
    )
    with pytest.raises(satchel.PicklingError, match=match) as info:
        satchel.dumps(gen, mode="portable")
    assert live or "mode='nonportable'" not in str(info.value)
    assert list(gen) == [2, 1]  # untouched by the attempt


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def _no_source_function():
    namespace = {"__name__": "__main__"}
    exec("def no_source(x):\n    return x + 1\n", namespace)
    return namespace["no_source"]


def test_function_without_source():
    func = _no_source_function()
    with pytest.raises(satchel.PicklingError, match="mode='nonportable'") as info:
        satchel.dumps(func, mode="portable")
    assert isinstance(info.value, pickle.PicklingError)
    assert "no_source" in str(info.value)
    # Nonportable mode ships its bytecode instead.
    assert satchel.loads(satchel.dumps(func))(1) == 2


def test_function_without_source_inside_a_container():
    func = _no_source_function()
    with pytest.raises(satchel.PicklingError, match="mode='nonportable'"):
        satchel.dumps({"jobs": [func]}, mode="portable")


def test_code_object_is_refused():
    def f(x):
        return x

    with pytest.raises(satchel.PicklingError):
        satchel.dumps(f.__code__, mode="portable")
    with pytest.raises(satchel.PicklingError):
        satchel.dumps(_no_source_function().__code__, mode="portable")


# ---------------------------------------------------------------------------------------------
# THE ACCEPTANCE: one standalone portable stream, every interpreter present
# ---------------------------------------------------------------------------------------------

ACCEPTANCE_SCRIPT = r"""
import dataclasses
import enum
import functools
import sys

import satchel


def make_counter(start):
    count = start

    def bump(step=1):
        nonlocal count
        count += step
        return count

    def peek():
        return count

    return bump, peek


pair = (lambda x: x + 1, lambda x: x * 2)


class Shape:
    sides = 0

    def __init__(self, size):
        self._size = size

    @property
    def size(self):
        return self._size

    @classmethod
    def unit(cls):
        return cls(1)

    @staticmethod
    def kind():
        return "shape"

    def describe(self):
        return f"{self.kind()}:{self.size}:{self.sides}"


class Square(Shape):
    sides = 4

    def describe(self):
        return "square/" + super().describe()


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


Mood = enum.Enum("Mood", "HAPPY SAD")


def power(base, exp):
    return base**exp


def countdown(n, step=1):
    while n > 0:
        yield n
        n -= step


bump, peek = make_counter(10)
obj = {
    "bump": bump,
    "peek": peek,
    "pair": pair,
    "shape": Shape(3),
    "square": Square(5),
    "point": Point(1, 2, ["t"]),
    "red": Color.RED,
    "sad": Mood.SAD,
    "cube": functools.partial(power, exp=3),
}
if sys.argv[1] == "with-generator":
    obj["gen"] = countdown(7, step=2)
sys.stdout.buffer.write(satchel.dumps(obj, mode="portable"))
"""

ACCEPTANCE_EXPR = """(
    obj["bump"](5), obj["peek"](), [f(3) for f in obj["pair"]],
    obj["shape"].size, obj["shape"].describe(), type(obj["shape"]).unit().size,
    type(obj["shape"]).kind(), obj["square"].describe(), obj["square"].size,
    isinstance(obj["square"], type(obj["shape"])), type(obj["square"]).__module__,
    repr(obj["point"]), obj["point"].norm1(), obj["point"] < type(obj["point"])(1, 3),
    type(obj["point"])(0).tags, hash(obj["point"]) == hash(type(obj["point"])(1, 2)),
    obj["red"].name, obj["red"].value, obj["red"].shout(), type(obj["red"])(2).name,
    obj["sad"].name, obj["sad"].value, [m.name for m in type(obj["sad"])],
    obj["cube"](2), obj["cube"].keywords,
    list(obj["gen"]) if "gen" in obj else None,
)"""

ACCEPTANCE_EXPECTED = (
    15,
    15,
    [4, 6],
    3,
    "shape:3:0",
    1,
    "shape",
    "square/shape:5:4",
    5,
    True,
    "__main__",
    "Point(x=1, y=2, tags=['t'])",
    3,
    True,
    [],
    True,
    "RED",
    1,
    "RED!",
    "GREEN",
    "SAD",
    2,
    ["HAPPY", "SAD"],
    8,
    {"exp": 3},
    [7, 5, 3, 1],
)

ACCEPTANCE_RECEIVERS = ["venv", *INTERPRETERS]


@pytest.fixture(scope="module")
def acceptance_streams():
    """Made once; a failure to dump is kept and re-raised by each test that needs it."""
    streams = {}
    for variant in ("with-generator", "without-generator"):
        try:
            streams[variant] = run_script_file(ACCEPTANCE_SCRIPT, variant, name="acceptance.py")
        except AssertionError as exc:
            streams[variant] = exc
    return streams


def _stream(streams, variant):
    stream = streams[variant]
    if isinstance(stream, Exception):
        raise stream
    info = satchel.inspect(stream)
    assert info["mode"] == "portable" and info["standalone"]
    return stream


@pytest.mark.parametrize("name", ACCEPTANCE_RECEIVERS)
def test_acceptance_standalone_portable_everywhere(acceptance_streams, name):
    stream = _stream(acceptance_streams, "with-generator")
    assert eval_in(name, stream, ACCEPTANCE_EXPR) == ACCEPTANCE_EXPECTED


@pytest.mark.parametrize("name", ACCEPTANCE_RECEIVERS)
def test_acceptance_without_the_generator(acceptance_streams, name):
    """The same stream minus the generator: tells a generator failure from any other."""
    stream = _stream(acceptance_streams, "without-generator")
    assert eval_in(name, stream, ACCEPTANCE_EXPR) == (*ACCEPTANCE_EXPECTED[:-1], None)


def test_acceptance_frozen_dataclass_stays_frozen(acceptance_streams):
    """One receiver of another version is enough: setting a field of the frozen dataclass
    instance raises FrozenInstanceError there."""
    name = "cpython-3.13" if os.path.exists(INTERPRETERS["cpython-3.13"]) else "cpython-3.9"
    stream = _stream(acceptance_streams, "without-generator")
    probe = r"""
import dataclasses, pickle, sys
obj = pickle.loads(sys.stdin.buffer.read())
try:
    obj["point"].x = 5
except dataclasses.FrozenInstanceError:
    print("frozen")
"""
    proc = subprocess.run(
        [interpreter(name), "-I", "-S", "-c", probe],
        input=stream,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().strip() == "frozen"


# ---------------------------------------------------------------------------------------------
# Determinism across PYTHONHASHSEED
# ---------------------------------------------------------------------------------------------

DETERMINISM_SCRIPT = r"""
import abc
import dataclasses
import enum
import sys

import satchel

SCALE = 10


def make_counter(start):
    count = start

    def bump(step=1):
        nonlocal count
        count += step
        return count

    return bump


def is_letter(x):
    return x in {"a", "b", "c", "d", "e", "f"}


def scaled(x):
    return x * SCALE


class Shape:
    TAGS = {"round", "flat", "solid", "hollow", "shiny", "matte"}
    limits = {"lo": 0, "hi": 9}

    def __init__(self, size):
        self._size = size

    @property
    def size(self):
        return self._size

    @classmethod
    def unit(cls):
        return cls(1)

    @staticmethod
    def describe():
        return "shape"


class Base(abc.ABC):
    @abc.abstractmethod
    def area(self): ...


class Square(Base):
    def __init__(self, side):
        self.side = side

    def area(self):
        return self.side * self.side


class Color(enum.Enum):
    RED = "r"
    GREEN = "g"


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int = 0


obj = {
    "bump": make_counter(100),
    "is_letter": is_letter,
    "scaled": scaled,
    "Shape": Shape,
    "square": Square(3),
    "Color": Color,
    "point": Point(3, -4),
    "pair": (lambda x: x + 1, lambda x: x - 1),
}
sys.stdout.buffer.write(satchel.dumps(obj, mode="portable"))
"""

DETERMINISM_EXPR = """(
    obj["bump"](2), [obj["is_letter"](c) for c in "az"], obj["scaled"](2),
    obj["Shape"].unit().size, sorted(obj["Shape"].TAGS), obj["Shape"].describe(),
    obj["square"].area(), [c.value for c in obj["Color"]], obj["point"].x,
    [f(1) for f in obj["pair"]],
)"""

DETERMINISM_EXPECTED = (
    102,
    [True, False],
    20,
    1,
    ["flat", "hollow", "matte", "round", "shiny", "solid"],
    "shape",
    9,
    ["r", "g"],
    3,
    [2, 0],
)


def test_portable_output_deterministic_across_hash_seeds():
    streams = {
        seed: run_script_file(
            DETERMINISM_SCRIPT, env={"PYTHONHASHSEED": seed}, name="determinism.py"
        )
        for seed in ("0", "1", "12345", "random")
    }
    first = streams["0"]
    assert satchel.inspect(first)["mode"] == "portable"
    for seed, stream in streams.items():
        assert stream == first, f"PYTHONHASHSEED={seed} differs from PYTHONHASHSEED=0"
    name = "cpython-3.13" if os.path.exists(INTERPRETERS["cpython-3.13"]) else "venv"
    assert eval_in(name, first, DETERMINISM_EXPR) == DETERMINISM_EXPECTED


def test_portable_output_same_in_process_and_fresh_process():
    """Dumping the same script twice gives the same bytes (no per-process ids leak in)."""
    first = run_script_file(DETERMINISM_SCRIPT, name="determinism.py")
    assert run_script_file(DETERMINISM_SCRIPT, name="determinism.py") == first


@pytest.mark.parametrize("name", ["cpython-3.9", "cpython-3.13"])
def test_portable_lean_stream_needs_satchel(name):
    """``standalone=False`` in portable mode: the stream is small, and a stdlib-only receiver
    cannot load it (it has no bootstrap); where satchel is installed it loads."""
    k = 2
    data = satchel.dumps(lambda x: x * k, mode="portable", standalone=False)
    assert satchel.inspect(data)["header_size"] < 100
    assert child_eval_bytes(data, "obj(21)") == 42
    python = interpreter(name)
    proc = subprocess.run(
        [python, "-I", "-S", "-c", STDLIB_EVAL, "obj(21)"],
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert f"No module named '{satchel._satchel.LEAN_MODULE_NAME}'" in proc.stderr.decode()


def test_sys_version_is_the_receivers():
    """Sanity: the stdlib receivers are the versions they are named after, and one of them at
    least is another version than this one (so portable really crossed)."""
    versions = []
    for name in ("cpython-3.9", "cpython-3.13"):
        path = INTERPRETERS[name]
        if not os.path.exists(path):
            continue
        proc = subprocess.run(
            [path, "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert proc.stdout.decode().strip() == name.split("-")[1]
        versions.append(name.split("-")[1])
    if not versions:
        pytest.skip("neither stdlib receiver (CPython 3.9, 3.13) is installed")
    assert any(v != "{}.{}".format(*sys.version_info[:2]) for v in versions)
