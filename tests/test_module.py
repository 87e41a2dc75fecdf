"""Modules: importable modules travel by reference, dynamic modules by value (never entering
the receiver's sys.modules); interpreter types reachable only through ``types`` load as the
very same objects."""

import os
import os.path
import sys
import types
import xml.dom.minidom

import satchel
from conftest import child_eval, echo, run_script


def test_module_by_reference_is_the_same_object_in_child():
    result = child_eval(
        (os, sys, types),
        "(lambda sys: (obj[0] is sys.modules['os'], obj[1] is sys, obj[2] is sys.modules['types'],"
        " obj[0].sep))(__import__('sys'))",
    )
    assert result == (True, True, True, os.sep)
    assert satchel.loads(satchel.dumps(os)) is os
    assert echo(os) is os


def test_module_by_reference_is_small():
    # By reference: the stream names the module, it does not carry its namespace.
    assert len(satchel.dumps(os)) < 200


def test_submodules_by_reference():
    result = child_eval(
        (os.path, xml.dom.minidom),
        "(lambda sys: (obj[0] is sys.modules[obj[0].__name__], obj[0].join('a', 'b'),"
        " obj[1] is sys.modules['xml.dom.minidom'], obj[1].parseString('<a/>').documentElement.tagName))"
        "(__import__('sys'))",
    )
    assert result == (True, os.path.join("a", "b"), True, "a")


def test_function_reaching_submodule_by_attribute():
    # The function names only the package ``xml``; the child must still have xml.dom.minidom
    # imported when it runs (cloudpickle ships the submodules the code reaches).
    def parse(text):
        return xml.dom.minidom.parseString(text).documentElement.tagName

    source = f"""
        import pickle, sys
        f = pickle.loads({satchel.dumps(parse)!r})
        print(f("<root/>"), "xml.dom.minidom" in sys.modules)
    """
    assert run_script(source).split() == [b"root", b"True"]


def _make_dynamic_module(name="dyn"):
    mod = types.ModuleType(name, "a dynamic module")
    mod.VALUE = 41
    mod.data = {"k": [1, 2]}
    exec(  # noqa: S102
        "def f(x):\n    return x + VALUE\ndef g():\n    return f(1) * 2\n",
        mod.__dict__,
    )
    return mod


def test_dynamic_module_by_value():
    dyn = _make_dynamic_module()
    assert "dyn" not in sys.modules
    result = child_eval(
        dyn,
        "(lambda sys: (type(obj).__name__, obj.__name__, obj.VALUE, obj.f(1), obj.g(),"
        " obj.data, obj.__doc__, 'dyn' in sys.modules, obj is not sys.modules.get('dyn')))"
        "(__import__('sys'))",
    )
    assert result == ("module", "dyn", 41, 42, 84, {"k": [1, 2]}, "a dynamic module", False, True)


def test_dynamic_module_function_alone():
    dyn = _make_dynamic_module()
    result = child_eval(
        dyn.g,
        "(obj(), obj.__module__, 'dyn' in __import__('sys').modules)",
    )
    assert result == (84, "dyn", False)


def test_dynamic_module_shared_within_one_stream():
    dyn = _make_dynamic_module()
    result = child_eval(
        {"a": dyn, "b": [dyn]},
        "(obj['a'] is obj['b'][0], obj['a'].f(0))",
    )
    assert result == (True, 41)


def test_dynamic_module_named_like_a_real_module_does_not_replace_it():
    # A module object named "json" that is not sys.modules["json"] goes by value, and loading
    # it must leave the receiver's real json module alone.
    fake = types.ModuleType("json")
    fake.marker = "fake"
    source = f"""
        import pickle, sys
        import json
        real = sys.modules["json"]
        m = pickle.loads({satchel.dumps(fake)!r})
        print(m.marker, m is not real, sys.modules["json"] is real, json.dumps([1]))
    """
    assert run_script(source).split() == [b"fake", b"True", b"True", b"[1]"]


def test_dynamic_module_not_registered_after_load_in_same_process():
    dyn = _make_dynamic_module("satchel_test_dyn_mod")
    back = satchel.loads(satchel.dumps(dyn))
    assert back.f(1) == 42
    assert "satchel_test_dyn_mod" not in sys.modules


def test_builtin_types_only_reachable_via_types_module():
    objs = (
        types.FunctionType,
        types.CodeType,
        types.CellType,
        type(len),
        types.MethodType,
        types.ModuleType,
        types.MappingProxyType,
        types.GeneratorType,
        types.SimpleNamespace,
        types.NoneType,
        types.EllipsisType,
        types.NotImplementedType,
    )
    expr = (
        "(lambda t: (obj[0] is t.FunctionType, obj[1] is t.CodeType, obj[2] is t.CellType,"
        " obj[3] is type(len), obj[3] is t.BuiltinFunctionType, obj[4] is t.MethodType,"
        " obj[5] is t.ModuleType, obj[6] is t.MappingProxyType, obj[7] is t.GeneratorType,"
        " obj[8] is t.SimpleNamespace, obj[9] is type(None), obj[10] is type(...),"
        " obj[11] is type(NotImplemented)))(__import__('types'))"
    )
    assert child_eval(objs, expr) == (True,) * 13
    for t in objs:
        assert satchel.loads(satchel.dumps(t)) is t


def test_builtin_types_usable_in_child():
    def sample(a):
        return a + 1

    # Rebuild a function in the child from types.FunctionType and a code object.
    result = child_eval(
        (types.FunctionType, sample.__code__, types.CellType),
        "(obj[0](obj[1], {})(2), obj[2](5).cell_contents)",
    )
    assert result == (3, 5)
