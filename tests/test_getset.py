"""Getset descriptors (``types.GetSetDescriptorType``) load as the receiver's own.

A class's ``__dict__`` and ``__weakref__`` attributes are getset descriptors: one per class up to
CPython 3.14 (``__objclass__`` is the class), one shared by every class from 3.15 on
(``__objclass__`` is ``object``, which has neither attribute). They reach a stream whenever a
class's namespace does: on 3.14+ a class with annotations has an ``__annotate__`` function that
closes over it (``__classdict__``), so every annotated class, dataclass and TypedDict carries
them. ``getattr(cls, '__dict__')`` is the class's mappingproxy, never the descriptor, so the
receiver looks them up as ``vars(cls)[name]``.
"""

import subprocess
import sys
import textwrap

import pytest

import satchel
from conftest import child_eval, child_eval_bytes

MODES = ["nonportable", "portable"]
SHARED = vars(type("probe", (), {}))["__dict__"].__objclass__ is object  # CPython 3.15+


def load_in_child(obj, expr, mode):
    return child_eval_bytes(satchel.dumps(obj, mode=mode), expr)


@pytest.mark.parametrize("mode", MODES)
def test_dynamic_class_descriptors_are_its_own(mode):
    class Plain:
        pass

    class Slotted:
        __slots__ = ("a", "__dict__", "__weakref__")

    class Child(Slotted):
        pass

    objs = [Plain, Slotted, vars(Plain)["__dict__"], vars(Plain)["__weakref__"]]
    objs += [vars(Slotted)["__dict__"], vars(Slotted)["__weakref__"], Child]
    expr = """(
        obj[2] is vars(obj[0])["__dict__"], obj[3] is vars(obj[0])["__weakref__"],
        obj[4] is vars(obj[1])["__dict__"], obj[5] is vars(obj[1])["__weakref__"],
        type(obj[2]).__name__, obj[2].__name__, obj[3].__name__,
        obj[2].__get__(obj[0]()), obj[4].__get__(obj[6]()),
    )"""
    got = load_in_child(objs, expr, mode)
    assert got == (True, True, True, True, "getset_descriptor", "__dict__", "__weakref__", {}, {})


@pytest.mark.parametrize("mode", MODES)
def test_descriptor_works_on_instances_after_loading(mode):
    class Point:
        pass

    descriptor = vars(Point)["__dict__"]
    expr = "(lambda p: (setattr(p, 'x', 1), obj[1].__get__(p))[1])(obj[0]())"
    assert load_in_child((Point, descriptor), expr, mode) == {"x": 1}


def test_stdlib_class_descriptors_load_as_the_receivers():
    """A class pickled by reference: its descriptors are the receiver's (the shared ones on
    3.15+, whose owner is ``object``)."""
    import string

    got = child_eval(
        [vars(string.Formatter)["__dict__"], vars(string.Formatter)["__weakref__"]],
        '(obj[0] is vars(__import__("string").Formatter)["__dict__"],'
        ' obj[1] is vars(__import__("string").Formatter)["__weakref__"])',
    )
    assert got == (True, True)


def test_builtin_getset_descriptors_still_load_by_getattr():
    # A static type's descriptor is what getattr(type, name) gives: the stream stays that.
    descriptors = (int.real, type(lambda: 0).__dict__["__code__"])
    got = child_eval(
        (*descriptors, type.__dict__["__dict__"]),
        "(obj[0] is int.real, obj[1] is type(lambda: 0).__dict__['__code__'],"
        " obj[2] is type.__dict__['__dict__'])",
    )
    assert got == (True, True, True)
    assert b"getitem" not in satchel.dumps(descriptors)


@pytest.mark.skipif(not SHARED, reason="one shared __dict__ descriptor is CPython 3.15+")
def test_shared_descriptor_is_the_receivers_shared_one():
    shared = vars(type("A", (), {}))["__dict__"]
    assert shared.__objclass__ is object and "__dict__" not in vars(object)
    got = child_eval(
        [shared, vars(type("B", (), {}))["__weakref__"]],
        '(obj[0] is vars(type("C", (), {}))["__dict__"],'
        ' obj[1] is vars(type("D", (), {}))["__weakref__"])',
    )
    assert got == (True, True)


ANNOTATED = """
import dataclasses, pickle, sys, typing
import satchel

class Annotated:
    x: int
    y: "list[str]"

    def total(self):
        return len(self.y) + self.x

@dataclasses.dataclass
class Point:
    x: int
    y: int = 2

class Movie(typing.TypedDict):
    title: str
    year: int

sys.stdout.buffer.write(satchel.dumps([Annotated, Point, Movie], mode=sys.argv[1]))
"""

ANNOTATED_CHECK = """(
    typing.get_type_hints(obj[0]) == {"x": int, "y": list[str]},
    repr(obj[1](1)), typing.get_type_hints(obj[1]) == {"x": int, "y": int},
    obj[2](title="t", year=1), sorted(obj[2].__required_keys__),
    typing.get_type_hints(obj[2]) == {"title": str, "year": int},
)"""


@pytest.mark.parametrize("mode", ["nonportable", "portable"])
def test_annotated_class_dataclass_and_typeddict_cross_a_process(tmp_path, mode):
    """The classes that carry their namespace (``__annotate__`` on 3.14+) load and work."""
    script = tmp_path / "annotated.py"  # a file: portable mode ships source
    script.write_text(textwrap.dedent(ANNOTATED))
    proc = subprocess.run(
        [sys.executable, str(script), mode],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    expr = f"(lambda typing: {ANNOTATED_CHECK})(__import__('typing'))"
    got = child_eval_bytes(proc.stdout, expr)
    assert got == (
        True,
        "Point(x=1, y=2)",
        True,
        {"title": "t", "year": 1},
        ["title", "year"],
        True,
    )


def test_same_bytes_across_processes():
    code = """
import sys, satchel
class A:
    x: int
sys.stdout.buffer.write(satchel.dumps([vars(A)["__dict__"], vars(A)["__weakref__"], A]))
"""
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, timeout=60, check=True
        ).stdout
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


@pytest.mark.skipif(SHARED, reason="3.15+ shares the descriptor: deleting it orphans nothing")
@pytest.mark.skipif(
    sys.implementation.name == "pypy", reason="PyPy cannot delete a class's __weakref__"
)
def test_orphaned_descriptor_is_refused():
    class Weak:
        pass

    descriptor = vars(Weak)["__weakref__"]
    del Weak.__weakref__
    with pytest.raises(satchel.PicklingError, match="no longer holds it") as info:
        satchel.dumps(descriptor)
    assert "__weakref__" in str(info.value) and "Weak" in str(info.value)
