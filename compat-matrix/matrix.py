"""`make matrix`: every producer x consumer x mode, written to compat-matrix/MATRIX.md.

    .venv/bin/python compat-matrix/matrix.py [--producers a,b] [--consumers a,b]
        [--objects a,b] [--variants a,b] [--jobs N] [--out FILE] [--fixtures update|refresh|skip]

Producers are the interpreters `make wheels` built satchel for (.interpreters/matrix/
wheels.json); each runs battery.py, which dumps every object in every variant (nonportable /
portable x lean / standalone x uncompressed / zstd). Consumers are every interpreter, with
satchel and stdlib-only; each runs consumer.py, which loads every stream in a forked child
(`pickle.loads`, and `satchel.loads` where satchel is installed) and checks the value.

Every outcome is a load, a clear error (rules.classify names it), or a bug: a crash (a signal),
a hang, a wrong value, or a harness failure. Bugs make the exit status 1 and are listed in
MATRIX.md; outcomes that satchel's design does not predict (rules.expect_*) and no known issue
(rules.KNOWN_ISSUES) explains are listed too, and make the exit status 1 with --strict.

Fixture streams for tests/test_fixtures.py are kept under
compat-matrix/fixtures/format-<major.minor>/<producer>/, by the stream format that wrote them:
the small objects, every variant. A run writes only the current format's set; the sets of
older formats are never touched (old streams are what the test is for). Within the current
set a stream already there is never replaced; --fixtures refresh rewrites that set only.
Work files (streams, jobs, results.json) live in .interpreters/matrix/.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import dataclasses
import datetime
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interpreters as registry  # noqa: E402
import rules  # noqa: E402

HERE = registry.HERE
BATTERY = HERE / "battery.py"
CONSUMER = HERE / "consumer.py"
FIXTURES = HERE / "fixtures"
MATRIX_MD = HERE / "MATRIX.md"

VARIANTS = [
    f"{mode}-{kind}{zstd}"
    for mode in ("nonportable", "portable")
    for kind in ("lean", "standalone")
    for zstd in ("", "-zstd")
]
VARIANT_TITLES = {
    "nonportable-lean": "nonportable, lean: `satchel.dumps(obj)` (the default)",
    "nonportable-lean-zstd": "nonportable, lean, compressed: `dumps(obj, compress=True)`",
    "nonportable-standalone": "nonportable, standalone: `dumps(obj, standalone=True)`",
    "nonportable-standalone-zstd": "nonportable, standalone, compressed: "
    "`dumps(obj, standalone=True, compress=True)`",
    "portable-lean": "portable, lean: `dumps(obj, mode='portable', standalone=False)`",
    "portable-lean-zstd": "portable, lean, compressed: "
    "`dumps(obj, mode='portable', standalone=False, compress=True)`",
    "portable-standalone": "portable, standalone: `dumps(obj, mode='portable')` (portable's default)",
    "portable-standalone-zstd": "portable, standalone, compressed: "
    "`dumps(obj, mode='portable', compress=True)`",
}
OBJECT_NOTES = {
    "plain_data": "dict of lists, tuple, bytes, float, big int, frozenset (the stdlib's pickle: no header)",
    "lambda": "lambda with a default, a closure cell and a module global",
    "closure_shared_cells": "two closures sharing a mutable cell (`nonlocal`)",
    "recursive_functions": "recursive `fact` and mutually recursive `is_even`/`is_odd`",
    "class_property_super": "class + subclass instance: property with setter, classmethod, "
    "staticmethod, `super()`",
    "dataclass": "`@dataclass(order=True)` with a `default_factory` field, and an instance",
    "enum": "`Enum` with a method, a member, an `IntFlag` combination",
    "namedtuple": "`collections.namedtuple` with a default and a `typing.NamedTuple` with a "
    "method and a docstring, and an instance of each",
    "abc_slots": "`abc.ABC` with `__slots__ = ()`, an abstract method and a classmethod; a "
    "concrete `__slots__` subclass and its instance; a class registered as a virtual subclass",
    "module_by_value": "a function, a class and an instance from a module registered with "
    "`register_pickle_by_value` (the module file is gone before any consumer runs)",
    "signed": "a function dumped with `key=` (HMAC-SHA256): `satchel.loads` must refuse "
    "another key and load with its own; `pickle.loads` ignores the signature",
    "partial": "`functools.partial` of a local function, positional and keyword",
    "generator_not_started": "generator before its first `next()`",
    "generator_suspended": "generator suspended in a `for` loop after two `next()`",
    "numpy_small": "3x4 int32 array and a lambda over it (needs numpy)",
    "numpy_array": "8 MB float64 array, by reference to numpy (needs numpy; not a fixture)",
    "numpy_closure": "function closing over a 2 MiB array (needs numpy; not a fixture)",
}
BUG = "bug"
TIMEOUT_STREAM = 180


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def interp_dict(interp):
    return {
        "name": interp.name,
        "impl": interp.impl,
        "version": list(interp.version),
        "bytecode": list(interp.bytecode_key),
        "zstd": interp.zstd,
        "label": interp.description,
    }


@dataclasses.dataclass
class Producer:
    interp: registry.Interpreter
    sys_path: tuple  # satchel first, then numpy


# ---------------------------------------------------------------------------------------------
# Planning: who produces, who consumes
# ---------------------------------------------------------------------------------------------


def plan(wheels, interps):
    """Producers (satchel built and smoke-tested) and consumer columns."""
    producers, columns = [], []
    for interp in interps:
        info = (wheels.get("interpreters") or {}).get(interp.name) or {}
        if info.get("satchel"):
            path = (info["site"],) + ((info["numpy_path"],) if info.get("numpy_path") else ())
            producers.append(Producer(interp, path))
            columns.append(registry.Column(interp, True, path, numpy=bool(info.get("numpy_path"))))
        columns.append(registry.Column(interp, False))
    return producers, columns


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


def child_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["OPENBLAS_NUM_THREADS"] = "1"  # numpy is imported before the consumer forks
    return env


class HarnessError(Exception):
    pass


def run_producer(producer, out_dir, objects=None, timeout=900):
    """Run the battery on a producer; returns its manifest (streams under ``out_dir``)."""
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    cmd = [producer.interp.path, "-I", "-S", str(BATTERY), "--out", str(out_dir)]
    for path in producer.sys_path:
        cmd += ["--sys-path", str(path)]
    if objects:
        cmd += ["--objects", ",".join(objects)]
    proc = subprocess.run(
        cmd, capture_output=True, timeout=timeout, env=child_env(), cwd=out_dir, check=False
    )
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-6:]
        lines = "\n".join(tail)
        raise HarnessError(
            f"producer {producer.interp.name} exited with {proc.returncode} "
            f"(a negative status is a signal: a crash); last lines:\n{lines}"
        )
    with open(os.path.join(out_dir, "manifest.json")) as f:
        return json.load(f)


def stream_id(stream):
    return "{}.{}".format(stream["object"], stream["variant"])


def consumer_job(column, manifest, stream_dir, variants=None):
    """The consumer's job, and the ids left out as N/A (id -> reason)."""
    objects = {o["name"]: o for o in manifest["objects"]}
    streams, na = [], {}
    for stream in manifest["streams"]:
        if not stream.get("file") or (variants and stream["variant"] not in variants):
            continue
        obj = objects[stream["object"]]
        if obj["numpy"] and not column.numpy:
            na[stream_id(stream)] = "no numpy on the consumer"
            continue
        streams.append(
            {
                "id": stream_id(stream),
                "path": os.path.join(stream_dir, stream["file"]),
                "check": obj["check"],
                "expected": obj["expected"],
                "key": obj.get("key"),
            }
        )
    job = {
        "sys_path": [str(p) for p in column.sys_path],
        "satchel": column.satchel,
        "numpy": column.numpy and any(objects[s["id"].split(".")[0]]["numpy"] for s in streams),
        "loaders": ["pickle", "satchel"] if column.satchel else ["pickle"],
        "timeout": TIMEOUT_STREAM,
        "streams": streams,
    }
    return job, na


