"""Session snapshots: ``satchel.dump_session`` against ``dill.dump_module``.

The session is a generated script run as ``__main__`` of a fresh interpreter: 200 functions
(arithmetic, loops, calls between them, numpy, closures' factories), 20 classes (methods,
properties, class attributes, inheritance) with 50 instances each, a little plain data and
50 MB of numpy arrays shaped like real data: a float64 random walk (16 MB) and float64 noise
(8 MB), which hardly compress, float32 readings rounded to 0.1 (8 MB), int64 timestamps at
jittered intervals (8 MB), int32 category codes (4 MB) and a structured record array
(id, x, y, flag, label; 6 MB).

That interpreter snapshots its own ``__main__`` with each tool in turn (the order rotates each
repeat), and fresh interpreters time each load (imports done before the clock starts). Ratios
are of medians from the same run. satchel compresses by default (format 1.3: the arrays leave
the body and are compressed in 1 MiB zstd chunks on every core, byte-shuffled by element size
where that helps; docs/FORMAT.md "Compression") and fsyncs before renaming the file into place;
dill writes an uncompressed pickle (its default protocol, 4) and does not fsync. satchel with
``compress=False`` is reported too.

    python tests/benchmarks/bench_session.py [--out DIR] [--repeats 5]
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap

import provenance

HERE = os.path.dirname(os.path.abspath(__file__))

TOOLS = {
    "satchel (zstd)": "satchel.dump_session({path!r})",
    "satchel (compress=False)": "satchel.dump_session({path!r}, compress=False)",
    "dill 0.4.1": "dill.dump_module({path!r})",
}
LOADERS = {
    "satchel (zstd)": "satchel.load_session({path!r})",
    "satchel (compress=False)": "satchel.load_session({path!r})",
    "dill 0.4.1": "dill.load_module({path!r})",
}

DATA = """
import functools
import math

import numpy as np

rng = np.random.default_rng(20240601)
prices = 100 + np.cumsum(rng.normal(0, 0.5, 2_000_000))  # float64 random walk, 16 MB
noise = rng.standard_normal(1_000_000)  # float64, 8 MB
_t = np.arange(2_000_000) / 500.0
readings = np.round(20 + 5 * np.sin(_t) + rng.normal(0, 0.5, _t.size), 1).astype(np.float32)
timestamps = 1_700_000_000_000 + np.cumsum(rng.integers(900, 1100, 1_000_000))  # int64, 8 MB
categories = np.minimum(rng.zipf(1.5, 1_000_000), 40).astype(np.int32)  # 4 MB
records = np.zeros(300_000, dtype=[("id", "<i4"), ("x", "<f4"), ("y", "<f4"),
                                   ("flag", "?"), ("label", "S7")])  # 20 bytes each, 6 MB
records["id"] = np.arange(records.size)
records["x"] = rng.uniform(0, 100, records.size)
records["y"] = rng.uniform(0, 100, records.size)
records["flag"] = rng.random(records.size) < 0.1
records["label"] = np.array([b"alpha", b"beta", b"gamma", b"delta"])[rng.integers(0, 4, records.size)]
del _t

