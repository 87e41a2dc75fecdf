"""What satchel does on PyPy 3.11 that differs from CPython, and PyPy-built portable streams
loading on CPython 3.11 (a fresh process with the stdlib alone). The rest of the suite runs
on PyPy too (`make test-pypy`); these are the PyPy-only cases."""

import abc
import dataclasses
import enum
import gc
import operator
import pickle
import subprocess
import sys
import threading
import weakref

import pytest

import pythons
import satchel
from conftest import PYPY, run_script, stdlib_eval

pytestmark = pytest.mark.skipif(not PYPY, reason="PyPy-only behaviour (make test-pypy)")


def test_started_generator_is_refused_with_a_clear_error():
    def countdown(n):
        while n:
            yield n
            n -= 1

    gen = countdown(3)
    next(gen)
    with pytest.raises(satchel.PicklingError) as info:
        satchel.dumps(gen)
    message = str(info.value)
    assert "cannot pickle generator" in message and "countdown" in message
    assert "live generator pickling is not supported on PyPy 3.11" in message
    assert "pickle it before its first next() or after it is finished" in message


def test_not_started_and_finished_generators_pickle():
    def countdown(n):
        while n:
            yield n
            n -= 1

    fresh = satchel.loads(satchel.dumps(countdown(3)))
    assert list(fresh) == [3, 2, 1]
    done = countdown(1)
    list(done)
    assert list(satchel.loads(satchel.dumps(done))) == []


def test_a_lock_is_refused_as_cpython_refuses_it():
    lock = threading.Lock()

    def task():
        return lock

    with pytest.raises(satchel.PicklingError) as info:
        satchel.dumps(task)
    assert str(info.value).endswith("<locals>.task': cannot pickle '_thread.lock' object")
    assert isinstance(info.value.__cause__, TypeError)


def test_a_class_satchel_saw_is_never_freed():
    """Why the memory tests leave classes out on PyPy (conftest.CLASSES_FREED): cpyext never
    collects the cycle through a class's C type object. Should this start failing, PyPy frees
    them, and the memory tests can take classes again."""

    def make():
        class Seen:
            pass

        return Seen

    unseen, seen = make(), make()
    refs = weakref.ref(unseen), weakref.ref(seen)
    satchel.dumps(seen)
    del unseen, seen
    for _ in range(4):
        gc.collect()
    assert refs[0]() is None and refs[1]() is not None


def test_operator_callers_pickle_as_cpython_reduces_them():
    caller = operator.methodcaller("split", ",", maxsplit=1)
    getters = operator.itemgetter(1), operator.itemgetter(0, 2), operator.attrgetter("real")
    out = satchel.loads(satchel.dumps((caller, *getters)))
    assert out[0]("a,b,c") == ["a", "b,c"]
    assert out[1]("xyz") == "y" and out[2]("xyz") == ("x", "z") and out[3](3) == 3


# ---------------------------------------------------------------------------------------------
# Portable streams written here, loaded by CPython 3.11 with the stdlib alone
# ---------------------------------------------------------------------------------------------


def _cpython():
    return pythons.need(pythons.BY_NAME["cpython-3.11.7"])


def _on_cpython(obj, expr):
    return stdlib_eval(satchel.dumps(obj, mode="portable"), expr, _cpython())


def test_portable_closures_with_shared_and_recursive_cells_load_on_cpython():
    def make():
        count = 0

        def bump():
            nonlocal count
            count += 1
            return count

        def read():
            return count

        def fact(n):
            return 1 if n < 2 else n * fact(n - 1)

        return bump, read, fact

    expr = "(obj[0](), obj[0](), obj[1](), obj[2](6))"
    assert _on_cpython(make(), expr) == (1, 2, 2, 720)


def test_portable_dynamic_classes_load_on_cpython():
    class Color(enum.Enum):
        RED = 1
        GREEN = 2

    @dataclasses.dataclass(frozen=True)
    class Point:
        x: int
        y: int = 0

    class Shape(abc.ABC):
        @abc.abstractmethod
        def area(self): ...

    class Square(Shape):
        __slots__ = ("side",)

        def __init__(self, side):
            self.side = side

        def area(self):
            return self.side**2

    objs = (Color.GREEN, Point(1), Square(3), Shape)
    expr = (
        "(obj[0].name, obj[0] is type(obj[0])(2), (obj[1].x, obj[1].y), obj[2].area(), "
        "isinstance(obj[2], obj[3]), sorted(obj[3].__abstractmethods__))"
    )
    assert _on_cpython(objs, expr) == ("GREEN", True, (1, 0), 9, True, ["area"])