def run_consumer(column, job, job_file):
    with open(job_file, "w") as f:
        json.dump(job, f)
    budget = 60 + len(job["streams"]) * len(job["loaders"]) * 30
    cmd = [column.interp.path, "-I", "-S", str(CONSUMER), str(job_file)]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, timeout=budget, env=child_env(), check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise HarnessError(f"consumer {column.key}: no answer in {budget}s") from exc
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-6:]
        lines = "\n".join(tail)
        raise HarnessError(f"consumer {column.key} exited with {proc.returncode}:\n{lines}")
    return json.loads(proc.stdout.decode())


# ---------------------------------------------------------------------------------------------
# Outcomes
# ---------------------------------------------------------------------------------------------


def loader_key(result):
    """(reason key, detail) of one loader's result."""
    status = result["status"]
    if status == "ok":
        return rules.OK, None
    if status == "error":
        return rules.classify(result["phase"], result["error"]), result["error"]
    if status == "wrong":
        return f"{BUG}:wrong value", {"got": result.get("got")}
    return f"{BUG}:{status}", {"detail": result.get("detail"), "stderr": result.get("stderr")}


def combine(per_loader):
    """One key for an object in a cell: the loaders' common key, or a disagreement."""
    keys = {loader: loader_key(r) for loader, r in per_loader.items()}
    distinct = {k for k, _ in keys.values()}
    bugs = [k for k in distinct if k.startswith(BUG)]
    if bugs:
        key = sorted(bugs)[0]
        loader = next(name for name, (k, _) in keys.items() if k == key)
        return key, {"loader": loader, **(keys[loader][1] or {})}
    if len(distinct) == 1:
        (key, detail), *_ = keys.values()
        return key, detail
    text = " / ".join(f"{name}: {k}" for name, (k, _) in sorted(keys.items()))
    return "split:" + text, {name: d for name, (_, d) in keys.items()}


