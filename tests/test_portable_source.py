"""Portable mode's two pure-Python halves: ``satchel._source.function_source`` (the sender finds
the source text of a def or lambda) and ``portable_code``/``portable_function`` of
bootstrap/portable.py (the receiver recompiles it), in this process and in other interpreters
(``-I -S``: nothing but the stdlib and the bootstrap source)."""

import ast
import asyncio
import functools
import json
import linecache
import os
import shutil
import subprocess
import traceback
import types
from pathlib import Path

import pytest

import _satchel_boot_1
from satchel._source import SourceNotFound, function_source

ROOT = Path(__file__).resolve().parent.parent
PORTABLE_SOURCE = (ROOT / "bootstrap" / "portable.py").read_text()
# As src/bootstrap.rs embeds it: boot.py, then portable.py, in one namespace.
BOOT_SOURCE = (ROOT / "bootstrap" / "boot.py").read_text() + "\n" + PORTABLE_SOURCE

# Receivers run bootstrap/portable.py (3.9+, PyPy too); senders run satchel/_source.py (3.11+).
_PYENV = "/root/.pyenv/versions/{}/bin/python3"
INTERPRETERS = [_PYENV.format(v) for v in ("3.9.18", "3.10.13", "3.12.1", "3.13.0")]
INTERPRETERS += [path for path in [shutil.which("pypy3")] if path]
SENDERS = [_PYENV.format(v) for v in ("3.11.7", "3.12.1", "3.13.0")]


def _name(path):
    return path.split("/")[-3] if path.startswith("/root/.pyenv/") else os.path.basename(path)


@pytest.fixture(scope="module", autouse=True)
def _portable_in_boot_module():
    """function_source checks each snippet with the bootstrap module's copy of
    bootstrap/portable.py; the binary embeds the copy it was built with, so for these tests put
    this checkout's copy there (and put the module back afterwards)."""
    saved = dict(vars(_satchel_boot_1))
    exec(compile(PORTABLE_SOURCE, "portable.py", "exec"), vars(_satchel_boot_1))
    yield
    vars(_satchel_boot_1).clear()
    vars(_satchel_boot_1).update(saved)


def _boot_namespace():
    namespace = {"__name__": "_satchel_boot_test"}
    exec(compile(BOOT_SOURCE, "<satchel bootstrap>", "exec"), namespace)
    return namespace


BOOT = _boot_namespace()


def rebuild(func, cells=None):
    """``func`` rebuilt from its source text only, as a receiver would: same cells (or the
    given ones), same globals, defaults and kwdefaults."""
    snippet, filename, lineno = function_source(func)
    code = BOOT["portable_code"](
        snippet, filename, lineno, func.__code__.co_name, func.__code__.co_freevars
    )
    if cells is None:
        cells = dict(zip(func.__code__.co_freevars, func.__closure__ or ()))
    extra = {"__qualname__": func.__qualname__, "__kwdefaults__": func.__kwdefaults__}
    return BOOT["portable_function"](
        code, {"__name__": func.__module__}, cells, func.__globals__, func.__defaults__, extra
    )


def same_lines(a, b):
    return a.co_firstlineno == b.co_firstlineno and list(a.co_lines()) == list(b.co_lines())


# ---------------------------------------------------------------------------------------------
# Module-level definitions (their source is this file).
# ---------------------------------------------------------------------------------------------


def plain(a, b=2, *, c=3):
    """A docstring
    on two lines."""
    return a + b + c


def register(func):
    return func


class Base:
    def m(self):
        return "base"

    def helper(self):
        return "base-helper"


def helper():
    return "global-helper"


class Child(Base):
    def m(self):
        return "child+" + super().m()

    def helper(self):
        # ``helper`` here is the global function: recompiled in a wrapper that bound the
        # def's name, it would wrongly become a free variable.
        return super().helper() + "," + helper()

    def private(self):
        self.__secret = 5
        return self.__secret + self.__class__.__name__.count("C")


add, mul = lambda x: x + 1, lambda x: x * 2


def raiser(x):
    y = x + 1
    return y / x


async def coro(x, delay=0):
    await asyncio.sleep(delay)
    return x * 10


def gen(n):
    for i in range(n):
        yield i * i


# ---------------------------------------------------------------------------------------------
# function_source
# ---------------------------------------------------------------------------------------------


