"""Live generators: suspended generators, coroutines and async generators travel by their frame
(nonportable mode) and plain ``pickle.loads`` in a fresh process resumes them.

Method: each test builds its generator inside the test function (so satchel ships the function
by value), advances it, dumps it, then runs the same operations on the original here (after
the dump) and on the restored copy in a child, and compares the two records. The driver that
applies the operations is itself a local function (``_driver()``), shipped in the same stream
as the generator and the operations, so every object the operations mention is the same
object the generator holds after loading (one pickle memo)."""

import asyncio
import gc
import inspect
import io
import os
import pickle
import subprocess
import sys
import threading

import pytest

import satchel
from conftest import ChildError, child_eval_bytes, run_script

pytestmark = pytest.mark.skipif(
    not satchel._satchel.LIVE_GENERATORS.startswith("cpython-"),
    reason=f"live generators: {satchel._satchel.LIVE_GENERATORS}",
)

SATCHEL_PATH = os.path.dirname(os.path.dirname(os.path.abspath(satchel.__file__)))
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEBIAN_311 = "/usr/bin/python3.11"


# ---------------------------------------------------------------------------------------------
# The driver and the comparison
# ---------------------------------------------------------------------------------------------


def _driver():
    """``drive(gen, ops, pending=None)``, built here so that it is local and travels by value.

    Operations and what each records:

    - ``("next",)``, ``("send", v)``, ``("throw", exc)``: ``("yield", value)``,
      ``("return", StopIteration.value)`` or ``("raise", type name, str(exc))``;
    - ``("close",)``: ``("close", result)`` (or a raise);
    - ``("check", fn)``: ``("check", fn(gen))``; ``("probe", fn, obj)``: ``("probe", fn(obj))``;
    - async generators: ``("asend", v)`` starts ``gen.asend(v)``; ``("resume", v)`` sends ``v``
      into the awaitable left pending by the previous step (or, when there is none, as in a
      restored generator suspended on an ``await``, into a fresh ``gen.asend(v)``). They record
      ``("yield", value)``, ``("await", what the inner await yielded)`` or ``("stop",)``.
    """

    def drive(gen, ops, pending=None):
        out = []
        for op in ops:
            kind = op[0]
            try:
                if kind == "next":
                    value = next(gen) if hasattr(gen, "__next__") else gen.send(None)
                    out.append(("yield", value))
                elif kind == "send":
                    out.append(("yield", gen.send(op[1])))
                elif kind == "throw":
                    out.append(("yield", gen.throw(op[1])))
                elif kind == "close":
                    out.append(("close", gen.close()))
                elif kind == "check":
                    out.append(("check", op[1](gen)))
                elif kind == "probe":
                    out.append(("probe", op[1](op[2])))
                elif kind in ("asend", "resume"):
                    if kind == "resume" and pending is not None:
                        awaitable, arg = pending, op[1]
                    else:
                        awaitable, arg = gen.asend(op[1]), None
                    pending = None
                    try:
                        value = awaitable.send(arg)
                    except StopIteration as stop:
                        out.append(("yield", stop.value))
                    except StopAsyncIteration:
                        out.append(("stop",))
                    else:
                        pending = awaitable
                        out.append(("await", value))
                else:
                    raise AssertionError(f"unknown op {op!r}")
            except StopIteration as stop:
                out.append(("return", stop.value))
            except Exception as exc:
                out.append(("raise", type(exc).__name__, str(exc)))
        return out

    return drive


def _compare(gen, ops, pending=None):
    """Dump ``gen`` (with the driver and ``ops``), run ``ops`` on the original here, then on the
    restored one in a fresh process; both records must be equal. Returns the record."""
    drive = _driver()
    payload = satchel.dumps((gen, drive, ops))
    expected = drive(gen, ops, pending)
    restored = child_eval_bytes(payload, "obj[1](obj[0], obj[2])")
    assert restored == expected
    return restored


def _lineno():
    """``gen -> gen.gi_frame.f_lineno``, local so that it travels by value."""
    return lambda g: g.gi_frame.f_lineno


# ---------------------------------------------------------------------------------------------
# Plain generators: locals, arguments, loops
# ---------------------------------------------------------------------------------------------


def test_plain_locals():
    def gen(a):
        x = a * 2
        name = "n"
        y = yield x
        z = yield (name, x, y)
        yield (x, y, z, name * 3)

    g = gen(5)
    assert next(g) == 10
    ops = [("send", "Y"), ("send", [1, 2]), ("next",), ("next",)]
    assert _compare(g, ops) == [
        ("yield", ("n", 10, "Y")),
        ("yield", (10, "Y", [1, 2], "nnn")),
        ("return", None),
        ("return", None),
    ]


def test_not_started():
    def gen(a, b):
        yield a
        yield b
        return a + b

    g = gen(3, 4)
    ops = [("check", inspect.getgeneratorstate), ("next",), ("next",), ("next",)]
    assert _compare(g, ops) == [
        ("check", "GEN_CREATED"),
        ("yield", 3),
        ("yield", 4),
        ("return", 7),
    ]


def test_args_kwargs_keyword_only_defaults():
    def gen(a, b=20, *rest, c, d=40, **kw):
        yield (a, b, rest, c, d, sorted(kw.items()))
        a += 1
        extra = yield (a, len(rest))
        yield (a, b, rest, c, d, kw, extra)

    ops = [("next",), ("send", "E"), ("next",)]
    # not started: the arguments live in the frame's slots
    _compare(gen(1, 2, 3, 4, c=5, z=6), [("next",), *ops])
    _compare(gen(1, c=5), [("next",), *ops])
    # started
    g = gen(1, 2, 3, c=5, y=7, x=8)
    next(g)
    assert _compare(g, ops) == [
        ("yield", (2, 1)),
        ("yield", (2, 2, (3,), 5, 40, {"y": 7, "x": 8}, "E")),
        ("return", None),
    ]


def test_for_over_range_and_line_number():
    def gen(n):
        total = 0
        for i in range(n):
            total += i
            yield (i, total)
        return total

    g = gen(6)
    next(g), next(g)
    line = g.gi_frame.f_lineno
    record = _compare(g, [("check", _lineno()), *[("next",)] * 5])
    assert record[0] == ("check", line)
    assert record[-2:] == [("yield", (5, 15)), ("return", 15)]


def test_nested_c_iterators():
    def gen(letters):
        for i, (n, ch) in enumerate(zip(range(100, 200, 10), letters)):
            got = yield (i, n, ch)
            if got:
                yield ("got", got)

    g = gen("abcdefg")
    next(g), next(g)
    ops = [("send", "s"), ("next",), ("next",), ("next",), ("next",), ("next",), ("next",)]
    assert _compare(g, ops)[:3] == [
        ("yield", ("got", "s")),
        ("yield", (2, 120, "c")),
        ("yield", (3, 130, "d")),
    ]


