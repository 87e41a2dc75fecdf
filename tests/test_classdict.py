"""Annotated classes whose annotations are evaluated on the receiver, in a fresh process.

On 3.14+ (PEP 649/749) a class body with annotations gets an ``__annotate__`` function (kept
as ``__annotate_func__`` in the class dict), and so does each annotated method; the ones that
can see class-level names close over a ``__classdict__`` cell holding the class's own dict.
That cell travels as ``vars(cls)``: on the receiver it is a live view of the rebuilt class's
namespace, so annotations naming class attributes (even ones defined after the annotation)
evaluate there, for plain classes, ABCs (whose ``_abc_impl`` cannot pickle), dataclasses and
pydantic models alike. Older versions evaluate annotations eagerly and have no such cell; the
same annotations are checked there too."""

import subprocess
import sys

import pytest

from conftest import child_eval_bytes

LAZY = sys.version_info >= (3, 14)

# A script (portable mode needs the source). On 3.14+ `Later` is a bare name, looked up when
# the annotations are evaluated (it is defined after them in the class body); before 3.14 it is
# a string annotation, which typing.get_type_hints resolves against the class dict.
_SCRIPT = """
import abc
import dataclasses
import sys
import typing

import satchel


class Plain:
    Inner = str
    x: Inner
    y: LATER

    def method(self, a: Inner) -> LATER:
        return a

    Later = bytes


class Shape(abc.ABC):
    Unit = float
    size: Unit

    @abc.abstractmethod
    def area(self) -> Unit: ...


class Square(Shape):
    side: int = 3

    def area(self) -> float:
        return float(self.side**2)


@dataclasses.dataclass
class Point:
    Coord = int
    x: Coord
    y: Coord = 0


objects = {"Plain": Plain, "Shape": Shape, "Square": Square, "Point": Point}
try:
    import pydantic
except ImportError:
    pass
else:

    class Model(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(ignored_types=(type,))  # Name, Later: not fields
        Name = str
        name: Name
        tags: list[LATER] = []
        Later = int

    objects["Model"] = Model

order = sys.argv[2]
if order == "function-first" and hasattr(Shape, "__annotate__"):
    # The annotate function before its class: its cell is reached before the class is.
    payload = (Shape.__annotate__, objects)
else:
    payload = (None, objects)
sys.stdout.buffer.write(satchel.dumps(payload, mode=sys.argv[1]))
"""

# Evaluated in the receiver: the annotations (a method's string annotations before 3.14 name
# class attributes, which typing resolves only with the class dict as locals), as typing and (3.14+) annotationlib see them, and
# whether each __classdict__ cell is the class's own live namespace.
_CHECK = """(lambda annotate, c: (lambda typing, lib, cells: {
    "hints": {
        "Plain": typing.get_type_hints(c["Plain"]) == {"x": str, "y": bytes},
        "Plain.method": typing.get_type_hints(c["Plain"].method, localns=dict(vars(c["Plain"])))
            == {"a": str, "return": bytes},
        "Shape": typing.get_type_hints(c["Shape"]) == {"size": float},
        "Shape.area": typing.get_type_hints(c["Shape"].area) == {"return": float},
        "Square": typing.get_type_hints(c["Square"]) == {"size": float, "side": int},
        "Point": typing.get_type_hints(c["Point"]) == {"x": int, "y": int},
        "Model": "Model" not in c
            or typing.get_type_hints(c["Model"]) == {"name": str, "tags": list[int]},
    },
    "annotationlib": None if lib is None else {
        name: [
            lib.get_annotations(cls, format=f) == want
            for f in (lib.Format.VALUE, lib.Format.FORWARDREF)
        ] + [lib.get_annotations(cls, format=lib.Format.STRING) in (strings, {
            k: lib.type_repr(v) for k, v in want.items()
        })]
        for name, cls, want, strings in [
            ("Plain", c["Plain"], {"x": str, "y": bytes}, {"x": "Inner", "y": "Later"}),
            ("Shape", c["Shape"], {"size": float}, {"size": "Unit"}),
            ("Point", c["Point"], {"x": int, "y": int}, {"x": "Coord", "y": "Coord"}),
        ] + ([("Model", c["Model"], {"name": str, "tags": list[int]},
               {"name": "Name", "tags": "list[Later]"})] if "Model" in c else [])
    },
    "behaviour": [
        c["Square"]().area(), issubclass(c["Square"], c["Shape"]),
        c["Point"](2).y, "Model" not in c or c["Model"](name="a", tags=[1]).tags == [1],
    ],
    "cells": {name: cells(cls) for name, cls in c.items()},
    "annotate_is_the_class_one": annotate is None or annotate is c["Shape"].__annotate__,
})(
    __import__("typing"),
    __import__("annotationlib") if __import__("sys").version_info >= (3, 14) else None,
    # For each __classdict__ cell of the class's and its methods' annotate functions: does it
    # show an attribute set on the class now (a live view of the class's own namespace)?
    lambda cls: (lambda fns: [
        (setattr(cls, "_probe", name), cell.cell_contents.get("_probe") == name)[1]
        for name, fn in fns if fn is not None and fn.__closure__
        for var, cell in zip(fn.__code__.co_freevars, fn.__closure__)
        if var == "__classdict__"
    ])([("class", vars(cls).get("__annotate_func__") or vars(cls).get("__annotate__"))] + [
        (k, getattr(v, "__annotate__", None)) for k, v in sorted(vars(cls).items())
        if callable(v) and getattr(v, "__code__", None) is not None
    ]),
))(*obj)"""


def _dump(tmp_path, mode, order):
    script = tmp_path / "annotated.py"
    later = "Later" if LAZY else '"Later"'
    script.write_text(_SCRIPT.replace("LATER", later))
    proc = subprocess.run(
        [sys.executable, str(script), mode, order], capture_output=True, check=False, timeout=120
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


@pytest.mark.parametrize("order", ["class-first", "function-first"])
@pytest.mark.parametrize("mode", ["nonportable", "portable"])
def test_annotations_evaluate_on_the_receiver(mode, order, tmp_path):
    if order == "function-first" and not (LAZY and mode == "nonportable"):
        pytest.skip("only 3.14+ classes have an __annotate__ function shipped as bytecode")
    got = child_eval_bytes(_dump(tmp_path, mode, order), _CHECK)
    assert all(got["hints"].values()), got["hints"]
    assert got["behaviour"] == [9.0, True, 0, True]
    assert got["annotate_is_the_class_one"]
    if LAZY:
        assert got["annotationlib"] and all(
            all(checks) for checks in got["annotationlib"].values()
        ), got["annotationlib"]
    else:
        assert got["annotationlib"] is None
    cells = got["cells"]
    if LAZY and mode == "nonportable":
        # Every annotated class's own annotate function closes over __classdict__, and that
        # cell is the rebuilt class's own namespace. (Methods travel with their annotations
        # evaluated, not with an annotate function.)
        assert all(v == [True] for v in cells.values()), cells
    else:
        # No __classdict__ cell travels: eager annotations before 3.14, and portable mode
        # ships annotations as evaluated dicts.
        assert not any(cells.values()), cells
