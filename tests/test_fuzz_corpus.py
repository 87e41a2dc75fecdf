"""Bad input never crashes: the fuzz corpus replayed, and seeded mutations of real streams.

Every input goes through the contracts of ``fuzz/checks.py`` in a child process (batches), so
a crash is seen as a signal on the child and a hang as a timeout:

- ``satchel.inspect`` runs nothing and raises only ``satchel.UnpicklingError``;
- ``satchel.loads(data, key=...)`` of anything but an intact signed stream is
  ``SignatureError``, before any global is looked up;
- unsigned ``satchel.loads`` ends in a result or a Python exception.

One class of unsigned input is excluded, and counted: a stream whose load *runs* code shipped
in it (a suspended generator's prologue, a by-value ``__hash__`` or ``__setstate__``) after
the mutation damaged that code's marshal bytes. CPython has no bytecode verifier: running
damaged bytecode can crash the interpreter (marshal and pickle are documented as unsafe
against erroneous data). fuzz/README.md classifies those crashes; signed loads close the hole.

Children cap their address space (``checks.MEMORY_LIMIT``): the C unpickler sizes its memo by
the largest LONG_BINPUT index (CPython gh-115952), see ``test_memo_index_does_not_allocate``.
"""

import importlib.util
import json
import marshal
import pathlib
import pickle
import random
import struct
import subprocess
import sys
import textwrap
import types

import pytest

import satchel

psutil = pytest.importorskip("psutil")

REPO = pathlib.Path(__file__).resolve().parent.parent
FUZZ = REPO / "fuzz"
CORPUS = FUZZ / "corpus"

_spec = importlib.util.spec_from_file_location("satchel_fuzz_checks", FUZZ / "checks.py")
checks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(checks)
KEY = checks.KEY
#: Whether started generators pickle here (not on PyPy: their frames are not CPython's, and
#: dumps refuses them, tests/test_generators.py); their streams are left out where they cannot.
LIVE_GENERATORS = satchel._satchel.LIVE_GENERATORS.startswith("cpython-")

# ---------------------------------------------------------------------------------------------
# The child: runs the contracts on a batch, one case at a time, progress on stderr.
# ---------------------------------------------------------------------------------------------

CHILD = r"""
import faulthandler, importlib.util, json, os, pickle, sys, time
spec = importlib.util.spec_from_file_location("satchel_fuzz_checks", sys.argv[1])
checks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(checks)
checks.install()
checks.limit_memory()
faulthandler.enable()
job = pickle.loads(sys.stdin.buffer.read())
failures, outcomes, slowest = [], {}, 0.0
for i, data in enumerate(job["cases"]):
    os.write(2, b"case %d\n" % i)
    start = time.perf_counter()
    for what in job["checks"]:
        try:
            if what == "inspect":
                checks.check_inspect(data)
            elif what == "signed":
                checks.check_signed(data, job["intact"])
            elif what == "buffers":
                outcome = checks.check_buffers(data)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            else:
                outcome = checks.check_loads(data)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
        except AssertionError as exc:
            failures.append((i, what, str(exc)))
        except BaseException as exc:  # SystemExit, KeyboardInterrupt... from a damaged stream
            failures.append((i, what, "escaped: " + repr(exc)[:200]))
    try:
        checks.check_printed()  # what C code reported through sys.excepthook
    except AssertionError as exc:
        failures.append((i, "printed", str(exc)))
    slowest = max(slowest, time.perf_counter() - start)
sys.stdout.write(json.dumps({"failures": failures, "outcomes": outcomes, "slowest": slowest}))
"""


