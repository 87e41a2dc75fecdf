"""Structured fuzzer: data-only edits of suspended generators' frame state.

    .venv/bin/python fuzz/fuzz_frames.py --count 20000 --seed 1   # or --seconds 120
    .venv/bin/python fuzz/run.py frames 120                       # the same, for make fuzz

Each seed is a real generator, coroutine or async generator suspended somewhere interesting
(for loops, nested loops, ``yield from``, calls with pending arguments, displays under
construction, ``with``/``async with``, try/except/finally and ``except*`` handlers, generator
expressions, awaits, comprehensions with await). Its frame state (docs/FORMAT.md, Generators)
is taken from satchel's reducer, edited as a damaged or hostile stream could without touching
the bytecode (slot values swapped for values of other types or for other slots' values, NULL
marks added and removed, 3.14+ tagged ints moved or changed, the saved exception replaced,
the offset moved to another yield, the state flipped), dumped again, and loaded with
``satchel.loads(data, allow=ALLOW)`` in a forked child, which then drives the generator
(next/send/throw/close, ``gi_yieldfrom``, ``f_locals``) and collects it. A signal on the child
is a crash; a child still running after ``--timeout`` seconds is a hang.

``ALLOW`` is the ``"data"`` preset plus the stdlib globals the seeds themselves need (their
iterators: ``builtins.iter`` and the like, printed in the summary). Altered bytecode is a
different class (fuzz/README.md): this target never changes code.

The exit status is 1 when a child crashed or hung. Crashing inputs go to WORK/findings/ with
the edits that made them (``.txt``).
"""

import argparse
import gc
import io
import os
import pathlib
import pickle
import random
import signal
import sys
import time

import satchel
from satchel import _frames

MINOR = sys.version_info[1]

# ---------------------------------------------------------------------------------------------
# Seeds: suspended generators
# ---------------------------------------------------------------------------------------------


class CM:
    """A context manager that records what happens to it."""

    def __init__(self, log):
        self.log = log

    def __enter__(self):
        self.log.append("enter")
        return self

    def __exit__(self, typ, val, tb):
        self.log.append(("exit", typ and typ.__name__))
        return False


class ACM:
    async def __aenter__(self):
        return self

    async def __aexit__(self, typ, val, tb):
        return False


class Step:
    """An awaitable whose ``__await__`` is a generator: a coroutine suspends on it."""

    def __init__(self, label):
        self.label = label

    def __await__(self):
        got = yield self.label
        return (self.label, got)


class Box:
    def __init__(self, v):
        self.v = v

    def method(self, *args, **kwargs):
        return (self.v, args, kwargs)


def call(*args, **kwargs):
    return (args, kwargs)


def sub(n):
    for i in range(n):
        got = yield ("sub", i)
        if got:
            n += 1
    return n


async def inner_coro(n):
    total = 0
    for i in range(n):
        total += await Step(i)
    return total


async def agen(n):
    for i in range(n):
        yield await Step(i)


