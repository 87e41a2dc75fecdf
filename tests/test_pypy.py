"""What satchel does on PyPy 3.11 that differs from CPython, and PyPy-built portable streams
loading on CPython 3.11 (a fresh process with the stdlib alone). The rest of the suite runs
on PyPy too (`make test-pypy`); these are the PyPy-only cases."""

import abc
import dataclasses
import enum
import gc
import operator
import threading
import weakref

import pytest

import pythons
import satchel
from conftest import PYPY, stdlib_eval

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