def test_nested_for_loops():
    def gen(rows, cols):
        for r in range(rows):
            for c in cols:
                yield (r, c)
            yield ("end of row", r)

    g = gen(3, ["x", "y"])
    for _ in range(4):
        next(g)
    assert _compare(g, [("next",)] * 7)[:3] == [
        ("yield", (1, "y")),
        ("yield", ("end of row", 1)),
        ("yield", (2, "x")),
    ]


def test_while_loop_mutating_a_list():
    def gen(items):
        seen = []
        while items:
            item = items.pop()
            seen.append(item)
            reply = yield (item, len(items))
            if reply is not None:
                items.append(reply)
        yield seen

    work = [1, 2, 3]
    g = gen(work)
    next(g)
    ops = [("send", "extra"), ("next",), ("next",), ("next",), ("next",), ("probe", list, work)]
    assert _compare(g, ops) == [
        ("yield", ("extra", 2)),
        ("yield", (2, 1)),
        ("yield", (1, 0)),
        ("yield", [3, "extra", 2, 1]),
        ("return", None),
        ("probe", []),
    ]


def test_send_driven_accumulator():
    def accumulator():
        total = 0
        history = []
        while True:
            value = yield total
            if value is None:
                return (total, history)
            history.append(value)
            total += value

    g = accumulator()
    next(g)
    g.send(5)
    assert _compare(g, [("send", 10), ("send", -3), ("next",)]) == [
        ("yield", 15),
        ("yield", 12),
        ("return", (12, [5, 10, -3])),
    ]


def test_generator_holding_a_partly_consumed_generator():
    def gen():
        source = (ch.upper() for ch in "abcdef")
        next(source)
        first = next(source)
        yield first
        yield list(source)

    g = gen()
    assert next(g) == "B"
    ops = [("check", lambda g: type(g.gi_frame.f_locals["source"]).__name__), ("next",)]
    assert _compare(g, ops) == [("check", "generator"), ("yield", ["C", "D", "E", "F"])]


def test_generator_expression():
    k = 3
    g = (k * x for x in range(6) if x % 2)
    assert next(g) == 3
    ops = [("check", lambda g: (g.__name__, g.__qualname__)), ("next",), ("next",), ("next",)]
    assert _compare(g, ops) == [
        ("check", ("<genexpr>", "test_generator_expression.<locals>.<genexpr>")),
        ("yield", 9),
        ("yield", 15),
        ("return", None),
    ]


def test_name_and_state_attributes_preserved():
    def gen():
        yield 1
        yield 2

    g = gen()
    next(g)
    g.__name__ = "renamed"
    ops = [
        ("check", lambda g: (type(g).__name__, g.__name__, g.__qualname__)),
        ("check", inspect.getgeneratorstate),
        ("check", lambda g: (g.gi_running, g.gi_suspended, g.gi_code.co_name)),
        ("next",),
    ]
    assert _compare(g, ops) == [
        (
            "check",
            ("generator", "renamed", "test_name_and_state_attributes_preserved.<locals>.gen"),
        ),
        ("check", "GEN_SUSPENDED"),
        ("check", (False, True, "gen")),
        ("yield", 2),
    ]


def test_warmed_up_quickened_code():
    def make():
        def gen(n):
            total = 0
            acc = []
            for i in range(n):
                total += i * 2
                acc.append(total)
                if total % 3 == 0:
                    yield (i, total, len(acc))
            return total

        return gen

    gen = make()
    for _ in range(3000):  # far past the adaptive interpreter's warm-up counters
        for _ in gen(20):
            pass
    code = gen.__code__
    if hasattr(code, "_co_code_adaptive"):
        assert code._co_code_adaptive != code.co_code, "the code was not specialised"
    g = gen(40)
    next(g), next(g), next(g)
    record = _compare(g, [("check", _lineno())] + [("next",)] * 30)
    assert ("return", 1560) in record


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is new in Python 3.12")
def test_under_sys_monitoring():
    mon = sys.monitoring
    tool = next(t for t in range(6) if mon.get_tool(t) is None)
    events = []
    mon.use_tool_id(tool, "satchel-tests")
    try:
        mon.register_callback(
            tool, mon.events.PY_YIELD, lambda code, off, value: events.append("yield")
        )
        mon.register_callback(tool, mon.events.PY_RESUME, lambda code, off: events.append("resume"))
        mon.set_events(tool, mon.events.PY_YIELD | mon.events.PY_RESUME)

        def gen(n):
            for i in range(n):
                got = yield i
                if got:
                    yield ("got", got)

        g = gen(5)
        next(g), next(g)
        record = _compare(g, [("check", _lineno()), ("send", "s"), ("next",), ("next",), ("next",)])
        assert "yield" in events and "resume" in events
    finally:
        mon.set_events(tool, 0)
        mon.register_callback(tool, mon.events.PY_YIELD, None)
        mon.register_callback(tool, mon.events.PY_RESUME, None)
        mon.free_tool_id(tool)
    assert record[1:] == [("yield", ("got", "s")), ("yield", 2), ("yield", 3), ("yield", 4)]


# ---------------------------------------------------------------------------------------------
# with, except, finally
# ---------------------------------------------------------------------------------------------


def _recorder_class():
    class Recorder:
        """A context manager that records its calls."""

        def __init__(self):
            self.calls = []

        def __enter__(self):
            self.calls.append("enter")
            return self

        def __exit__(self, exc_type, exc, tb):
            self.calls.append(("exit", exc_type.__name__ if exc_type else None, str(exc)))
            return isinstance(exc, KeyError)  # swallows KeyError only

    return Recorder


def test_inside_with_close_after_resume_calls_exit():
    def gen(cm):
        with cm:
            yield "in"
            yield "still in"
        yield "out"

    cm = _recorder_class()()
    g = gen(cm)
    next(g)
    ops = [
        ("check", lambda g: list(g.gi_frame.f_locals["cm"].calls)),
        ("next",),
        ("close",),
        ("check", inspect.getgeneratorstate),
        ("probe", lambda cm: cm.calls, cm),  # the same object as the generator's local
    ]
    assert _compare(g, ops) == [
        ("check", ["enter"]),
        ("yield", "still in"),
        ("close", None),
        ("check", "GEN_CLOSED"),
        ("probe", ["enter", ("exit", "GeneratorExit", "")]),
    ]


def test_inside_with_exit_sees_thrown_exceptions():
    def gen(cm):
        with cm:
            yield "in"
            yield "still in"
        yield list(cm.calls)
        with cm:
            yield "again"

    cm = _recorder_class()()
    g = gen(cm)
    next(g)
    ops = [("throw", KeyError("swallowed")), ("next",), ("throw", ValueError("escapes"))]
    assert _compare(g, ops) == [
        ("yield", ["enter", ("exit", "KeyError", "'swallowed'")]),
        ("yield", "again"),
        ("raise", "ValueError", "escapes"),
    ]


