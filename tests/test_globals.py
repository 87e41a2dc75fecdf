"""Globals of functions pickled by value (src/reduce/globals.rs): only the names the code uses
travel, nested code counts, submodules reached by attribute, one globals dict per module per
dump, loading never touches the receiver's modules, builtins stay the receiver's."""

import pickle

import pytest

import satchel
from conftest import PYPY, child_eval, run_script

GLOBALS_SCRIPT = r"""
import os, pickle, sys, threading
import xml.dom.minidom
import satchel

A = 41
B = threading.Lock()
C = 21
X = 0
Y = 1
COUNTER = 5

def probe(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as exc:
        return ("raised", type(exc).__name__)

def read_a():
    return A + 1

def uses_lock():
    return B

def outer():
    def inner():
        return C * 2
    return inner()

def in_comprehension():
    return [C for _ in range(2)]

def in_genexpr():
    return sum(C for _ in range(2))

def in_lambda():
    return (lambda: C + 1)()

def join(a, b):
    return os.path.join(a, b)

def parse(s):
    return xml.dom.minidom.parseString(s).documentElement.tagName

def set_x(v):
    global X
    X = v

def get_x():
    return X

def drop_y():
    global Y
    del Y

def get_y():
    return Y

def reset_counter():
    global COUNTER
    COUNTER = 0

def set_new(v):
    global NEW
    NEW = v

def get_new():
    return NEW

def use_len(x):
    return len(x), isinstance(x, list)

def max(*args):
    return "shadowed"

def use_max():
    return max(1, 2)

for _i in range(300):
    globals()[f"G{_i}"] = _i
exec("def many():\n    return " + " + ".join(f"G{i}" for i in range(300)) + "\n")

out = {}
out["read_a"] = satchel.dumps(read_a)
try:
    satchel.dumps(uses_lock)
except pickle.PicklingError as exc:
    out["lock_error"] = (type(exc).__name__, isinstance(exc, satchel.PicklingError))
else:
    out["lock_error"] = None
out["nested"] = satchel.dumps((outer, in_comprehension, in_genexpr, in_lambda))
out["attrs"] = satchel.dumps((join, parse))
out["pair"] = satchel.dumps((set_x, get_x))
out["set_x"] = satchel.dumps(set_x)
out["get_x"] = satchel.dumps(get_x)
out["delete"] = satchel.dumps((drop_y, get_y, probe))
out["store"] = satchel.dumps((reset_counter, set_new, get_new, probe))
out["builtins"] = satchel.dumps((use_len, use_max))
out["many"] = satchel.dumps(many)
sys.stdout.buffer.write(pickle.dumps(out))
"""


@pytest.fixture(scope="module")
def payloads():
    return pickle.loads(run_script(GLOBALS_SCRIPT))


def user_globals(expr):
    """Child expression: the non-dunder names of a loaded function's globals, sorted."""
    return f"sorted(k for k in ({expr}).__globals__ if not k.startswith('__'))"


def test_only_globals_read_travel(payloads):
    # uses_lock really cannot be pickled: so read_a succeeding shows B did not travel.
    assert payloads["lock_error"] == ("PicklingError", True)
    assert child_eval(
        payloads["read_a"],
        f"(lambda f: (f(), {user_globals('f')}, f.__module__))(__import__('pickle').loads(obj))",
    ) == (42, ["A"], "__main__")


def test_globals_read_by_nested_code_travel(payloads):
    result = child_eval(
        payloads["nested"],
        "(lambda fs: ([f() for f in fs], "
        + user_globals("fs[0]")
        + ", "
        + user_globals("fs[1]")
        + "))(__import__('pickle').loads(obj))",
    )
    # fs[0].__globals__ is shared with the other three (one dump, one module): all of them
    # read only C.
    assert result == ([42, [21, 21], 42, 22], ["C"], ["C"])