def test_plain_def():
    snippet, filename, lineno = function_source(plain)
    assert snippet.startswith("def plain(a, b=2, *, c=3):\n")
    assert snippet.endswith("return a + b + c\n")
    assert filename == __file__
    assert lineno == plain.__code__.co_firstlineno
    f = rebuild(plain)
    assert f(1) == 6 and f(1, 1, c=1) == 3
    assert f.__doc__ == plain.__doc__
    assert same_lines(f.__code__, plain.__code__)
    # Cached per code object: the same tuple again.
    assert function_source(plain) is function_source(plain)


def test_nested_closure_shares_cells():
    def counter():
        count = 0

        def incr(step=1):
            nonlocal count
            count += step
            return count

        def get():
            return count

        return incr, get

    incr, get = counter()
    snippet, _, lineno = function_source(incr)
    assert snippet.startswith("def incr(step=1):\n") and "nonlocal count" in snippet
    assert lineno == incr.__code__.co_firstlineno
    # The receiver gets the very cell objects: the rebuilt pair still shares its counter.
    new_incr, new_get = rebuild(incr), rebuild(get)
    assert new_incr.__closure__[0] is incr.__closure__[0]
    new_incr(5)
    assert get() == 5 and new_get() == 5
    # Fresh shared cell, as a receiver would make it.
    cell = types.CellType(100)
    a, b = rebuild(incr, {"count": cell}), rebuild(get, {"count": cell})
    a()
    assert b() == 101


def test_two_lambdas_on_one_line():
    assert function_source(add)[0] == "lambda x: x + 1\n"
    assert function_source(mul)[0] == "lambda x: x * 2\n"
    assert rebuild(add)(10) == 11 and rebuild(mul)(10) == 20
    # Same shape, different closures and a nested lambda, all on one line.
    k, j = 3, 4
    f, g, h = lambda x: x * k, lambda x: x * j, lambda: lambda q, d=lambda: 9: q + d()
    assert function_source(f)[0] == "lambda x: x * k\n"
    assert function_source(g)[0] == "lambda x: x * j\n"
    assert function_source(h)[0] == "lambda: lambda q, d=lambda: 9: q + d()\n"
    inner = h()
    assert function_source(inner)[0] == "lambda q, d=lambda: 9: q + d()\n"
    assert function_source(inner.__defaults__[0])[0] == "lambda: 9\n"
    assert rebuild(f)(2) == 6 and rebuild(g)(2) == 8 and rebuild(inner)(1) == 10
    assert all(function_source(x)[2] == x.__code__.co_firstlineno for x in (f, g, h, inner))


def _capture(*args, **kwargs):
    return args, kwargs


def test_lambda_in_call_argument_spanning_lines():
    offset = 100
    # fmt: off
    args, kwargs = _capture(
        1, lambda v,
                  w=3: v + w + offset,
        key=lambda v: (
            -v
        ),
    )
    # fmt: on
    first, key = args[1], kwargs["key"]
    snippet, _, lineno = function_source(first)
    assert snippet == "(lambda v,\n                  w=3: v + w + offset)\n"
    assert lineno == first.__code__.co_firstlineno
    assert function_source(key)[0] == "(lambda v: (\n            -v\n        ))\n"
    assert rebuild(first)(1) == 104 and rebuild(key)(5) == -5
    assert same_lines(rebuild(first).__code__, first.__code__)


def test_decorated_function():
    calls = []

    def logged(func):
        @functools.wraps(func)
        def wrapper(*args):
            calls.append(args)
            return func(*args)

        return wrapper

    # fmt: off
    @register
    @functools.lru_cache(
        maxsize=64
    )
    @logged
    def decorated(z):
        return z - 1
    # fmt: on

    original = decorated.__wrapped__.__wrapped__
    snippet, _, lineno = function_source(original)
    # Decorators are gone; their lines stay, empty, so the def keeps its line and lineno is
    # the first decorator's line, co_firstlineno.
    assert snippet == "\n" * 5 + "def decorated(z):\n        return z - 1\n"
    assert lineno == original.__code__.co_firstlineno
    f = rebuild(original)
    assert f(10) == 9 and calls == []
    assert same_lines(f.__code__, original.__code__)
    assert f.__code__.co_firstlineno == original.__code__.co_firstlineno


