"""register_pickle_by_value and friends (the by-value registry of src/reduce/byref.rs): a
registered module's functions and classes travel by value to a receiver that cannot import it;
a registered package covers its submodules; errors for bad arguments."""

import importlib
import pickle
import sys
import textwrap
import types
import uuid

import pytest

import satchel
from conftest import ChildError, child_eval, import_cloudpickle, run_script

MODULE_SOURCE = '''
import os

CONST = 10


def helper(x):
    return x * CONST


def compute(x):
    """Compute."""
    return helper(x) + 1


def where():
    return os.path.basename(__file__), __name__


class Thing:
    def __init__(self, v):
        self.v = v

    def doubled(self):
        return helper(self.v) * 2
'''


@pytest.fixture
def make_module(tmp_path):
    """Write modules/packages under tmp_path, import them; undo everything afterwards."""
    names = []
    sys.path.insert(0, str(tmp_path))

    def make(files, import_name):
        for rel, source in files.items():
            path = tmp_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        module = importlib.import_module(import_name)
        names.append(import_name.split(".")[0])
        return module

    yield make
    sys.path.remove(str(tmp_path))

    def ours(name):
        return any(name == top or name.startswith(top + ".") for top in names)

    for name in satchel.list_registry_pickle_by_value():
        if ours(name):
            satchel.unregister_pickle_by_value(sys.modules[name])
    for name in list(sys.modules):
        if ours(name):
            del sys.modules[name]


def unique(prefix):
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def test_registered_module_travels_by_value(make_module):
    name = unique("satchel_regmod")
    mod = make_module({f"{name}.py": MODULE_SOURCE}, name)

    # Not registered: by reference, the child cannot import it.
    assert satchel.loads(satchel.dumps(mod.compute)) is mod.compute
    with pytest.raises(ChildError, match="ModuleNotFoundError"):
        child_eval(mod.compute, "obj(3)")

    satchel.register_pickle_by_value(mod)
    assert name in satchel.list_registry_pickle_by_value()
    copy = satchel.loads(satchel.dumps(mod.compute))
    assert copy is not mod.compute and copy(3) == 31
    result = child_eval(
        (mod.compute, mod.where, mod.Thing(4)),
        "(obj[0](3), obj[0].__module__, obj[0].__name__, obj[0].__doc__, obj[1](),"
        " obj[2].doubled(), type(obj[2]).__name__, type(obj[2]).__module__,"
        f" {name!r} in __import__('sys').modules)",
    )
    assert result == (
        31,
        name,
        "compute",
        "Compute.",
        (f"{name}.py", name),
        80,
        "Thing",
        name,
        False,
    )


def test_registered_module_object_itself(make_module):
    name = unique("satchel_regmodobj")
    mod = make_module({f"{name}.py": MODULE_SOURCE}, name)
    satchel.register_pickle_by_value(mod)
    result = child_eval(
        mod,
        "(obj.__name__, obj.compute(2), obj.CONST, obj.Thing(1).doubled(),"
        f" {name!r} in __import__('sys').modules)",
    )
    assert result == (name, 21, 10, 20, False)


def test_unregister_goes_back_to_reference(make_module):
    name = unique("satchel_unreg")
    mod = make_module({f"{name}.py": MODULE_SOURCE}, name)
    satchel.register_pickle_by_value(mod)
    assert satchel.loads(satchel.dumps(mod.helper)) is not mod.helper
    satchel.unregister_pickle_by_value(mod)
    assert name not in satchel.list_registry_pickle_by_value()
    assert satchel.loads(satchel.dumps(mod.helper)) is mod.helper
    assert satchel.loads(satchel.dumps(mod.Thing)) is mod.Thing
    with pytest.raises(ChildError, match="ModuleNotFoundError"):
        child_eval(mod.helper, "obj(1)")


def test_list_registry_returns_a_set_copy(make_module):
    name = unique("satchel_listreg")
    mod = make_module({f"{name}.py": MODULE_SOURCE}, name)
    before = satchel.list_registry_pickle_by_value()
    assert isinstance(before, set)
    assert name not in before
    satchel.register_pickle_by_value(mod)
    # Registering twice is allowed and keeps one entry.
    satchel.register_pickle_by_value(mod)
    registry = satchel.list_registry_pickle_by_value()
    assert isinstance(registry, set)
    assert registry == before | {name}
    registry.add("not_a_real_module_name")
    registry.discard(name)
    assert satchel.list_registry_pickle_by_value() == before | {name}