@dataclasses.dataclass
class Outcome:
    producer: str
    variant: str
    object: str
    column: str  # Column.key, or "dump"
    key: str  # rules.OK, a reason key, "na", "bug:...", "split:..."
    expected: str
    known: str | None = None  # the known issue's id
    detail: object = None

    @property
    def is_bug(self):
        return self.key.startswith(BUG)

    @property
    def unexpected(self):
        return not self.is_bug and self.key not in ("na", self.expected) and self.known is None


def producer_dict(producer, manifest):
    """interp_dict, plus what the producer's satchel reported (battery.py's manifest)."""
    made = manifest["producer"]
    return dict(interp_dict(producer.interp), live_generators=made.get("live_generators"))


def dump_outcomes(producer, manifest):
    out = []
    pinfo = producer_dict(producer, manifest)
    fmt = manifest["producer"]["format_version"]
    for stream in manifest["streams"]:
        if stream.get("dump_error"):
            key, detail = rules.classify("dump", stream["dump_error"]), stream["dump_error"]
        else:
            key, detail = rules.OK, None
        expected = rules.expect_dump(stream["object"], stream["variant"], pinfo)
        known = None
        if key != expected:
            issue = rules.known_issue(
                "dump", stream["object"], stream["variant"], pinfo, None, None, detail, fmt
            )
            if issue:
                known, key = issue["id"], "known:" + issue["id"]
        out.append(
            Outcome(
                pinfo["name"],
                stream["variant"],
                stream["object"],
                "dump",
                key,
                expected,
                known,
                detail,
            )
        )
    return out


def load_outcomes(producer, column, manifest, results, na):
    out = []
    pinfo, cinfo = producer_dict(producer, manifest), interp_dict(column.interp)
    fmt = manifest["producer"]["format_version"]
    for stream in manifest["streams"]:
        sid = stream_id(stream)
        if not stream.get("file"):
            continue
        if sid in na:
            out.append(
                Outcome(
                    pinfo["name"],
                    stream["variant"],
                    stream["object"],
                    column.key,
                    "na",
                    "na",
                    None,
                    na[sid],
                )
            )
            continue
        if sid not in results:
            continue  # filtered out (--variants)
        key, detail = combine(results[sid])
        expected = rules.expect_load(stream["object"], stream, pinfo, cinfo, column.satchel)
        known = None
        if key != expected and not key.startswith((BUG, "split:")):
            issue = rules.known_issue(
                "load",
                stream["object"],
                stream["variant"],
                pinfo,
                cinfo,
                column.satchel,
                detail,
                fmt,
            )
            if issue:
                known, key = issue["id"], "known:" + issue["id"]
        out.append(
            Outcome(
                pinfo["name"],
                stream["variant"],
                stream["object"],
                column.key,
                key,
                expected,
                known,
                detail,
            )
        )
    return out


@dataclasses.dataclass
class Results:
    producers: list
    columns: list
    manifests: dict  # producer name -> manifest
    outcomes: list
    harness_errors: list
    seconds: float = 0.0

    @property
    def bugs(self):
        return [o for o in self.outcomes if o.is_bug]

    @property
    def unexpected(self):
        return [o for o in self.outcomes if o.unexpected]