def test_method_using_super_recompiled_with_class_cell():
    snippet, filename, lineno = function_source(Child.m)
    assert snippet == 'def m(self):\n        return "child+" + super().m()\n'
    assert Child.m.__code__.co_freevars == ("__class__",)
    code = BOOT["portable_code"](snippet, filename, lineno, "m", ("__class__",))
    assert code.co_freevars == ("__class__",)
    # Columns too: only the def's own line is dedented, the body keeps its columns.
    assert list(code.co_positions()) == list(Child.m.__code__.co_positions())
    m = BOOT["portable_function"](code, {}, {"__class__": types.CellType(Child)}, {}, None, None)
    assert types.MethodType(m, Child())() == "child+base"
    with pytest.raises(ValueError, match="__class__"):
        BOOT["portable_function"](code, {}, {}, {}, None, None)


def test_method_named_like_a_global_it_calls():
    assert types.MethodType(rebuild(Child.helper), Child())() == "base-helper,global-helper"


def test_private_names_are_mangled():
    snippet = function_source(Child.private)[0]
    assert "self._Child__secret = 5" in snippet and "__class__" in snippet
    obj = Child()
    assert types.MethodType(rebuild(Child.private), obj)() == 6
    assert obj._Child__secret == 5


def test_class_nested_in_function():
    def outer(y):
        class Local(Base):
            def m(self):
                return super().m() + str(y)

            def plain(self):
                return y * 2

        return Local

    local = outer(7)
    assert local.m.__code__.co_freevars == ("__class__", "y")
    assert types.MethodType(rebuild(local.m), local())() == "base7"
    assert types.MethodType(rebuild(local.plain), local())() == 14


def test_async_def_and_generator():
    snippet = function_source(coro)[0]
    assert snippet.startswith("async def coro(x, delay=0):\n")
    assert asyncio.run(rebuild(coro)(4)) == 40
    assert function_source(gen)[0].startswith("def gen(n):\n")
    assert list(rebuild(gen)(4)) == [0, 1, 4, 9]

    async def agen(n):
        for i in range(n):
            yield i

    async def collect():
        return [i async for i in rebuild(agen)(3)]

    assert asyncio.run(collect()) == [0, 1, 2]


def test_traceback_shows_original_file_and_line():
    f = rebuild(raiser)
    with pytest.raises(ZeroDivisionError) as info:
        f(0)
    frame = traceback.extract_tb(info.value.__traceback__)[-1]
    assert (frame.filename, frame.lineno, frame.name) == (
        __file__,
        raiser.__code__.co_firstlineno + 2,
        "raiser",
    )
    assert frame.line == "return y / x"
    assert (frame.colno, frame.end_colno) == (11, 16)  # the body keeps its columns


def _exec_with_linecache(source, filename, per_statement=False):
    """What IPython does with a cell: register the text in linecache, then run it, each
    top-level statement compiled on its own (``per_statement``) as IPython does."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"__name__": "__main__"}
    tree = ast.parse(source, filename)
    units = [ast.Module([node], []) for node in tree.body] if per_statement else [tree]
    for unit in units:
        exec(compile(unit, filename, "exec"), namespace)
    return namespace


CELL = """\
import functools
scale = 3

def cell_func(x):
    return functools.reduce(lambda a, b: a + b, [x] * scale)

@functools.lru_cache
def cached(x):
    return cell_func(x) + 1

pair = [lambda v: v - scale, lambda v: v + scale]
"""


@pytest.mark.parametrize("per_statement", [False, True], ids=["exec", "ipython"])
def test_exec_with_linecache_entry(per_statement):
    filename = f"<ipython-input-7-{per_statement}>"
    other = f"<ipython-input-8-{per_statement}>"
    try:
        namespace = _exec_with_linecache(CELL, filename, per_statement)
        assert function_source(namespace["cell_func"]) == (
            "def cell_func(x):\n    return functools.reduce(lambda a, b: a + b, [x] * scale)\n",
            filename,
            4,
        )
        assert function_source(namespace["cached"].__wrapped__) == (
            "\ndef cached(x):\n    return cell_func(x) + 1\n",
            filename,
            7,
        )
        low, high = namespace["pair"]
        assert function_source(low)[0] == "lambda v: v - scale\n"
        assert function_source(high)[0] == "lambda v: v + scale\n"
        assert rebuild(namespace["cell_func"])(2) == 6
        assert rebuild(low)(10) == 7 and rebuild(high)(10) == 13

        # The same text in another cell: equal code objects (code equality ignores
        # co_filename), each with its own file name.
        namespace2 = _exec_with_linecache(CELL, other, per_statement)
        assert namespace2["cell_func"].__code__ == namespace["cell_func"].__code__
        assert function_source(namespace2["cell_func"])[1] == other
        assert function_source(namespace["cell_func"])[1] == filename
    finally:
        linecache.cache.pop(filename, None)
        linecache.cache.pop(other, None)


FUTURE = """\
from __future__ import annotations