def test_errors():
    not_imported = types.ModuleType(unique("satchel_never_imported"))
    with pytest.raises(ValueError):
        satchel.register_pickle_by_value("json")
    with pytest.raises(ValueError):
        satchel.register_pickle_by_value(42)
    with pytest.raises(ValueError):
        satchel.register_pickle_by_value(not_imported)
    with pytest.raises(ValueError):
        satchel.unregister_pickle_by_value(not_imported)
    with pytest.raises(ValueError):
        satchel.unregister_pickle_by_value("json")
    import colorsys

    assert "colorsys" not in satchel.list_registry_pickle_by_value()
    with pytest.raises(ValueError):
        satchel.unregister_pickle_by_value(colorsys)
    assert not_imported.__name__ not in satchel.list_registry_pickle_by_value()


def test_registered_package_covers_submodules(make_module):
    pkg = unique("satchel_regpkg")
    files = {
        f"{pkg}/__init__.py": "TOP = 1\n",
        f"{pkg}/sub.py": """
            BASE = 100

            def f(x):
                return x + BASE
        """,
        f"{pkg}/deep/__init__.py": "",
        f"{pkg}/deep/leaf.py": """
            class Leaf:
                def value(self):
                    return "leaf"
        """,
        # Same name prefix, but not a submodule of the package.
        f"{pkg}x.py": """
            def g():
                return "other"
        """,
    }
    top = make_module(files, pkg)
    sub = make_module(files, f"{pkg}.sub")
    leaf = make_module(files, f"{pkg}.deep.leaf")
    other = make_module(files, f"{pkg}x")

    satchel.register_pickle_by_value(top)
    assert pkg in satchel.list_registry_pickle_by_value()
    assert f"{pkg}.sub" not in satchel.list_registry_pickle_by_value()
    # By value: a new object in-process; the prefix-sharing sibling stays by reference.
    assert satchel.loads(satchel.dumps(sub.f)) is not sub.f
    assert satchel.loads(satchel.dumps(other.g)) is other.g
    result = child_eval(
        (sub.f, leaf.Leaf().value, leaf.Leaf),
        "(obj[0](1), obj[0].__module__, obj[1](), obj[2].__module__,"
        f" [m for m in __import__('sys').modules if m.startswith({pkg!r})])",
    )
    assert result == (101, f"{pkg}.sub", "leaf", f"{pkg}.deep.leaf", [])


def test_registering_submodule_only_covers_it(make_module):
    pkg = unique("satchel_subonly")
    files = {
        f"{pkg}/__init__.py": "def top():\n    return 'top'\n",
        f"{pkg}/a.py": "def fa():\n    return 'a'\n",
        f"{pkg}/b.py": "def fb():\n    return 'b'\n",
    }
    top = make_module(files, pkg)
    a = make_module(files, f"{pkg}.a")
    b = make_module(files, f"{pkg}.b")
    satchel.register_pickle_by_value(a)
    assert satchel.loads(satchel.dumps(a.fa)) is not a.fa
    assert satchel.loads(satchel.dumps(b.fb)) is b.fb
    assert satchel.loads(satchel.dumps(top.top)) is top.top
    assert child_eval(a.fa, "obj()") == "a"


def test_registered_module_load_does_not_touch_receivers_module(make_module, tmp_path):
    # The receiver can import a module of the same name (different contents): loading the
    # by-value function must not use it nor change it.
    name = unique("satchel_shadowed")
    mod = make_module({f"{name}.py": MODULE_SOURCE}, name)
    satchel.register_pickle_by_value(mod)
    payload = satchel.dumps(mod.compute)
    receiver_dir = tmp_path / "receiver"
    receiver_dir.mkdir()
    (receiver_dir / f"{name}.py").write_text("CONST = 'receiver'\n")
    script = f"""
import pickle, sys
sys.path.insert(0, {str(receiver_dir)!r})
import {name} as receiver
before = dict(vars(receiver))
f = pickle.loads(bytes.fromhex(sys.argv[1]))
print(repr((f(3), receiver.CONST, vars(receiver) == before, f.__globals__ is vars(receiver))))
"""
    out = run_script(script, payload.hex())
    assert out.decode().strip() == repr((31, "receiver", True, False))
    assert pickle.loads(payload)(3) == 31