def run_batch(cases, which, intact=frozenset(), timeout=240):
    """Run ``which`` (a tuple of "inspect", "signed", "loads", "buffers") on each case in a
    fresh child.
    Returns the child's report; a signal or a timeout fails, naming the case."""
    job = pickle.dumps({"cases": list(cases), "checks": which, "intact": set(intact)})
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(FUZZ / "checks.py")],
            input=job,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        last = (exc.stderr or b"").decode(errors="replace").split("case ")[-1:]
        pytest.fail(f"batch of {len(cases)} timed out after {timeout} s, at case {last}")
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        last = [line for line in err.splitlines() if line.startswith("case ")][-1:]
        where = last[0] if last else "startup"
        case = cases[int(where.split()[1])] if last else b""
        detail = "\n".join(line for line in err.splitlines() if not line.startswith("case "))
        pytest.fail(
            f"child died (exit {proc.returncode}) at {where} of {len(cases)}: "
            f"{case[:64]!r}...\n{detail[-3000:]}"
        )
    report = json.loads(proc.stdout)
    assert report["slowest"] < 10, f"one input took {report['slowest']:.1f} s"
    return report


def assert_clean(report, cases):
    bad = [(i, what, msg, cases[i][:80]) for i, what, msg in report["failures"]]
    assert not bad, f"{len(bad)} contract failure(s), e.g. {bad[:5]}"


# ---------------------------------------------------------------------------------------------
# 1. The corpus (fuzz/corpus/*: seeds from make_corpus.py and what the fuzzer kept)
# ---------------------------------------------------------------------------------------------


def corpus_files():
    return sorted(p for p in CORPUS.glob("*/*") if p.is_file())


def test_corpus_is_there():
    files = corpus_files()
    assert len(files) >= 38, "run fuzz/make_corpus.py"
    assert all(p.stat().st_size <= 16384 for p in files)
    assert not list(CORPUS.glob("*/crash-*")), "crashing inputs belong in fuzz/crashes/"


def open_findings():
    """fuzz/crashes/buffers-*: findings against satchel, open or fixed (fuzz/README.md), not
    the excluded class."""
    return sorted((FUZZ / "crashes").glob("buffers-*"))


def test_crash_reproducers_are_the_excluded_class():
    """fuzz/crashes/: inputs whose *unsigned* load crashes or hangs CPython by running damaged
    bytecode (fuzz/README.md). Each is that class (a code object satchel did not write), and
    inspect and signed loads handle them. They are never loaded here without a key."""
    files = sorted(set((FUZZ / "crashes").iterdir()) - set(open_findings()))
    assert files
    intact = checks.intact_code()
    assert all(checks.damaged_code(p.read_bytes(), intact) for p in files)
    cases = [p.read_bytes() for p in files]
    assert_clean(run_batch(cases, ("inspect", "signed")), cases)


@pytest.mark.parametrize("path", open_findings(), ids=lambda p: p.name)
def test_open_finding_reproducers(path):
    """Inspect and signed loads handle each finding; both unsigned decoders must too
    (checks.check_loads and checks.check_buffers: a Rust panic is a BaseException). An open
    one (checks.OPEN) xfails with its error; a fixed one is a regression test."""
    cases = [path.read_bytes()]
    assert_clean(run_batch(cases, ("inspect", "signed")), cases)
    report = run_batch(cases, ("loads", "buffers"))
    if report["failures"]:
        pytest.xfail(f"open: {report['failures'][0][2][:200]}")
    assert_clean(report, cases)


BATCH = 80