def _seeds():
    """(name, suspended object) pairs; each is advanced to its interesting point here."""

    def start(gen, steps=1):
        gen.send(None)
        for _ in range(steps - 1):
            gen.send(1)
        return gen

    def for_list(xs):
        total = 0
        for x in xs:
            total += x
            yield total

    def for_range(n):
        for i in range(n):
            yield i * i

    def for_dict(d):
        for k in d:
            yield k, d[k]

    def nested(xs, ys):
        for x in xs:
            for y in ys:
                yield x, y

    def for_enumerate(xs):
        for i, (a, b) in enumerate(zip(xs, reversed(xs))):
            yield i, a, b

    def for_gen(n):
        for v in sub(n):  # noqa: UP028 (a for loop over a generator, on purpose)
            yield v

    def while_loop(n):
        acc = []
        while n > 0:
            acc.append(n)
            got = yield n
            n -= 1 if got is None else got
        return acc

    def delegate(n):
        got = yield from sub(n)
        yield got

    def delegate_list(xs):
        yield from xs
        yield "end"

    def pending_call(a):
        return call(a, (yield "arg"), a + 1)

    def pending_method(b):
        return b.method(1, (yield "marg"), k=2)

    def pending_star(xs):
        return call(*xs, (yield "star"), *xs)

    def pending_kw(a):
        return call(a, k=(yield "kw"), j=a)

    def pending_display(a):
        lst = [a, (yield "list"), a]
        dct = {"a": a, "b": (yield "dict")}
        st = {a, (yield "set")}
        return lst, dct, st

    def pending_binop(a, d):
        return a + (yield "lhs"), d[(yield "key")]

    def pending_fstring(a):
        return f"{a}-{(yield 'f')}-{a!r}"

    def pending_defaults(a):
        def inner(x=a, *, y=(yield "kwdefault")):
            return x, y

        return inner()

    def in_with(log):
        with CM(log) as cm:
            got = yield "in-with"
            yield cm, got

    def with_loop(log, xs):
        with CM(log):
            for x in xs:  # noqa: UP028 (a for loop inside with, on purpose)
                yield x

    def in_except(n):
        try:
            raise ValueError(n)
        except ValueError as e:
            got = yield e
            raise KeyError(got) from e

    def in_except_loop(xs):
        for x in xs:
            try:
                1 / x
            except ZeroDivisionError:
                yield "zero", x
            else:
                yield "ok", x

    def in_finally_error(n):
        try:
            raise KeyError(n)
        finally:
            yield "cleanup"

    def in_finally_normal(n):
        try:
            yield "body"
        finally:
            yield "finally"

    def in_except_star():
        try:
            raise ExceptionGroup("g", [ValueError(1), TypeError(2)])
        except* ValueError:
            yield "star-value"
        except* TypeError:
            yield "star-type"

    def nested_handlers(log):
        with CM(log):
            try:
                yield from sub(3)
            finally:
                yield "outer"

    async def coro_step(n):
        total = 0
        for i in range(n):
            total += await Step(i) is None
        return total

    async def coro_nested(n):
        return await inner_coro(n) + 1

    async def coro_async_with():
        async with ACM():
            got = await Step("in-async-with")
        return got

    async def coro_async_for(n):
        out = []
        async for v in agen(n):
            out.append(await Step(("body", v)))
        return out

    async def coro_comprehension(n):
        return [await Step(i) for i in range(n)]

    async def agen_await(n):
        for i in range(n):
            got = await Step(i)
            yield got

    def awaits(coro, steps=1):
        for _ in range(steps):
            coro.send(None)
        return coro

    def agen_at_yield(n):
        ag = agen_await(n)
        aw = ag.asend(None)
        aw.send(None)
        try:
            aw.send("sent")
        except StopIteration:
            pass
        return ag

    def agen_at_await(n):
        ag = agen_await(n)
        ag.asend(None).send(None)  # the asend in flight is dropped: running_async is cleared
        return ag

    seeds = [
        ("for_list", start(for_list([1, 2, 3, 4]))),
        ("for_range", start(for_range(6), 2)),
        ("for_dict", start(for_dict({"a": 1, "b": 2, "c": 3}))),
        ("nested", start(nested([1, 2], "abc"), 2)),
        ("for_enumerate", start(for_enumerate([1, 2, 3]))),
        ("for_gen", start(for_gen(4))),
        ("while_loop", start(while_loop(5))),
        ("delegate", start(delegate(4), 2)),
        ("delegate_list", start(delegate_list([1, 2, 3]))),
        ("delegate_tuple", start(delegate_list((1, 2, 3)))),
        ("pending_call", start(pending_call(1))),
        ("pending_method", start(pending_method(Box(3)))),
        ("pending_star", start(pending_star([1, 2]))),
        ("pending_kw", start(pending_kw(1))),
        ("pending_list", start(pending_display(1))),
        ("pending_dict", start(pending_display(1), 2)),
        ("pending_set", start(pending_display(1), 3)),
        ("pending_binop", start(pending_binop(1, {1: 2}))),
        ("pending_subscr", start(pending_binop(1, {1: 2}), 2)),
        ("pending_fstring", start(pending_fstring(1))),
        ("pending_defaults", start(pending_defaults(1))),
        ("in_with", start(in_with([]))),
        ("with_loop", start(with_loop([], [1, 2, 3]))),
        ("in_except", start(in_except(1))),
        ("in_except_loop", start(in_except_loop([1, 0, 2]), 2)),
        ("in_finally_error", start(in_finally_error(1))),
        ("in_finally_normal", start(in_finally_normal(1))),
        ("in_except_star", start(in_except_star())),
        ("nested_handlers", start(nested_handlers([]), 2)),
        ("genexpr", start(x * 2 for x in [1, 2, 3, 4])),
        ("genexpr_range", start((str(x) for x in range(5)), 2)),
        ("coro_step", awaits(coro_step(4), 2)),
        ("coro_nested", awaits(coro_nested(3))),
        ("coro_async_with", awaits(coro_async_with())),
        ("coro_async_for", awaits(coro_async_for(3), 2)),
        ("coro_comprehension", awaits(coro_comprehension(3), 2)),
        ("agen_at_yield", agen_at_yield(3)),
        ("agen_at_await", agen_at_await(3)),
    ]

    def for_str(text):
        for ch in text:  # noqa: UP028 (3.15 iterates a str by index: a tagged int)
            yield ch

    class ACMRaising:
        async def __aenter__(self):
            return self

        async def __aexit__(self, *exc):
            exc = None  # noqa: F841 (a traceback does not pickle)
            await Step("in-aexit")
            return True

    async def coro_aexit_after_error():
        async with ACMRaising():
            raise ValueError("body")
        return "swallowed"

    def match_guard(subject):
        match subject:
            case [a, b] if (yield ("guard", a)):
                return b
            case _:
                return None

    async def agen_async_for(n):
        async for v in agen(n):
            yield v * 2

    def agen_in_loop(n):
        ag = agen_async_for(n)
        aw = ag.asend(None)
        aw.send(None)
        try:
            aw.send("x")  # the inner generator yields it, the loop body yields it doubled
        except StopIteration:
            pass
        return ag

    seeds += [
        ("coro_aexit_after_error", awaits(coro_aexit_after_error())),
        ("match_guard", start(match_guard([1, 2]))),
        ("agen_async_for", agen_in_loop(3)),
        ("for_str", start(for_str("abcd"))),
        ("for_bytes", start(for_str(b"abcd"), 2)),
        ("delegate_str", start(delegate_list("xyz"))),
    ]
    if sys.version_info >= (3, 14):  # t-strings: an interpolation under construction
        ns = {}
        exec(  # noqa: S102 (3.14 syntax, which older Pythons cannot parse)
            "def pending_template(a):\n    return t'{a}-{(yield \"t\")}-{a!r:>4}'\n",
            ns,
        )
        seeds.append(("pending_template", start(ns["pending_template"](1))))
    return seeds


