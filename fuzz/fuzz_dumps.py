"""Fuzz the dumps side: odd and hostile objects, classes, functions and code objects, each
pickled by ``satchel.dumps`` in a forked child, so that a crash, a hang or an escaping
``BaseException`` is caught and reported with the seed that reproduces it.

    .venv/bin/python fuzz/fuzz_dumps.py --seconds 120            # random seeds
    .venv/bin/python fuzz/fuzz_dumps.py --cases 500 --seed 1     # a fixed, seeded run
    .venv/bin/python fuzz/fuzz_dumps.py --replay 1000123         # one case, in this process

Each case is a seed; the run is under ``PYTHONMALLOC=debug`` (re-executed so), which turns a
write past the end of a heap block into an abort when the block is freed. ``build(random.Random(seed))`` makes an object graph from hostile parts:
``__reduce__``/``__reduce_ex__`` returning garbage or raising, ``__getattr__`` answering every
name, ``__eq__``/``__hash__``/``__repr__`` raising or mutating the dicts and sets that hold
them, dicts mutated by pickling itself (globals, class dicts, kwdefaults, module namespaces)
and by a thread, functions rebuilt with other ``__code__``/``__globals__``/``__closure__``,
defaults and attributes, code objects made with ``CodeType.replace`` (garbage bytecode, odd
names with lone surrogates, constants nested deep, odd flags), dynamic classes and modules
with odd names, cycles, deep nesting. The contract: ``dumps`` returns bytes or raises a
``pickle.PicklingError`` (or the hostile code's own ``Hostile`` error); a stream it returned
then either loads or raises an ``Exception`` (loading never runs the fuzzed code). A signal,
a hang (10 s) or another exception type is a finding; the exit status is 1 when there is one.
"""

import argparse
import dis
import json
import opcode
import os
import random
import signal
import sys
import threading
import time
import traceback
import types

TIMEOUT = 10  # seconds per case


class Hostile(Exception):
    """Raised by the fuzzed objects' own methods: passing it through (or wrapped) is fine."""


# ---------------------------------------------------------------------------------------------
# Hostile parts. Every class is made inside build(), so that satchel pickles it by value (a
# class of this module would go by reference, and its methods would never be looked at).
# ---------------------------------------------------------------------------------------------

# CPython 3.12 and 3.13 crash in the code constructor itself (CodeType.replace) on bytecode
# holding INSTRUMENTED_LINE and similar units, before satchel could see the object; 3.14 and
# later build it, and satchel must refuse it. So below 3.14 the random bytecode avoids them.
_UNBUILDABLE_OPS = (
    frozenset(
        op
        for name, op in getattr(dis, "_all_opmap", opcode.opmap).items()
        if name.startswith("INSTRUMENTED_") or name == "ENTER_EXECUTOR"
    )
    if sys.implementation.name == "cpython" and (3, 12) <= sys.version_info < (3, 14)
    else frozenset()
)

ODD_STRINGS = ["", "x", "\udcff", "a\udcfeb", "a.b", "<locals>", "é", "\x00", "__main__", "1x"]
ODD_NAMES = ODD_STRINGS + [None, 42, b"bytes", ("t",)]


def _small(rng, depth=0):
    """Plain data, sometimes nested."""
    pick = rng.randrange(12 if depth < 3 else 7)
    if pick == 0:
        return rng.randrange(-(2**70), 2**70)
    if pick == 1:
        return rng.choice(ODD_STRINGS)
    if pick == 2:
        return rng.random()
    if pick == 3:
        return None
    if pick == 4:
        return b"\x00\xff" * rng.randrange(4)
    if pick == 5:
        return complex(rng.random(), 1)
    if pick == 6:
        return rng.choice([True, False, Ellipsis, NotImplemented])
    if pick == 7:
        return [_small(rng, depth + 1) for _ in range(rng.randrange(4))]
    if pick == 8:
        return tuple(_small(rng, depth + 1) for _ in range(rng.randrange(4)))
    if pick == 9:
        return {rng.choice(ODD_STRINGS): _small(rng, depth + 1) for _ in range(rng.randrange(4))}
    if pick == 10:
        return frozenset(rng.choice(ODD_STRINGS + [1, 2.5, None]) for _ in range(rng.randrange(4)))
    return {rng.randrange(100) for _ in range(rng.randrange(4))}