@pytest.mark.parametrize("batch", range(4))
def test_corpus_replays(batch):
    """Every corpus input through inspect, signed loads and unsigned loads: a result or a
    Python exception, never a signal or a hang."""
    files = corpus_files()
    chunk = files[batch * len(files) // 4 : (batch + 1) * len(files) // 4]
    cases = [p.read_bytes() for p in chunk]
    intact = checks.signed_seeds()
    for start in range(0, len(cases), BATCH):
        part = cases[start : start + BATCH]
        assert_clean(run_batch(part, ("inspect", "signed", "loads"), intact), part)


def test_buffer_corpus_against_the_reference():
    """fuzz/corpus/buffers (seeds and kept inputs) and the buffers-* seeds of the other
    corpora: both decoders match the reference decoder of fuzz/oob.py (checks.check_buffers),
    and every seed is judged and loads."""
    pytest.importorskip("numpy", reason="the buffer corpus streams hold numpy arrays")
    files = sorted(CORPUS.glob("buffers/*")) + sorted(CORPUS.glob("*/seed-buffers-*"))
    assert len(files) >= 40
    cases = [p.read_bytes() for p in files]
    for start in range(0, len(cases), BATCH):
        part = cases[start : start + BATCH]
        assert_clean(run_batch(part, ("buffers",)), part)
    seeds = [p.read_bytes() for p in CORPUS.glob("buffers/seed-buffers-*")]
    report = run_batch(seeds, ("buffers",))
    assert report["outcomes"] == {"loaded": len(seeds)}, report


MEMORY_CHILD = r"""
import gc, importlib.util, json, pathlib, sys
spec = importlib.util.spec_from_file_location("satchel_fuzz_checks", sys.argv[1])
checks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(checks)
checks.install()
checks.limit_memory()
files = sorted(p for p in checks.CORPUS.glob("*/*") if p.is_file())
cases = [p.read_bytes() for p in files]
intact = checks.signed_seeds()
full = sys.argv[2] == "full"


def rounds(n):
    for _ in range(n):
        for data in cases:
            checks.check_inspect(data)
            if full:
                checks.check_signed(data, intact)
                checks.check_loads(data)
            else:
                try:
                    checks.satchel.loads(data, key=checks.OTHER_KEY)
                except checks.satchel.SignatureError:
                    pass
    gc.collect()


def blocks():
    # PyPy has no block count: the objects its GC finds alive (conftest.live_blocks).
    if hasattr(sys, "getallocatedblocks"):
        return sys.getallocatedblocks()
    gc.collect()
    return len(gc.get_objects())


rounds(5)  # warm caches: code objects, tracked classes, interned names
before = blocks()
rounds(10)
after = blocks()
print(json.dumps({"files": len(cases), "before": before, "after": after}))
"""


def _replay_growth(how):
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(FUZZ / "checks.py"), how],
        capture_output=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    out = json.loads(proc.stdout)
    growth = out["after"] - out["before"]
    print(f"\n{how}: {out['files']} files x 10 rounds: {growth:+d} blocks")
    return growth


def test_corpus_inspect_and_refusals_do_not_grow_memory():
    """inspect and refused (wrong key) loads of the whole corpus, ten rounds after five
    warm-up rounds: allocated blocks stay put."""
    assert _replay_growth("refusals") < 200


def test_corpus_replay_does_not_grow_memory():
    """Every check on the whole corpus (signed and unsigned loads included), ten rounds after
    five warm-up rounds: a reference leaked per load would add at least 1,760 blocks; what
    remains is cache warm-up (measured: +415 over 10 rounds, then +118 over 20 more)."""
    assert _replay_growth("full") < 600


# ---------------------------------------------------------------------------------------------
# 2. Seeded mutations of streams made here (this interpreter's build)
# ---------------------------------------------------------------------------------------------


def _objects():
    """The objects behind each stream kind, defined locally so satchel ships them by value."""
    rate = 1.25
    table = {"rows": [1, 2.5, "three", b"four", (None, True)]}

    def closure(x, k=3):
        return [x * k * rate, table]

    def running_mean(values):
        total = count = 0
        for v in values:
            total, count = total + v, count + 1
            yield total / count

    def guarded(items):
        for i, item in enumerate(items):
            try:
                yield i, item
            finally:
                table["done"] = i

    class Node:
        def __init__(self, value, children=()):
            self.value, self.children = value, list(children)

        def __hash__(self):  # a dict key: runs on load
            return hash(self.value)

        def __eq__(self, other):
            return isinstance(other, Node) and self.value == other.value

    def advanced(gen, steps):
        for _ in range(steps):
            next(gen)
        return gen

    tree = Node(1, [Node(2), Node(3)])
    out = {
        "lean": (closure, {}),
        "lean-p2": (closure, {"protocol": 2}),
        "standalone": (closure, {"standalone": True}),
        "portable": ([closure, tree], {"mode": "portable"}),
        "compressed": ([closure, list(range(100))], {"compress": True}),
        "class": ([Node, tree, {tree: 1}], {}),
        "generator": (advanced(running_mean([2, 4, 6, 8]), 2), {}),
        "generator-finally": (advanced(guarded("abcd"), 2), {}),
        "compressed-generator": (advanced(running_mean([1, 2, 3]), 1), {"compress": True}),
        "plain": ({"a": [1, 2.0, "x", b"y", (None, True)], 3: 2**70}, {}),
    }
    if not LIVE_GENERATORS:
        # Advanced, they cannot be dumped here (started generators are refused).
        out = {kind: v for kind, v in out.items() if "generator" not in kind}
    return out