# ---------------------------------------------------------------------------------------------
# Frame states and their edits
# ---------------------------------------------------------------------------------------------

# STATE = (layout, state, offset, nlocalsplus, slots, tagged, nulls, exc, name, qualname)
STATE, OFFSET, NLP, SLOTS, TAGGED, NULLS, EXC = 1, 2, 3, 4, 5, 6, 7


class Reduced:
    """An object whose reduction is given: the generator's own, with an edited state."""

    def __init__(self, parts):
        self.parts = parts

    def __reduce_ex__(self, protocol):
        return self.parts


def parts_of(gen):
    return satchel.Pickler(io.BytesIO()).reducer_override(gen)


def yield_offsets(code):
    """Code-unit offsets of every YIELD_VALUE (where a frame can be suspended)."""
    import opcode

    ops = code.co_code[::2]
    return [i for i, op in enumerate(ops) if op == opcode.opmap["YIELD_VALUE"]]


def value_pool(seed_states):
    """Values to put into slots: plain data of many types, iterators, exceptions, generators,
    and the values the seeds' own frames hold (cells, delegates, exit methods)."""

    def finished():
        yield 1

    done = finished()
    list(done)
    pool = [
        0,
        -1,
        2**70,
        1.5,
        "text",
        b"bytes",
        None,
        True,
        [],
        [1, 2, 3],
        (),
        (1, 2),
        {},
        {"k": 1},
        set(),
        {1, 2},
        frozenset({3}),
        range(4),
        iter([1, 2]),
        iter(range(3)),
        iter(()),
        iter("ab"),
        ValueError("v"),
        StopIteration(7),
        GeneratorExit(),
        sub(2),
        done,
        Box(1),
        call,
    ]
    for st in seed_states:
        pool.extend(v for v in st[SLOTS] if v is not None)
        if st[EXC] is not None:
            pool.append(st[EXC])
    return pool