def annotated(x: int) -> Missing:
    return [x]

def nested_annotated(k):
    def inner(z: Missing) -> int:
        return z + k
    return inner
"""


def test_future_annotations():
    filename = "<satchel-test-future>"
    try:
        namespace = _exec_with_linecache(FUTURE, filename)
        assert rebuild(namespace["annotated"])(1) == [1]
        inner = namespace["nested_annotated"](1)
        assert rebuild(inner)(1) == 2
        # Known limit: the receiver compiles without the module's __future__ flags, so a
        # function defining annotated functions would evaluate their annotations. Refused.
        with pytest.raises(SourceNotFound, match="does not compile to its code"):
            function_source(namespace["nested_annotated"])
    finally:
        linecache.cache.pop(filename, None)


def test_source_not_found():
    namespace = {}
    exec("def f(x):\n    return x\ng = lambda: 1\n", namespace)  # <string>: no lines anywhere
    for func in (namespace["f"], namespace["g"]):
        with pytest.raises(SourceNotFound, match="no source lines"):
            function_source(func)
    for func in (len, str.join, "".join, functools.partial(plain, 1), 42):
        with pytest.raises(SourceNotFound, match="no Python code"):
            function_source(func)
    # Failures are cached too, and raised afresh each time.
    with pytest.raises(SourceNotFound) as first:
        function_source(namespace["f"])
    with pytest.raises(SourceNotFound) as again:
        function_source(namespace["f"])
    assert first.value is not again.value and first.value.args == again.value.args


def test_source_edited_since_it_ran():
    filename = "<satchel-test-edited>"
    try:
        namespace = _exec_with_linecache("def f(x):\n    return x + 1\n", filename)
        # Same name and line, other body.
        linecache.cache[filename] = (1, None, ["def f(x):\n", "    return x - 1\n"], filename)
        with pytest.raises(SourceNotFound, match="does not compile to its code"):
            function_source(namespace["f"])
        # Other argument names.
        namespace = _exec_with_linecache("def g(a):\n    return a\n", filename + "2")
        linecache.cache[filename + "2"] = (1, None, ["def g(b):\n", "    return b\n"], filename)
        with pytest.raises(SourceNotFound, match="does not compile"):
            function_source(namespace["g"])
        # Nothing at that line any more.
        namespace = _exec_with_linecache("\n\ndef h():\n    pass\n", filename + "3")
        linecache.cache[filename + "3"] = (1, None, ["def h():\n", "    pass\n"], filename)
        with pytest.raises(SourceNotFound, match="no def or lambda 'h'"):
            function_source(namespace["h"])
        # No longer parses.
        namespace = _exec_with_linecache("def k():\n    pass\n", filename + "4")
        linecache.cache[filename + "4"] = (1, None, ["def k(:\n"], filename)
        with pytest.raises(SourceNotFound, match="cannot parse"):
            function_source(namespace["k"])
    finally:
        for suffix in ("", "2", "3", "4"):
            linecache.cache.pop(filename + suffix, None)


def test_altered_code_is_refused():
    def f(x):
        return x + 1000  # not a small int: 3.14+ load those without co_consts

    consts = tuple(2000 if c == 1000 else c for c in f.__code__.co_consts)
    g = types.FunctionType(f.__code__.replace(co_consts=consts), {})
    assert g(1) == 2001
    with pytest.raises(SourceNotFound):
        function_source(g)


# ---------------------------------------------------------------------------------------------
# portable_code / portable_function
# ---------------------------------------------------------------------------------------------


def test_portable_code_caches_and_checks_its_input():
    code = BOOT["portable_code"]("lambda: 1\n", "x.py", 5, "<lambda>", ())
    assert code is BOOT["portable_code"]("lambda: 1\n", "x.py", 5, "<lambda>", [])
    assert (code.co_filename, code.co_firstlineno) == ("x.py", 5)
    # One short message for every malformed snippet: every byte of portable.py travels in
    # standalone streams.
    with pytest.raises(ValueError, match="bad portable snippet for 'x'"):
        BOOT["portable_code"]("x = 1\ny = 2\n", "x.py", 1, "x", ())
    with pytest.raises(ValueError, match="bad portable snippet"):
        BOOT["portable_code"]("x = 1\n", "x.py", 1, "x", ())
    with pytest.raises(ValueError, match="bad portable snippet for 'g'"):
        BOOT["portable_code"]("def f(): pass\n", "x.py", 1, "g", ())
    with pytest.raises(SyntaxError) as info:
        BOOT["portable_code"]("def f(:\n", "x.py", 40, "f", ())
    assert (info.value.filename, info.value.lineno) == ("x.py", 40)


def test_portable_function_attributes():
    code = BOOT["portable_code"]("def f(a, *, b):\n    return a + b + c\n", "y.py", 1, "f", ())
    base = {"__name__": "mod"}
    f = BOOT["portable_function"](
        code, base, {}, {"c": 100}, None, {"__kwdefaults__": {"b": 10}, "__qualname__": "X.f"}
    )
    assert f(1) == 111 and f.__qualname__ == "X.f" and f.__module__ == "mod"
    assert base["__builtins__"] is __builtins__ or base["__builtins__"].__name__ == "builtins"


# ---------------------------------------------------------------------------------------------
# Other interpreters: snippets made here, rebuilt there with only the stdlib and the bootstrap.
# ---------------------------------------------------------------------------------------------

_CHILD = r"""
import json, sys, traceback, types