def _runs_shipped_code(data):
    """The code objects shipped in ``data`` that loading it runs, as (name, first line)."""
    ran = set()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_filename == __file__:
            ran.add((frame.f_code.co_name, frame.f_code.co_firstlineno))

    sys.setprofile(profile)
    try:
        obj = satchel.loads(data)
        # Building a suspended generator runs its code up to RETURN_GENERATOR; 3.13's profiler
        # does not report that call (3.11, 3.12, 3.14 and 3.15 do), so count it from the result.
        if isinstance(obj, types.GeneratorType) and obj.gi_code.co_filename == __file__:
            ran.add((obj.gi_code.co_name, obj.gi_code.co_firstlineno))
        del obj  # dropped here: a generator's cleanup runs too
    finally:
        sys.setprofile(None)
    return ran


def _code_key(blob):
    code = marshal.loads(blob)
    return code.co_name, code.co_firstlineno


@pytest.fixture(scope="module")
def streams():
    out = {}
    for kind, (obj, kwargs) in _objects().items():
        plain = satchel.dumps(obj, **kwargs)
        signed = satchel.dumps(obj, key=KEY, **kwargs)
        ran = _runs_shipped_code(plain)
        blobs = checks.code_blobs(plain)
        out[kind] = {
            "plain": plain,
            "signed": signed,
            "runs_code": sorted(ran),
            # Per code object in the stream, in order: whether the load runs it.
            "blob_runs": [_code_key(b) in ran for b in blobs],
        }
    return out


def flips(data, n, rng):
    """``n`` single-bit flips at seeded positions (every position of a short stream is hit
    with a different bit)."""
    return [_flip(data, rng.randrange(len(data)), rng.randrange(8)) for _ in range(n)]


def _flip(data, pos, bit):
    out = bytearray(data)
    out[pos] ^= 1 << bit
    return bytes(out)


def truncations(data):
    return [data[:n] for n in range(len(data))]


def splices(streams_, n, rng):
    """``a[:i] + b[j:]`` for seeded pairs of different streams and cut points."""
    out = []
    for _ in range(n):
        a, b = rng.sample(streams_, 2)
        out.append(a[: rng.randrange(len(a) + 1)] + b[rng.randrange(len(b)) :])
    return out


def test_stream_kinds(streams):
    """The kinds cover what the issue lists, and the code-running ones are known."""
    info = {kind: satchel.inspect(s["plain"]) for kind, s in streams.items() if kind != "plain"}
    assert info["standalone"]["standalone"] and info["portable"]["standalone"]
    assert info["compressed"]["compression"] == "zstd"
    if LIVE_GENERATORS:
        assert info["generator"]["suspended_generators"]
        assert info["compressed-generator"]["compression"] == "zstd"
    assert all(satchel.inspect(s["signed"])["signed"] for k, s in streams.items() if k != "plain")
    running = {kind: [name for name, _ in s["runs_code"]] for kind, s in streams.items()}
    running = {kind: names for kind, names in running.items() if names}
    if LIVE_GENERATORS:
        assert running == {
            "class": ["__hash__"],
            "generator": ["running_mean"],
            "generator-finally": ["guarded"],
            "compressed-generator": ["running_mean"],
        }