def test_portable_operator_callers_and_memoryviews_load_on_cpython():
    objs = (
        operator.methodcaller("split", ",", maxsplit=1),
        operator.itemgetter(0, 2),
        memoryview(b"abcdefgh").cast("B", [2, 4]),
    )
    expr = "(obj[0]('a,b,c'), obj[1]('xyz'), obj[2].shape, obj[2].tolist())"
    assert _on_cpython(objs, expr) == (
        ["a", "b,c"],
        ("x", "z"),
        (2, 4),
        [[97, 98, 99, 100], [101, 102, 103, 104]],
    )


# ---------------------------------------------------------------------------------------------
# A class's __dict__/__weakref__ getset descriptor reaching C code before its class
# ---------------------------------------------------------------------------------------------
# PyPy 8.0's cpyext crashes (SIGSEGV) making the C object of such a descriptor apart from its
# class's C type: in a tuple (converted to C with its items), as a dict value, or read by the
# reducer from a function, cell, class, ... (satchel._pypy). Each case dumps in a child, so a
# crash fails the test instead of killing the suite, and loads in fresh interpreters with
# satchel.loads (what it returns crosses into C too) and with plain pickle.loads.

_DESCRIPTOR_HEAD = """
import collections, functools, itertools, sys, types
import satchel

class P:
    pass

D = P.__dict__[sys.argv[1]]
"""

_DESCRIPTOR_TAIL = """
sys.stdout.buffer.write(satchel.dumps(obj, mode=sys.argv[2]))
"""

_DESCRIPTOR_LOAD = r"""
import pickle, sys
data = sys.stdin.buffer.read()
if sys.argv[1] == "satchel":
    import satchel
    obj = satchel.loads(data)
else:
    obj = pickle.loads(data)
sys.stdout.buffer.write(pickle.dumps(eval(sys.argv[2], {"obj": obj})))
"""

# (case, how `obj` is made from D, an expression giving the loaded descriptor). Each loaded
# descriptor must be its loaded class's own: `P.__dict__[name]`.
DESCRIPTOR_CASES = [
    ("top-level tuple", "obj = (D, P)", "obj[0]"),
    ("nested tuple", "obj = (((D,),), [P])", "obj[0][0][0]"),
    ("dict(P.__dict__)", "obj = dict(P.__dict__)", "obj[NAME]"),
    ("vars(P) items", "obj = tuple(vars(P).items())", "dict(obj)[NAME]"),
    ("tuple holding a dict", "obj = ({'d': D},)", "obj[0]['d']"),
    ("function default", "def f(x=D):\n    return x\nobj = f", "obj()"),
    ("nested default", "def f(x=((D,), 1)):\n    return x\nobj = f", "obj()[0][0]"),
    ("keyword default", "def f(*, x={'d': D}):\n    return x\nobj = f", "obj()['d']"),
    (
        "closure cell",
        "def outer():\n    v = D\n    def f():\n        return v\n    return f\nobj = outer()",
        "obj()",
    ),
    (
        "tuple in a closure cell",
        "def outer():\n    v = (D,)\n    def f():\n        return v\n    return f\nobj = outer()",
        "obj()[0]",
    ),
    (
        "cell",
        "def outer():\n    v = D\n    return lambda: v\nobj = outer().__closure__[0]",
        "obj.cell_contents",
    ),
    ("class attribute", "class Q:\n    x = D\nobj = Q", "vars(obj)['x']"),
    ("tuple class attribute", "class Q:\n    x = (D,)\nobj = Q", "obj.x[0]"),
    (
        "method default in a class body",
        "class Q:\n    def m(self, x=(D,)):\n        return x\nobj = Q",
        "obj().m()[0]",
    ),
    (
        "method closure in a class body",
        "def make():\n    v = D\n    class Q:\n        def m(self):\n            return v\n"
        "    return Q\nobj = make()",
        "obj().m()",
    ),
    (
        "property in a class body",
        "class Q:\n    @property\n    def m(self, x=D):\n        return x\nobj = Q()",
        "obj.m",
    ),
    ("function attribute", "def f():\n    pass\nf.x = (D,)\nobj = f", "obj.x[0]"),
    ("global", "G = (D,)\ndef f():\n    return G\nobj = f", "obj()[0]"),
    ("namedtuple", "T = collections.namedtuple('T', 'd p')\nobj = T(D, P)", "obj.d"),
    ("OrderedDict", "obj = collections.OrderedDict(d=D)", "obj['d']"),
    ("bound method", "def g(self):\n    return self\nobj = types.MethodType(g, D)", "obj()"),
    ("mapping proxy", "obj = types.MappingProxyType({'d': D})", "obj['d']"),
    ("exception", "obj = ValueError((D,))", "obj.args[0][0]"),
    ("itertools.repeat", "obj = itertools.repeat((D,), 1)", "next(obj)[0]"),
    ("module by value", "obj = types.ModuleType('m')\nobj.x = (D,)", "obj.x[0]"),
]


