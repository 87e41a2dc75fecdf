"""The fast paths of issue 18 (docs/BENCHMARKS.md) keep what the slow paths did: closures over
small dicts use the one-call form, instances of a class with its own ``__reduce__`` get exactly
what ``object.__reduce_ex__`` would give, and submodule discovery memoised per dump still
finds every submodule."""

import math
import os.path
import pickle
import pickletools

import satchel
from conftest import child_eval


def _opcodes_names(stream):
    return {arg for _, arg, _ in pickletools.genops(stream) if isinstance(arg, str)}


def _table_closure(n, table):
    def closure(x, *, scale=n % 5 + 1):
        return math.sqrt(x * scale + n + table["a"]) + len(table)

    return closure


def test_closure_over_small_dict_is_flat_and_loads_in_a_fresh_interpreter():
    fns = [_table_closure(i, {"a": i, "b": ("x", 1)}) for i in range(3)]
    stream = satchel.dumps(fns)
    names = _opcodes_names(stream)
    # one call per function: no skeleton, no state setters
    assert "function" in names
    assert not names & {"make_function", "function_setstate", "cell_setstate"}
    assert child_eval(fns, "[f(3, scale=2) for f in obj]") == [f(3, scale=2) for f in fns]
    assert child_eval(fns, "[f.__kwdefaults__ for f in obj]") == [
        {"scale": i % 5 + 1} for i in range(3)
    ]


def test_dict_shared_by_closures_stays_one_dict():
    shared = {"a": 1}
    fns = [_table_closure(i, shared) for i in range(2)]
    a, b = pickle.loads(satchel.dumps(fns))
    ta = a.__closure__[[c.cell_contents for c in a.__closure__].index(shared)].cell_contents
    tb = b.__closure__[[c.cell_contents for c in b.__closure__].index(shared)].cell_contents
    assert ta is tb and ta == shared


def test_dict_that_reaches_the_function_is_not_flat():
    table = {}
    f = _table_closure(1, table)
    table["a"] = 2
    table["self"] = f  # the dict leads back to the function: skeleton then state
    g = pickle.loads(satchel.dumps(f))
    cell = next(c for c in g.__closure__ if isinstance(c.cell_contents, dict))
    assert cell.cell_contents["self"] is g
    assert g(1) == math.sqrt(1 * 2 + 1 + 2) + 2


def test_large_or_nested_dicts_still_round_trip():
    big = {f"k{i}": i for i in range(40)}
    deep = {"a": 1, "n": {"m": {"o": {"p": {"q": 1}}}}}
    for table in (big, deep):
        f = _table_closure(3, dict(table, a=1))
        assert pickle.loads(satchel.dumps(f))(1) == f(1)


def _uses_submodule():
    def f():
        return os.path.join("a", "b")

    return f


def test_submodules_found_once_per_dump_for_every_function():
    fns = [_uses_submodule() for _ in range(3)]
    # every function of the dump names the submodule (memoised per (globals, code) per dump)
    assert child_eval(fns, "[f() for f in obj]") == [os.path.join("a", "b")] * 3
    assert child_eval(fns[0], "obj()") == os.path.join("a", "b")


class OwnReduce:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __reduce__(self):
        return (OwnReduce, (self.x, self.y))


class OwnReduceDict:
    def __init__(self, x):
        self.x = x

    def __reduce__(self):
        return (OwnReduceDict, (self.x,))


class OwnReduceGetattr(OwnReduceDict):
    def __getattribute__(self, name):
        if name == "__reduce_ex__":
            return lambda proto: (str, ("via __getattribute__",))
        return object.__getattribute__(self, name)


class ReduceEx(OwnReduceDict):
    def __reduce_ex__(self, proto):
        return (str, (f"reduce_ex {proto}",))


def test_own_reduce_bytes_are_the_stdlib_pickler_bytes():
    samples = [
        [OwnReduce(i, str(i)) for i in range(5)],
        OwnReduceDict([1, 2]),
        OwnReduceGetattr(1),
        ReduceEx(2),
    ]
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        for sample in samples:
            assert satchel.dumps(sample, protocol=protocol) == pickle.dumps(
                sample, protocol=protocol
            ), (sample, protocol)


def test_own_reduce_in_instance_dict_wins():
    obj = OwnReduceDict(1)
    obj.__reduce__ = lambda: (str, ("instance",))
    assert pickle.loads(satchel.dumps(obj)) == "instance"


def test_own_reduce_replaced_after_first_use_is_honoured():
    class Late:
        def __init__(self, v):
            self.v = v

        def __reduce__(self):
            return (dict, ((("v", self.v),),))

    assert pickle.loads(satchel.dumps(Late(1))) == {"v": 1}
    Late.__reduce__ = lambda self: (str, ("late",))
    assert pickle.loads(satchel.dumps(Late(1))) == "late"


def test_main_class_with_own_reduce_loads_in_a_fresh_interpreter():
    class Local:
        __slots__ = ("v",)

        def __init__(self, v):
            self.v = v

        def __reduce__(self):
            return (Local, (self.v,))

    items = [Local(i) for i in range(4)]
    assert child_eval(items, "[o.v for o in obj]") == [0, 1, 2, 3]