def mutate(rng, state, code, pool):
    """One to three data-only edits of a frame state; returns (state, [descriptions])."""
    s = list(state)
    slots, tagged, nulls = list(s[SLOTS]), set(s[TAGGED]), set(s[NULLS])
    nlp = s[NLP]
    notes = []
    units = len(code.co_code) // 2
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
        n = len(slots)
        kind = rng.choice(
            (
                "swap-type",
                "swap-type",
                "swap-type",
                "swap-slots",
                "null",
                "null",
                "unnull",
                "tag",
                "untag",
                "tag-value",
                "exc",
                "offset",
                "state",
                "local",
                "stack",
            )
        )
        if kind in ("swap-type", "stack", "local") and n:
            if kind == "stack" and n > nlp:
                i = rng.randrange(nlp, n)
            elif kind == "local" and nlp:
                i = rng.randrange(0, nlp)
            else:
                i = rng.randrange(n)
            v = rng.choice(pool)
            slots[i] = v
            nulls.discard(i)
            tagged.discard(i)
            notes.append(f"slot {i} := {type(v).__name__} {v!r:.40}")
        elif kind == "swap-slots" and n >= 2:
            i, j = rng.sample(range(n), 2)
            slots[i], slots[j] = slots[j], slots[i]
            ni, nj = i in nulls, j in nulls
            ti, tj = i in tagged, j in tagged
            for k, isnull, istag in ((i, nj, tj), (j, ni, ti)):
                (nulls.add if isnull else nulls.discard)(k)
                (tagged.add if istag else tagged.discard)(k)
            notes.append(f"swap slots {i} and {j}")
        elif kind == "null" and n:
            i = rng.randrange(n)
            nulls.add(i)
            tagged.discard(i)
            slots[i] = None
            notes.append(f"slot {i} := NULL")
        elif kind == "unnull" and nulls:
            i = rng.choice(sorted(nulls))
            nulls.discard(i)
            slots[i] = rng.choice(pool)
            notes.append(f"slot {i} (was NULL) := {type(slots[i]).__name__}")
        elif kind == "tag" and n > nlp:
            i = rng.randrange(nlp, n)
            nulls.discard(i)
            tagged.add(i)
            slots[i] = rng.choice((0, 1, -1, 2, units, units + 10, 2**40, -(2**40)))
            notes.append(f"slot {i} := tagged int {slots[i]}")
        elif kind == "untag" and tagged:
            i = rng.choice(sorted(tagged))
            tagged.discard(i)
            notes.append(f"slot {i} untagged (the int object {slots[i]})")
        elif kind == "tag-value" and tagged:
            i = rng.choice(sorted(tagged))
            slots[i] = rng.choice((-1, 0, 1, units - 1, units, units * 2, 2**40, -(2**59)))
            notes.append(f"tagged slot {i} := {slots[i]}")
        elif kind == "exc":
            s[EXC] = rng.choice((None, ValueError("x"), KeyError(1), 42, "exc", [ValueError()]))
            notes.append(f"exc := {s[EXC]!r}")
        elif kind == "offset":
            offsets = yield_offsets(code)
            s[OFFSET] = rng.choice(offsets)
            notes.append(f"offset := {s[OFFSET]}")
            if rng.random() < 0.5:
                # the stack depth another yield has, so the edit passes the depth check
                want = rng.randrange(0, 4)
                while len(slots) - nlp > want:
                    k = len(slots) - 1
                    slots.pop()
                    nulls.discard(k)
                    tagged.discard(k)
                while len(slots) - nlp < want:
                    slots.append(rng.choice(pool))
                notes.append(f"stack depth := {want}")
        elif kind == "state":
            s[STATE] = 3 - s[STATE] if s[STATE] in (1, 2) else 1
            notes.append(f"state := {s[STATE]}")
    s[SLOTS] = tuple(slots)
    s[TAGGED] = tuple(sorted(i for i in tagged if i < len(slots)))
    s[NULLS] = tuple(sorted(i for i in nulls if i < len(slots)))
    return tuple(s), notes