def test_in_except_handler_exc_info_after_resume():
    def gen():
        try:
            raise ValueError("boom")
        except ValueError as err:
            yield "handling"
            yield (repr(sys.exc_info()[1]), sys.exc_info()[0].__name__, sys.exc_info()[1] is err)
            try:
                raise KeyError("inner")
            except KeyError as inner:
                yield (repr(inner.__context__), inner.__context__ is err)
            yield repr(sys.exc_info()[1])
        yield sys.exc_info()

    g = gen()
    assert next(g) == "handling"
    ops = [("check", lambda g: sys.exc_info())] + [("next",)] * 5
    assert _compare(g, ops) == [
        ("check", (None, None, None)),
        ("yield", ("ValueError('boom')", "ValueError", True)),
        ("yield", ("ValueError('boom')", True)),
        ("yield", "ValueError('boom')"),
        ("yield", (None, None, None)),
        ("return", None),
    ]


def test_bare_raise_after_resume():
    def gen():
        try:
            {}["lost key"]
        except KeyError:
            yield "caught"
            raise

    g = gen()
    next(g)
    assert _compare(g, [("next",), ("next",)]) == [
        ("raise", "KeyError", "'lost key'"),
        ("return", None),
    ]


def test_handled_exception_keeps_its_chain():
    def gen():
        try:
            try:
                raise KeyError("first")
            except KeyError:
                raise ValueError("second")  # noqa: B904 (the implicit chain is the point)
        except ValueError as err:
            yield "handling"
            yield (repr(err.__context__), repr(sys.exc_info()[1].__context__))

    g = gen()
    next(g)
    assert _compare(g, [("next",)]) == [("yield", ("KeyError('first')", "KeyError('first')"))]


def test_try_finally_runs_once_in_the_receiver():
    def gen(log):
        try:
            yield 1
            yield 2
        finally:
            log.append("finally")
        yield list(log)

    log = []
    g = gen(log)
    next(g)
    payload_ops = [("next",), ("next",), ("next",), ("probe", list, log)]
    assert _compare(g, payload_ops) == [
        ("yield", 2),
        ("yield", ["finally"]),
        ("return", None),
        ("probe", ["finally"]),
    ]
    assert log == ["finally"]  # the original ran its own finally once; dumping ran none

    log = []
    g = gen(log)
    next(g)
    satchel.dumps(g)
    assert log == []
    # closed while suspended in the try: the finally runs once, at close
    assert _compare(g, [("close",), ("probe", list, log), ("next",)]) == [
        ("close", None),
        ("probe", ["finally"]),
        ("return", None),
    ]


# ---------------------------------------------------------------------------------------------
# yield from, closures, free variables
# ---------------------------------------------------------------------------------------------


def test_yield_from_with_send():
    def averager():
        total = count = 0
        while True:
            try:
                x = yield (total / count if count else None)
            except ValueError as exc:
                yield ("sub caught", str(exc))
                continue
            if x is None:
                return (total, count)
            total += x
            count += 1

    def gen():
        result = yield from averager()
        yield ("result", result)

    g = gen()
    next(g)
    g.send(10)
    line = g.gi_frame.f_lineno
    ops = [
        ("check", lambda g: g.gi_yieldfrom.__name__ if g.gi_yieldfrom is not None else None),
        ("probe", lambda pair: pair[0].gi_yieldfrom is pair[1], (g, g.gi_yieldfrom)),
        ("check", _lineno()),
        ("send", 20),
        ("throw", ValueError("bad")),
        ("send", 30),
        ("next",),
        ("check", lambda g: g.gi_yieldfrom),
        ("next",),
    ]
    assert _compare(g, ops) == [
        ("check", "averager"),
        ("probe", True),
        ("check", line),
        ("yield", 15.0),
        ("yield", ("sub caught", "bad")),
        ("yield", 15.0),  # the value sent after the sub's own yield is discarded
        ("yield", ("result", (30, 2))),
        ("check", None),
        ("return", None),
    ]


def test_closure_cell_shared_with_inner_function():
    def gen():
        hits = 0

        def bump(k=1):
            nonlocal hits
            hits += k
            return hits

        yield bump
        while True:
            yield hits

    g = gen()
    bump = next(g)
    bump()
    assert next(g) == 1
    ops = [
        ("probe", lambda f: f(5), bump),  # the yielded inner function, from the same stream
        ("next",),
        ("check", lambda g: g.gi_frame.f_locals["bump"](10)),  # the same function, as a local
        ("next",),
        ("probe", lambda f: f.__closure__[0].cell_contents, bump),
    ]
    assert _compare(g, ops) == [
        ("probe", 6),
        ("yield", 6),
        ("check", 16),
        ("yield", 16),
        ("probe", 16),
    ]


def test_generator_with_free_variables():
    def outer(base, scale):
        calls = 0

        def gen(n):
            nonlocal calls
            for i in range(n):
                calls += 1
                yield base + i * scale

        def peek():
            return calls

        return gen, peek

    gen, peek = outer(100, 3)
    g = gen(5)
    next(g), next(g)
    ops = [("next",), ("probe", lambda p: p(), peek), ("next",), ("next",), ("next",)]
    assert _compare(g, ops) == [
        ("yield", 106),
        ("probe", 3),
        ("yield", 109),
        ("yield", 112),
        ("return", None),
    ]


# ---------------------------------------------------------------------------------------------
# Identity: self references, sharing between generators
# ---------------------------------------------------------------------------------------------


def test_self_reference_in_a_list_local():
    def gen():
        me = []
        yield "ready"
        while True:
            yield len(me)

    g = gen()
    next(g)
    g.gi_frame.f_locals["me"].append(g)  # the dict is a snapshot; the list is the frame's own
    ops = [("check", lambda g: g.gi_frame.f_locals["me"][0] is g), ("next",)]
    assert _compare(g, ops) == [("check", True), ("yield", 1)]


def test_self_reference_in_a_local():
    def gen():
        me = yield "send me myself"
        while True:
            yield me.gi_running  # True: it is the running generator itself

    g = gen()
    next(g)
    assert g.send(g) is True
    ops = [("check", lambda g: g.gi_frame.f_locals["me"] is g), ("next",)]
    assert _compare(g, ops) == [("check", True), ("yield", True)]