config = {"name": "experiment-7", "alpha": 0.05, "features": ["x", "y", "label"], "seed": 7}
history = [{"step": i, "loss": 1.0 / (i + 1)} for i in range(500)]
SCALE = 2.5
OFFSET = 1.0
"""

FUNCTION_TEMPLATES = [
    "def f{i}(x, y=2):\n    return (x * SCALE + y * {i}) / (OFFSET + {j})\n",
    "def f{i}(n):\n    total = 0\n    for k in range(n):\n        total += k * {i} % 7\n    return total\n",
    "def f{i}(x):\n    return f{j}(x) + f{k}(x + 1) if x > 0 else {i}\n",
    "def f{i}(a):\n    return float(np.mean(np.asarray(a) * {i}))\n",
    "def f{i}(s):\n    return '{{}}-{{}}'.format(s, {i}).upper()\n",
    "def f{i}(factor={i}):\n    def inner(v):\n        return v * factor + OFFSET\n    return inner\n",
    "def f{i}(xs):\n    return sorted(xs, key=lambda v: (v % {m}, -v))[:3]\n",
    "@functools.lru_cache(maxsize=None)\ndef f{i}(n):\n    return n if n < 2 else f{i}(n - 1) + f{i}(n - 2)\n",
]

CLASS_TEMPLATE = '''
class {base}C{i}{parent}:
    """Model {i}."""
    kind = "c{i}"
    weights = ({i}, {i} + 1, {i} + 2)

    def __init__(self, ident, value):
        self.ident = ident
        self.value = value
        self.tags = ["t{i}", str(ident)]

    @property
    def score(self):
        return self.value * SCALE + sum(self.weights)

    def step(self, x):
        self.value = f{f}(self.value) if isinstance(self.value, int) else self.value + x
        return self.value

    def describe(self):
        return f"{{self.kind}}:{{self.ident}}:{{self.score:.2f}}"

    @classmethod
    def build(cls, n):
        return [cls(k, k * {i}) for k in range(n)]

    @staticmethod
    def norm(v):
        return math.sqrt(v * v + {i})
'''


def session_source(functions=200, classes=20, instances=50):
    parts = [DATA]
    for i in range(functions):
        template = FUNCTION_TEMPLATES[i % len(FUNCTION_TEMPLATES)]
        j, k = max(i - 1, 0), max(i - 2, 0)
        if "f{j}(x)" in template and i < 3:
            template = FUNCTION_TEMPLATES[0]
        parts.append(template.format(i=i, j=j, k=k, m=i % 5 + 2))
    for i in range(classes):
        parent = f"(C{i - 1})" if i % 4 == 3 else ""
        parts.append(CLASS_TEMPLATE.format(base="", i=i, parent=parent, f=(i * 7) % functions))
        parts.append(f"objects_{i} = C{i}.build({instances})\n")
    return "\n".join(parts)


CHILD_DUMP = r"""
import sys
exec(compile(open(sys.argv[1]).read(), sys.argv[1], "exec"))
import gc as _gc, json as _json, time as _time
import dill, satchel
_results = {}
for _repeat in range(int(sys.argv[3])):
    _names = list(_tools)
    _names = _names[_repeat % len(_names):] + _names[:_repeat % len(_names)]
    for _name in _names:
        _gc.collect()
        _t0 = _time.perf_counter()
        exec(_tools[_name])
        _elapsed = _time.perf_counter() - _t0
        _results.setdefault(_name, []).append((_elapsed, _sizes[_name]()))
print(_json.dumps(_results))
"""

CHILD_LOAD = r"""
import sys, time
import dill, numpy, satchel
t0 = time.perf_counter()
exec(sys.argv[1])
elapsed = time.perf_counter() - t0
assert f17(3) == f17(3) and objects_3[1].describe(), "the session did not load"
print(elapsed)
"""


def run(args, timeout=600):
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"child failed:\n{proc.stderr}")
    return proc.stdout


def measure(workdir, repeats):
    source_path = os.path.join(workdir, "session_main.py")
    files = {name: os.path.join(workdir, f"session{n}.pkl") for n, name in enumerate(TOOLS)}
    prelude = "_tools = {}\n_sizes = {}\n" + "".join(
        f"_tools[{name!r}] = {TOOLS[name].format(path=path)!r}\n"
        f"_sizes[{name!r}] = lambda: __import__('os').path.getsize({path!r})\n"
        for name, path in files.items()
    )
    with open(source_path, "w") as f:
        f.write(session_source() + "\n" + prelude)
    dumps = json.loads(run(["-c", CHILD_DUMP, source_path, "", str(repeats)]).splitlines()[-1])
    loads = {name: [] for name in TOOLS}
    for _ in range(repeats):
        for name, path in files.items():
            loads[name].append(float(run(["-c", CHILD_LOAD, LOADERS[name].format(path=path)])))
    result = {}
    for name in TOOLS:
        times = [t for t, _ in dumps[name]]
        result[name] = {
            "dump_s": statistics.median(times),
            "dump_all": times,
            "size": dumps[name][-1][1],
            "load_s": statistics.median(loads[name]),
        }
    return result


def table(result):
    dill_ = result["dill 0.4.1"]
    lines = [
        "| tool | dump (median) | file size | load (median) | dump ÷ dill | size ÷ dill | load ÷ dill |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in result.items():
        lines.append(
            f"| {name} | {r['dump_s'] * 1000:.0f} ms | {r['size'] / 1e6:.1f} MB | "
            f"{r['load_s'] * 1000:.0f} ms | {r['dump_s'] / dill_['dump_s']:.2f}× | "
            f"{r['size'] / dill_['size']:.2f}× | {r['load_s'] / dill_['load_s']:.2f}× |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="write DIR/BENCHMARKS-session.md")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-session-") as workdir:
        result = measure(workdir, args.repeats)
    text = table(result)
    print(text)
    if args.out:
        now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        doc = textwrap.dedent(
            f"""\
            # Session snapshots: satchel.dump_session vs dill.dump_module

            Generated by `python tests/benchmarks/bench_session.py --out {args.out}` from
            {provenance.commit()}, on {now}
            ({platform.python_implementation()} {platform.python_version()}, {platform.machine()},
            {os.cpu_count()} CPUs, shared machine; {args.repeats} repeats, ratios of medians).

            """
        )
        doc += __doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0] + "\n\n" + text + "\n"
        with open(os.path.join(args.out, "BENCHMARKS-session.md"), "w") as f:
            f.write(doc)


if __name__ == "__main__":
    main()