# ---------------------------------------------------------------------------------------------
# The child: load, drive, collect
# ---------------------------------------------------------------------------------------------

OK, REFUSED, LOAD_ERROR = 0, 3, 4


def drive(obj):
    """Every way a consumer touches a restored generator; exceptions are expected."""
    ops = []
    kind = type(obj).__name__
    for name in ("gi_yieldfrom", "cr_await", "ag_await", "gi_frame", "cr_frame", "ag_frame"):
        try:
            v = getattr(obj, name, None)
            if name.endswith("frame") and v is not None:
                dict(v.f_locals)
                v.f_lineno  # noqa: B018
        except Exception:  # noqa: BLE001 (anything but a signal is fine here)
            pass
    if kind == "async_generator":
        steps = [
            lambda: obj.asend(None).send(None),
            lambda: obj.asend(1).send(None),
            lambda: obj.athrow(ValueError("t")).send(None),
            lambda: obj.aclose().send(None),
        ]
    else:
        steps = [
            lambda: obj.send(None),
            lambda: obj.send(1),
            lambda: obj.send(None),
            lambda: obj.throw(ValueError("t")),
            lambda: obj.send(None),
            lambda: obj.close(),
        ]
    for step in steps:
        try:
            ops.append(step())
        except BaseException:  # noqa: BLE001 (KeyboardInterrupt from a thrown value, too)
            pass
    return ops


def child(data, allow, timeout):
    signal.alarm(timeout)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        obj = satchel.loads(data, allow=allow)
    except pickle.UnpicklingError as exc:
        os._exit(REFUSED if "cannot resume the suspended generator" in str(exc) else LOAD_ERROR)
    except BaseException:  # noqa: BLE001
        os._exit(LOAD_ERROR)
    try:
        drive(obj)
        del obj
        gc.collect()
    except BaseException:  # noqa: BLE001
        pass
    os._exit(OK)