def test_attribute_chains_and_submodules(payloads):
    result = child_eval(
        payloads["attrs"],
        "(lambda fs: (fs[0]('a', 'b'), fs[1]('<root><x/></root>'),"
        " 'xml.dom.minidom' in __import__('sys').modules))"
        "(__import__('pickle').loads(obj))",
    )
    assert result == ("a/b", "root", True)


def test_submodule_reached_through_closure_module():
    def make():
        import xml.etree.ElementTree

        def parse(s):
            return xml.etree.ElementTree.fromstring(s).tag

        return parse

    assert child_eval(make(), "obj('<top><a/></top>')") == "top"


def test_one_dump_shares_one_globals_dict(payloads):
    result = child_eval(
        payloads["pair"],
        "(lambda fs: (fs[0].__globals__ is fs[1].__globals__, fs[1](), fs[0](5), fs[1]()))"
        "(__import__('pickle').loads(obj))",
    )
    assert result == (True, 0, None, 5)


def test_separate_dumps_are_isolated(payloads):
    result = child_eval(
        (payloads["set_x"], payloads["get_x"], payloads["set_x"]),
        "(lambda s, g, s2: (s.__globals__ is g.__globals__, s.__globals__ is s2.__globals__,"
        " s(5), g(), s.__globals__['X'], s2.__globals__['X']))"
        "(*[__import__('pickle').loads(p) for p in obj])",
    )
    assert result == (False, False, None, 0, 5, 0)


def test_loading_never_mutates_receiver_main(payloads):
    names = ["A", "B", "C", "X", "Y", "set_x", "get_x", "read_a", "outer", "probe"]
    result = child_eval(
        (payloads["pair"], payloads["read_a"], payloads["nested"]),
        "(lambda m, loaded: (loaded[0][0](7), loaded[0][1](), loaded[1](),"
        f" [n for n in {names!r} if n in vars(m)],"
        " any(f.__globals__ is vars(m) for f in (loaded[0][0], loaded[1]))))"
        "(__import__('sys').modules['__main__'],"
        " [__import__('pickle').loads(p) for p in obj])",
    )
    assert result == (None, 7, 42, [], False)


RECEIVER_SCRIPT = r"""
import pickle, sys
X = "receiver"
had_minidom = "xml.dom.minidom" in sys.modules
payload = bytes.fromhex(sys.argv[1])
before = set(vars(sys.modules["__main__"])) | {"before", "set_x", "get_x"}
set_x, get_x = pickle.loads(payload)
set_x(7)
new = sorted(set(vars(sys.modules["__main__"])) - before)
print(repr((X, get_x(), new, had_minidom, set_x.__module__)))
"""


def test_receiver_main_with_same_names_untouched(payloads):
    out = run_script(RECEIVER_SCRIPT, payloads["pair"].hex())
    assert out.decode().strip() == repr(("receiver", 7, [], False, "__main__"))


def test_store_global_names_travel(payloads):
    result = child_eval(
        payloads["store"],
        "(lambda fs: (fs[0].__globals__.get('COUNTER'), fs[0](), fs[0].__globals__['COUNTER'],"
        " fs[3](fs[2]), fs[1]('made'), fs[2]()))(__import__('pickle').loads(obj))",
    )
    # COUNTER existed when dumped, NEW did not (so it does not travel until set).
    assert result == (5, None, 0, ("raised", "NameError"), None, "made")


def _deleting_an_unbound_global_raises():
    """What this interpreter raises for `del` of an unbound global: NameError on CPython,
    KeyError on PyPy (its DELETE_GLOBAL deletes from the dict), with or without satchel."""
    namespace = {}
    exec("def drop():\n    global _unbound\n    del _unbound\n", namespace)
    try:
        namespace["drop"]()
    except Exception as exc:  # noqa: BLE001 - the type is the answer
        return type(exc).__name__
    raise AssertionError("deleting an unbound global raised nothing")