# cloudpickle's registry: modules registered with cloudpickle.register_pickle_by_value go by
# value in satchel too (byref.rs reads cloudpickle's set from sys.modules).


@pytest.fixture
def real_cloudpickle():
    cloudpickle = import_cloudpickle()
    if cloudpickle.dumps is satchel.dumps:  # satchel's own shim, as in the suite's subprocess
        pytest.skip("cloudpickle here is satchel's shim")
    return cloudpickle


def test_cloudpickle_registry_is_followed(make_module, real_cloudpickle):
    name = unique("satchel_cpreg")
    mod = make_module({f"{name}.py": MODULE_SOURCE}, name)
    assert satchel.dumps(mod.compute) == pickle.dumps(mod.compute, protocol=5)

    real_cloudpickle.register_pickle_by_value(mod)
    try:
        assert name in satchel.list_registry_pickle_by_value()
        result = child_eval(
            (mod.compute, mod.Thing(4), mod),
            f"(obj[0](3), obj[1].doubled(), obj[2].CONST, {name!r} in __import__('sys').modules)",
        )
        assert result == (31, 80, 10, False)
        # satchel's unregister leaves cloudpickle's registration alone, and says so.
        with pytest.raises(ValueError, match="cloudpickle.unregister_pickle_by_value"):
            satchel.unregister_pickle_by_value(mod)
        # Registered with both: both must let go before it goes by reference again.
        satchel.register_pickle_by_value(mod)
        satchel.unregister_pickle_by_value(mod)
        assert name in satchel.list_registry_pickle_by_value()
    finally:
        real_cloudpickle.unregister_pickle_by_value(mod)
    assert name not in satchel.list_registry_pickle_by_value()
    assert satchel.loads(satchel.dumps(mod.compute)) is mod.compute
    with pytest.raises(ChildError, match="ModuleNotFoundError"):
        child_eval(mod.compute, "obj(3)")


def test_cloudpickle_registered_package_covers_submodules(make_module, real_cloudpickle):
    pkg = unique("satchel_cpregpkg")
    files = {
        f"{pkg}/__init__.py": "",
        f"{pkg}/sub.py": "def f(x):\n    return x + 100\n",
        f"{pkg}x.py": "def g():\n    return 'other'\n",  # a name prefix, not a submodule
    }
    top = make_module(files, pkg)
    sub = make_module(files, f"{pkg}.sub")
    other = make_module(files, f"{pkg}x")
    # A few registered names are compared one by one, more are looked up by name: both ways.
    fillers = []
    for _ in range(9):
        name = unique("satchel_cpfiller")
        fillers.append(make_module({f"{name}.py": ""}, name))
    for registered in ([top], [top, *fillers]):
        for module in registered:
            real_cloudpickle.register_pickle_by_value(module)
        try:
            assert child_eval(sub.f, "obj(1)") == 101
            assert satchel.dumps(other.g) == pickle.dumps(other.g, protocol=5)
        finally:
            for module in registered:
                real_cloudpickle.unregister_pickle_by_value(module)
        assert satchel.dumps(sub.f) == pickle.dumps(sub.f, protocol=5)


def test_cloudpickle_is_never_imported_by_satchel():
    # The registry is read from sys.modules: dumping by-reference functions and classes (each
    # asks whether its module is registered) must not import cloudpickle.
    out = run_script(
        """
        import collections, json, os.path, sys
        import satchel
        data = satchel.dumps([json.dumps, collections.OrderedDict, os.path.join, json])
        satchel.register_pickle_by_value(json)
        satchel.dumps(json.dumps)
        print(sorted(satchel.list_registry_pickle_by_value()), "cloudpickle" in sys.modules)
        """
    )
    assert out.decode().split() == ["['json']", "False"]