def test_two_generators_sharing_a_cell_and_a_list():
    def pair():
        shared = []
        n = 0

        def producer():
            nonlocal n
            while True:
                n += 1
                shared.append(n)
                yield n

        def watcher():
            while True:
                yield (n, list(shared))

        return producer(), watcher()

    producer, watcher = pair()
    next(producer), next(watcher)
    ops = [("next",), ("next",), ("probe", next, watcher), ("next",), ("probe", next, watcher)]
    assert _compare(producer, ops) == [
        ("yield", 2),
        ("yield", 3),
        ("probe", (3, [1, 2, 3])),
        ("yield", 4),
        ("probe", (4, [1, 2, 3, 4])),
    ]


# ---------------------------------------------------------------------------------------------
# Coroutines and async generators (driven by hand: no event loop)
# ---------------------------------------------------------------------------------------------


def _awaitables():
    class Wait:
        """A generator-based awaitable: ``__await__`` is a generator function."""

        def __init__(self, tag):
            self.tag = tag

        def __await__(self):
            value = yield ("waiting", self.tag)
            return (self.tag, value)

    async def inner(k):
        a = await Wait(k)
        b = await Wait(k + 1)
        return [a, b]

    return Wait, inner


def test_coroutine_driven_by_send():
    Wait, inner = _awaitables()

    async def outer():
        r = await inner(1)
        s = await Wait("x")
        return r, s

    c = outer()
    assert c.send(None) == ("waiting", 1)
    ops = [
        ("check", lambda c: (type(c).__name__, c.cr_await.__qualname__, c.cr_frame.f_lineno)),
        ("check", inspect.getcoroutinestate),
        ("send", "v1"),
        ("send", "v2"),
        ("send", "v3"),
        ("check", inspect.getcoroutinestate),
    ]
    record = _compare(c, ops)
    assert record[0][1][:2] == ("coroutine", "_awaitables.<locals>.inner")
    assert record[1:] == [
        ("check", "CORO_SUSPENDED"),
        ("yield", ("waiting", 2)),
        ("yield", ("waiting", "x")),
        ("return", ([(1, "v1"), (2, "v2")], ("x", "v3"))),
        ("check", "CORO_CLOSED"),
    ]


def test_coroutine_not_started():
    Wait, inner = _awaitables()

    async def outer(k, *, label):
        return (label, await inner(k))

    c = outer(5, label="L")
    ops = [("check", inspect.getcoroutinestate), ("next",), ("send", "a"), ("send", "b")]
    assert _compare(c, ops) == [
        ("check", "CORO_CREATED"),
        ("yield", ("waiting", 5)),
        ("yield", ("waiting", 6)),
        ("return", ("L", [(5, "a"), (6, "b")])),
    ]


def test_coroutine_throw_into_awaited_chain():
    Wait, _ = _awaitables()

    async def outer():
        try:
            await Wait("a")
        except KeyError as exc:
            got = await Wait(("recovered", str(exc)))
            return got

    c = outer()
    c.send(None)
    assert _compare(c, [("throw", KeyError("k")), ("send", "done")]) == [
        ("yield", ("waiting", ("recovered", "'k'"))),
        ("return", (("recovered", "'k'"), "done")),
    ]


def test_coroutine_awaiting_a_coroutine_wrapper():
    Wait, _ = _awaitables()

    async def leaf():
        return await Wait("leaf")

    class ViaWrapper:
        def __await__(self):
            return leaf().__await__()  # a coroutine_wrapper

    async def outer():
        v = await ViaWrapper()
        return ("outer", v)

    c = outer()
    assert c.send(None) == ("waiting", "leaf")
    assert type(c.cr_await).__name__ == "coroutine_wrapper"
    ops = [("check", lambda c: type(c.cr_await).__name__), ("send", 9)]
    assert _compare(c, ops) == [("check", "coroutine_wrapper"), ("return", ("outer", ("leaf", 9)))]


def test_async_generator_suspended_on_an_await():
    Wait, inner = _awaitables()

    async def agen():
        x = await Wait("a")
        y = yield ("got", x)
        z = await inner(10)
        yield (y, z)

    ag = agen()
    pending = ag.asend(None)
    assert pending.send(None) == ("waiting", "a")
    ops = [
        ("check", lambda ag: (type(ag).__name__, ag.ag_await is not None, ag.ag_frame.f_lineno)),
        ("resume", "A"),  # the original: its pending asend; the restored one: a fresh asend
        ("asend", "Y"),
        ("resume", "B"),
        ("resume", "C"),
        ("asend", None),
        ("asend", None),
    ]
    record = _compare(ag, ops, pending=pending)
    assert record[0][1][:2] == ("async_generator", True)
    assert record[1:] == [
        ("yield", ("got", ("a", "A"))),
        ("await", ("waiting", 10)),
        ("await", ("waiting", 11)),
        ("yield", ("Y", [(10, "B"), (11, "C")])),
        ("stop",),
        ("stop",),
    ]


def test_async_generator_suspended_at_a_yield():
    Wait, _ = _awaitables()

    async def agen(n):
        for i in range(n):
            got = yield i
            if got is not None:
                yield ("echo", await Wait(got))

    ag = agen(3)
    with pytest.raises(StopIteration):
        ag.asend(None).send(None)
    ops = [
        ("check", lambda ag: (ag.ag_await, ag.ag_frame.f_lineno)),
        ("asend", "hi"),
        ("resume", "there"),
        ("asend", None),
        ("asend", None),
        ("asend", None),
    ]
    record = _compare(ag, ops)
    assert record[1:] == [
        ("await", ("waiting", "hi")),
        ("yield", ("echo", ("hi", "there"))),
        ("yield", 1),
        ("yield", 2),
        ("stop",),
    ]


# ---------------------------------------------------------------------------------------------
# Finished and closed
# ---------------------------------------------------------------------------------------------

_FINISHED_OPS = [
    ("check", lambda g: (type(g).__name__, g.__name__, g.__qualname__)),
    ("next",),
    ("close",),
    ("throw", ValueError("late")),
]


def test_finished_generator():
    def gen():
        yield 1

    g = gen()
    list(g)
    assert _compare(g, _FINISHED_OPS) == [
        ("check", ("generator", "gen", "test_finished_generator.<locals>.gen")),
        ("return", None),
        ("close", None),
        ("raise", "ValueError", "late"),
    ]


def test_closed_generator():
    def gen():
        try:
            yield 1
            yield 2
        finally:
            pass

    g = gen()
    next(g)
    g.close()
    record = _compare(g, [*_FINISHED_OPS, ("check", inspect.getgeneratorstate)])
    assert record[0] == ("check", ("generator", "gen", "test_closed_generator.<locals>.gen"))
    assert record[1] == ("return", None)
    assert record[-1] == ("check", "GEN_CLOSED")


