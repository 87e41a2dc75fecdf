"""Benchmark satchel against cloudpickle, dill and stdlib pickle in one run.

Usage (from the repository root)::

    make bench                                    # builds, then runs the line below
    .venv/bin/python tests/benchmarks/bench.py --out docs

Writes ``BENCHMARKS.md`` (markdown tables) and ``benchmarks.png`` (bar plot) into ``--out`` and
prints the markdown to stdout.

Method: every measurement is one batch (for example 2000 ``dumps`` calls, or one ``dumps`` of a
large list), timed with ``time.perf_counter`` with the garbage collector disabled (after a
``gc.collect()``).  Each library gets an untimed warm-up call that also checks the result, then
``--repeats`` timed samples; the libraries are interleaved and their order rotated on every
repeat so that drift on a shared machine hits all of them alike.  The headline is the ratio of
medians, satchel ÷ peer (lower is better for satchel).  Peak memory for the large numpy array is
measured in a fresh child process per library.

This file must run as ``__main__``: the lambdas, closures and the class below are then pickled
by value by satchel, cloudpickle and dill, which is the point of workloads 1-3.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import gc
import json
import marshal
import operator
import os
import pickle
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import provenance

import satchel

try:
    import cloudpickle
except ImportError:  # pragma: no cover - optional peer
    cloudpickle = None
try:
    import dill
except ImportError:  # pragma: no cover - optional peer
    dill = None
try:
    import numpy as np
except ImportError:  # pragma: no cover - workload 6 is skipped
    np = None

N_TASKS = 2000
N_CLOSURES = 1000
N_INSTANCES = 20_000
N_FRACTIONS = 30_000
N_DICTS = 100_000
ARRAY_MB = 256

#: A module global read by the task lambdas and the closures (so it travels with them).
GLOBAL = 7


# --------------------------------------------------------------------------------------------
# Libraries under test


@dataclass(frozen=True)
class Lib:
    name: str
    dumps: Callable[..., bytes]
    loads: Callable[..., Any]
    #: Whether it can pickle functions/classes defined in __main__ by value.
    by_value: bool


def available_libs() -> list[Lib]:
    libs = [Lib("satchel", satchel.dumps, pickle.loads, True)]
    if cloudpickle is not None:
        libs.append(Lib("cloudpickle", cloudpickle.dumps, pickle.loads, True))
    if dill is not None:
        libs.append(Lib("dill", functools.partial(dill.dumps, protocol=5), dill.loads, True))
    libs.append(Lib("pickle", functools.partial(pickle.dumps, protocol=5), pickle.loads, False))
    return libs


# --------------------------------------------------------------------------------------------
# Workloads (defined at module level, i.e. in __main__)


def make_tasks(n: int) -> list:
    """Workload 1: one-task payloads, each a fresh lambda (pickled by value) plus its args."""
    return [(lambda x, k=k: x * k + GLOBAL, (k,)) for k in range(n)]


def check_tasks(loaded: list) -> None:
    for i in (0, 1, len(loaded) - 1):
        f, args = loaded[i]
        assert f(*args) == i * i + GLOBAL, "wrong task result"


def make_distinct_closures(n: int) -> list:
    """Workload 2: n closures with n *distinct* code objects.

    The source of n factories is exec'd in __main__'s namespace (so the closures are pickled by
    value); each factory returns a closure over a different value with its own code object.  The
    factories are removed from the namespace again, only the closures are kept.
    """
    namespace = globals()
    src = "".join(
        f"def _bench_factory_{j}(v):\n"
        f"    def closure_{j}(x):\n"
        f"        return x * v + GLOBAL + {j}\n"
        f"    return closure_{j}\n"
        for j in range(n)
    )
    exec(compile(src, "<bench-closures>", "exec"), namespace)  # noqa: S102 - our own source
    closures = [namespace.pop(f"_bench_factory_{j}")(j) for j in range(n)]
    return closures


def make_shared_closures(n: int) -> list:
    """Workload 2b: n closures over different values that share one code object."""

    def factory(v):
        def closure(x):
            return x * v + GLOBAL

        return closure

    return [factory(j) for j in range(n)]


def check_distinct_closures(loaded: list) -> None:
    for j in (0, 1, len(loaded) - 1):
        assert loaded[j](2) == 2 * j + GLOBAL + j, "wrong closure result"


def check_shared_closures(loaded: list) -> None:
    for j in (0, 1, len(loaded) - 1):
        assert loaded[j](2) == 2 * j + GLOBAL, "wrong closure result"


class Record:
    """Workload 3: a class defined in __main__ (pickled by value, once per dumps)."""

    def __init__(self, ident: int, name: str, score: float) -> None:
        self.ident = ident
        self.name = name
        self.score = score

    def describe(self) -> str:
        return f"{self.name}#{self.ident}:{self.score}"


def make_records(n: int) -> list:
    return [Record(i, f"rec{i}", i * 0.5) for i in range(n)]


def check_records(loaded: list) -> None:
    assert len(loaded) == N_INSTANCES
    assert loaded[123].describe() == "rec123#123:61.5", "wrong instance"
    assert loaded[0].__class__ is loaded[-1].__class__


def make_fractions(n: int) -> list:
    return [Fraction(i, i % 97 + 1) for i in range(n)]


def make_dicts(n: int) -> list:
    return [{"a": i, "b": str(i)} for i in range(n)]


# --------------------------------------------------------------------------------------------
# Timing helpers

Value = float | str  # a measurement, or an error message


def _timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
    finally:
        gc.enable()
    del out  # freed outside the timed region
    return dt


def _timed_fresh_thread(fn: Callable[[], Any]) -> float:
    """Like _timed, but in a new thread: per-thread caches of the pickler start empty."""
    box: list[float] = []
    thread = threading.Thread(target=lambda: box.append(_timed(fn)))
    thread.start()
    thread.join()
    if not box:
        raise RuntimeError("timed call failed in its thread")
    return box[0]


def time_interleaved(
    fns: dict[str, Callable[[], Any]], repeats: int, timer: Callable[..., float] = _timed
) -> dict[str, float]:
    """Median seconds per callable; callables are interleaved, order rotated per repeat."""
    names = list(fns)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names) if names else 0
        for name in names[k:] + names[:k]:
            samples[name].append(timer(fns[name]))
    return {name: statistics.median(s) for name, s in samples.items()}


ERRORS: list[tuple[str, str, str]] = []


def _error(workload: str, lib: str, exc: BaseException) -> str:
    msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    ERRORS.append((workload, lib, msg))
    print(f"[{workload}] {lib} failed: {msg}", file=sys.stderr)
    traceback.print_exc(limit=3, file=sys.stderr)
    return "error"


def _size(payload: bytes | list[bytes]) -> int:
    return len(payload) if isinstance(payload, bytes) else sum(len(p) for p in payload)


def run_case(
    workload: str,
    libs: list[Lib],
    dump: Callable[[Lib], bytes | list[bytes]],
    load: Callable[[Lib, Any], Any] | None,
    check: Callable[[Any], None] | None,
    repeats: int,
) -> dict[str, dict[str, Value]]:
    """Warm up and check every library, then time dumps (and loads) interleaved.

    Returns {"dumps": {lib: s}, "loads": {lib: s}, "bytes": {lib: n}}; a failing library gets
    the string "error" instead of a number.
    """
    out: dict[str, dict[str, Value]] = {"dumps": {}, "loads": {}, "bytes": {}}
    dump_fns: dict[str, Callable[[], Any]] = {}
    load_fns: dict[str, Callable[[], Any]] = {}
    for lib in libs:
        try:
            payload = dump(lib)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            out["dumps"][lib.name] = out["bytes"][lib.name] = _error(workload, lib.name, exc)
            if load is not None:
                out["loads"][lib.name] = "error"
            continue
        out["bytes"][lib.name] = _size(payload)
        dump_fns[lib.name] = functools.partial(dump, lib)
        if load is None:
            continue
        try:
            loaded = load(lib, payload)
            if check is not None:
                check(loaded)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            out["loads"][lib.name] = _error(workload, lib.name, exc)
            continue
        load_fns[lib.name] = functools.partial(load, lib, payload)
    out["dumps"].update(time_interleaved(dump_fns, repeats))
    out["loads"].update(time_interleaved(load_fns, repeats))
    return out


def dump_one(obj: Any) -> Callable[[Lib], bytes]:
    return lambda lib: lib.dumps(obj)


def load_one(lib: Lib, payload: bytes) -> Any:
    return lib.loads(payload)


def dump_each(objs: list) -> Callable[[Lib], list[bytes]]:
    return lambda lib: [lib.dumps(o) for o in objs]


def load_each(lib: Lib, payloads: list[bytes]) -> list:
    return [lib.loads(p) for p in payloads]


# --------------------------------------------------------------------------------------------
# Workload 6: large numpy array, out-of-band buffers, peak RSS in a child process


def _current_rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: fall back to the peak so far
        return _peak_rss()


def _peak_rss() -> int:
    """Peak RSS of this process in bytes.

    On Linux this is VmHWM from /proc/self/status: ``ru_maxrss`` would do, except that a child
    started by fork/vfork + exec inherits the parent's peak in it (the benchmark parent is
    bigger than the child's baseline), so it cannot be trusted for a small delta.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def rss_child(lib_name: str, mb: int) -> None:
    """Runs in a fresh interpreter; prints one JSON line."""
    lib = {lib.name: lib for lib in available_libs()}[lib_name]
    nbytes = mb * 2**20
    baseline = _current_rss()  # after imports, before the array exists
    arr = np.ones(nbytes // 8, dtype=np.float64)  # every page written
    after_array = _peak_rss()
    buffers: list = []
    payload = lib.dumps(arr, protocol=5, buffer_callback=buffers.append)
    peak_dumps = _peak_rss()
    addr = arr.__array_interface__["data"][0]
    buf_addrs = [
        np.frombuffer(b.raw(), dtype=np.uint8).__array_interface__["data"][0] for b in buffers
    ]
    loaded = lib.loads(payload, buffers=buffers)
    shares = bool(np.shares_memory(loaded, arr)) and bool(np.array_equal(loaded[:5], arr[:5]))
    peak_loads = _peak_rss()
    del loaded
    times = []
    for _ in range(7):
        bufs: list = []
        t0 = time.perf_counter()
        lib.dumps(arr, protocol=5, buffer_callback=bufs.append)
        times.append(time.perf_counter() - t0)
    result = {
        "nbytes": nbytes,
        "baseline": baseline,
        "after_array": after_array,
        "peak_dumps": peak_dumps,
        "peak_loads": peak_loads,
        "n_buffers": len(buffers),
        "zero_copy": buf_addrs == [addr],
        "loads_shares_memory": shares,
        "inband_bytes": len(payload),
        "dumps_s": statistics.median(times),
    }
    print(json.dumps(result))


def run_rss(libs: list[Lib], mb: int) -> dict[str, dict | str]:
    out: dict[str, dict | str] = {}
    for lib in libs:
        print(f"  [6] child process for {lib.name} ...", file=sys.stderr)
        cmd = [sys.executable, os.path.abspath(__file__), "--rss-child", lib.name]
        cmd += ["--array-mb", str(mb)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
            out[lib.name] = json.loads(proc.stdout.strip().splitlines()[-1])
        except subprocess.CalledProcessError as exc:
            tail = (exc.stderr or "").strip().splitlines()[-1:] or ["child failed"]
            out[lib.name] = _error("6", lib.name, RuntimeError(tail[0]))
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            out[lib.name] = _error("6", lib.name, exc)
    return out


# --------------------------------------------------------------------------------------------
# Report


@dataclass
class Row:
    workload: str
    short: str  # label in the plot
    metric: str
    satchel: str  # satchel's own (absolute) value, formatted
    ratios: dict[str, float | str]  # peer -> satchel/peer, or a note
    target: tuple[str, float] | None = None
    target_text: str = "—"
    result: str = "—"
    plot: bool = True


def fmt_abs(v: Value | None, unit: str) -> str:
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    if unit == "B":
        if v >= 2**20:
            return f"{v / 2**20:.1f} MiB"
        return f"{v / 1024:.1f} KiB" if v >= 1024 else f"{v:.0f} B"
    if v >= 1:
        return f"{v:.2f} s"
    return f"{v * 1e3:.3g} ms" if v >= 1e-3 else f"{v * 1e6:.3g} µs"


def fmt_ratio(r: float | str | None) -> str:
    if r is None:
        return "—"
    return r if isinstance(r, str) else f"{r:.3g}×"


def ratio_row(
    workload: str,
    short: str,
    metric: str,
    values: dict[str, Value],
    unit: str,
    peers: list[str],
    target: tuple[str, float] | None = None,
) -> Row:
    s = values.get("satchel")
    ratios: dict[str, float | str] = {}
    for peer in peers:
        v = values.get(peer)
        if v is None:
            ratios[peer] = "n/a"
        elif isinstance(s, str) or isinstance(v, str) or v == 0:
            ratios[peer] = "error"
        else:
            ratios[peer] = s / v
    row = Row(workload, short, metric, fmt_abs(s, unit), ratios)
    if target is not None:
        peer, limit = target
        row.target, row.target_text = target, f"≤ {limit:g}× {peer}"
        r = ratios.get(peer)
        if isinstance(s, str):
            row.result = "ERROR"
        elif isinstance(r, float):
            row.result = "PASS" if r <= limit else "MISS"
        else:
            row.result = "n/a"
    return row


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def plot(rows: list[Row], peers: list[str], rss: dict[str, dict | str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.plot and any(isinstance(v, float) for v in r.ratios.values())]
    colors = {
        "satchel": "#d62728",
        "cloudpickle": "#1f77b4",
        "dill": "#ff7f0e",
        "pickle": "#2ca02c",
    }
    fig, (ax, ax2) = plt.subplots(
        1, 2, figsize=(16, 7), gridspec_kw={"width_ratios": [5, 1.3]}, constrained_layout=True
    )
    width = 0.8 / max(len(peers), 1)
    xs = range(len(rows))
    for i, peer in enumerate(peers):
        offs = [x - 0.4 + width * (i + 0.5) for x in xs]
        vals = [r.ratios.get(peer) for r in rows]
        hs = [v if isinstance(v, float) else float("nan") for v in vals]
        bars = ax.bar(offs, hs, width, label=f"satchel ÷ {peer}", color=colors.get(peer))
        for bar, v in zip(bars, vals):
            if isinstance(v, float):
                ax.annotate(
                    f"{v:.2f}" if v >= 0.1 else f"{v:.2g}",
                    (bar.get_x() + bar.get_width() / 2, v),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
                )
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="parity (1×)")
    ax.set_yscale("log")
    ax.set_xticks(list(xs))
    labels = [f"{r.short}\n" + r.metric.replace(", ", "\n") for r in rows]
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("satchel ÷ peer (log scale)")
    ax.set_title("satchel ÷ peer, ratio of medians from one run (lower is better)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=5)
    ax.grid(axis="y", which="both", alpha=0.3)

    names = [n for n, v in rss.items() if isinstance(v, dict)]
    if not names:
        ax2.set_axis_off()
        ax2.set_title("6: large array skipped or failed", fontsize=10)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return
    ratios = [(rss[n]["peak_dumps"] - rss[n]["baseline"]) / rss[n]["nbytes"] for n in names]
    bars = ax2.bar(names, ratios, color=[colors.get(n, "grey") for n in names])
    for bar, v in zip(bars, ratios):
        ax2.annotate(
            f"{v:.2f}",
            (bar.get_x() + bar.get_width() / 2, v),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax2.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="the array itself (1×)")
    ax2.set_ylim(0, max([2.2] + [v * 1.15 for v in ratios]))
    ax2.set_ylabel("(peak RSS − RSS before array) ÷ array size")
    mb = rss[names[0]]["nbytes"] // 2**20
    ax2.set_title(f"6: {mb} MB array, protocol 5,\nout-of-band buffers", fontsize=10)
    ax2.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax2.legend(fontsize=8, loc="upper left")
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# Workload runners


@dataclass
class Report:
    libs: list[Lib]
    repeats: int
    rows: list[Row] = field(default_factory=list)
    absolute: list[tuple[str, str, dict[str, Value], str]] = field(default_factory=list)
    per_call: dict[str, Value] = field(default_factory=dict)
    rss: dict[str, dict | str] = field(default_factory=dict)

    @property
    def peers(self) -> list[str]:
        return [lib.name for lib in self.libs if lib.name != "satchel"]

    @property
    def by_value(self) -> list[Lib]:
        return [lib for lib in self.libs if lib.by_value]

    def add(self, workload, short, metric, values, unit, target=None, plot=True) -> None:
        row = ratio_row(workload, short, metric, values, unit, self.peers, target)
        row.plot = plot
        self.rows.append(row)
        self.absolute.append((workload, metric, values, unit))


def bench_tasks(rep: Report) -> None:
    w, short = f"1. {N_TASKS} one-task dumps", "1 tasks"
    print(f"[{w}]", file=sys.stderr)
    tasks = make_tasks(N_TASKS)
    res = run_case("1", rep.by_value, dump_each(tasks), load_each, check_tasks, rep.repeats)
    rep.add(w, short, "dumps", res["dumps"], "s", ("cloudpickle", 0.15))
    rep.add(w, short, "loads", res["loads"], "s", ("cloudpickle", 0.4))
    rep.add(w, short, "bytes", res["bytes"], "B", ("cloudpickle", 0.5))
    codes = [f.__code__ for f, _ in tasks]
    refs = time_interleaved(
        {
            "pickle.dumps((operator.mul, (i, 2)), protocol=5)": lambda: [
                pickle.dumps((operator.mul, (i, 2)), protocol=5) for i in range(N_TASKS)
            ],
            "marshal.dumps(task_lambda.__code__)": lambda: [marshal.dumps(c) for c in codes],
        },
        rep.repeats,
    )
    totals: dict[str, Value] = {
        f"{lib.name}.dumps(task)": res["dumps"][lib.name] for lib in rep.by_value
    }
    totals |= refs
    rep.per_call = {k: v / N_TASKS if isinstance(v, float) else v for k, v in totals.items()}


def bench_closures(rep: Report) -> None:
    w, short = f"2. {N_CLOSURES} distinct closures, one dumps", "2 closures"
    print(f"[{w}]", file=sys.stderr)
    closures = make_distinct_closures(N_CLOSURES)
    res = run_case(
        "2", rep.by_value, dump_one(closures), load_one, check_distinct_closures, rep.repeats
    )
    rep.add(w, short, "dumps", res["dumps"], "s", ("cloudpickle", 0.2))
    rep.add(w, short, "loads", res["loads"], "s", ("cloudpickle", 0.6))
    rep.add(w, short, "bytes", res["bytes"], "B")

    w, short = f"2b. {N_CLOSURES} closures sharing one code object, one dumps", "2b shared"
    print(f"[{w}]", file=sys.stderr)
    shared = make_shared_closures(N_CLOSURES)
    res = run_case(
        "2b", rep.by_value, dump_one(shared), load_one, check_shared_closures, rep.repeats
    )
    rep.add(w, short, "dumps", res["dumps"], "s", ("cloudpickle", 0.2))
    rep.add(w, short, "loads", res["loads"], "s", ("cloudpickle", 0.6))


def bench_records(rep: Report) -> None:
    w, short = f"3. __main__ class + {N_INSTANCES:,} instances", "3 class+inst"
    print(f"[{w}]", file=sys.stderr)
    records = make_records(N_INSTANCES)
    res = run_case("3", rep.libs, dump_one(records), load_one, check_records, rep.repeats)
    rep.add(w, short, "dumps", res["dumps"], "s", ("cloudpickle", 0.3))
    rep.add(w, short, "loads", res["loads"], "s")
    rep.add(w, short, "bytes", res["bytes"], "B", plot=False)


def bench_fractions(rep: Report) -> None:
    w, short = f"4. {N_FRACTIONS:,} Fractions", "4 Fraction"
    print(f"[{w}]", file=sys.stderr)
    res = run_case("4", rep.libs, dump_one(make_fractions(N_FRACTIONS)), None, None, rep.repeats)
    rep.add(w, short, "dumps", res["dumps"], "s", ("pickle", 1.15))
    rep.add(w, short, "bytes", res["bytes"], "B", plot=False)
    cp, pk = res["dumps"].get("cloudpickle"), res["dumps"].get("pickle")
    if isinstance(cp, float) and isinstance(pk, float):
        ref = Row(w, short, "dumps: cloudpickle ÷ pickle (reference)", "—", {"pickle": cp / pk})
        ref.plot = False
        rep.rows.append(ref)


def bench_dicts(rep: Report) -> None:
    w, short = f"5. {N_DICTS:,} small dicts", "5 dicts"
    print(f"[{w}]", file=sys.stderr)
    dicts = make_dicts(N_DICTS)
    res = run_case("5", rep.libs, dump_one(dicts), None, None, rep.repeats)
    rep.add(w, short, "dumps", res["dumps"], "s", ("pickle", 1.05))
    rep.add(w, short, "bytes", res["bytes"], "B", plot=False)
    # satchel keeps one pickler per thread between dumps calls; a fresh thread per sample shows
    # the cost of a one-off dumps (no pickler or memo left over from the previous call).
    ok = [lib for lib in rep.libs if isinstance(res["dumps"].get(lib.name), float)]
    cold = {lib.name: functools.partial(lib.dumps, dicts) for lib in ok}
    values: dict[str, Value] = {k: v for k, v in res["dumps"].items() if isinstance(v, str)}
    values |= time_interleaved(cold, rep.repeats, timer=_timed_fresh_thread)
    rep.add(w, short, "dumps, fresh thread", values, "s")


def bench_tasks_again(rep: Report) -> None:
    """Workload 1's dumps again, now that workloads 3-5 have run large dumps in this thread."""
    w, short = f"1 again: {N_TASKS} one-task dumps, after the large dumps of 3-5", "1 again"
    print(f"[{w}]", file=sys.stderr)
    res = run_case("1 again", rep.by_value, dump_each(make_tasks(N_TASKS)), None, None, rep.repeats)
    rep.add(w, short, "dumps", res["dumps"], "s", ("cloudpickle", 0.15))


def bench_array(rep: Report, mb: int) -> None:
    w = f"6. {mb} MB numpy array, protocol 5, buffer_callback"
    if np is None:
        print("[6] numpy missing: skipped", file=sys.stderr)
        return
    print(f"[{w}]", file=sys.stderr)
    rep.rss = rss = run_rss(rep.libs, mb)
    peak: dict[str, Value] = {
        n: (v["peak_dumps"] - v["baseline"]) / v["nbytes"] if isinstance(v, dict) else v
        for n, v in rss.items()
    }
    row = ratio_row(w, "6 array", "peak RSS", peak, "x", rep.peers)
    s = peak.get("satchel")
    row.satchel = f"{s:.3f}× array" if isinstance(s, float) else str(s)
    row.result = ("PASS" if s <= 1.1 else "MISS") if isinstance(s, float) else "ERROR"
    row.target_text, row.plot = "≤ 1.1× array", False
    rep.rows.append(row)

    sv = rss.get("satchel")
    ok = isinstance(sv, dict) and sv["zero_copy"] and sv["loads_shares_memory"]
    cells: dict[str, float | str] = {}
    for p in rep.peers:
        v = rss.get(p)
        cells[p] = "error" if not isinstance(v, dict) else "no copy" if v["zero_copy"] else "COPY"
    row = Row(w, "6", "buffer is the array's memory", "yes" if ok else "no", cells)
    row.target_text, row.plot = "no copy", False
    row.result = "PASS" if ok else ("ERROR" if isinstance(sv, str) else "MISS")
    rep.rows.append(row)


# --------------------------------------------------------------------------------------------
# Markdown


def _version(mod: Any) -> str:
    return getattr(mod, "__version__", "?") if mod is not None else "not installed"


HEADER = """\
# Benchmarks

Generated by `make bench` (runs `.venv/bin/python tests/benchmarks/bench.py --out docs`) from \
{commit}, on {now}.

- Python {py}, {platform}, {cpus} CPUs
- satchel {satchel}, cloudpickle {cloudpickle}, dill {dill}, numpy {numpy}
- {repeats} timed repeats per measurement after one untimed warm-up; libraries interleaved, \
order rotated each repeat; GC disabled inside the timed region
- whole run: {elapsed:.0f} s

> **Caveat:** measured on a shared, noisy machine (2 cores). Absolute times are only for \
orientation; the headline numbers are **ratios of medians, satchel ÷ peer**, from the same run \
(below 1× means satchel is faster / smaller). Expect run-to-run variation of roughly ±10-20% on \
the ratios.

![satchel ÷ peer](benchmarks.png)

## Results
"""

RESULTS_NOTE = """\
`n/a`: the peer cannot do this (stdlib pickle does not pickle `__main__` functions by value).
`error`: that library raised (see Errors). For workload 6 the ratio columns compare satchel's
peak-RSS ratio with the peer's.

## Workload 1: per-call reference costs

Median time per call (absolute, so noisy) and satchel's `dumps(task)` relative to it.
"""

ARRAY_NOTE = """\
## Workload 6: large array details

Each library runs in its own fresh child process: it imports everything, records the current RSS
(*baseline*, from `/proc/self/statm`), creates the array with `np.ones` (all pages touched), then
calls `dumps(arr, protocol=5, buffer_callback=buffers.append)` and reads the peak RSS (`VmHWM`
in `/proc/self/status`, the same high-water mark as `getrusage(RUSAGE_SELF).ru_maxrss` except
that `ru_maxrss` also carries the *parent's* peak across fork + exec, which would swamp the
child's numbers; `ru_maxrss` is the fallback off Linux). **Peak ratio = (peak RSS after dumps − baseline)
÷ array size**: 1.0 means no copy was made, 2.0 means one full copy. *Zero-copy* checks that
there is exactly one out-of-band `PickleBuffer` and that its memory starts at the array's data
address; *loads shares memory* checks that `loads(payload, buffers=buffers)` returns an array
backed by the same memory.
"""

WORKLOADS_NOTE = f"""\
## Workloads

1. {N_TASKS} separate `dumps` calls, each of `(lambda x, k=k: x * k + GLOBAL, (i,))` with `k = i`
   and `GLOBAL` a module global; the lambdas are defined in the benchmark's `__main__`, so they
   are pickled by value. *dumps* / *loads* are totals over all {N_TASKS} payloads (loads:
   `pickle.loads`, or `dill.loads` for dill); *bytes* is the total payload size.
2. One `dumps` of a list of {N_CLOSURES} closures with **distinct code objects**: the source of
   {N_CLOSURES} factories `def _bench_factory_j(v): def closure_j(x): return x * v + GLOBAL + j`
   is `exec`'d in `__main__`'s namespace and each factory is called once. **2b** is the same
   with one factory called in a loop (one shared code object, different cell values), which
   rewards memoising the code object.
3. One `dumps` of a list of {N_INSTANCES:,} instances (three attributes each) of a class defined
   in `__main__` (pickled by value by satchel/cloudpickle/dill, by reference by stdlib pickle).
4. One `dumps` of a list of {N_FRACTIONS:,} `fractions.Fraction` (nothing by value).
5. One `dumps` of a list of {N_DICTS:,} dicts `{{"a": i, "b": str(i)}}`.
6. See the details section above.

*dumps, fresh thread* (workload 5) times each sample in a new thread, so a library that keeps a
pickler per thread between calls (satchel does) starts cold, as a one-off `dumps` would.
*1 again* repeats workload 1's dumps after the large dumps of workloads 3-5 in the same thread,
to catch state left over from a large call slowing down later small ones.

Every library writes protocol 5 (satchel's and cloudpickle's default; `pickle.dumps(...,
protocol=5)` and `dill.dumps(..., protocol=5)` explicitly).
"""


def render_markdown(rep: Report, elapsed: float) -> str:
    peers = rep.peers
    parts = [
        HEADER.format(
            now=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            commit=provenance.commit(),
            py=f"{platform.python_implementation()} {platform.python_version()}",
            platform=platform.platform(),
            cpus=os.cpu_count(),
            satchel=_version(satchel),
            cloudpickle=_version(cloudpickle),
            dill=_version(dill),
            numpy=_version(np),
            repeats=rep.repeats,
            elapsed=elapsed,
        )
    ]
    table, prev = [], None
    for r in rep.rows:
        label = r.workload if r.workload != prev else ""
        prev = r.workload
        cells = [fmt_ratio(r.ratios.get(p)) for p in peers]
        table.append([label, r.metric, r.satchel, *cells])
    header = ["Workload", "Metric", "satchel", *[f"÷ {p}" for p in peers]]
    parts += [markdown_table(header, table), "", RESULTS_NOTE]

    s = rep.per_call.get("satchel.dumps(task)")
    ref_rows = []
    for name, v in rep.per_call.items():
        rel = fmt_ratio(s / v) if isinstance(s, float) and isinstance(v, float) else "—"
        ref_rows.append([f"`{name}`", fmt_abs(v, "s"), rel])
    parts += [markdown_table(["Operation", "Time per call", "satchel ÷ this"], ref_rows), ""]

    if rep.rss:
        rss_rows = []
        for name, v in rep.rss.items():
            if not isinstance(v, dict):
                rss_rows.append([name, str(v), "", "", "", "", "", ""])
                continue
            nb = v["nbytes"]
            rss_rows.append(
                [
                    name,
                    f"{(v['peak_dumps'] - v['baseline']) / nb:.3f}×",
                    f"{(v['peak_dumps'] - v['after_array']) / 2**20:.1f} MiB",
                    f"{(v['peak_loads'] - v['baseline']) / nb:.3f}×",
                    "yes" if v["zero_copy"] else f"no ({v['n_buffers']} buffers)",
                    "yes" if v["loads_shares_memory"] else "no",
                    fmt_abs(v["inband_bytes"], "B"),
                    fmt_abs(v["dumps_s"], "s"),
                ]
            )
        header = [
            "Library",
            "Peak ratio",
            "Peak growth during dumps",
            "Peak ratio after loads",
            "Zero-copy",
            "loads shares memory",
            "In-band payload",
            "dumps time",
        ]
        parts += [ARRAY_NOTE, markdown_table(header, rss_rows), ""]

    names = [lib.name for lib in rep.libs]
    abs_rows = [
        [w.split(":")[0].split(".")[0], m, *[fmt_abs(vals.get(n), u) for n in names]]
        for w, m, vals, u in rep.absolute
    ]
    parts += ["## Absolute medians (orientation only)", ""]
    parts += [markdown_table(["#", "Metric", *names], abs_rows), "", WORKLOADS_NOTE]
    if ERRORS:
        parts += ["## Errors", ""]
        parts += [f"- workload {w}, {lib}: `{msg}`" for w, lib, msg in ERRORS]
        parts.append("")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# Main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs", help="directory for BENCHMARKS.md and the PNG")
    parser.add_argument("--repeats", type=int, default=9, help="timed samples per measurement")
    parser.add_argument("--array-mb", type=int, default=ARRAY_MB, help="workload 6 array size")
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.array_mb)
        return
    if __name__ != "__main__":
        raise SystemExit("bench.py must run as a script (__main__)")

    t_start = time.perf_counter()
    rep = Report(available_libs(), args.repeats)
    bench_tasks(rep)
    bench_closures(rep)
    bench_records(rep)
    bench_fractions(rep)
    bench_dicts(rep)
    bench_tasks_again(rep)
    gc.collect()
    bench_array(rep, args.array_mb)

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = render_markdown(rep, time.perf_counter() - t_start)
    target = out_dir / "BENCHMARKS.md"
    # Keep the instruction-count section bench_instr.py wrote (make bench runs it after this).
    begin, end = "<!-- bench_instr: begin -->", "<!-- bench_instr: end -->"
    old = target.read_text() if target.exists() else ""
    if begin in old and end in old:
        kept = begin + old.split(begin, 1)[1].split(end, 1)[0] + end
        md = md.rstrip("\n") + "\n\n" + kept + "\n"
    target.write_text(md)
    try:
        plot(rep.rows, rep.peers, rep.rss, out_dir / "benchmarks.png")
    except ImportError:
        print("matplotlib missing: benchmarks.png not written", file=sys.stderr)
    print(md)
    # The project's own goals, for whoever runs this (not part of the user documentation).
    for r in rep.rows:
        if r.target_text != "—":
            print(f"goal {r.short} {r.metric}: {r.target_text}: {r.result}", file=sys.stderr)
    elapsed = time.perf_counter() - t_start
    print(f"wrote {out_dir}/BENCHMARKS.md and benchmarks.png in {elapsed:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
