"""Functions by value (src/reduce/function.rs): lambdas, nested functions and closures, their
signature and attributes, decorated, recursive, generator and async functions, tracebacks."""

import functools
import inspect
import pickle
import traceback
import types

import pytest

import satchel
from conftest import child_eval, child_eval_bytes, echo, run_script


def make_probe():
    """A probe pickled by value (it is a local): calls ``fn(*args)`` in the child and reports
    the result or the exception, since an eval'd expression cannot catch."""

    def probe(fn, *args, **kwargs):
        try:
            return ("ok", fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - reported back to the parent
            return ("raised", type(exc).__name__, str(exc))

    return probe


def make_tb_probe():
    """A probe that calls ``fn`` and reports (filename, lineno, name) of each traceback frame
    below the probe itself."""

    def tb_probe(fn, *args):
        import traceback as tb

        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001
            frames = tb.extract_tb(exc.__traceback__)[1:]
            return [(f.filename, f.lineno, f.name) for f in frames]
        return None

    return tb_probe


def test_lambda_with_default_and_closure():
    k = 7
    f = lambda x, y=2: x * y + k
    assert child_eval(f, "(obj(3), obj(3, 4), obj.__name__, obj.__defaults__)") == (
        13,
        19,
        "<lambda>",
        (2,),
    )


def test_nested_function_and_closure_over_containers():
    def outer():
        items = [1, 2]
        table = {"a": 10}
        scale = 3

        def inner(key, extra=0):
            return (sum(items) + table[key] + extra) * scale

        return inner

    f = outer()
    assert child_eval(
        f, "(obj('a'), obj('a', extra=1), obj.__qualname__, len(obj.__closure__))"
    ) == (39, 42, f.__qualname__, 3)
    assert f.__qualname__.endswith("outer.<locals>.inner")


def test_nested_function_factory_travels():
    def make_adder(n):
        def add(x):
            return x + n

        return add

    assert child_eval(make_adder, "(obj(2)(5), obj(10)(-1), obj(1).__qualname__)") == (
        7,
        9,
        make_adder(1).__qualname__,
    )


def test_signature_defaults_kwdefaults_kwonly_posonly():
    def f(a, b=2, /, c=3, *args, d, e=5, **kw):
        return (a, b, c, args, d, e, sorted(kw.items()))

    expr = (
        "(str(__import__('inspect').signature(obj)), obj.__defaults__, obj.__kwdefaults__,"
        " obj(1, d=4), obj(1, 20, 30, 40, 50, d=4, e=6, z=9),"
        " obj.__code__.co_posonlyargcount, obj.__code__.co_kwonlyargcount,"
        " probe(obj, 1, b=20, d=4), probe(obj, 1)[:2])"
    )
    probe = make_probe()
    result = child_eval((f, probe), f"(lambda obj, probe: {expr})(*obj)")
    assert result == (
        str(inspect.signature(f)),
        (2, 3),
        {"e": 5},
        (1, 2, 3, (), 4, 5, []),
        (1, 20, 30, (40, 50), 4, 6, [("z", 9)]),
        2,
        2,
        # b is positional-only, so b=20 lands in **kw
        ("ok", (1, 2, 3, (), 4, 5, [("b", 20)])),
        ("raised", "TypeError"),
    )


def test_mutable_defaults_are_kept_and_shared_with_identity():
    shared = [1, 2]

    def f(x, acc=shared, *, other=shared):
        acc.append(x)
        return acc is other, list(other)

    assert child_eval(
        f, "(obj(3), obj(4), obj.__defaults__[0] is obj.__kwdefaults__['other'])"
    ) == (
        (True, [1, 2, 3]),
        (True, [1, 2, 3, 4]),
        True,
    )


def test_annotations():
    class Local:
        pass

    def f(x: int, y: "Forward" = None, *, z: Local) -> list[int]:  # noqa: F821
        return [x]

    def plain(x):
        return x

    result = child_eval(
        (f, plain),
        "({k: (v if isinstance(v, str) else repr(v)) for k, v in obj[0].__annotations__.items()"
        " if k != 'z'}, obj[0].__annotations__['z'].__name__, obj[1].__annotations__)",
    )
    assert result == (
        {"x": repr(int), "y": "Forward", "return": repr(list[int])},
        "Local",
        {},
    )


def test_function_dict_attributes_including_self_reference():
    def f(x):
        return x + f.offset

    f.offset = 5
    f.meta = {"tags": ["a", "b"], "n": 1}
    f.me = f
    assert child_eval(f, "(obj(1), obj.offset, obj.meta, obj.me is obj, sorted(vars(obj)))") == (
        6,
        5,
        {"tags": ["a", "b"], "n": 1},
        True,
        ["me", "meta", "offset"],
    )


def test_no_dict_attributes_gives_empty_dict():
    def f():
        return 1

    assert child_eval(f, "(obj(), vars(obj))") == (1, {})


def test_qualname_module_doc_name_overrides():
    def f(x):
        """Original doc."""
        return x * 2

    def g():
        return None

    f.__qualname__ = "Custom.qual"
    f.__module__ = "nowhere.at.all"
    f.__doc__ = "Changed doc."
    f.__name__ = "renamed"
    result = child_eval(
        (f, g),
        "(obj[0](4), obj[0].__qualname__, obj[0].__module__, obj[0].__doc__, obj[0].__name__,"
        " obj[0].__code__.co_name, obj[1].__doc__, obj[1].__module__, obj[1].__qualname__)",
    )
    assert result == (
        8,
        "Custom.qual",
        "nowhere.at.all",
        "Changed doc.",
        "renamed",
        "f",
        None,
        __name__,
        g.__qualname__,
    )


def test_decorated_with_functools_wraps():
    calls = []

    def logged(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            calls.append(fn.__name__)
            return fn(*args, **kwargs), list(calls)

        return wrapper

    @logged
    def area(w, h=1):
        """Area of a rectangle."""
        return w * h

    result = child_eval(
        area,
        "(obj(3, h=4), obj(2), obj.__name__, obj.__qualname__, obj.__doc__,"
        " obj.__wrapped__(5), obj.__wrapped__.__name__,"
        " str(__import__('inspect').signature(obj)))",
    )
    assert result == (
        (12, ["area"]),
        (2, ["area", "area"]),
        "area",
        area.__qualname__,
        "Area of a rectangle.",
        5,
        "area",
        "(w, h=1)",
    )
    # Dumping did not call anything here.
    assert calls == []


RECURSIVE_SCRIPT = """
import functools, pickle, sys
import satchel

def fact(n):
    return 1 if n <= 1 else n * fact(n - 1)

def is_even(n):
    return True if n == 0 else is_odd(n - 1)

def is_odd(n):
    return False if n == 0 else is_even(n - 1)

def traced(fn):
    @functools.wraps(fn)
    def wrapper(n):
        return ("t", fn(n)[1] + 1 if n else 0)
    return wrapper

@traced
def depth(n):
    # The global name ``depth`` is the wrapper: recursion goes through it.
    return depth(n - 1)

sys.stdout.buffer.write(
    pickle.dumps(
        (
            satchel.dumps(fact),
            satchel.dumps(is_even),
            satchel.dumps((is_even, is_odd)),
            satchel.dumps(depth),
        )
    )
)
"""


def test_recursive_and_mutually_recursive_main_functions():
    fact_p, even_p, pair_p, depth_p = pickle.loads(run_script(RECURSIVE_SCRIPT))
    assert child_eval_bytes(
        fact_p, "(obj(6), obj.__module__, obj.__globals__['fact'] is obj, obj.__name__)"
    ) == (720, "__main__", True, "fact")
    # is_odd travels through is_even's globals, and refers back to is_even.
    assert child_eval_bytes(
        even_p,
        "(obj(10), obj(7), obj.__globals__['is_odd'](3),"
        " obj.__globals__['is_odd'].__globals__['is_even'] is obj)",
    ) == (True, False, True, True)
    assert child_eval_bytes(
        pair_p,
        "(obj[0](4), obj[1](4), obj[0].__globals__ is obj[1].__globals__,"
        " obj[0].__globals__['is_odd'] is obj[1])",
    ) == (True, False, True, True)
    assert child_eval_bytes(
        depth_p,
        "(obj(4), obj.__name__, obj.__qualname__, obj.__module__,"
        " obj.__wrapped__.__globals__['depth'] is obj)",
    ) == (("t", 4), "depth", "depth", "__main__", True)


def test_generator_function():
    k = 10

    def gen(n):
        for i in range(n):
            yield i * k
        yield from ("x", "y")

    assert child_eval(
        gen,
        "(list(obj(3)), __import__('inspect').isgeneratorfunction(obj), type(obj(1)).__name__)",
    ) == ([0, 10, 20, "x", "y"], True, "generator")


def test_async_functions():
    k = 5

    async def coro(x):
        import asyncio

        await asyncio.sleep(0)
        return x + k

    async def agen(n):
        for i in range(n):
            yield i + k

    async def collect(n):
        return [v async for v in agen(n)]

    result = child_eval(
        (coro, agen, collect),
        "(__import__('asyncio').run(obj[0](1)), __import__('asyncio').run(obj[2](3)),"
        " __import__('inspect').iscoroutinefunction(obj[0]),"
        " __import__('inspect').isasyncgenfunction(obj[1]))",
    )
    assert result == (6, [5, 6, 7], True, True)


def test_zero_argument_super_in_local_class():
    class Base:
        def greet(self):
            return "base"

        @classmethod
        def kind(cls):
            return "base-kind"

    class Derived(Base):
        def greet(self):
            return "derived+" + super().greet()

        @classmethod
        def kind(cls):
            return "derived+" + super().kind()

    greet = Derived.__dict__["greet"]
    result = child_eval(
        (Derived, greet),
        "(obj[0]().greet(), obj[0].kind(), obj[1](obj[0]()),"
        " obj[1].__closure__[0].cell_contents is obj[0],"
        " obj[0].__dict__['greet'] is obj[1])",
    )
    assert result == ("derived+base", "derived+base-kind", "derived+base", True, True)


def test_function_using_super_dumped_alone():
    class Base:
        def value(self):
            return 1

    class Derived(Base):
        def value(self):
            return super().value() + 1

    method = Derived.__dict__["value"]
    assert child_eval(
        method,
        "(obj(obj.__closure__[0].cell_contents()), obj.__closure__[0].cell_contents.__name__)",
    ) == (2, "Derived")


def test_traceback_keeps_original_filename_and_lines():
    def fails(x):
        y = x + 1
        if y > 0:
            raise ValueError(f"bad {y}")
        return y

    def calls_fails(x):
        z = x * 2
        return fails(z)

    try:
        calls_fails(1)
    except ValueError as exc:
        local = [
            (f.filename, f.lineno, f.name) for f in traceback.extract_tb(exc.__traceback__)[1:]
        ]
    assert [f[2] for f in local] == ["calls_fails", "fails"]
    assert all(f[0] == __file__ for f in local)

    tb_probe = make_tb_probe()
    remote = child_eval(
        (calls_fails, tb_probe),
        "(obj[1](obj[0], 1), obj[0].__code__.co_filename, obj[0].__code__.co_firstlineno)",
    )
    assert remote == (local, __file__, calls_fails.__code__.co_firstlineno)


def test_loads_dumps_in_process_gives_equivalent_function():
    base = 100

    def f(a, b=2, *, c=3):
        """Doc."""
        return a + b + c + base

    f.tag = "t"
    g = satchel.loads(satchel.dumps(f))
    h = pickle.loads(satchel.dumps(f))
    for copy in (g, h):
        assert copy is not f
        assert copy(1) == f(1) == 106
        assert copy(1, 1, c=1) == 103
        assert copy.__code__ == f.__code__
        assert copy.__defaults__ == f.__defaults__
        assert copy.__kwdefaults__ == f.__kwdefaults__
        assert copy.__name__ == f.__name__
        assert copy.__qualname__ == f.__qualname__
        assert copy.__module__ == f.__module__
        assert copy.__doc__ == "Doc."
        assert copy.tag == "t"
        assert copy.__closure__[0].cell_contents == 100
    # Loading in-process gives a new globals dict, never this module's.
    assert g.__globals__ is not globals()


def test_echo_round_trip_keeps_behaviour():
    k = 3

    def f(x, *, mul=2):
        return (x + k) * mul

    f.attr = [1]
    g = echo(f)
    assert (g(1), g(1, mul=3), g.attr, g.__kwdefaults__) == (8, 12, [1], {"mul": 2})


def test_partial_of_local_function():
    def power(base, exp, *, mod=None):
        r = base**exp
        return r if mod is None else r % mod

    p = functools.partial(power, exp=3, mod=7)
    q = functools.partial(power, 2)
    assert child_eval(
        (p, q),
        "(obj[0](4), obj[0].func.__name__, obj[0].args, obj[0].keywords, obj[1](10),"
        " obj[0].func is obj[1].func)",
    ) == (64 % 7, "power", (), {"exp": 3, "mod": 7}, 1024, True)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_closure_under_each_protocol(protocol):
    def outer():
        n = 4

        def f(x, y=1):
            return x * n + y

        f.attr = "a"
        return f

    assert pickle.loads(satchel.dumps(outer(), protocol=protocol))(2) == 9
    assert child_eval(outer(), "(obj(2), obj(2, 0), obj.attr)", protocol=protocol) == (
        9,
        8,
        "a",
    )


def test_dumped_function_not_imported_in_receiver():
    # The function's module is this test module, which the child cannot import: it must
    # travel by value and the child must not have imported it.
    def f():
        return 1

    name = __name__
    assert child_eval(f, f"(obj(), {name!r} in __import__('sys').modules)") == (1, False)


def test_defaults_and_kwdefaults_referring_back_to_the_function():
    def f(x=None, *, me=None):
        return x is me

    f.__defaults__ = (f,)
    f.__kwdefaults__ = {"me": f}
    assert child_eval(
        f, "(obj(), obj.__defaults__[0] is obj, obj.__kwdefaults__['me'] is obj, obj(1))"
    ) == (True, True, True, False)


def test_doc_removed_and_module_none():
    def documented():
        """Has a doc."""
        return 1

    documented.__doc__ = None
    # A function made in a namespace without __name__ has __module__ None.
    code = compile("def nameless(x):\n    return x + 1\n", "<nameless>", "exec")
    nameless = types.FunctionType(
        next(c for c in code.co_consts if isinstance(c, types.CodeType)), {}
    )
    assert nameless.__module__ is None
    assert child_eval(
        (documented, nameless),
        "(obj[0](), obj[0].__doc__, obj[1](1), obj[1].__module__, obj[1].__name__)",
    ) == (1, None, 2, None, "nameless")


def test_first_string_constant_is_not_taken_as_doc():
    def no_doc():
        return "not a doc"

    g = lambda: "nor this"
    assert child_eval((no_doc, g), "(obj[0](), obj[0].__doc__, obj[1](), obj[1].__doc__)") == (
        "not a doc",
        None,
        "nor this",
        None,
    )