def run_matrix(producers, columns, work, objects=None, variants=None, jobs=None, on_manifest=None):
    """Run the battery on every producer and every consumer on every producer's streams."""
    started = time.monotonic()
    jobs = jobs or os.cpu_count() or 2
    work = os.path.abspath(work)
    manifests, outcomes, harness = {}, [], []

    def produce(producer):
        out_dir = os.path.join(work, "streams", producer.interp.name)
        t0 = time.monotonic()
        manifest = run_producer(producer, out_dir, objects)
        count = sum(1 for s in manifest["streams"] if s.get("file"))
        seconds = time.monotonic() - t0
        log(f"producer {producer.interp.name:<22} {count:3d} streams in {seconds:5.1f}s")
        return producer, out_dir, manifest

    stream_dirs = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(produce, p) for p in producers]
        for future in concurrent.futures.as_completed(futures):
            try:
                producer, out_dir, manifest = future.result()
            except (HarnessError, subprocess.TimeoutExpired) as exc:
                harness.append(str(exc))
                log(f"BUG: {exc}")
                continue
            manifests[producer.interp.name] = manifest
            stream_dirs[producer.interp.name] = out_dir
            outcomes.extend(dump_outcomes(producer, manifest))
            if on_manifest is not None:
                on_manifest(producer, out_dir, manifest)
    live = [p for p in producers if p.interp.name in manifests]
    os.makedirs(os.path.join(work, "jobs"), exist_ok=True)
    tasks = []
    for column in columns:
        for producer in live:
            job, na = consumer_job(
                column, manifests[producer.interp.name], stream_dirs[producer.interp.name], variants
            )
            tasks.append((column, producer, job, na))
    # Longest first: satchel columns run two loaders, numpy streams are big.
    tasks.sort(
        key=lambda t: -(len(t[2]["streams"]) * len(t[2]["loaders"]) * (3 if t[2]["numpy"] else 1))
    )

    def consume(task):
        column, producer, job, na = task
        job_file = os.path.join(work, "jobs", f"{producer.interp.name}__{column.key}.json")
        t0 = time.monotonic()
        answer = run_consumer(column, job, job_file)
        count = len(job["streams"]) * len(job["loaders"])
        seconds = time.monotonic() - t0
        log(
            f"consumer {column.key:<30} <- {producer.interp.name:<22} "
            f"{count:3d} loads in {seconds:5.1f}s"
        )
        return load_outcomes(
            producer, column, manifests[producer.interp.name], answer["results"], na
        )

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(consume, t): t for t in tasks}
        for future in concurrent.futures.as_completed(futures):
            column, producer, _, _ = futures[future]
            try:
                outcomes.extend(future.result())
            except (HarnessError, ValueError, OSError) as exc:
                harness.append(f"{column.key} <- {producer.interp.name}: {exc}")
                log(f"BUG: {harness[-1]}")
    return Results(live, columns, manifests, outcomes, harness, time.monotonic() - started)


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


def fixture_set(format_version):
    """The fixture directory of a stream format: fixtures/format-<major.minor>/ ("1.3.0" ->
    format-1.3). A format's streams go to its own set, so a new format never touches (or
    refreshes) an older one's."""
    major, minor = format_version.split(".")[:2]
    return FIXTURES / f"format-{int(major)}.{int(minor)}"


def write_fixtures(producer, stream_dir, manifest, refresh=False, source=None):
    """Copy the producer's small streams into fixtures/format-<X.Y>/<producer>/ (X.Y: the format
    that wrote them); never replace one that is there unless ``refresh``, which rewrites that
    format's set only. Returns the number of streams written.

    <producer>/manifest.json: "producer" (the interpreter, its satchel fingerprint),
    "objects" (check and expected value by object; a stream whose object's check changed
    since carries its own), "streams" (by file: object, variant, header facts, and the satchel
    and git source that wrote it)."""
    target = fixture_set(manifest["producer"]["format_version"]) / producer.interp.name
    index_file = target / "manifest.json"
    if refresh:
        shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True, exist_ok=True)
    try:
        index = json.loads(index_file.read_text())
    except (OSError, ValueError):
        index = {}
    made = manifest["producer"]
    pinfo = dict(
        interp_dict(producer.interp),
        satchel_label=made["label"],
        fingerprint=made["fingerprint"],
        numpy=made["numpy"],
    )
    index.setdefault("producer", pinfo)
    index.setdefault("objects", {})
    index.setdefault("streams", {})
    objects = {o["name"]: o for o in manifest["objects"]}
    written = 0
    for stream in manifest["streams"]:
        obj = objects[stream["object"]]
        if not stream.get("file") or not obj.get("fixture") or "expected" not in obj:
            continue
        if stream["file"] in index["streams"] and (target / stream["file"]).exists():
            continue
        shutil.copyfile(os.path.join(stream_dir, stream["file"]), target / stream["file"])
        check = {"check": obj["check"], "expected": obj["expected"], "numpy": obj["numpy"]}
        if obj.get("key"):
            check["key"] = obj["key"]
        entry = {
            key: stream[key]
            for key in (
                "object",
                "variant",
                "mode",
                "standalone",
                "compress",
                "header",
                "header_mode",
                "needs_satchel",
                "signed",
            )
            if key in stream
        }
        entry.update(
            format_version=manifest["producer"]["format_version"],
            satchel_version=manifest["producer"]["satchel_version"],
            source=source,
        )
        known = index["objects"].setdefault(stream["object"], check)
        if known != check:
            entry.update(check)
        index["streams"][stream["file"]] = entry
        written += 1
    index_file.write_text(fixture_manifest_text(index))
    return written