def test_finished_coroutine():
    async def coro():
        return 5

    c = coro()
    with pytest.raises(StopIteration):
        c.send(None)
    ops = [
        ("check", lambda c: (type(c).__name__, c.__name__, c.__qualname__)),
        ("check", inspect.getcoroutinestate),
        ("next",),
    ]
    assert _compare(c, ops) == [
        ("check", ("coroutine", "coro", "test_finished_coroutine.<locals>.coro")),
        ("check", "CORO_CLOSED"),
        ("raise", "RuntimeError", "cannot reuse already awaited coroutine"),
    ]


def test_finished_async_generator():
    async def agen():
        yield 1

    ag = agen()
    for _ in range(2):
        try:
            ag.asend(None).send(None)
        except (StopIteration, StopAsyncIteration):
            pass
    ops = [("check", lambda g: (type(g).__name__, g.__name__, g.__qualname__)), ("asend", None)]
    assert _compare(ag, ops) == [
        ("check", ("async_generator", "agen", "test_finished_async_generator.<locals>.agen")),
        ("stop",),
    ]


# ---------------------------------------------------------------------------------------------
# Dumping errors (in-process)
# ---------------------------------------------------------------------------------------------


def _dump_error(obj, **kwargs):
    with pytest.raises(satchel.PicklingError) as info:
        satchel.dumps(obj, **kwargs)
    assert isinstance(info.value, pickle.PicklingError)
    return str(info.value)


def test_running_generator_pickled_from_inside_itself():
    def gen():
        me = yield
        try:
            satchel.dumps(me)
        except pickle.PicklingError as exc:
            yield str(exc)

    g = gen()
    next(g)
    message = g.send(g)
    assert "running" in message
    assert "test_running_generator_pickled_from_inside_itself.<locals>.gen" in message


def test_unpicklable_local_lock():
    def gen():
        guard = threading.Lock()
        yield guard.locked()
        yield "after"

    g = gen()
    next(g)
    message = _dump_error(g)
    assert "test_unpicklable_local_lock.<locals>.gen" in message
    assert "'guard'" in message
    assert "_thread.lock" in message
    assert next(g) == "after"  # the failed dump left it alone


def test_unpicklable_local_open_file():
    def gen():
        # Write-only: a file open for reading travels as its contents (tests/test_file.py).
        with open(os.devnull, "w") as handle:
            yield handle.closed

    g = gen()
    next(g)
    message = _dump_error(g)
    assert "test_unpicklable_local_open_file.<locals>.gen" in message
    assert "'handle'" in message
    assert "TextIOWrapper" in message
    g.close()


def test_suspended_inside_with_lock():
    def gen():
        with threading.Lock():  # only the value stack holds it (the bound __exit__)
            yield 1

    g = gen()
    next(g)
    message = _dump_error(g)
    assert "test_suspended_inside_with_lock.<locals>.gen" in message
    assert "_thread.lock" in message
    assert "stack" in message
    g.close()


def test_suspended_inside_with_closure_lock():
    lock = threading.Lock()

    def gen():
        with lock:
            yield lock.locked()

    g = gen()
    assert next(g) is True
    message = _dump_error(g)
    assert "test_suspended_inside_with_closure_lock.<locals>.gen" in message
    assert "_thread.lock" in message
    g.close()
    assert not lock.locked()


def test_portable_mode_refuses_a_started_generator():
    def gen():
        yield 1
        yield 2

    g = gen()
    next(g)
    message = _dump_error(g, mode="portable")
    assert "portable" in message
    assert f"line {g.gi_frame.f_lineno}" in message
    assert "test_portable_mode_refuses_a_started_generator.<locals>.gen" in message
    assert next(g) == 2


def test_coroutine_awaiting_an_asyncio_future():
    loop = asyncio.new_event_loop()
    try:
        future = loop.create_future()

        async def waiter():
            return await future

        c = waiter()
        assert c.send(None) is future  # suspended on the Future
        message = _dump_error(c)
        assert "Future" in message
        assert "test_coroutine_awaiting_an_asyncio_future.<locals>.waiter" in message
        c.close()
    finally:
        loop.close()


def test_coroutine_awaiting_a_coroutine_that_awaits_an_asyncio_future():
    loop = asyncio.new_event_loop()
    try:
        future = loop.create_future()

        async def inner():
            return await future

        async def outer():
            return await inner()

        c = outer()
        assert c.send(None) is future
        message = _dump_error(c)
        assert "Future" in message
        assert "inner" in message
        c.close()
    finally:
        loop.close()


# ---------------------------------------------------------------------------------------------
# Loading errors: a tampered frame state is refused, never a crash (each in its own process)
# ---------------------------------------------------------------------------------------------

_TAMPER = r"""
import io, pickle, sys
import satchel

def counter(a):
    x = 1

    def peek():
        return x

    for i in range(3):
        y = yield a + i + x
    return "done"

g = counter(10)
next(g)
skeleton_of, (func, code), state, _, _, _ = satchel.Pickler(io.BytesIO()).reducer_override(g)
resume = sys.modules[satchel._satchel.BOOTSTRAP_MODULE_NAME]._resume_generator
good = skeleton_of(func, code)
resume(good, state)
assert list(good) == [12, 13], "the untouched state must resume"
skeleton = skeleton_of(func, code)
s = list(state)
exec(sys.argv[1])
bad = tuple(s) if isinstance(s, list) else s
try:
    resume(skeleton, bad)
except pickle.UnpicklingError as exc:
    print("UnpicklingError:", exc)
except Exception as exc:
    print("other:", type(exc).__name__, exc)
else:
    print("accepted:", list(skeleton), flush=True)
"""


@pytest.mark.parametrize(
    "mutation",
    [
        pytest.param("s[2] += 2", id="offset+2"),
        pytest.param("s[2] = 10**9", id="offset-huge"),
        pytest.param("s[2] = 2**64 + s[2]", id="offset-past-usize"),
        pytest.param("s[2] = 2**63 + s[2]", id="offset-wraps"),
        pytest.param("s[2] = -2", id="offset-negative"),
        pytest.param("s[4] = s[4] + (None,) * 10_000", id="stack-10000-more"),
        pytest.param("s[4] = s[4][: s[3] - 1]", id="fewer-slots-than-locals"),
        pytest.param("s[4] = list(s[4])", id="slots-not-a-tuple"),
        pytest.param("s[0] = 'cpython-3.99'", id="layout-tag"),
        pytest.param("s[0] = 311", id="layout-not-a-string"),
        pytest.param("s[3] += 1", id="nlocalsplus+1"),
        pytest.param("s[3] -= 1", id="nlocalsplus-1"),
        pytest.param("s[1] = 0", id="state-created-at-a-yield"),
        pytest.param("s[1] = 7", id="state-unknown"),
        pytest.param("s = s[:5]", id="too-short"),
        pytest.param(
            "s[5] = (0,)",
            id="tagged-int-before-3.14",
            marks=pytest.mark.skipif(sys.version_info >= (3, 14), reason="3.14 tags ints"),
        ),
        pytest.param("s = 'not a tuple'", id="state-not-a-tuple"),
        pytest.param("s[4] = s[4] + (None,)", id="stack-one-more"),
        pytest.param("s[4] = s[4][:-1]", id="stack-one-less"),
        pytest.param("s[7] = 42", id="saved-exception-not-an-exception"),
        pytest.param(
            "s[4] = tuple(42 if type(v).__name__ == 'cell' else v for v in s[4])",
            id="cell-slot-without-a-cell",
        ),
        pytest.param(
            "s[6] = tuple(i for i, v in enumerate(s[4]) if type(v).__name__ == 'cell')",
            id="null-in-a-cell-slot",
        ),
        pytest.param("s[1] = 0", id="created-state-as-a-frame"),
        pytest.param(
            "s[1] = 2",
            id="yield-from-state-at-a-plain-yield",
            marks=pytest.mark.skipif(
                sys.version_info < (3, 13), reason="3.11/3.12 have one suspended state"
            ),
        ),
    ],
)
def test_tampered_frame_state_is_refused(mutation):
    try:
        out = run_script(_TAMPER, mutation).decode()
    except ChildError as exc:
        pytest.fail(f"the child crashed: {exc}")
    assert out.startswith("UnpicklingError:"), out
    assert "cannot resume the suspended generator" in out


