"""Call the bootstrap constructors with hostile arguments, each call in a forked child.

    .venv/bin/python fuzz/boot_args.py [SEED] [MAX_CALLS]     # e.g. 1 6000

The seeds are the constructor calls real streams make (closures, classes, enums, dataclasses,
TypeVars, started, created and delegating generators, modules, lru_caches, weak mappings, in
lean, standalone, portable and compressed streams), recorded by an Unpickler. Each mutation
replaces one argument (or one item of a tuple argument) with a hostile value: what a
hand-written stream calling the constructor through REDUCE passes. A returned object is then
used (a generator advanced, a function called, repr). Contract: a result or an ``Exception``;
a signal, a hang (10 s) or another ``BaseException`` is a finding (printed once per
constructor and kind).
"""

import io
import os
import pickle
import random
import resource
import signal
import sys
import types

import satchel

records = []


class Rec(pickle.Unpickler):
    def find_class(self, mod, name):
        obj = super().find_class(mod, name)
        if mod.startswith("_satchel_boot") and callable(obj):

            def wrapper(*args, _obj=obj, _name=name):
                records.append((_name, args))
                return _obj(*args)

            return wrapper
        return obj


def seeds():
    import dataclasses
    import enum
    import functools
    import typing
    import weakref

    out = []
    k = 3

    def f(a, b=2, *c, d=4, **e):
        return a + k

    f.attr = 1

    class C:
        x = 1

        def m(self):
            return k

    class E(enum.Enum):
        A = 1

    @dataclasses.dataclass
    class D:
        a: int = 1

    T = typing.TypeVar("T", bound=int)

    def g():
        v = yield 1
        for i in [1, 2]:
            yield v, i

    gen = g()
    next(gen)

    def g2():
        yield from g()

    gen2 = g2()
    next(gen2)

    async def co():
        return 1

    m = types.ModuleType("dynmod")
    m.x = 1
    objs = [
        f,
        C,
        C(),
        E.A,
        D(),
        T,
        gen,
        gen2,
        g(),
        m,
        functools.lru_cache(f),
        weakref.WeakValueDictionary(),
        (x for x in [1, 2]),
    ]
    for kw in ({}, {"standalone": True}, {"mode": "portable"}, {"compress": True}):
        for o in objs:
            try:
                out.append(satchel.dumps(o, **kw))
            except Exception:  # noqa: BLE001 - any Exception is the contract
                pass
    return out


for data in seeds():
    try:
        Rec(io.BytesIO(data)).load()
    except Exception:  # noqa: BLE001 - any Exception is the contract
        pass


class Hostile:
    def __eq__(self, o):
        raise ValueError("eq")

    def __hash__(self):
        raise ValueError("hash")

    def __len__(self):
        raise ValueError("len")

    def __iter__(self):
        raise ValueError("iter")

    def __getattr__(self, n):
        raise ValueError("getattr " + n)


class S(str):
    def __hash__(self):
        raise ValueError("h")


def _code():
    return 1


HOSTILE = [
    None,
    0,
    -1,
    2**63,
    -(2**63),
    2**200,
    1.5,
    "",
    "x",
    "\udcff",
    "a" * 100000,
    b"",
    b"\x00" * 64,
    b"\xff" * 1000,
    (),
    (None,),
    tuple(range(100)),
    [],
    {},
    {"x": 1},
    object(),
    Hostile(),
    S("x"),
    int,
    type,
    types.ModuleType,
    _code.__code__,
    _code,
    (x for x in []),
    iter([]),
    frozenset(),
    {1, 2},
    bytearray(b"ab"),
    memoryview(b"ab"),
    ((((),),),),
]


def mutations(rng):
    for name, args in records:
        for i in range(len(args)):
            for h in range(len(HOSTILE)):
                yield name, args, i, h
        # also nested tuple element replacement
        for i, a in enumerate(args):
            if isinstance(a, tuple) and len(a) < 40:
                for j in range(len(a)):
                    for h in rng.sample(range(len(HOSTILE)), 6):
                        yield name, args, (i, j), h


def run_one(name, args, where, h):
    args = list(args)
    if isinstance(where, tuple):
        i, j = where
        t = list(args[i])
        t[j] = HOSTILE[h]
        args[i] = tuple(t)
    else:
        args[where] = HOSTILE[h]
    B = sys.modules[[m for m in sys.modules if m.startswith("_satchel_boot")][0]]
    fn = getattr(B, name)
    # A fresh skeleton for setstate-like calls that mutate their first argument is not needed:
    # each call runs in its own forked child.
    try:
        r = fn(*args)
    except Exception:  # noqa: BLE001 - any Exception is the contract
        return "exc"
    try:
        if isinstance(r, types.GeneratorType):
            next(r, None)
        elif isinstance(r, types.FunctionType):
            try:
                r(1)
            except Exception:  # noqa: BLE001 - any Exception is the contract
                pass
        repr(r)
    except Exception:  # noqa: BLE001 - any Exception is the contract
        pass
    return "ok"


def main():
    rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    muts = list(mutations(rng))
    names = sorted({n for n, _ in records})
    print("recorded calls", len(records), "constructors", names, "mutations", len(muts), flush=True)
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 10**9
    if len(muts) > limit:
        muts = rng.sample(muts, limit)
    stats = {}
    findings = []
    for name, args, where, h in muts:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
            signal.alarm(10)
            try:
                res = run_one(name, args, where, h)
            except BaseException as e:  # noqa: BLE001 - reported as a finding
                res = "BASE " + type(e).__name__ + ": " + str(e)[:200]
            os.write(w, res.encode())
            os._exit(0)
        os.close(w)
        out = b""
        while True:
            c = os.read(r, 65536)
            if not c:
                break
            out += c
        os.close(r)
        _, st = os.waitpid(pid, 0)
        if os.WIFSIGNALED(st):
            res = f"SIGNAL {os.WTERMSIG(st)}"
        else:
            res = out.decode() or "noreport"
        kind = res.split(":")[0]
        stats[(name, kind)] = stats.get((name, kind), 0) + 1
        if res not in ("ok", "exc"):
            findings.append((name, where, repr(HOSTILE[h])[:60], res))
    for k, v in sorted(stats.items()):
        print(k, v)
    print("findings", len(findings))
    seenf = set()
    for f in findings:
        key = (f[0], f[3][:40])
        if key in seenf:
            continue
        seenf.add(key)
        print(f)


main()