def fixture_manifest_text(index):
    """JSON, one line per object and per stream: short, and diffs show what was added."""

    def block(items):
        rows = [
            f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(items.items())
        ]
        return "{\n" + ",\n".join(rows) + "\n }"

    return '{{\n "producer": {},\n "objects": {},\n "streams": {}\n}}\n'.format(
        json.dumps(index["producer"], sort_keys=True),
        block(index["objects"]),
        block(index["streams"]),
    )


# ---------------------------------------------------------------------------------------------
# MATRIX.md
# ---------------------------------------------------------------------------------------------


def cell_text(outcomes):
    """A consumer cell: 'loads (N/N)', the reason alone when nothing loads for one reason,
    else 'loads k/N; reason xn; ...'. Markers: † a known bug, ⚠ not predicted, BUG a bug."""
    counted = [o for o in outcomes if o.key != "na"]
    if not counted:
        return "N/A"
    n = len(counted)
    ok = sum(1 for o in counted if o.key == rules.OK)
    reasons = collections.Counter(o.key for o in counted if o.key != rules.OK)
    marks = ""
    if any(o.known for o in counted):
        marks += " †"
    if any(o.unexpected for o in counted):
        marks += " ⚠"
    if any(o.is_bug for o in counted):
        marks += " **BUG**"
    if ok == n:
        return f"loads ({n}/{n}){marks}"
    parts = [f"{display(k)} ×{c}" for k, c in reasons.most_common()]
    if ok == 0 and len(reasons) == 1:
        return f"{display(next(iter(reasons)))}{marks}"
    return "loads {}/{}; {}{}".format(ok, n, "; ".join(parts), marks)


def dump_text(outcomes):
    n = len(outcomes)
    ok = sum(1 for o in outcomes if o.key == rules.OK)
    marks = (" †" if any(o.known for o in outcomes) else "") + (
        " ⚠" if any(o.unexpected for o in outcomes) else ""
    )
    if ok == n:
        return f"dumps ({n}/{n}){marks}"
    reasons = collections.Counter(o.key for o in outcomes if o.key != rules.OK)
    parts = [f"{display(k)} ×{c}" for k, c in reasons.most_common()]
    return "dumps {}/{}; dump fails: {}{}".format(ok, n, "; ".join(parts), marks)


def display(key):
    if key == rules.OK:
        return "loads"
    if key == "na":
        return "N/A"
    if key.startswith(BUG + ":"):
        return "BUG: " + key.split(":", 1)[1]
    if key.startswith("split:"):
        return key[len("split:") :]
    return rules.reason_text(key)