def test_inspect_never_crashes_on_mutations(streams):
    rng = random.Random(1)
    cases = []
    for s in streams.values():
        for data in (s["plain"], s["signed"]):
            cases += flips(data, 150, rng)
    # Without live generators, the class stream (whose load runs __hash__) stands in.
    other = streams["generator" if LIVE_GENERATORS else "class"]["signed"]
    cases += truncations(streams["lean"]["plain"]) + truncations(other)
    cases += splices([s["plain"] for s in streams.values()], 500, rng)
    report = run_batch(cases, ("inspect",))
    assert_clean(report, cases)
    print(f"\ninspect: {len(cases)} mutated streams")


def test_signed_mutations_are_all_signature_errors(streams):
    """Hard requirement: a mutated signed stream never runs. Flips anywhere (trailer
    included), truncation at every offset of two streams, splices of signed streams."""
    rng = random.Random(2)
    signed = [s["signed"] for s in streams.values()]
    cases = []
    for data in signed:
        cases += flips(data, 200, rng)
    cases += truncations(streams["lean"]["signed"])
    cases += truncations(streams["generator" if LIVE_GENERATORS else "class"]["signed"])
    cases += splices(signed, 500, rng)
    report = run_batch(cases, ("inspect", "signed"), intact=set(signed))
    assert_clean(report, cases)
    print(f"\nsigned: {len(cases)} mutated streams, all SignatureError before anything ran")


UNSIGNED_KINDS = [
    "lean",
    "lean-p2",
    "standalone",
    "portable",
    "compressed",
    "class",
    "generator",
    "generator-finally",
    "compressed-generator",
]


def _unsigned_cases(streams, kind, rng):
    """(mutated stream, how it was made, the kinds it comes from): flips, every truncation,
    and splices of this kind with the others, both ways round."""
    data = streams[kind]["plain"]
    cases = [(m, "flip", {kind}) for m in flips(data, 400, rng)]
    cases += [(m, "cut", {kind}) for m in truncations(data)]
    others = [k for k in streams if k != kind]
    for _ in range(200):
        other = rng.choice(others)
        a, b = data, streams[other]["plain"]
        if rng.random() < 0.5:
            a, b = b, a
        spliced = a[: rng.randrange(len(a) + 1)] + b[rng.randrange(len(b)) :]
        cases.append((spliced, "splice", {kind, other}))
    return cases


def _runs_damaged_code(data, how, sources, streams, intact_code):
    """Whether ``data`` is in the excluded class: it carries a code object satchel did not
    write in the place of one that the original stream's load runs. A flip is compared code
    object by code object with its original; a splice counts when one of its two kinds runs
    code; a truncation damages nothing (it only cuts)."""
    blobs = checks.code_blobs(data)
    damaged = [b not in intact_code for b in blobs]
    if not any(damaged):
        return False
    if how == "flip":
        (kind,) = sources
        runs = streams[kind]["blob_runs"]
        if len(runs) == len(blobs):
            return any(d and r for d, r in zip(damaged, runs))
    return any(any(streams[k]["blob_runs"]) for k in sources)