def run_one(data, allow, timeout):
    pid = os.fork()
    if pid == 0:
        try:
            child(data, allow, timeout)
        finally:
            os._exit(99)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return "hang" if sig == signal.SIGALRM else f"crash:{signal.Signals(sig).name}"
    code = os.WEXITSTATUS(status)
    return {OK: "resumed", REFUSED: "refused", LOAD_ERROR: "load-error"}.get(code, f"exit-{code}")


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def needed_globals(streams):
    """The globals outside the "data" preset that the unedited seeds and the pool need."""
    data_preset = set()
    seen = set()

    def record(module, name):
        seen.add(f"{module}.{name}")
        return True

    for data in streams:
        try:
            satchel.loads(data, allow=record)
        except Exception:  # noqa: BLE001 (anything but a signal is fine here)
            pass
    probe = satchel._satchel.AllowList("data")
    for name in sorted(seen):
        module, _, qual = name.rpartition(".")
        try:
            probe(module, qual)
            data_preset.add(name)
        except Exception:  # noqa: BLE001 (anything but a signal is fine here)
            pass
    return sorted(seen - data_preset)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=0, help="mutations to run (0: until --seconds)")
    ap.add_argument("--seconds", type=float, default=0, help="stop after this many seconds")
    ap.add_argument("--seed", type=int, default=1, help="0: a random seed (printed)")
    ap.add_argument("--timeout", type=int, default=10, help="seconds per child")
    ap.add_argument("--work", default="/tmp/satchel-fuzz")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if not (args.count or args.seconds):
        args.count = 1000
    sys.unraisablehook = lambda unraisable: None  # seeds left suspended in a finally block
    if not satchel._satchel.LIVE_GENERATORS.startswith("cpython-"):
        print(f"frames: no live generators here ({satchel._satchel.LIVE_GENERATORS})")
        return 0
    if args.seed == 0:
        args.seed = random.SystemRandom().randrange(1, 2**31)
    rng = random.Random(args.seed)
    seeds = []
    for name, gen in _seeds():
        parts = parts_of(gen)
        if not (isinstance(parts, tuple) and len(parts) == 6 and parts[5] is not None):
            print(f"frames: seed {name} does not travel as a frame; skipped")
            continue
        seeds.append((name, gen, parts))
    streams = [satchel.dumps(Reduced(p)) for _, _, p in seeds]
    # The children inherit the analysis of the seeds' code (cached per equal code object).
    model = getattr(_frames, "frame_model", None)  # (absent from satchel before the checks)
    for _, _, p in seeds:
        for offset in yield_offsets(p[1][1]) if model else ():
            model(p[1][1], offset)
    pool = value_pool([p[2] for _, _, p in seeds])
    streams.append(satchel.dumps(pool))
    allow = ["data"] + needed_globals(streams)
    findings = pathlib.Path(args.work) / "frames" / "findings"
    # The unedited seeds must resume: otherwise the target tests nothing.
    for (name, _, _), data in zip(seeds, streams):
        outcome = run_one(data, allow, args.timeout)
        if outcome != "resumed":
            print(f"frames: the unedited seed {name} does not resume: {outcome}")
            return 2
    counts, crashes = {}, []
    started = time.monotonic()
    i = 0
    while True:
        if args.count and i >= args.count:
            break
        if args.seconds and time.monotonic() - started > args.seconds:
            break
        i += 1
        name, gen, parts = seeds[rng.randrange(len(seeds))]
        state, notes = mutate(rng, parts[2], parts[1][1], pool)
        try:
            data = satchel.dumps(Reduced(parts[:2] + (state,) + parts[3:]))
        except Exception:  # noqa: BLE001 (anything but a signal is fine here)
            counts["unpicklable"] = counts.get("unpicklable", 0) + 1
            continue
        outcome = run_one(data, allow, args.timeout)
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome.startswith(("crash", "hang")):
            findings.mkdir(parents=True, exist_ok=True)
            stem = findings / f"frames-{MINOR}-{args.seed}-{i}-{name}"
            stem.with_suffix(".pkl").write_bytes(data)
            stem.with_suffix(".txt").write_text(f"{outcome}\n{name}\n" + "\n".join(notes) + "\n")
            crashes.append((outcome, name, notes, stem))
        if not args.quiet and i % 1000 == 0:
            print(f"frames: {i} mutations, {counts}", flush=True)
    elapsed = time.monotonic() - started
    bad = sum(v for k, v in counts.items() if k.startswith(("crash", "hang")))
    print(
        f"frames: {i} data-only mutations of {len(seeds)} suspended generators in {elapsed:.0f} s "
        f"(Python {sys.version.split()[0]}, seed {args.seed}): "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    )
    print(f"frames: allow={allow}")
    for outcome, name, notes, stem in crashes[:20]:
        print(f"  {outcome}: {name}: {'; '.join(notes)} ({stem}.pkl)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