def test_delete_global_names_travel(payloads):
    result = child_eval(
        payloads["delete"],
        "(lambda fs: (fs[1](), fs[2](fs[0]), fs[2](fs[1]), fs[2](fs[0])))"
        "(__import__('pickle').loads(obj))",
    )
    unbound = "NameError" if not PYPY else _deleting_an_unbound_global_raises()
    assert result == (1, ("ok", None), ("raised", "NameError"), ("raised", unbound))


def test_builtins_are_the_receivers(payloads):
    result = child_eval(
        payloads["builtins"],
        "(lambda fs: (fs[0]([1, 2, 3]), fs[1](), 'len' in fs[0].__globals__,"
        " 'isinstance' in fs[0].__globals__, fs[0].__globals__['__builtins__'] is"
        " __import__('builtins') or fs[0].__globals__['__builtins__'] is"
        " vars(__import__('builtins'))))"
        "(__import__('pickle').loads(obj))",
    )
    # A module-level shadow of a builtin travels; the builtins themselves do not.
    assert result == ((3, True), "shadowed", False, False, True)
    # and len is not written as a global reference (SHORT_BINUNICODE 'len').
    assert b"\x8c\x03len" not in payloads["builtins"]


def test_many_globals_need_extended_arg(payloads):
    result = child_eval(
        payloads["many"],
        "(lambda f: (f(), len([k for k in f.__globals__ if k.startswith('G')])))"
        "(__import__('pickle').loads(obj))",
    )
    assert result == (sum(range(300)), 300)


def test_local_function_reads_module_global_of_test_module():
    # A local function reading this module's globals: only those travel, the module itself
    # does not have to be importable in the child.
    def f(x):
        return MODULE_CONSTANT + x, pickle.HIGHEST_PROTOCOL >= 5

    assert child_eval(f, f"(obj(1), {user_globals('obj')})") == (
        (MODULE_CONSTANT + 1, True),
        ["MODULE_CONSTANT", "pickle"],
    )


MODULE_CONSTANT = 1000


def test_in_process_load_does_not_touch_this_module():
    def g():
        global MODULE_CONSTANT
        MODULE_CONSTANT = -1
        return MODULE_CONSTANT

    copy = satchel.loads(satchel.dumps(g))
    assert copy() == -1
    assert MODULE_CONSTANT == 1000
    assert copy.__globals__ is not globals()


def test_code_analysis_cache_survives_address_reuse():
    # The per-code-object analysis is cached by address and checked through a weak reference:
    # a new code object at a dead one's address must not inherit its list of globals.
    for i in range(300):
        ns = {}
        name = f"G{i % 3}"
        exec(f"def f():\n    return {name} * 2 + {i}", ns)
        ns[name] = i
        loaded = pickle.loads(satchel.dumps(ns["f"]))
        assert loaded() == 3 * i
        del ns, loaded


def test_globals_read_by_a_class_body_inside_a_function_travel():
    script = r"""
import sys
import satchel

X = 5

def f():
    class Inner:
        y = X * 2
    return Inner.y

sys.stdout.buffer.write(satchel.dumps(f))
"""
    from conftest import child_eval_bytes

    assert child_eval_bytes(run_script(script), "obj()") == 10


def test_shared_mutable_default_keeps_its_identity():
    def make():
        seen = set()

        def visit(x, seen=seen):
            seen.add(x)
            return len(seen)

        def count():
            return len(seen)

        return visit, count

    assert child_eval(make(), "(obj[0](1), obj[0](2), obj[1]())") == (1, 2, 2)


def test_subclass_defaults_keep_their_type():
    import collections

    Point = collections.namedtuple("Point", "x y")

    def f(p=Point(1, frozenset({"a", "b"})), opts=collections.OrderedDict(a=1)):  # noqa: B006, B008
        return p, opts

    loaded = pickle.loads(satchel.dumps(f))
    p, opts = loaded()
    assert type(p) is Point and p.y == frozenset({"a", "b"})
    assert type(opts) is collections.OrderedDict