@pytest.mark.parametrize("kind", UNSIGNED_KINDS)
def test_unsigned_mutations_never_crash(streams, kind):
    """Flips, every truncation and splices with the other kinds, loaded without a key.

    Excluded, counted and printed: the mutations that damage the marshalled code of a
    function the load runs (``_runs_damaged_code``): running damaged bytecode may crash
    CPython (fuzz/README.md, fuzz/crashes/). Everything else, damaged code that is only built
    and never run included, must end in a result or an exception. On PyPy, damaged code that
    is only built is excluded too: PyPy 8.0's ``marshal.loads`` aborts (a fatal RPython
    AssertionError) on code whose argument counts are out of range, as ``make fuzz-pypy``
    excludes it (SATCHEL_FUZZ_INTACT_CODE=1)."""
    if "generator" in kind and not LIVE_GENERATORS:
        pytest.skip(f"started generators are refused here: {satchel._satchel.LIVE_GENERATORS}")
    rng = random.Random(f"unsigned-{kind}")
    intact_code = {b for s in streams.values() for b in checks.code_blobs(s["plain"])}
    kept, excluded, damaged_kept = [], 0, 0
    for data, how, sources in _unsigned_cases(streams, kind, rng):
        if _runs_damaged_code(data, how, sources, streams, intact_code) or (
            sys.implementation.name == "pypy" and checks.damaged_code(data, intact_code)
        ):
            excluded += 1
            continue
        kept.append(data)
        damaged_kept += checks.damaged_code(data, intact_code)
    report = run_batch(kept, ("loads",))
    assert_clean(report, kept)
    print(
        f"\n{kind}: {len(kept)} loaded ({report['outcomes']}; {damaged_kept} of them with "
        f"damaged code that is not run), {excluded} excluded (damaged code the load runs; "
        "on PyPy, or builds)"
    )
    if not any(streams[kind]["blob_runs"]):
        assert excluded <= 200  # only splices


# ---------------------------------------------------------------------------------------------
# 3. Bounded memory: zstd bombs, and the unpickler's memo
# ---------------------------------------------------------------------------------------------


def _rle_frame(prefix, zeros, suffix, claimed=None):
    """A valid zstd frame (content size declared, single segment): a raw block, RLE blocks of
    ``zeros`` zero bytes (4 bytes of frame per 128 KiB), a raw last block."""
    out = bytearray(b"\x28\xb5\x2f\xfd\xe0")
    out += struct.pack("<Q", len(prefix) + zeros + len(suffix) if claimed is None else claimed)

    def block(kind, size, payload, last=False):
        return struct.pack("<I", size << 3 | kind << 1 | last)[:3] + payload

    out += block(0, len(prefix), prefix)
    while zeros:
        n = min(zeros, 1 << 17)
        out += block(1, n, b"\0")
        zeros -= n
    out += block(0, len(suffix), suffix, last=True)
    return bytes(out)


def bomb_stream(size, claimed=None):
    """A compressed satchel stream whose body is ``bytes(size)``: satchel's own header, then
    ``load_zstd(frame)``. The frame is ~size/32768 bytes."""
    body_head = pickle.PROTO + b"\x05" + pickle.BINBYTES8 + struct.pack("<Q", size)
    frame = _rle_frame(body_head, size, pickle.STOP, claimed)
    ref = satchel.dumps(b"", compress=True)
    head = ref[: satchel.inspect(ref)["header_size"]]
    return (
        head + b"c_satchel_boot_1\nload_zstd\nB" + struct.pack("<I", len(frame)) + frame + b"\x85R."
    )


BOMB_CHILD = r"""
import json, resource, sys
import satchel
limit = 4 << 30  # the machine's safety net: without it a failing run takes 20 GB
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
data = sys.stdin.buffer.read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    getattr(satchel, sys.argv[1])(data)
    outcome = ["ok", ""]
except Exception as exc:
    outcome = [type(exc).__module__ + "." + type(exc).__qualname__, str(exc)[:300]]
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "rss_growth_mb": (after - before) // 1024}))
"""