# ---------------------------------------------------------------------------------------------
# Receivers: stdlib only (standalone streams), Debian's CPython 3.11
# ---------------------------------------------------------------------------------------------

_STDLIB_CHILD = r"""
import importlib.util, pickle, sys
assert importlib.util.find_spec("satchel") is None, "satchel is importable in this child"
try:
    obj = pickle.loads(sys.stdin.buffer.read())
    result = ("loaded", type(obj).__name__, obj.__qualname__, list(obj))
except Exception as exc:
    result = ("error", isinstance(exc, pickle.UnpicklingError), str(exc))
sys.stdout.buffer.write(pickle.dumps(result))
"""


def _stdlib_receiver(payload):
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _STDLIB_CHILD],
        input=payload,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return pickle.loads(proc.stdout)


def _countdown():
    def countdown(n):
        while n > 0:
            yield n
            n -= 1

    return countdown


def test_standalone_suspended_generator_needs_satchel():
    g = _countdown()(3)
    next(g)
    result = _stdlib_receiver(satchel.dumps(g, standalone=True))
    assert result[0] == "error"
    assert result[1] is True  # a pickle.UnpicklingError
    assert "needs satchel" in result[2]


def test_standalone_not_started_generator_loads_with_the_stdlib_only():
    g = _countdown()(3)
    result = _stdlib_receiver(satchel.dumps(g, standalone=True))
    assert result == ("loaded", "generator", "_countdown.<locals>.countdown", [3, 2, 1])


def test_standalone_finished_generator_loads_with_the_stdlib_only():
    g = _countdown()(2)
    list(g)
    result = _stdlib_receiver(satchel.dumps(g, standalone=True))
    assert result == ("loaded", "generator", "_countdown.<locals>.countdown", [])


_EVAL_CHILD = r"""
import pickle, sys
obj = pickle.loads(sys.stdin.buffer.read())
sys.stdout.buffer.write(pickle.dumps((sys.version_info[:3], obj[1](obj[0], obj[2]))))
"""


@pytest.mark.skipif(
    sys.version_info[:2] != (3, 11) or not os.path.exists(DEBIAN_311),
    reason=f"needs the venv on CPython 3.11 and {DEBIAN_311}",
)
def test_resumes_on_debian_python311():
    def gen(n):
        k = 100
        for i, pair in enumerate(zip(range(n), "abcdef")):
            x = yield (i, pair, k)
            if x:
                k += x

    g = gen(5)
    next(g), next(g)
    drive = _driver()
    ops = [("check", _lineno()), ("send", 5), ("next",), ("next",), ("next",)]
    payload = satchel.dumps((g, drive, ops))
    expected = drive(g, ops)
    env = dict(os.environ, PYTHONPATH=SATCHEL_PATH)
    proc = subprocess.run(
        [DEBIAN_311, "-c", _EVAL_CHILD],
        input=payload,
        capture_output=True,
        check=False,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    version, restored = pickle.loads(proc.stdout)
    assert version[:2] == (3, 11)  # Debian's build (3.11.2 here), not the venv's
    assert restored == expected
    assert restored[-1] == ("return", None)


# ---------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------


def test_round_trips_do_not_grow_allocated_blocks():
    def make():
        step = 3

        def counter(n):
            total = 0
            for _ in range(n):
                total += step
                yield total

        return counter

    counter = make()

    def rounds(n):
        g = counter(10**9)
        next(g)
        for i in range(n):
            g = pickle.loads(satchel.dumps(g))
            assert next(g) == 3 * (i + 2)

    rounds(1000)  # warm caches
    gc.collect()
    before = sys.getallocatedblocks()
    rounds(10_000)
    gc.collect()
    growth = sys.getallocatedblocks() - before
    assert growth < 500, growth


def test_generator_setstate_refuses_in_process():
    def gen():
        x = yield 1
        yield x

    g = gen()
    next(g)
    skeleton_of, args, state, _, _, setstate = satchel.Pickler(io.BytesIO()).reducer_override(g)
    bad = (*state[:2], state[2] + 2, *state[3:])
    for _ in range(3):
        with pytest.raises(pickle.UnpicklingError, match="not a YIELD_VALUE"):
            setstate(skeleton_of(*args), bad)


# ---------------------------------------------------------------------------------------------
# The stream says what it needs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "known"),
    [({}, True), ({"standalone": True}, True), ({"compress": True}, True)],
)
def test_inspect_says_a_suspended_generator_needs_satchel(kwargs, known):
    """inspect never decompresses, but from format 1.4 a header written after its body says
    whether it holds a started generator, so a compressed stream says so too."""

    def gen():
        yield 1
        yield 2

    started = gen()
    next(started)
    info = satchel.inspect(satchel.dumps(started, **kwargs))
    assert info["suspended_generators"] is known
    assert info["needs_satchel"] is True


def test_inspect_not_started_standalone_needs_no_satchel():
    def gen():
        yield 1

    info = satchel.inspect(satchel.dumps(gen(), standalone=True))
    assert info["suspended_generators"] is False
    assert info["needs_satchel"] is False


def test_setstate_twice_is_refused_and_the_first_stays_intact():
    out = run_script(
        """
        import io, pickle, sys
        import satchel

        def gen(a):
            for i in range(a):
                yield i

        g = gen(4)
        next(g)
        skeleton_of, (func, code), state, _, _, setstate = (
            satchel.Pickler(io.BytesIO()).reducer_override(g)
        )
        skeleton = skeleton_of(func, code)
        setstate(skeleton, state)
        try:
            setstate(skeleton, state)
        except pickle.UnpicklingError as exc:
            print("refused:", exc)
        print(list(skeleton))
        """
    ).decode()
    assert "refused: cannot resume the suspended generator" in out
    assert out.strip().endswith("[1, 2, 3]")