request = json.loads(sys.stdin.read())
boot = {"__name__": "_satchel_boot_1"}
exec(compile(request["boot"], "<satchel bootstrap>", "exec"), boot)


def settle(value):
    if isinstance(value, types.GeneratorType):
        return list(value)
    if isinstance(value, types.CoroutineType):
        try:
            while True:
                value.send(None)
        except StopIteration as stop:
            return stop.value
    return value


results = []
for group in request["groups"]:
    env = {"__name__": "__main__"}
    exec(group["setup"], env)
    cells = dict((name, types.CellType(eval(expr, env))) for name, expr in group["cells"].items())
    for i, (source, defaults, kwdefaults) in enumerate(group["functions"]):
        code = boot["portable_code"](*source[:4], tuple(source[4]))
        defaults = tuple(defaults) if defaults else None
        extra = {"__kwdefaults__": kwdefaults}
        env["f%d" % i] = boot["portable_function"](
            code, {"__name__": "__main__"}, cells, env, defaults, extra
        )
    for expr in group["calls"]:
        try:
            results.append(["ok", repr(settle(eval(expr, env)))])
        except Exception as exc:
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            results.append([type(exc).__name__, frame.filename, frame.lineno, frame.name])
print(json.dumps(results))
"""

_SUPER_SETUP = """
class Base:
    def m(self):
        return "base"
    def helper(self):
        return "base-helper"
class Child(Base):
    pass
def helper():
    return "global-helper"
