"""The error path: how long satchel, cloudpickle and pickle take to raise on an unpicklable
object deep in, or after, a lot of picklable data (issue 15, item 6).

Cases (each raises: a ``threading.Lock`` cannot be pickled):

- ``shared N``: ``[big] * N + [lock]``, ``big`` one list of 200,000 ints referenced N times;
- ``nested lists``: 60 levels of ``[list(range(20_000)), inner]`` around the lock;
- ``nested closures``: 60 closures defined in ``__main__``, each holding a 20,000-int list
  and the next one, the last one the lock.

Each time is the median of ``--repeats`` calls in this process (the garbage collector off,
after a warm-up call). satchel's message carries the path to the lock (checked here).
``--callgrind CASE`` runs each library on one case under ``valgrind --tool=callgrind`` and
prints the instructions (Ir) of one call: the program with three calls minus the program
with one, halved (start-up, imports and a warm-up call cancel out), for a comparison that
does not depend on the machine's load.

    python tests/benchmarks/bench_errors.py [--repeats 7]
    python tests/benchmarks/bench_errors.py --callgrind "shared 2000"
"""

import argparse
import gc
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import cloudpickle

import satchel

LIBRARIES = {"satchel": satchel.dumps, "cloudpickle": cloudpickle.dumps, "pickle": pickle.dumps}


def shared(n):
    big = list(range(200_000))
    return [big] * n + [threading.Lock()], f"item {n}"


def nested_lists():
    obj = threading.Lock()
    for _ in range(60):
        obj = [list(range(20_000)), obj]
    return obj, " -> ".join(["item 1"] * 60)


def make_closure(data, inner):
    def f():
        return data, inner

    return f


def nested_closures():
    obj = threading.Lock()
    for _ in range(60):
        obj = make_closure(list(range(20_000)), obj)
    return obj, "closure cell 'inner' of function"


CASES = {
    "shared 500": lambda: shared(500),
    "shared 2000": lambda: shared(2000),
    "shared 4000": lambda: shared(4000),
    "nested lists (60)": nested_lists,
    "nested closures (60)": nested_closures,
}


def raise_time(dumps, obj):
    start = time.perf_counter()
    try:
        dumps(obj)
    except Exception as exc:  # noqa: BLE001
        return time.perf_counter() - start, exc
    raise AssertionError("did not raise")


def measure(repeats, check=True):
    rows = []
    for name, make in CASES.items():
        obj, path = make()
        row = {"case": name}
        for lib, dumps in LIBRARIES.items():
            gc.collect()
            gc.disable()
            try:
                _, exc = raise_time(dumps, obj)  # warm-up
                times = [raise_time(dumps, obj)[0] for _ in range(repeats)]
            finally:
                gc.enable()
            row[lib] = statistics.median(times)
            if lib == "satchel" and check:
                assert isinstance(exc, satchel.PicklingError), exc
                assert path in str(exc), (path, str(exc)[:300])
                assert "_thread.lock" in str(exc), str(exc)[:300]
        rows.append(row)
    return rows


def table(rows):
    lines = [
        "| case | satchel | cloudpickle | pickle | satchel ÷ cloudpickle |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['satchel']:.4f} s | {r['cloudpickle']:.4f} s | "
            f"{r['pickle']:.4f} s | {r['satchel'] / r['cloudpickle']:.2f}× |"
        )
    return "\n".join(lines)


CALLGRIND_CHILD = r"""
import sys
sys.path.insert(0, sys.argv[3])
import bench_errors as b
obj, _ = b.CASES[sys.argv[1]]()
dumps = b.LIBRARIES[sys.argv[2]]
for _ in range(1 + int(sys.argv[4])):  # a warm-up call (imports, caches), then the measured
    b.raise_time(dumps, obj)
"""


def _instructions(case, lib, calls, here):
    with tempfile.TemporaryDirectory() as tmp:
        outfile = os.path.join(tmp, "cg.out")
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={outfile}", sys.executable]
            + ["-c", CALLGRIND_CHILD, case, lib, here, str(calls)],
            check=True,
            capture_output=True,
        )
        with open(outfile) as f:
            totals = [line for line in f if line.startswith(("totals:", "summary:"))]
    return int(totals[-1].split()[1])


def callgrind(case):
    """Instructions (Ir) of one call: the whole program run with 3 calls minus with 1, halved
    (interpreter start-up, imports and the warm-up cancel out)."""
    here = os.path.dirname(os.path.abspath(__file__))
    return {
        lib: (_instructions(case, lib, 3, here) - _instructions(case, lib, 1, here)) // 2
        for lib in LIBRARIES
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--callgrind", metavar="CASE", choices=list(CASES))
    parser.add_argument(
        "--no-path-check", action="store_true", help="time an older satchel that finds no path"
    )
    args = parser.parse_args()
    if args.callgrind:
        counts = callgrind(args.callgrind)
        for lib, n in counts.items():
            print(f"{args.callgrind}: {lib} {n:,} instructions")
        return
    print(table(measure(args.repeats, check=not args.no_path_check)))


if __name__ == "__main__":
    main()