def test_none_and_unbound_locals_stay_apart():
    def gen():
        maybe = None
        yield 1
        yield maybe
        yield later  # noqa: F821 (unbound until after the yield: a NULL slot)
        later = 3  # noqa: F841

    g = gen()
    next(g)
    expr = "(next(obj), type(__import__('builtins').next(obj, None)).__name__)"
    try:
        result = child_eval_bytes(satchel.dumps(g), expr)
    except ChildError as exc:
        assert "UnboundLocalError" in str(exc)
    else:
        pytest.fail(f"the unbound local was bound after restore: {result}")


# ---------------------------------------------------------------------------------------------
# Frame contents: what a loaded frame holds is checked against its bytecode (satchel._frames),
# each in its own process; a refused frame names the generator, the slot and what was expected
# ---------------------------------------------------------------------------------------------

_CONTENTS = r"""
import io, pickle, sys
import satchel
from satchel import _frames

MINOR = sys.version_info[1]
exec(sys.argv[1])  # make() -> a suspended generator; edit() changes the state s
g = make()
skeleton_of, (func, code), state, _, _, _ = satchel.Pickler(io.BytesIO()).reducer_override(g)
resume = sys.modules[satchel._satchel.BOOTSTRAP_MODULE_NAME]._resume_generator
s = list(state)
nlp = s[3]
stack, local_reqs = _frames.frame_model(code, s[2])


def slot_with(pred):
    # the slots index of the first value-stack slot whose model (atoms, reqs) satisfies pred
    for i, (atoms, reqs, _, _) in enumerate(stack):
        if pred(atoms, set(reqs)):
            return nlp + i
    raise AssertionError(f"no such slot in {stack}")


def put(i, value=None, null=False, tagged=False):
    slots = list(s[4])
    slots[i] = value
    s[4] = tuple(slots)
    s[5] = tuple(sorted((set(s[5]) - {i}) | ({i} if tagged else set())))
    s[6] = tuple(sorted((set(s[6]) - {i}) | ({i} if null else set())))


edit()
skeleton = skeleton_of(func, code)
try:
    resume(skeleton, tuple(s))
except pickle.UnpicklingError as exc:
    print("UnpicklingError:", exc)
else:
    print("accepted")
    try:
        print("resumed:", skeleton.send(None))
    except BaseException as exc:
        print("raised:", type(exc).__name__)
"""

_FOR_LOOP = """
def make():
    def gen(xs):
        for x in xs:
            yield x
    g = gen(iter([1, 2, 3]))
    next(g)
    return g
"""
_PENDING_CALL = """
def make():
    def call(*args):
        return args
    def gen(a):
        return call(a, (yield))
    g = gen(1)
    next(g)
    return g
"""
_EXCEPT = """
def make():
    def gen():
        try:
            raise ValueError(1)
        except ValueError:
            yield 1
    g = gen()
    next(g)
    return g
"""
_FINALLY = """
def make():
    def gen():
        try:
            raise KeyError(1)
        finally:
            yield "cleanup"
    g = gen()
    next(g)
    return g
"""
_LIST_DISPLAY = """
def make():
    def gen(xs):
        return [*xs, (yield)]
    g = gen([1])
    next(g)
    return g
"""
_AEXIT = """
def make():
    class Step:
        def __await__(self):
            yield "step"
    class ACM:
        async def __aenter__(self):
            return self
        async def __aexit__(self, *exc):
            await Step()
            return True
    async def coro():
        async with ACM():
            raise ValueError(1)
    c = coro()
    c.send(None)
    return c
"""
_LOCAL = """
def make():
    def gen(a):
        x = a
        yield 1
        yield x
    g = gen(5)
    next(g)
    return g
"""
_YIELD_FROM_TUPLE = """
def make():
    def gen(xs):
        yield from xs
    g = gen((1, 2, 3))
    next(g)
    return g
"""


@pytest.mark.parametrize(
    "scenario, edit, expected",
    [
        pytest.param(
            _FOR_LOOP,
            "put(slot_with(lambda a, r: 'iter' in r or 'viter' in r), [1, 2, 3])",
            ["must be an iterator", "FOR_ITER at line", "it holds a 'list' object"],
            id="for-iterator-is-a-list",
        ),
        pytest.param(
            _FOR_LOOP,
            "put(slot_with(lambda a, r: 'iter' in r or 'viter' in r), null=True)",
            ["what its bytecode pushes there", "it holds NULL"],
            id="for-iterator-is-null",
        ),
        pytest.param(
            _PENDING_CALL,
            "put(slot_with(lambda a, r: a == 'n'), 5)",
            ["must be NULL, what its bytecode pushes there", "it holds the int 5"],
            id="call-null-holds-an-object",
        ),
        pytest.param(
            _PENDING_CALL,
            "put(slot_with(lambda a, r: a == 'o' and 'nn' in r), null=True)",
            ["must be an object, what its bytecode pushes there", "it holds NULL"],
            id="call-argument-is-null",
        ),
        pytest.param(
            _EXCEPT,
            "put(slot_with(lambda a, r: 'excnone' in r), 42)",
            ["must be an exception or None (POP_EXCEPT at line", "it holds the int 42"],
            id="except-previous-exception-is-an-int",
        ),
        pytest.param(
            _FINALLY,
            "put(slot_with(lambda a, r: 'exc' in r), 'boom')",
            ["must be an exception", "'str' object"],
            id="finally-exception-is-a-str",
        ),
        pytest.param(
            _LIST_DISPLAY,
            "put(slot_with(lambda a, r: 'list' in r), (1,))",
            ["must be exactly a list", "'tuple' object"],
            id="display-list-is-a-tuple",
        ),
        pytest.param(
            _AEXIT,
            "put(slot_with(lambda a, r: 'l' in a), 10**6, tagged=MINOR >= 14)",
            ["a saved offset in its code", "1000000"],
            id="saved-lasti-out-of-range",
        ),
        pytest.param(
            _AEXIT,
            "put(slot_with(lambda a, r: 'l' in a), -1, tagged=MINOR >= 14)",
            ["a saved offset in its code"],
            id="saved-lasti-negative",
        ),
        pytest.param(
            _FOR_LOOP,
            "put(slot_with(lambda a, r: 'iter' in r or 'viter' in r), 7, tagged=True)",
            ["it holds a tagged int 7"],
            id="tagged-int-for-an-object",
            marks=pytest.mark.skipif(
                sys.version_info < (3, 14), reason="3.14+ tag ints (older refuse any: above)"
            ),
        ),
    ],
)
def test_forged_frame_contents_are_refused(scenario, edit, expected):
    """A stream whose bytecode is intact but whose frame data was edited: refused before the
    frame is written (each of these crashed CPython on resume before)."""
    try:
        out = run_script(_CONTENTS, scenario + f"\ndef edit():\n    {edit}\n").decode()
    except ChildError as exc:
        pytest.fail(f"the child crashed: {exc}")
    assert out.startswith("UnpicklingError: cannot resume the suspended generator"), out
    assert " of " in out and "make.<locals>." in out, out  # names the generator
    for text in expected:
        assert text in out, out