"""


def _cross_groups():
    """(request groups, expected results): each group shares its cells between its
    functions, which the calls reach as f0, f1..."""

    def counter():
        count = 0

        def incr(step=1):
            nonlocal count
            count += step
            return count

        def get():
            return count

        return incr, get

    incr, get = counter()
    k = 3
    times, plus = lambda x: x * k, lambda x: x + k
    # fmt: off
    spanning = _capture(lambda v,
                        w=4: (v + w) * k)[0][0]
    # fmt: on

    def source(func):
        code = func.__code__
        return [
            [*function_source(func), code.co_name, code.co_freevars],
            func.__defaults__,
            func.__kwdefaults__,
        ]

    groups = [
        {
            "setup": "",
            "cells": {"count": "0"},
            "functions": [source(incr), source(get)],
            "calls": ["f0(2)", "f0()", "f1()"],
        },
        {
            "setup": "",
            "cells": {"k": "3"},
            "functions": [source(times), source(plus), source(spanning)],
            "calls": ["f0(5)", "f1(5)", "f2(4)"],
        },
        {
            "setup": "import asyncio",
            "cells": {},
            "functions": [source(plain), source(gen), source(coro), source(raiser)],
            "calls": ["f0(1)", "f1(3)", "f2(2)", "f3(0)"],
        },
        {
            "setup": _SUPER_SETUP,
            "cells": {"__class__": "Child"},
            "functions": [source(Child.m), source(Child.helper), source(Child.private)],
            "calls": [
                "setattr(Child, 'm', f0) or Child().m()",
                "setattr(Child, 'helper', f1) or Child().helper()",
                "setattr(Child, 'private', f2) or Child().private()",
            ],
        },
    ]
    line = raiser.__code__.co_firstlineno + 2
    expected = [
        ["ok", "2"],
        ["ok", "3"],
        ["ok", "3"],
        ["ok", "15"],
        ["ok", "8"],
        ["ok", "24"],
        ["ok", "6"],
        ["ok", "[0, 1, 4]"],
        ["ok", "20"],
        ["ZeroDivisionError", __file__, line, "raiser"],
        ["ok", "'child+base'"],
        ["ok", "'base-helper,global-helper'"],
        ["ok", "6"],
    ]
    return groups, expected


@pytest.mark.parametrize("python", INTERPRETERS, ids=_name)
def test_rebuilt_on_other_interpreters(python):
    if not os.path.exists(python):
        pytest.skip(f"{python} is not installed")
    groups, expected = _cross_groups()
    request = json.dumps({"boot": BOOT_SOURCE, "groups": groups})
    proc = subprocess.run(
        [python, "-I", "-S", "-c", _CHILD],
        input=request,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == expected


# The sender on other CPythons (3.11+): _source.py only needs the stdlib and the bootstrap.
_SENDER_CHILD = r"""
import importlib.util, json, sys, types

boot = types.ModuleType("_satchel_boot_1")
exec(compile(sys.argv[1], "<satchel bootstrap>", "exec"), vars(boot))
sys.modules["_satchel_boot_1"] = boot
spec = importlib.util.spec_from_file_location("satchel_source", sys.argv[2])
source = importlib.util.module_from_spec(spec)
spec.loader.exec_module(source)
sys.path.insert(0, sys.argv[3])
import subjects


def rebuild(func):
    snippet, filename, lineno = source.function_source(func)
    code = func.__code__
    new = boot.portable_code(snippet, filename, lineno, code.co_name, code.co_freevars)
    cells = dict(zip(code.co_freevars, func.__closure__ or ()))
    return boot.portable_function(
        new, {"__name__": "subjects"}, cells, func.__globals__, func.__defaults__, None
    )


print(json.dumps(subjects.run(rebuild)))
"""

SUBJECTS = """\
import asyncio
import functools


class Base:
    def m(self):
        return "base"


class Child(Base):
    @functools.cache
    def m(self):
        return "child+" + super().m()

    def private(self):
        self.__secret = 5
        return f"{self.__secret}/{self.__class__.__name__}"


def make(k):
    return [lambda x: x * k, lambda x: x + k], lambda: {i: [k] * i for i in range(k)}


async def coro(x):
    await asyncio.sleep(0)
    return x


def gen(n):
    yield from range(n)


def run(rebuild):
    (times, plus), table = make(2)
    child = Child()
    return [
        rebuild(Child.m.__wrapped__)(child),
        rebuild(Child.private)(child),
        rebuild(times)(5),
        rebuild(plus)(5),
        rebuild(table)(),
        asyncio.run(rebuild(coro)(7)),
        list(rebuild(gen)(3)),
    ]
"""


@pytest.mark.parametrize("python", SENDERS, ids=_name)
def test_sender_on_other_interpreters(python, tmp_path):
    if not os.path.exists(python):
        pytest.skip(f"{python} is not installed")
    (tmp_path / "subjects.py").write_text(SUBJECTS)
    source_path = ROOT / "python" / "satchel" / "_source.py"
    proc = subprocess.run(
        [python, "-I", "-S", "-c", _SENDER_CHILD, BOOT_SOURCE, str(source_path), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [
        "child+base",
        "5/Child",
        10,
        7,
        {"0": [], "1": [2]},
        7,
        [0, 1, 2],
    ]