def _maybe_raise(rng, p=0.3):
    if rng.random() < p:
        raise Hostile("hostile")


# PyPy 3.11 (8.0.1)'s unpickler segfaults when BUILD gives a state to an object without a
# __dict__ (no satchel needed: pickle.loads(b"\x80\x05cbuiltins\nobject\n)R}b.") crashes it;
# CPython raises or ignores an empty state). Only a __reduce__ can ask for that, and satchel
# writes what it returns as the stdlib does, so on PyPy these reductions leave the state out.
PYPY = sys.implementation.name == "pypy"
STATES = [None, 1, {}, ({}, {}), ({}, None), "s"]


def hostile_reduce(rng, ctx):
    """An instance whose __reduce__ (or __reduce_ex__) returns something odd, or raises."""
    mode = rng.randrange(16)
    target = ctx.some_dict(rng)
    calls = [0]

    def reduce(self, *args):
        calls[0] += 1
        if mode == 0:
            raise Hostile("reduce")
        if mode == 1:
            return "not_a_global_name"
        if mode == 2:
            return 42
        if mode == 3:
            return ()
        if mode == 4:
            return (len,)
        if mode == 5:
            return (42, ())
        if mode == 6:
            return (list, "not a tuple")
        if mode == 7:
            return (list, (), {"state": self} if not PYPY else None, iter([1, 2]), iter([(1, 2)]))
        if mode == 8:
            return (list, (), None, iter(range(3)), None, None, "extra")
        if mode == 9:  # mutates a dict of the graph while it is being pickled
            target[object()] = calls[0]
            target.pop(next(iter(target), None), None)
            return (int, (calls[0],))
        if mode == 10:
            return (types.SimpleNamespace, (), self)  # state is itself
        if mode == 11:  # fails only the first time (diagnosis then succeeds)
            if calls[0] == 1:
                raise Hostile("first time only")
            return (int, (1,))
        if mode == 12:
            return (type(self), (), None, None, iter([1]))  # dictitems not pairs
        if mode == 13:
            return (getattr, (ctx.module, "missing"), None)
        if mode == 14:
            return (dict, (), None, None, ((k, k) for k in range(3)))
        return (object, (), rng.choice([None, (None, {}), (None, {"s": 1})] if PYPY else STATES))

    name = "__reduce_ex__" if rng.random() < 0.5 else "__reduce__"
    cls = type("HostileReduce", (), {name: reduce})
    if rng.random() < 0.3:
        cls.__getstate__ = lambda self: _small(rng)
    return cls()


def hostile_getattr(rng, ctx):
    """An object whose __getattr__ answers every missing name (or raises)."""
    answer = rng.choice(
        [lambda: _small(rng), lambda: ctx.some(rng), lambda: _maybe_raise(rng, 1.0), lambda: None]
    )

    def __getattr__(self, name):
        if rng.random() < 0.2:
            raise Hostile(name)
        return answer()

    attrs = {"__getattr__": __getattr__}
    if rng.random() < 0.3:
        attrs["__getattribute__"] = lambda self, name: (
            object.__getattribute__(self, name) if rng.random() < 0.8 else answer()
        )
    return type("HostileGetattr", (), attrs)()


def hostile_hashable(rng, ctx):
    """An object with hostile __eq__/__hash__/__repr__, usable as a key or element."""
    target = ctx.some_dict(rng)

    def __hash__(self):
        _maybe_raise(rng, 0.15)
        return rng.choice([0, 1, hash(id(self)), 2**63 - 1])

    def __eq__(self, other):
        if rng.random() < 0.2:
            target[len(target)] = self
        _maybe_raise(rng, 0.1)
        return rng.random() < 0.5

    def __repr__(self):
        if rng.random() < 0.4:
            target[object()] = 1  # repr runs while something iterates the dict
        if rng.random() < 0.3:
            raise Hostile("repr")
        return rng.choice(["x", "\udcff", "", "<r>"])

    def __reduce__(self):
        return (int, (1,)) if rng.random() < 0.8 else (_ for _ in ()).throw(Hostile("reduce"))

    cls = type("HostileHash", (), {"__hash__": __hash__, "__eq__": __eq__, "__repr__": __repr__})
    if rng.random() < 0.5:
        cls.__reduce__ = __reduce__
    return cls()