def test_a_local_read_without_a_check_must_be_bound():
    edit = "put(code.co_varnames.index('x'), null=True)"
    out = run_script(_CONTENTS, _LOCAL + f"\ndef edit():\n    {edit}\n").decode()
    if sys.version_info >= (3, 12):
        # LOAD_FAST (unchecked since 3.12: the compiler proved x bound) would crash on NULL
        assert "local 'x' of generator 'make.<locals>.gen' must be set (not NULL)" in out, out
        assert "LOAD_FAST" in out, out
    else:
        # 3.11 checks every LOAD_FAST: the restored generator raises UnboundLocalError
        assert "accepted" in out and "raised: UnboundLocalError" in out, out


@pytest.mark.skipif(sys.version_info < (3, 15), reason="3.15 iterates lists and tuples by index")
@pytest.mark.parametrize(
    "edit, expected",
    [
        ("put(slot_with(lambda a, r: 'vindex' in r), -1, tagged=True)", "tagged int >= 0"),
        ("put(slot_with(lambda a, r: 'vsend' in r), iter([1]))", "a list, tuple, str or bytes"),
        ("put(slot_with(lambda a, r: 'vindex' in r), 1)", "NULL or a tagged int"),
    ],
)
def test_315_iteration_index_is_checked(edit, expected):
    out = run_script(_CONTENTS, _YIELD_FROM_TUPLE + f"\ndef edit():\n    {edit}\n").decode()
    assert out.startswith("UnpicklingError:"), out
    assert expected in out, out


def test_benign_edits_of_frame_data_still_resume():
    """Data the bytecode does not constrain may change: another iterator, another local."""
    edit = "put(slot_with(lambda a, r: 'iter' in r or 'viter' in r), iter([7, 8]))"
    out = run_script(_CONTENTS, _FOR_LOOP + f"\ndef edit():\n    {edit}\n").decode()
    assert "accepted" in out and "resumed: 7" in out, out


def test_frame_fuzzer_short_run_finds_no_crash(tmp_path):
    """A short seeded run of fuzz/fuzz_frames.py (make fuzz runs it longer): data-only edits of
    suspended generators' frames, each loaded with allow="data" and resumed in a fork."""
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "fuzz", "fuzz_frames.py"),
            "--count",
            "300",
            "--seed",
            "11",
            "--quiet",
            "--work",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "crash" not in proc.stdout and "hang" not in proc.stdout, proc.stdout
    assert "300 data-only mutations" in proc.stdout, proc.stdout


# ---------------------------------------------------------------------------------------------
# Bounded recursion in frame capture
# ---------------------------------------------------------------------------------------------


def test_deeply_nested_generators_in_a_small_thread_are_a_pickling_error():
    """20,000 generators each holding the next, pickled in a thread with a 512 KiB stack and the
    recursion limit raised out of the way: a PicklingError, not a stack overflow."""
    out = run_script(
        """
        import sys, threading, satchel
        sys.setrecursionlimit(10**6)
        def hold(inner):
            x = inner
            yield 1
        g = None
        for _ in range(20000):
            g = hold(g)
            next(g)
        result = []
        def dump():
            try:
                satchel.dumps(g)
                result.append("dumped")
            except satchel.PicklingError as exc:
                result.append("PicklingError: " + str(exc))
        threading.stack_size(512 * 1024)
        t = threading.Thread(target=dump)
        t.start()
        t.join()
        print(result[0])
        """
    ).decode()
    assert out.startswith("PicklingError: cannot pickle generator 'hold'"), out
    assert "too deep" in out or "deeper" in out, out


def test_a_deep_yield_from_chain_in_a_small_thread_is_a_pickling_error():
    """A 3,000-deep `yield from` chain (each frame's delegate is the next generator), pickled
    in a thread with a 512 KiB stack, the recursion limit raised: a PicklingError."""
    out = run_script(
        """
        import sys, threading, satchel
        sys.setrecursionlimit(10**6)
        def leaf():
            yield "leaf"
        def wrap(inner):
            yield (yield from inner)
        g = leaf()
        for _ in range(3000):
            g = wrap(g)
        assert next(g) == "leaf"
        result = []
        def dump():
            try:
                satchel.dumps(g)
                result.append("dumped")
            except satchel.PicklingError as exc:
                result.append("PicklingError: " + str(exc))
        threading.stack_size(512 * 1024)
        t = threading.Thread(target=dump)
        t.start()
        t.join()
        print(result[0])
        """
    ).decode()
    assert out.startswith("PicklingError: cannot pickle generator 'wrap'"), out


def test_except_star_list_is_the_frames_own_copy():
    """except*'s list of raised exceptions is checked item by item, so the frame gets its own
    copy: a stream that shares the list and appends to it after the generator was built (the
    list is half-built when the generator's state is set) cannot put a non-exception in it."""
    out = run_script(
        """
        import io, pickle, sys
        import satchel
        from satchel import _frames

        def gen():
            try:
                raise ExceptionGroup("g", [ValueError(1), TypeError(2)])
            except* ValueError:
                yield "in"

        g = gen()
        next(g)
        parts = satchel.Pickler(io.BytesIO()).reducer_override(g)
        s = list(parts[2])
        stack, _ = _frames.frame_model(parts[1][1], s[2])
        i = next(s[3] + k for k, entry in enumerate(stack) if "exclist" in entry[1])

        class Reduced:
            def __init__(self, parts):
                self.parts = parts

            def __reduce_ex__(self, protocol):
                return self.parts

        shared = [ValueError("kept")]
        slots = list(s[4])
        slots[i] = shared
        s[4] = tuple(slots)
        shared.append((Reduced(parts[:2] + (tuple(s),) + parts[3:]),))
        shared.append("not an exception")
        loaded = pickle.loads(satchel.dumps(shared))
        restored = loaded[1][0]
        try:
            print("yielded", list(restored))
        except BaseException as exc:
            print("raised", type(exc).__name__, [type(e).__name__ for e in exc.exceptions])
        """
    ).decode()
    assert "raised ExceptionGroup ['TypeError']" in out, out