def md_escape(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def cell_class(outcomes):
    counted = [o for o in outcomes if o.key != "na"]
    if not counted:
        return "na"
    if any(o.is_bug for o in counted):
        return "bug"
    ok = sum(1 for o in counted if o.key == rules.OK)
    return "load" if ok == len(counted) else "partial" if ok else "error"


def summarize(results):
    by_cell = collections.defaultdict(list)
    for o in results.outcomes:
        if o.column != "dump":
            by_cell[(o.variant, o.producer, o.column)].append(o)
    counts = collections.Counter(cell_class(v) for v in by_cell.values())
    objects = collections.Counter()
    for o in results.outcomes:
        if o.column == "dump" or o.key == "na":
            continue
        objects["bug" if o.is_bug else "load" if o.key == rules.OK else "error"] += 1
    dumps = collections.Counter(
        "ok" if o.key == rules.OK else "error" for o in results.outcomes if o.column == "dump"
    )
    return by_cell, counts, objects, dumps


def render(results, interps, wheels, missing, variants=None, source=None, elapsed=None):
    variants = variants or VARIANTS
    by_cell, counts, objects, dumps = summarize(results)
    dump_cells = collections.defaultdict(list)
    for o in results.outcomes:
        if o.column == "dump":
            dump_cells[(o.variant, o.producer)].append(o)
    producers = [p.interp for p in results.producers]
    columns = results.columns
    total_cells = sum(counts.values()) - counts["na"]
    lines = []
    w = lines.append
    today = datetime.date.today().isoformat()
    fmt = (
        next(iter(results.manifests.values()))["producer"]["format_version"]
        if results.manifests
        else "?"
    )
    w("# satchel compat matrix")
    w("")
    w(
        "Generated by `make matrix` (`compat-matrix/matrix.py`) on {} from {}; stream format {}. "
        "Do not edit by hand: regenerate it.".format(today, source or "?", fmt)
    )
    w("")
    w(
        "Which satchel streams load where. **Rows** are producers: every interpreter `make wheels` "
        "built satchel for. **Columns** are consumers: every interpreter, once with satchel "
        "installed (*satchel*) and once with nothing but its standard library (*stdlib only*: "
        "`python -I -S`, no site-packages). Each stream is loaded in a fresh process forked for it, "
        "with `pickle.loads` (and also `satchel.loads` where satchel is installed), and the loaded "
        "object is checked against the value the producer computed (calls, attributes, identity; "
        "the checks are in [battery.py](battery.py))."
    )
    w("")
    w("## Summary")
    w("")
    w(
        f"- **{total_cells} cells** (producer × consumer × variant: {len(producers)} producers × "
        f"{len(columns)} consumer columns × {len(variants)} variants): "
        f"**{counts['load']} load every object**, **{counts['partial']} load some and refuse "
        f"the others with a named error**, **{counts['error']} refuse every object with a named "
        f"error**, {counts['bug']} crash, hang or give a wrong value."
    )
    w(
        f"- Object loads: {objects['load']} load and check out, {objects['error']} are clear "
        f"errors, {objects['bug']} are bugs; dumps: {dumps['ok']} written, {dumps['error']} "
        "refused with a clear error (the *dumps* column)."
    )
    known = collections.Counter(o.known for o in results.outcomes if o.known)
    w(
        f"- {sum(known.values())} outcomes are known bugs (marked †, listed below); "
        f"{len(results.unexpected)} are outcomes satchel's design does not predict (marked ⚠)."
    )
    if results.harness_errors:
        w(
            "- **Harness failures** (a producer or consumer that crashed or failed): "
            f"{len(results.harness_errors)}, listed below."
        )
    if elapsed:
        w(f"- Run time: {elapsed:.0f} s on {os.cpu_count() or 1} cores.")
    w("")
    w(
        "In short: a nonportable stream loads on the interpreter build that wrote it (same X.Y and "
        "bytecode, e.g. CPython 3.11.7 and Debian's 3.11.2) and every other interpreter refuses "
        "it with `IncompatibleInterpreter` before building anything (PyPy and CPython refuse each "
        "other's); portable streams, PyPy's included, load on CPython 3.9-3.15 and PyPy. Lean streams need satchel on the receiver; standalone ones "
        "load with the stdlib alone, except compressed ones (they need satchel or 3.14+'s "
        "`compression.zstd`) and suspended generators (they need satchel). A suspended generator "
        "dumps in nonportable mode only where satchel has a frame layout for the producer "
        "(`satchel._satchel.LIVE_GENERATORS`), and never in portable mode."
    )
    w("")
    w("## Interpreters")
    w("")
    w("| name | interpreter | from | satchel | numpy |")
    w("|---|---|---|---|---|")
    winfo = (wheels or {}).get("interpreters", {})
    for interp in interps:
        info = winfo.get(interp.name, {})
        sat = (
            f"built ({interp.tag})"
            if info.get("satchel")
            else "no: {}".format(info.get("reason", "not built"))
        )
        npy = info.get("numpy") or ("—" if info.get("satchel") else "— (stdlib only)")
        w(f"| {interp.name} | {interp.description} | {interp.source} | {md_escape(sat)} | {npy} |")
    if missing:
        w("")
        w("Not provisioned here: {}.".format("; ".join(missing)))
    builds = (wheels or {}).get("builds", {})
    failed = {t: b for t, b in builds.items() if b.get("status") != "built"}
    if failed:
        w("")
        w(
            "Wheels that `make wheels` could not build: {}.".format(
                "; ".join(
                    "{} (with {}): {}".format(t, b.get("builder"), md_escape(b.get("reason")))
                    for t, b in sorted(failed.items())
                )
            )
        )
    w("")
    w("## Objects")
    w("")
    w("| object | what |")
    w("|---|---|")
    names = []
    for manifest in results.manifests.values():
        for o in manifest["objects"]:
            if o["name"] not in names:
                names.append(o["name"])
    for name in names:
        w("| `{}` | {} |".format(name, md_escape(OBJECT_NOTES.get(name, ""))))
    w("")
    w("## Reading a cell")
    w("")
    w(
        "- **loads (N/N)**: every object the producer could write in that variant loads and checks "
        "out. N leaves out objects that do not apply (numpy where the consumer has none)."
    )
    w(
        "- **a reason alone** (`IncompatibleInterpreter`, `needs satchel`, ...): no "
        "object loads, all for that reason; **loads k/N; reason ×n; ...**: the others, by reason. "
        "The legend below gives each reason's exception class and message."
    )
    w(
        "- The **dumps** column is the producer's: objects it refuses to write in that variant "
        "(a clean `PicklingError`, never a crash); they are not in N."
    )
    w(
        "- † a known bug explains some of the cell (listed below); ⚠ an outcome satchel's design "
        "does not predict (a bug or a gap in `rules.py`); **BUG** a crash, hang or wrong value."
    )
    for variant in variants:
        w("")
        w(f"## {VARIANT_TITLES[variant]}")
        w("")
        w("| producer ↓ / consumer → | dumps | {} |".format(" | ".join(c.header for c in columns)))
        w("|---|---|" + "---|" * len(columns))
        for interp in producers:
            row = [interp.label, dump_text(dump_cells.get((variant, interp.name), []))]
            for column in columns:
                row.append(cell_text(by_cell.get((variant, interp.name, column.key), [])))
            w("| {} |".format(" | ".join(md_escape(x) for x in row)))
    # Legend
    w("")
    w("## Legend: reasons")
    w("")
    w("| reason | exception | objects | outcomes | example message |")
    w("|---|---|---|---|---|")
    legend = collections.defaultdict(list)
    for o in results.outcomes:
        if o.key not in (rules.OK, "na") and not o.is_bug:
            legend[o.key].append(o)
    for key, items in sorted(legend.items(), key=lambda kv: -len(kv[1])):
        example = next(
            (o.detail for o in items if isinstance(o.detail, dict) and "message" in o.detail), None
        )
        cls = example["class"] if example else rules.REASONS.get(key, ("",))[0]
        if key.startswith("split:"):
            cls = "(loaders disagree)"
        objs = sorted({o.object for o in items})
        where = "dump" if all(o.column == "dump" for o in items) else "load"
        names_text = ", ".join(f"`{x}`" for x in objs)
        message = md_escape((example or {}).get("message", ""))[:300]
        w(
            f"| {md_escape(display(key))} | `{md_escape(cls)}` ({where}) | {names_text} "
            f"| {len(items)} | {message} |"
        )
    # Per object
    w("")
    w("## Per object")
    w("")
    w("Consumer cells in which each object loads, of those where it was written and applies.")
    w("")
    w("| object | {} |".format(" | ".join(variants)))
    w("|---|" + "---|" * len(variants))
    per = collections.defaultdict(lambda: [0, 0])
    for o in results.outcomes:
        if o.column == "dump" or o.key == "na":
            continue
        per[(o.object, o.variant)][1] += 1
        per[(o.object, o.variant)][0] += o.key == rules.OK
    for name in names:
        cells = []
        for variant in variants:
            ok, n = per.get((name, variant), [0, 0])
            cells.append(f"{ok}/{n}" if n else "—")
        w("| `{}` | {} |".format(name, " | ".join(cells)))
    # Known bugs
    w("")
    w("## Known bugs (†)")
    w("")
    if known:
        w("| issue | outcomes | where |")
        w("|---|---|---|")
        for issue in rules.KNOWN_ISSUES:
            if issue["id"] not in known:
                continue
            w(
                f"| {md_escape(issue['text'])} | {known[issue['id']]} "
                f"| {md_escape(issue['where'])} |"
            )
    else:
        w("None met in this run.")
    w("")
    w("## Outcomes the design does not predict (⚠)")
    w("")
    unexpected = results.unexpected
    if unexpected:
        w("| producer | variant | object | consumer | outcome | predicted |")
        w("|---|---|---|---|---|---|")
        for o in sorted(unexpected, key=lambda o: (o.object, o.variant, o.producer, o.column))[
            :200
        ]:
            w(
                f"| {o.producer} | {o.variant} | `{o.object}` | {o.column} | {md_escape(display(o.key))} | {display(o.expected)} |"
            )
        if len(unexpected) > 200:
            w("")
            w(f"({len(unexpected) - 200} more in .interpreters/matrix/results.json)")
    else:
        w("None.")
    w("")
    w("## Bugs: crashes, hangs, wrong values, harness failures")
    w("")
    if results.bugs or results.harness_errors:
        for o in results.bugs:
            w(
                f"- {o.producer} → {o.column}, {o.variant} `{o.object}`: {display(o.key)} {md_escape(json.dumps(o.detail)[:400])}"
            )
        for text in results.harness_errors:
            w(f"- harness: {md_escape(text)}")
    else:
        w("None: every outcome is a load or a named error.")
    w("")
    w("## Regenerating")
    w("")
    w(
        "`make interpreters && make wheels && make matrix` (see [README.md](README.md)). The CI "
        "runs a slice of it (`tests/test_compat_slice.py`: CPython 3.11 ↔ Debian's 3.11.2 ↔ "
        "PyPy) and loads the committed fixture streams (`tests/test_fixtures.py`)."
    )
    w("")
    return "\n".join(lines)


def results_json(results):
    return {
        "producers": [p.interp.name for p in results.producers],
        "columns": [c.key for c in results.columns],
        "harness_errors": results.harness_errors,
        "outcomes": [dataclasses.asdict(o) for o in results.outcomes],
        "seconds": results.seconds,
    }


def missing_interpreters(interps):
    have = {i.path for i in interps}
    out = []
    for label, path, how in registry.expected_interpreters():
        if path.endswith("versions"):
            if not any(i.path.startswith(path) for i in interps):
                out.append(f"{label}: none under {path} ({how})")
            continue
        if path not in have and os.path.realpath(path) not in {os.path.realpath(p) for p in have}:
            out.append(f"{label}: {path} does not run ({how})")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--producers", help="comma-separated interpreter names")
    parser.add_argument("--consumers", help="comma-separated interpreter names")
    parser.add_argument("--objects", help="comma-separated object names")
    parser.add_argument(
        "--variants", help="comma-separated variants: {}".format(",".join(VARIANTS))
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--out", default=str(MATRIX_MD), help="MATRIX.md path ('-': none)")
    parser.add_argument("--fixtures", choices=("update", "refresh", "skip"), default="update")
    parser.add_argument("--strict", action="store_true", help="exit 1 on unpredicted outcomes too")
    args = parser.parse_args(argv)
    wheels = registry.load_wheels()
    if not wheels:
        log(f"no {registry.WHEELS_JSON}: run `make wheels` first")
        return 2
    interps = registry.discover()
    producers, columns = plan(wheels, interps)
    if args.producers:
        keep = set(args.producers.split(","))
        producers = [p for p in producers if p.interp.name in keep]
    if args.consumers:
        keep = set(args.consumers.split(","))
        columns = [c for c in columns if c.interp.name in keep]
    if not producers:
        log("no producer: `make wheels` built satchel for none of %s" % [i.name for i in interps])
        return 2
    objects = args.objects.split(",") if args.objects else None
    variants = args.variants.split(",") if args.variants else None
    builds = wheels.get("builds", {})
    built_from = {p.interp.name: builds.get(p.interp.tag, {}).get("source", "?") for p in producers}
    source = "satchel " + ", ".join(sorted(set(built_from.values())))
    log("producers: {}".format(", ".join(p.interp.name for p in producers)))
    log("consumers: {}".format(", ".join(c.key for c in columns)))
    written = collections.Counter()
    targets = {}

    def on_manifest(producer, out_dir, manifest):
        if args.fixtures != "skip" and not objects and not variants:
            fmt = manifest["producer"]["format_version"]
            targets[producer.interp.name] = fixture_set(fmt) / producer.interp.name
            written[producer.interp.name] = write_fixtures(
                producer,
                out_dir,
                manifest,
                refresh=args.fixtures == "refresh",
                source=built_from[producer.interp.name],
            )

    results = run_matrix(
        producers, columns, registry.WORK, objects, variants, args.jobs, on_manifest
    )
    for name, n in sorted(written.items()):
        log(f"fixtures: {n} new streams in {targets[name]}")
    (registry.WORK / "results.json").write_text(
        json.dumps(results_json(results), indent=1, default=str)
    )
    missing = missing_interpreters(interps)
    if args.out != "-":
        text = render(results, interps, wheels, missing, variants, source, results.seconds)
        with open(args.out, "w") as f:
            f.write(text)
        log(f"wrote {args.out}")
    _, counts, objs, dumps = summarize(results)
    log(
        f"cells: {counts['load']} load, {counts['partial']} partial (named errors), "
        f"{counts['error']} named errors only, {counts['bug']} bugs; objects: {objs['load']} "
        f"load, {objs['error']} named errors, {objs['bug']} bugs; dumps refused: "
        f"{dumps['error']}; unpredicted: {len(results.unexpected)}; harness failures: "
        f"{len(results.harness_errors)}; {results.seconds:.0f}s"
    )
    for text in missing:
        log(f"not provisioned: {text}")
    if results.bugs or results.harness_errors:
        return 1
    if args.strict and results.unexpected:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