def odd_function(rng, ctx):
    """A function rebuilt with another code, globals, closure, defaults and attributes."""
    lock = threading.Lock() if rng.random() < 0.2 else None
    value = ctx.some(rng)
    pick = rng.randrange(5)
    if pick == 0:

        def base():
            return value, lock

    elif pick == 1:

        def base(a, b=1, *args, c=2, **kw):
            return GLOBAL_A, a, b  # noqa: F821 - globals are replaced below

    elif pick == 2:
        base = eval("lambda x: [x for _ in GLOBAL_B]")  # noqa: S307 - a nested code object

    elif pick == 3:

        def base():
            def inner():
                return value

            return inner

    else:

        def base():
            yield value

    code = base.__code__
    if rng.random() < 0.5:
        code = odd_code(rng, ctx, code)
    globals_ = rng.choice(
        [
            {},
            {"GLOBAL_A": ctx.some(rng), "GLOBAL_B": [1], "__name__": rng.choice(ODD_NAMES)},
            ctx.some_dict(rng),
            vars(ctx.module),
        ]
    )
    if code.co_freevars:
        cells = [types.CellType(ctx.some(rng)) if rng.random() < 0.8 else types.CellType()]
        closure = tuple(
            cells[0] if i == 0 else types.CellType(i) for i in range(len(code.co_freevars))
        )
    else:
        closure = None
    try:
        f = types.FunctionType(
            code, globals_, rng.choice(["f", "\udcff", "<lambda>"]), None, closure
        )
    except (TypeError, ValueError):
        f = base
    for attr, make in [
        ("__defaults__", lambda: tuple(ctx.some(rng) for _ in range(rng.randrange(3)))),
        ("__kwdefaults__", lambda: {rng.choice(["c", "x", "\udcff"]): ctx.some(rng)}),
        ("__qualname__", lambda: rng.choice(["a.<locals>.b", "\udcff", "q", "x.y.z"])),
        ("__module__", lambda: rng.choice(ODD_NAMES)),
        ("__doc__", lambda: ctx.some(rng)),
        ("__annotations__", lambda: {"a": ctx.some(rng)}),
    ]:
        if rng.random() < 0.3:
            try:
                setattr(f, attr, make())
            except (TypeError, ValueError, AttributeError):
                pass
    if rng.random() < 0.3:
        f.extra = ctx.some(rng)
    if rng.random() < 0.2:
        ctx.mutating_globals.append(f.__globals__)
    return f


def odd_code(rng, ctx, code):
    """``code`` with some fields replaced (CodeType.replace validates only some of them)."""
    changes = {}
    if rng.random() < 0.4:
        consts = list(code.co_consts)
        for _ in range(rng.randrange(1, 4)):
            consts.append(
                rng.choice(
                    [
                        _small(rng),
                        frozenset([rng.choice(ODD_STRINGS), 1, (2, 3)]),
                        _nested_tuple(rng.choice([10, 100, 600, 3000])),
                        code,
                        2**200,
                    ]
                )
            )
        changes["co_consts"] = tuple(consts)
    if rng.random() < 0.3:
        changes["co_names"] = tuple(rng.choice(ODD_STRINGS) for _ in range(len(code.co_names)))
    if rng.random() < 0.2:
        units = [rng.randrange(256) for _ in range(len(code.co_code))]
        nop = opcode.opmap["NOP"]
        changes["co_code"] = bytes(
            nop if i % 2 == 0 and b in _UNBUILDABLE_OPS else b for i, b in enumerate(units)
        )
    if rng.random() < 0.2:
        changes["co_filename"] = rng.choice(["", "\udcff", "<string>", "/nonexistent.py"])
    if rng.random() < 0.2:
        changes["co_name"] = rng.choice(["", "\udcff", "x"])
    if rng.random() < 0.2 and hasattr(code, "co_qualname"):
        changes["co_qualname"] = rng.choice(["", "\udcff", "a.<locals>.b"])
    if rng.random() < 0.2:
        changes["co_firstlineno"] = rng.choice([1, 10**6, 2**31 - 1])
    if rng.random() < 0.1:
        changes["co_flags"] = code.co_flags ^ rng.choice([0x20, 0x80, 0x100, 0x4, 0x8])
    if rng.random() < 0.1 and hasattr(code, "co_linetable"):
        changes["co_linetable"] = bytes(rng.randrange(256) for _ in range(rng.randrange(8)))
    if rng.random() < 0.1 and hasattr(code, "co_exceptiontable"):
        changes["co_exceptiontable"] = bytes(rng.randrange(256) for _ in range(rng.randrange(8)))
    try:
        return code.replace(**changes)
    except (TypeError, ValueError, SystemError):
        return code


