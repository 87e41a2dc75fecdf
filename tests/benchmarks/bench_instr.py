"""Instruction counts (callgrind) and interleaved wall-clock medians for issue 18's shapes.

Usage (from the repository root)::

    make bench                                              # runs this after bench.py
    .venv/bin/python tests/benchmarks/bench_instr.py --out docs            # full: K=3, dill too
    .venv/bin/python tests/benchmarks/bench_instr.py --quick --out docs    # K=1, no dill
    .venv/bin/python tests/benchmarks/bench_instr.py --json /tmp/a.json    # also keep raw numbers

Method (instructions): every (shape, library) runs in a *fresh* interpreter under
``valgrind --tool=callgrind`` three times: once with K=0 and once with K repetitions of the
dumps, once with K repetitions of the loads.  Every run builds the same data, makes the same
payloads and does one untimed warm-up dumps and loads (so lazy imports, per-thread picklers and
compile caches are warm in all runs); the GC is disabled after setup.  ``(Ir(K) - Ir(0)) / K``
is the cost of one operation; the ratio of those costs, satchel ÷ peer, is the headline. These
counts move by well under 1% between runs even on a loaded machine, unlike wall-clock time.

Method (time): in this process, every operation is timed interleaved with its peers (order
rotated each repeat, GC disabled in the timed region), median of ``--repeats``.

The section it writes goes into ``--out``/BENCHMARKS.md between the markers below (appended if
the file has none); bench.py keeps the section when it rewrites the file.

This file must run as ``__main__``: the lambdas, closures and classes below are then pickled by
value by satchel, cloudpickle and dill.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import functools
import gc
import json
import math
import os
import pickle
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import provenance

BEGIN = "<!-- bench_instr: begin -->"
END = "<!-- bench_instr: end -->"
HERE = Path(__file__).resolve()

#: A module global read by the lambdas and closures (so it travels with them).
GLOBAL = 7

N_TASKS = 400
N_CLOSURES = 200
N_INSTANCES = 4000
N_PORTABLE = 1000
N_FRACTIONS = 30_000
N_DICTS = 100_000


# --------------------------------------------------------------------------------------------
# Shapes (module level, i.e. in __main__)


def make_tasks():
    """400 task tuples, each a fresh lambda with a default and a module global, plus its args."""
    return [(lambda x, k=k: x * k + GLOBAL, (k,)) for k in range(N_TASKS)]


def check_tasks(loaded):
    f, args = loaded[-1]
    assert f(*args) == (N_TASKS - 1) ** 2 + GLOBAL


def _closure_factory(n, table):
    def closure(x, *, scale=n % 5 + 1):
        return math.sqrt(x * scale + n + table["a"]) + GLOBAL

    return closure


def make_closures(n=N_CLOSURES):
    """n closures sharing one code object; each captures an int and a small dict, has a
    keyword-only default, reads a module global and calls math.sqrt."""
    return [_closure_factory(i, {"a": i, "b": "x"}) for i in range(n)]


def check_closures(loaded):
    n = len(loaded) - 1
    assert loaded[-1](3) == math.sqrt(3 * (n % 5 + 1) + n + n) + GLOBAL


class Point:
    """A __main__ class with __slots__ and its own __reduce__."""

    __slots__ = ("x", "y", "label")

    def __init__(self, x, y, label):
        self.x = x
        self.y = y
        self.label = label

    def __reduce__(self):
        return (Point, (self.x, self.y, self.label))

    def norm(self):
        return math.hypot(self.x, self.y)


def make_points():
    return [Point(i, i * 0.5, f"p{i}") for i in range(N_INSTANCES)]


def check_points(loaded):
    p = loaded[-1]
    assert (p.x, p.y, p.label) == (N_INSTANCES - 1, (N_INSTANCES - 1) * 0.5, f"p{N_INSTANCES - 1}")


def make_fractions():
    from fractions import Fraction

    return [Fraction(i, i % 97 + 1) for i in range(N_FRACTIONS)]


def make_dicts():
    return [{"a": i, "b": str(i)} for i in range(N_DICTS)]


# --------------------------------------------------------------------------------------------
# Libraries: name -> (dumps, loads), imported lazily so a worker imports only its own.


def lib_funcs(name):
    if name == "satchel":
        import satchel

        return satchel.dumps, pickle.loads
    if name == "satchel-portable":
        import satchel

        return functools.partial(satchel.dumps, mode="portable"), pickle.loads
    if name == "cloudpickle":
        import cloudpickle

        return cloudpickle.dumps, pickle.loads
    if name == "dill":
        import dill

        return functools.partial(dill.dumps, protocol=5), dill.loads
    if name == "pickle":
        return functools.partial(pickle.dumps, protocol=5), pickle.loads
    raise ValueError(name)


class Shape:
    def __init__(self, key, title, make, check, each, libs, ops, targets, peer):
        self.key = key
        self.title = title
        self.make = make
        self.check = check
        self.each = each  # one dumps per item (task shipping) instead of one dumps of the list
        self.libs = libs  # first is the subject
        self.ops = ops
        self.targets = targets  # {(op): (peer, bound)} instruction-ratio targets
        self.peer = peer  # the peer the targets compare with

    def ops_for(self, lib):
        dumps, loads = lib_funcs(lib)
        data = self.make()
        if self.each:
            payload = [dumps(o) for o in data]
            fns = {
                "dumps": lambda: [dumps(o) for o in data],
                "loads": lambda: [loads(p) for p in payload],
            }
        else:
            payload = dumps(data)
            fns = {"dumps": lambda: dumps(data), "loads": lambda: loads(payload)}
        return fns, payload


PEERS = ["cloudpickle", "dill", "pickle"]
SHAPES = [
    Shape(
        "tasks",
        f"{N_TASKS} lambda tasks, one dumps each",
        make_tasks,
        check_tasks,
        True,
        ["satchel", "cloudpickle", "dill"],
        ["dumps", "loads", "bytes"],
        {"dumps": 0.12, "loads": 0.35, "bytes": 0.5},
        "cloudpickle",
    ),
    Shape(
        "closures",
        f"{N_CLOSURES} closures sharing a code object (int + dict cells, kw-only default, "
        "global, math.sqrt), one dumps",
        make_closures,
        check_closures,
        False,
        ["satchel", "cloudpickle", "dill"],
        ["dumps", "loads", "bytes"],
        {"dumps": 0.2, "loads": 0.5},
        "cloudpickle",
    ),
    Shape(
        "reduce_class",
        f"__main__ class with __slots__ and its own __reduce__ + {N_INSTANCES} instances, "
        "one dumps",
        make_points,
        check_points,
        False,
        ["satchel", "cloudpickle", "dill", "pickle"],
        ["dumps", "loads", "bytes"],
        {"dumps": 0.3},
        "cloudpickle",
    ),
    Shape(
        "portable",
        f"portable: {N_PORTABLE} closures (as above), one dumps; peer is cloudpickle "
        "(nonportable), repeated loads in one process",
        functools.partial(make_closures, N_PORTABLE),
        check_closures,
        False,
        ["satchel-portable", "cloudpickle", "satchel"],
        ["dumps", "loads", "bytes"],
        {"dumps": 1.0, "loads": 1.5},
        "cloudpickle",
    ),
    Shape(
        "object_graph",
        f"object_graph: {N_FRACTIONS:,} Fractions, one dumps",
        make_fractions,
        None,
        False,
        ["satchel", "cloudpickle", "dill", "pickle"],
        ["dumps"],
        {"dumps": 1.1},
        "pickle",
    ),
    Shape(
        "plain_data",
        f"plain_data: {N_DICTS:,} small dicts, one dumps",
        make_dicts,
        None,
        False,
        ["satchel", "cloudpickle", "dill", "pickle"],
        ["dumps"],
        {"dumps": 1.0},
        "pickle",
    ),
]
SHAPES_BY_KEY = {s.key: s for s in SHAPES}


# --------------------------------------------------------------------------------------------
# Worker: runs inside valgrind


def worker(shape_key, lib, op, k):
    shape = SHAPES_BY_KEY[shape_key]
    fns, _ = shape.ops_for(lib)
    # Warm-up: one of every op, in every run (K=0 included), so that it cancels out.
    for name in ("dumps", "loads"):
        if name in shape.ops:
            out = fns[name]()
            del out
    gc.collect()
    gc.disable()
    fn = fns.get(op)
    for _ in range(k):
        out = fn()
        del out


# --------------------------------------------------------------------------------------------
# Driver


def callgrind_total(args, env, tmp):
    """Total instructions (Ir) of one fresh interpreter running this file with args."""
    fd, out = tempfile.mkstemp(prefix="cg.", dir=tmp)
    os.close(fd)
    cmd = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        "--dump-line=no",
        sys.executable,
        str(HERE),
        "--worker",
        *args,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    with open(out) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
                break
        else:
            raise RuntimeError(f"no totals in {out}")
    os.unlink(out)
    return total


def measure_instructions(shapes, k, jobs):
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
    runs = []
    for shape in shapes:
        for lib in shape.libs:
            runs.append((shape.key, lib, "none", 0))
            for op in shape.ops:
                if op != "bytes":
                    runs.append((shape.key, lib, op, k))
    totals = {}
    with tempfile.TemporaryDirectory() as tmp, concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        futs = {
            ex.submit(callgrind_total, [s, lib, op, str(kk)], env, tmp): (s, lib, op)
            for s, lib, op, kk in runs
        }
        for fut in concurrent.futures.as_completed(futs):
            key = futs[fut]
            try:
                totals[key] = fut.result()
            except Exception as exc:  # noqa: BLE001 - reported per cell
                print(f"callgrind {key} failed: {exc}", file=sys.stderr)
                totals[key] = None
            print(f"  callgrind {key}: {totals[key]}", file=sys.stderr)
    result = {}
    for shape in shapes:
        for lib in shape.libs:
            base = totals.get((shape.key, lib, "none"))
            for op in shape.ops:
                if op == "bytes":
                    continue
                tot = totals.get((shape.key, lib, op))
                if base is None or tot is None:
                    result[(shape.key, lib, op)] = None
                else:
                    result[(shape.key, lib, op)] = (tot - base) / k
    return result


def _timed(fn):
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
    finally:
        gc.enable()
    del out
    return dt


def measure_time(shapes, repeats):
    """Wall-clock medians and byte counts, interleaved per op; also checks every result."""
    times, sizes = {}, {}
    for shape in shapes:
        fns_by_lib = {}
        for lib in shape.libs:
            fns, payload = shape.ops_for(lib)
            sizes[(shape.key, lib)] = (
                sum(map(len, payload)) if isinstance(payload, list) else len(payload)
            )
            if shape.check is not None:
                shape.check(fns["loads"]())
            fns_by_lib[lib] = fns
        for op in shape.ops:
            if op == "bytes":
                continue
            names = list(fns_by_lib)
            samples = {n: [] for n in names}
            for r in range(repeats):
                j = r % len(names)
                for n in names[j:] + names[:j]:
                    samples[n].append(_timed(fns_by_lib[n][op]))
            for n in names:
                times[(shape.key, n, op)] = statistics.median(samples[n])
        del fns_by_lib
    return times, sizes


def fmt_count(n):
    if n is None:
        return "error"
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.3g}"


def fmt_time(s):
    if s is None:
        return "error"
    for mul, unit in ((1, "s"), (1e3, "ms"), (1e6, "µs")):
        if s * mul >= 1:
            return f"{s * mul:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def fmt_size(n):
    if n is None:
        return "—"
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} B"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r):
    return "—" if r is None else f"{r:.3g}×"


def render(shapes, instr, times, sizes, k, command, elapsed):
    subject_of = {s.key: s.libs[0] for s in shapes}
    lines = [
        BEGIN,
        "## Instruction counts (callgrind) and interleaved wall-clock medians",
        "",
        f"Generated by `{command}` on "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC from "
        f"{provenance.commit()}; {platform.python_implementation()} {platform.python_version()}; "
        f"K={k}; whole run {elapsed:.0f} s.",
        "",
        "*instr/op* is `(Ir(K reps) − Ir(0 reps)) / K` from `valgrind --tool=callgrind`, each in "
        "a fresh interpreter with the same setup and warm-up (tests/benchmarks/bench_instr.py "
        "says how); *÷ peer* is satchel's count (or time) divided by the peer's, below 1× means "
        "satchel does less. Wall-clock ratios are medians of interleaved samples on a shared "
        "machine: expect ±20%; the instruction ratios are the ones the targets are judged on.",
        "",
        "| Shape | Op | satchel instr/op | ÷ cloudpickle | ÷ dill | ÷ pickle | satchel time "
        "| ÷ cloudpickle (time) | ÷ dill (time) | ÷ pickle (time) | Target | Result |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for shape in shapes:
        subj = subject_of[shape.key]
        first = True
        for op in shape.ops:
            title = shape.title if first else ""
            first = False
            if op == "bytes":
                mine = sizes.get((shape.key, subj))
                rs = [
                    ratio(mine, sizes.get((shape.key, p))) if p in shape.libs else None
                    for p in PEERS
                ]
                cells = [fmt_size(mine), *map(fmt_ratio, rs), "", "", "", ""]
                peer_ratio = rs[PEERS.index(shape.peer)]
            else:
                mine = instr.get((shape.key, subj, op))
                rs = [
                    ratio(mine, instr.get((shape.key, p, op))) if p in shape.libs else None
                    for p in PEERS
                ]
                t = times.get((shape.key, subj, op))
                ts = [
                    ratio(t, times.get((shape.key, p, op))) if p in shape.libs else None
                    for p in PEERS
                ]
                cells = [fmt_count(mine), *map(fmt_ratio, rs), fmt_time(t), *map(fmt_ratio, ts)]
                peer_ratio = rs[PEERS.index(shape.peer)]
            bound = shape.targets.get(op)
            if bound is None:
                target, verdict = "—", "—"
            else:
                target = f"≤ {bound}× {shape.peer}"
                verdict = (
                    "?" if peer_ratio is None else ("PASS" if peer_ratio <= bound else "**MISS**")
                )
            lines.append(f"| {title} | {op} | " + " | ".join([*cells, target, verdict]) + " |")
        extra = [lib for lib in shape.libs[1:] if lib not in PEERS]
        for lib in extra:
            for op in shape.ops:
                if op == "bytes":
                    continue
                other = instr.get((shape.key, lib, op))
                lines.append(
                    f"| | {op}: {subj} ÷ {lib} | {fmt_count(other)} ({lib}) | "
                    f"{fmt_ratio(ratio(instr.get((shape.key, subj, op)), other))} "
                    "| | | | | | | | |"
                )
    lines += [
        "",
        "Shapes: *tasks* are `(lambda x, k=k: x * k + GLOBAL, (k,))`, each dumped (and loaded) on "
        "its own; *closures* come from one factory `def closure(x, *, scale=n % 5 + 1): return "
        "math.sqrt(x * scale + n + table['a']) + GLOBAL`; the *portable* row dumps "
        '`mode="portable"` and compares with cloudpickle\'s ordinary (nonportable) stream, '
        "loads repeated in one process (the receiver's compile cache is warm after the warm-up "
        "load); *object_graph* and *plain_data* contain nothing by value and compare with "
        "`pickle.dumps(..., protocol=5)`.",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_section(path, section):
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--out", help="directory whose BENCHMARKS.md gets the section")
    parser.add_argument("--json", help="also write the raw numbers here")
    parser.add_argument("--quick", action="store_true", help="K=1, no dill, 3 time repeats")
    parser.add_argument("--k", type=int, help="repetitions per callgrind run (default 3)")
    parser.add_argument("--repeats", type=int, help="wall-clock repeats (default 7)")
    parser.add_argument("--jobs", type=int, default=2, help="callgrind runs in parallel")
    parser.add_argument("--shapes", help="comma-separated subset of: " + ",".join(SHAPES_BY_KEY))
    parser.add_argument("--no-time", action="store_true", help="skip the wall-clock part")
    parser.add_argument(
        "--no-instr", action="store_true", help="skip callgrind: wall-clock and bytes only"
    )
    args = parser.parse_args()
    if args.worker:
        shape, lib, op, k = args.worker
        worker(shape, lib, op, int(k))
        return
    if shutil.which("valgrind") is None and not args.no_instr:
        sys.exit("bench_instr.py needs valgrind (apt-get install valgrind)")
    k = args.k or (1 if args.quick else 3)
    repeats = args.repeats or (3 if args.quick else 7)
    shapes = [SHAPES_BY_KEY[s] for s in args.shapes.split(",")] if args.shapes else SHAPES
    if args.quick:
        for s in shapes:
            s.libs = [lib for lib in s.libs if lib != "dill"]
    t0 = time.perf_counter()
    times, sizes = ({}, {}) if args.no_time else measure_time(shapes, repeats)
    instr = {} if args.no_instr else measure_instructions(shapes, k, args.jobs)
    elapsed = time.perf_counter() - t0
    command = "python tests/benchmarks/bench_instr.py " + " ".join(sys.argv[1:])
    md = render(shapes, instr, times, sizes, k, command.strip(), elapsed)
    print(md)
    if args.out:
        write_section(Path(args.out) / "BENCHMARKS.md", md)
    if args.json:
        raw = {
            "k": k,
            "instr": {"/".join(key): v for key, v in instr.items()},
            "time": {"/".join(key): v for key, v in times.items()},
            "bytes": {"/".join(key): v for key, v in sizes.items()},
        }
        Path(args.json).write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