def _dump_descriptor_case(tmp_path, body, name, mode="nonportable"):
    # A file, not -c: portable mode ships the functions' source.
    script = tmp_path / "dump_case.py"
    script.write_text(_DESCRIPTOR_HEAD + body + "\n" + _DESCRIPTOR_TAIL)
    proc = subprocess.run(
        [sys.executable, str(script), name, mode], capture_output=True, check=False, timeout=120
    )
    assert proc.returncode == 0, f"dump failed ({proc.returncode}):\n{proc.stderr.decode()}"
    return proc.stdout


def _load_descriptor_case(payload, how, expr, python=None):
    proc = subprocess.run(
        [python or sys.executable, "-c", _DESCRIPTOR_LOAD, how, expr],
        input=payload,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, f"{how} load failed ({proc.returncode}):\n{proc.stderr.decode()}"
    return pickle.loads(proc.stdout)


@pytest.mark.parametrize("name", ["__dict__", "__weakref__"])
@pytest.mark.parametrize(
    "case, body, where", DESCRIPTOR_CASES, ids=[c[0] for c in DESCRIPTOR_CASES]
)
def test_a_getset_descriptor_ahead_of_its_class_pickles(tmp_path, case, body, where, name):
    payload = _dump_descriptor_case(tmp_path, body, name)
    where = where.replace("NAME", repr(name))
    expr = f"(lambda d: (d.__name__, d.__objclass__.__name__, vars(d.__objclass__)[d.__name__] is d))({where})"
    for how in ("satchel", "pickle"):
        assert _load_descriptor_case(payload, how, expr) == (name, "P", True), how


def test_portable_getset_descriptors_ahead_of_their_class_load_on_cpython(tmp_path):
    body = "def f(x=(D, P)):\n    return x\nobj = (f, (D,), dict(P.__dict__))"
    payload = _dump_descriptor_case(tmp_path, body, "__weakref__", mode="portable")
    expr = (
        "(obj[0]()[0] is vars(obj[0]()[1])['__weakref__'], obj[1][0].__name__,"
        " obj[2]['__weakref__'].__objclass__.__name__)"
    )
    assert stdlib_eval(payload, expr, _cpython()) == (True, "__weakref__", "P")


def test_multiprocessing_and_sessions_take_getset_descriptors_ahead_of_their_class(tmp_path):
    source = """
    import sys, pickle
    import satchel, satchel.multiprocessing
    from multiprocessing.reduction import ForkingPickler

    class P:
        pass

    D = P.__dict__["__dict__"]
    satchel.multiprocessing.install()
    data = bytes(ForkingPickler.dumps((D, P)))
    satchel.dump_session(sys.argv[1])
    sys.stdout.buffer.write(data)
    """
    path = str(tmp_path / "session.satchel")
    payload = run_script(source, path)
    expr = "(obj[0].__name__, obj[0].__objclass__ is obj[1])"
    assert _load_descriptor_case(payload, "satchel", expr) == ("__dict__", True)
    restored = run_script(
        """
        import sys, satchel
        satchel.load_session(sys.argv[1])
        print(D.__objclass__ is P, D.__name__)
        """,
        path,
    )
    assert restored.split() == [b"True", b"__dict__"]


# PyPy 8.0's unpickler makes strs of a damaged stream's raw bytes without checking them (the
# message of LONG's int() error, a GLOBAL's name): Python code can carry such a str, but cpyext
# could not hand the exception to satchel's Rust side (a fatal error in PyErr_Fetch, or heap
# corruption for a longer one). Found by `make fuzz-pypy`. PyPy's own unpickler loads only a
# stream whose signature was verified (signed here by hand: a key holder's damaged stream), and
# its error is repaired (satchel._pypy.clean_error); an unsigned one goes to the pure-Python
# unpickler, whose messages are valid text. Each load runs in a fresh process.
MALFORMED_TEXT = [
    (b"L\xff\n", "ValueError", "ValueError", "invalid literal for int()"),
    (b"\x80\x05L1\xff\n.", "ValueError", "ValueError", "invalid literal for int()"),
    (b"c_codecs\nmc\xff\n.", "AttributeError", "UnicodeDecodeError", ""),
]


@pytest.mark.parametrize(("data", "signed_kind", "unsigned_kind", "text"), MALFORMED_TEXT)
def test_a_load_error_with_malformed_text_is_raised_not_a_crash(
    data, signed_kind, unsigned_kind, text
):
    source = """
    import hashlib, hmac, sys, satchel
    data = bytes.fromhex(sys.argv[1])
    key = b"k" * 32
    signed = data + b"SATCHEL-SIG1" + hmac.new(key, data, hashlib.sha256).digest()
    for what, how in ((signed, {"key": key}), (data, {})):
        try:
            satchel.loads(what, **how)
        except Exception as exc:
            message = str(exc)
            message.encode("utf-8").decode("utf-8")  # valid text now
            print(type(exc).__name__, exc.__context__ is None, ascii(message))
    """
    signed, unsigned = run_script(source, data.hex()).decode().splitlines()
    name, no_context, message = signed.split(" ", 2)
    assert (name, no_context) == (signed_kind, "True")
    assert text in message and "\\ufffd" in message
    name, no_context, message = unsigned.split(" ", 2)
    assert (name, no_context) == (unsigned_kind, "True")
    assert text in message


# PyPy 8.0's own unpickler (the RPython _pickle) crashes the interpreter (SIGSEGV) on these
# damaged streams: BUILD into a set, a memo slot read before anything was put there (the
# second one returns None where CPython raises). satchel hands a stream without a verified
# signature to it only when a walk of its opcodes finds nothing of the kind
# (src/envelope/pypy_scan.rs), else to the pure-Python unpickler (satchel._pypy.SafeUnpickler).
# Each case loads in a fresh process: without that, the process dies.
PYPY_UNPICKLER_CRASHES = [
    (b"\x8fK\x01b.", "state is not a dictionary"),
    (b"\x8f}K\x01K\x02sb.", "BUILD sets attributes of a set object, which has no __dict__"),
    (b"h\x00\x8c\x01a\x93.", "Memo value not found at index 0"),
    (b"h\x00.", "Memo value not found at index 0"),
    # The pure-Python unpickler's own errors (BUILD sends these to it), as UnpicklingError.
    (b"\x85b.", "the opcode TUPLE1 finds too few items on the stack"),
    (b"b.", "the opcode BUILD finds too few items on the stack"),
    (b"\x8fK", "truncated"),
    (b"\x8fp1", "truncated"),
    # satchel.Unpickler reads the stream's extent first (src/envelope/extent.rs).
    (b"\x00.", ("invalid load key, b'\\x00'", "unknown opcode 0x00 at byte 0")),
]

_LOAD_DAMAGED = """
import io, pickle, sys, satchel
body = bytes.fromhex(sys.argv[1])
# The same damage behind a satchel header (its check passes, the body is unpickled).
header = satchel.dumps(None)
header = header[: satchel.inspect(header)["header_size"]]
class Hooked(satchel.Unpickler):
    def find_class(self, module, name):
        return super().find_class(module, name)
ways = {
    "loads": lambda data: satchel.loads(data),
    "loads(allow=)": lambda data: satchel.loads(data, allow="data"),
    "load": lambda data: satchel.load(io.BytesIO(data)),
    "Unpickler": lambda data: Hooked(io.BytesIO(data)).load(),
}
for how, load in ways.items():
    for data in (body, header + body):
        try:
            load(data)
        except pickle.UnpicklingError as exc:
            print(how, "|", str(exc).replace("\\n", " "))
        else:
            print(how, "| loaded")
"""


@pytest.mark.parametrize(("data", "text"), PYPY_UNPICKLER_CRASHES)
def test_a_damaged_unsigned_stream_is_an_unpickling_error_not_a_crash(data, text):
    lines = run_script(_LOAD_DAMAGED, data.hex()).decode().splitlines()
    assert len(lines) == 8
    for line in lines:
        message = line.partition(" | ")[2]
        assert any(t in message for t in ((text,) if isinstance(text, str) else text)), line


def test_pypy_own_unpickler_still_crashes_on_a_damaged_stream():
    """Why satchel does not hand unsigned streams to PyPy's own unpickler. Should this start
    failing, PyPy fixed it, and satchel could use its (faster) unpickler for every stream."""
    proc = subprocess.run(
        [sys.executable, "-c", "import pickle; pickle.loads(b'\\x8fK\\x01b.')"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode < 0, proc


class _Stateful:
    def __init__(self, x):
        self.x = x


def test_which_unpickler_loads_which_stream(monkeypatch):
    """PyPy's own unpickler loads a stream whose signature was verified (a key holder's, who
    could run any code anyway) and one whose opcodes hold nothing a damaged copy of which
    crashes it (a closure, plain data); the pure-Python one loads the rest (an instance's
    BUILD), whichever way satchel loads it."""
    import io

    from satchel import _pypy

    calls = []
    real = _pypy.SafeUnpickler.load

    def counted(self):
        calls.append(type(self).__name__)
        return real(self)

    monkeypatch.setattr(_pypy.SafeUnpickler, "load", counted)
    key = b"k" * 32
    k = 3

    def add(x):
        return x + k

    inst = _Stateful(5)
    for obj, check in ((add, lambda f: f(1) == 4), (inst, lambda o: o.x == 5)):
        signed = satchel.dumps(obj, key=key)
        assert check(satchel.loads(signed, key=key))
        assert check(satchel.load(io.BytesIO(signed), key=key))
        assert check(satchel.Unpickler(io.BytesIO(signed), key=key).load())
    assert calls == []
    for obj in (add, [1, "a", {"b": (None, 2.5)}]):
        data = satchel.dumps(obj)
        satchel.loads(data)
        satchel.load(io.BytesIO(data))
        satchel.Unpickler(io.BytesIO(data)).load()
    assert satchel.loads(satchel.dumps([1, "a"]), allow="data") == [1, "a"]
    assert calls == []
    data = satchel.dumps(inst)
    assert satchel.loads(data).x == 5
    assert satchel.load(io.BytesIO(data)).x == 5
    assert satchel.Unpickler(io.BytesIO(data)).load().x == 5
    assert satchel.loads(data, allow=[f"{__name__}._Stateful"]).x == 5
    assert calls == ["SafeUnpickler", "SafeUnpickler", "_UnverifiedBody", "_SafeUnpickler"]


def test_a_closure_chain_too_deep_for_pypy_stack_is_refused_saying_so():
    """Under ``sys.setrecursionlimit(10**6)`` PyPy's stack allowance stops growing at three
    quarters of ``ulimit -s``: 100,000 closures made its own check fire inside cpyext (a fatal
    error). satchel refuses first, saying that the stack, not the limit, is what ran out; a
    chain that fits still pickles and loads."""
    out = run_script(
        r"""
        import sys, satchel
        sys.setrecursionlimit(10**6)
        def mk(v):
            return lambda: v
        def chain(n):
            x = 0
            for _ in range(n):
                x = mk(x)
            return x
        try:
            satchel.dumps(chain(100_000))
        except satchel.PicklingError as e:
            print(isinstance(e, RecursionError), str(e))
        f = satchel.loads(satchel.dumps(chain(2_000)))
        for _ in range(2_000):
            f = f()
        print(f)
        """
    ).decode()
    refused, loaded = out.splitlines()
    assert refused.startswith("True cannot pickle function 'mk.<locals>.<lambda>': ")
    assert "nests too deep for PyPy's stack, whatever the recursion limit" in refused
    assert "raise `ulimit -s`" in refused
    assert loaded == "0"