def _nested_tuple(depth):
    t = frozenset(["deep"])
    for _ in range(depth):
        t = (t,)
    return t


def deep_code(rng, ctx):
    """A function whose code nests code objects (or constant tuples) deep."""

    def f():
        return 1

    code = f.__code__
    for _ in range(rng.choice([10, 300, 1500, 20_000])):
        code = f.__code__.replace(co_consts=(None, code))
    return types.FunctionType(code, {})


def odd_class(rng, ctx):
    """A class defined at run time with odd attributes, names and hooks."""
    attrs = {rng.choice(["a", "b", "_c", "__x__"]): ctx.some(rng) for _ in range(rng.randrange(4))}
    if rng.random() < 0.3:
        attrs["table"] = ctx.some_dict(rng)
        ctx.mutating_dicts.append(attrs["table"])
    if rng.random() < 0.3:
        attrs["prop"] = property(lambda self: ctx.some(rng))
    if rng.random() < 0.3:
        attrs["cm"] = classmethod(lambda cls: 1)
    if rng.random() < 0.2:
        attrs["__slots__"] = rng.choice([("s",), "s", (), ["t", "u"]])
    if rng.random() < 0.2:
        attrs["values"] = frozenset([hostile_hashable(rng, ctx) for _ in range(2)])
    bases = (rng.choice([object, Exception, dict, list, tuple]),) if rng.random() < 0.4 else ()
    try:
        cls = type(rng.choice(["K", "\udcff", "K.L"]), bases, attrs)
    except (TypeError, ValueError):
        cls = type("K", (), {})
    for attr in ("__module__", "__qualname__"):
        if rng.random() < 0.3:
            try:
                setattr(cls, attr, rng.choice(ODD_NAMES))
            except (TypeError, ValueError, AttributeError):
                pass
    if rng.random() < 0.3:  # its instances change the class while they are pickled

        def __reduce_ex__(self, protocol, cls=cls):
            try:
                setattr(cls, f"added{rng.randrange(5)}", rng.randrange(10))
                if rng.random() < 0.5:
                    delattr(cls, rng.choice(list(attrs) or ["a"]))
            except (AttributeError, TypeError):
                pass
            return (int, (1,))

        cls.hook = type("Mutator", (), {"__reduce_ex__": __reduce_ex__})()
    ctx.mutating_dicts.append(cls)
    return cls if rng.random() < 0.6 else _instance(rng, ctx, cls)


def _instance(rng, ctx, cls):
    try:
        obj = cls.__new__(cls)
    except TypeError:
        return cls
    try:
        obj.__dict__.update({"x": ctx.some(rng), "me": obj})
    except (AttributeError, TypeError):
        pass
    return obj


def odd_module(rng, ctx):
    m = types.ModuleType("fuzzmod")
    m.value = ctx.some(rng)
    m.func = lambda: m.value
    if rng.random() < 0.5:
        try:
            m.__name__ = rng.choice(ODD_NAMES)
        except (TypeError, AttributeError):
            pass
    if rng.random() < 0.2:
        del m.__name__
    if rng.random() < 0.3:
        vars(m)[hostile_str(rng)] = 1
    ctx.mutating_dicts.append(vars(m))
    return m


def hostile_str(rng):
    """A str subclass key whose __hash__/__eq__ run code (module and class dicts may hold it)."""

    class S(str):
        def __hash__(self):
            _maybe_raise(rng, 0.1)
            return str.__hash__(self)

        def __eq__(self, other):
            return str.__eq__(self, other)

    return S(rng.choice(["k", "__name__", "\udcff"]))