def run_bomb(data, func):
    proc = subprocess.run(
        [sys.executable, "-c", BOMB_CHILD, func],
        input=data,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return json.loads(proc.stdout)


def test_bomb_stream_is_a_real_stream():
    """The builder is sound: a small one loads to the zeros it declares."""
    assert satchel.loads(bomb_stream(300_000)) == bytes(300_000)
    assert satchel.inspect(bomb_stream(1000))["compression"] == "zstd"


@pytest.mark.parametrize(
    "claimed",
    [200 << 30, 1 << 62, 2**64 - 1],
    ids=["200GiB", "2**62", "2**64-1"],
)
def test_zstd_frame_claiming_more_than_its_length_allows_is_refused(claimed):
    """A small frame whose header claims a huge content size: refused before allocating."""
    data = bomb_stream(1000, claimed=claimed)
    out = run_bomb(data, "loads")
    assert out["outcome"][0] == "_satchel_boot_1.UnpicklingError", out
    assert "zstd frame" in out["outcome"][1], out
    assert out["rss_growth_mb"] < 64, out
    # inspect never decompresses.
    out = run_bomb(data, "inspect")
    assert out["outcome"][0] == "ok" and out["rss_growth_mb"] < 64, out


def test_zstd_frame_decoding_past_its_declared_size_is_refused():
    """The content size is declared small, the blocks decode to more: an error, not an
    overflow of the buffer sized from the declaration."""
    data = bomb_stream(10 << 20, claimed=1 << 20)
    out = run_bomb(data, "loads")
    assert out["outcome"][0] == "_satchel_boot_1.UnpicklingError", out
    assert out["rss_growth_mb"] < 64, out


def test_zstd_bomb_is_refused_with_bounded_memory():
    """Zeros in a 305 KB stream that decompress to more than half of the machine's available
    memory: a clear UnpicklingError before anything is allocated; inspect never decompresses."""
    available = psutil.virtual_memory().available
    claimed = max(10 * 10**9, available // 2 + 2**30)
    data = bomb_stream(claimed)
    out = run_bomb(data, "loads")
    assert out["outcome"][0] == "_satchel_boot_1.UnpicklingError", out
    assert "available" in out["outcome"][1], out
    assert out["rss_growth_mb"] < 256, out
    out = run_bomb(data, "inspect")
    assert out["outcome"][0] == "ok" and out["rss_growth_mb"] < 256, out


MEMO_CHILD = r"""
import json, resource, sys
import satchel
data = sys.stdin.buffer.read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    satchel.loads(data)
    outcome = "ok"
except Exception as exc:
    outcome = type(exc).__name__
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "rss_growth_mb": (after - before) // 1024}))
"""


@pytest.mark.xfail(
    # PyPy: satchel gives a memo index beyond the stream's length to the pure-Python
    # unpickler (src/envelope/pypy_scan.rs), whose memo is a dict.
    sys.version_info < (3, 15) and sys.implementation.name != "pypy",
    strict=True,
    reason="CPython gh-115952 (fixed by gh-119204 in 3.15; 3.11.7, 3.12.1, 3.13.0 and 3.14.10 "
    "measured without it): the C unpickler sizes its memo array by the LONG_BINPUT index, so "
    "8 bytes allocate and zero 16 bytes per index; unsigned satchel.loads inherits it (a "
    "signed load refuses first)",
)
def test_memo_index_does_not_allocate():
    """``EMPTY_LIST LONG_BINPUT 0x04000000 STOP``: 8 bytes, one list, memo index 64 M."""
    data = b"]r" + struct.pack("<I", 0x04000000) + b"."
    with pytest.raises(satchel.SignatureError):
        satchel.loads(data, key=KEY)
    proc = subprocess.run(
        [sys.executable, "-c", MEMO_CHILD], input=data, capture_output=True, timeout=60, check=False
    )
    out = json.loads(proc.stdout)
    assert out["rss_growth_mb"] < 64, out


# ---------------------------------------------------------------------------------------------
# 4. Deep inputs on the loading side (test_errors.py covers dumps of deep structures)
# ---------------------------------------------------------------------------------------------

DEEP_CHILD = textwrap.dedent(
    r"""
    import sys
    import satchel
    depth = 1_000_000
    # EMPTY_LIST MARK ... APPENDS would be flat: nest with MARK (EMPTY_LIST APPEND) instead.
    data = b"\x80\x05" + b"]" * depth + b"a" * (depth - 1) + b"."
    obj = satchel.loads(data)
    n = 0
    while obj:
        obj, n = obj[0], n + 1
    print(n)
    """
)


def test_million_deep_nested_list_loads():
    """The unpickler is iterative: a 1,000,000-deep list loads (and is freed) without a
    crash."""
    proc = subprocess.run(
        [sys.executable, "-c", DEEP_CHILD], capture_output=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout.split() == [b"999999"]