def wrappers(rng, ctx):
    """Stdlib wrappers around hostile parts."""
    import functools
    import weakref

    inner = ctx.some(rng)
    pick = rng.randrange(7)
    if pick == 0:
        return types.MappingProxyType(ctx.some_dict(rng))
    if pick == 1:
        f = odd_function(rng, ctx)
        return functools.partial(f, inner) if callable(f) else f
    if pick == 2:
        obj = hostile_getattr(rng, ctx)
        return types.MethodType(lambda self: 1, obj)
    if pick == 3:

        @functools.lru_cache(maxsize=rng.choice([None, 2]))
        def cached(x):
            return inner

        return cached
    if pick == 4:
        cls = type("W", (), {})
        objs = [cls() for _ in range(3)]
        ctx.keep.extend(objs)
        d = weakref.WeakValueDictionary({i: o for i, o in enumerate(objs)})
        return d
    if pick == 5:

        def gen():
            yield inner

        g = gen()
        if rng.random() < 0.3:
            list(g)  # finished
        return g
    return staticmethod(odd_function(rng, ctx))


def cycle(rng, ctx):
    a = [ctx.some(rng)]
    d = {"a": a}
    a.append(d)
    a.append(a)
    return a


def deep(rng, ctx):
    obj = ctx.some(rng)
    for _ in range(rng.choice([10, 500, 5000, 50_000])):
        obj = [obj] if rng.random() < 0.5 else {"k": obj}
    return obj


PARTS = [
    hostile_reduce,
    hostile_getattr,
    hostile_hashable,
    odd_function,
    deep_code,
    odd_class,
    odd_module,
    wrappers,
    cycle,
    deep,
]


class Context:
    """What the parts share: dicts that other parts mutate while they are pickled."""

    def __init__(self):
        self.dicts = [{"seed": 1}]
        self.module = types.ModuleType("fuzzctx")
        self.mutating_dicts = []
        self.mutating_globals = []
        self.keep = []
        self.depth = 0

    def some_dict(self, rng):
        if rng.random() < 0.5 or not self.dicts:
            d = {rng.choice(ODD_STRINGS): _small(rng) for _ in range(rng.randrange(5))}
            self.dicts.append(d)
            return d
        return rng.choice(self.dicts)

    def some(self, rng):
        """Any part (bounded recursion), or plain data."""
        if self.depth > 4 or rng.random() < 0.35:
            return _small(rng)
        self.depth += 1
        try:
            return rng.choice(PARTS)(rng, self)
        finally:
            self.depth -= 1


def build(rng):
    ctx = Context()
    top = [ctx.some(rng) for _ in range(rng.randrange(1, 4))]
    obj = top[0] if len(top) == 1 and rng.random() < 0.5 else top
    if rng.random() < 0.3:  # a dict of the graph also holds the rest
        d = ctx.some_dict(rng)
        d["everything"] = obj
    return obj, ctx


def _mutator(ctx, stop, seed):
    rng = random.Random(seed)
    targets = [t for t in ctx.mutating_dicts + ctx.mutating_globals + ctx.dicts]
    i = 0
    while not stop.is_set() and targets:
        t = rng.choice(targets)
        try:
            if isinstance(t, dict):
                t[f"m{i % 13}"] = i
                t.pop(f"m{(i + 5) % 13}", None)
            else:
                setattr(t, f"m{i % 13}", i)
                if hasattr(t, f"m{(i + 5) % 13}"):
                    delattr(t, f"m{(i + 5) % 13}")
        except Exception:  # noqa: BLE001 - a read-only attribute, a slot class...
            pass
        i += 1


# ---------------------------------------------------------------------------------------------
# One case, and the forking runner
# ---------------------------------------------------------------------------------------------


def run_case(seed):
    """Build and dump case ``seed``: ``(kind, detail)``; kind "ok" or "finding"."""
    import pickle

    import satchel

    rng = random.Random(seed)
    try:
        obj, ctx = build(rng)
    except Hostile:
        return "ok", "hostile while building"
    stop = threading.Event()
    thread = None
    if rng.random() < 0.15 and (ctx.mutating_dicts or ctx.dicts):
        thread = threading.Thread(target=_mutator, args=(ctx, stop, seed), daemon=True)
        thread.start()
    try:
        try:
            data = satchel.dumps(obj, mode=rng.choice(["nonportable"] * 4 + ["portable"]))
        except (pickle.PicklingError, Hostile):
            return "ok", "refused"
        except Exception as exc:  # noqa: BLE001
            return "finding", f"dumps raised {type(exc).__module__}.{type(exc).__name__}: {exc}"
        except BaseException as exc:  # noqa: BLE001 - a PanicException is a finding
            return "finding", f"dumps let {type(exc).__module__}.{type(exc).__name__} escape: {exc}"
    finally:
        stop.set()
        if thread is not None:
            thread.join()
    if not isinstance(data, bytes):
        return "finding", f"dumps returned {type(data).__name__}"
    try:
        satchel.loads(data)
    except Exception:  # noqa: BLE001 - a clear error is fine here; running code is not done
        return "ok", "dumped; loading raised"
    except BaseException as exc:  # noqa: BLE001 - a PanicException is a finding
        return "finding", f"loads let {type(exc).__name__} escape: {exc}"
    return "ok", "round trip"


def fork_case(seed):
    """Run case ``seed`` in a forked child: ``(kind, detail)``, kind "ok", "finding", "crash",
    "hang"."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_fd)
        code = 2
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)  # Rust's panic hook and Python's warnings print here
            signal.alarm(TIMEOUT)
            kind, detail = run_case(seed)
            # Free what the case made: PYTHONMALLOC=debug checks each block's guard bytes when
            # it is freed, so a write past the end of one is caught here, in this case.
            import gc

            gc.collect()
            os.write(write_fd, json.dumps([kind, detail[:2000]]).encode())
            code = 0
        except BaseException as exc:  # noqa: BLE001 - reported, then the child exits
            os.write(write_fd, json.dumps(["finding", f"runner: {exc!r}"[:2000]]).encode())
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        kind = "hang" if sig == signal.SIGALRM else "crash"
        return kind, f"killed by {signal.Signals(sig).name}"
    if not chunks:
        return "crash", f"exit status {os.WEXITSTATUS(status)} without a report"
    return tuple(json.loads(b"".join(chunks)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--cases", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None, help="first seed (default: random)")
    parser.add_argument("--replay", type=int, default=None, help="run one seed in-process")
    parser.add_argument(
        "--no-debug-malloc",
        action="store_true",
        help="do not run under PYTHONMALLOC=debug (which catches heap overruns when the "
        "overrun block is freed; about twice as slow)",
    )
    args = parser.parse_args()
    if not args.no_debug_malloc and os.environ.get("PYTHONMALLOC") != "debug":
        env = dict(os.environ, PYTHONMALLOC="debug")
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    if args.replay is not None:
        try:
            print(run_case(args.replay))
        except BaseException:
            traceback.print_exc()
            raise
        return 0
    import satchel  # noqa: F401 - imported once, before forking

    first = args.seed if args.seed is not None else random.SystemRandom().randrange(2**40)
    deadline = time.monotonic() + args.seconds if args.seconds else None
    counts, findings = {}, []
    seed = first
    while True:
        if args.cases is not None and seed - first >= args.cases:
            break
        if deadline is not None and time.monotonic() > deadline:
            break
        if args.cases is None and deadline is None and seed - first >= 1000:
            break
        kind, detail = fork_case(seed)
        key = kind if kind != "ok" else f"ok: {detail}"
        counts[key] = counts.get(key, 0) + 1
        if kind != "ok":
            findings.append((seed, kind, detail))
            print(f"finding: seed {seed}: {kind}: {detail[:500]}", file=sys.stderr)
        seed += 1
    print(
        f"dumps: {seed - first} cases from seed {first}: {counts}; {len(findings)} finding(s)",
        file=sys.stderr,
    )
    for seed, kind, _ in findings[:20]:
        print(f"  replay: python fuzz/fuzz_dumps.py --replay {seed}  ({kind})", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
