"""The loads-side fuzz targets without atheris (which has no build for PyPy): random mutations
of the seeds and of streams this interpreter writes, fed to the targets' ``TestOneInput`` in
forked children, so that a crash or a hang is seen and reported with the input that caused it.

    pypy3.11 fuzz/mutate_run.py loads 120            # target (loads, signed), seconds
    pypy3.11 fuzz/mutate_run.py signed 60 --seed 3

No coverage feedback: a blind mutation run, for interpreters atheris does not support. The
contracts are checks.py's, as for the atheris targets. Findings go to WORK/findings/; the exit
status is 1 when there is one.
"""

import argparse
import os
import pathlib
import random
import signal
import sys
import time
import types

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _mutate(data, maxlen, rng=random):
    """A few random byte-level edits (what atheris.Mutate does, without its feedback)."""
    data = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 8))):
        op = rng.random()
        if not data or op < 0.1:
            data += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        elif op < 0.4:
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        elif op < 0.6:
            data[rng.randrange(len(data))] = rng.choice(
                (0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256))
            )
        elif op < 0.75:
            i = rng.randrange(len(data))
            del data[i : i + rng.randrange(1, 17)]
        elif op < 0.85:
            i = rng.randrange(len(data) + 1)
            j = rng.randrange(len(data))
            data[i:i] = data[j : j + rng.randrange(1, 33)]
        else:
            del data[rng.randrange(len(data)) :]
    return bytes(data[:maxlen])


# fuzz_loads.py and fuzz_signed.py import atheris at the top; only their TestOneInput is used.
sys.modules.setdefault("atheris", types.SimpleNamespace(Mutate=_mutate))


def own_seeds():
    """Streams of this interpreter: functions, closures, classes, portable and standalone."""
    import dataclasses
    import enum

    import checks

    import satchel

    k = 3

    def add(x):
        return x + k

    @dataclasses.dataclass
    class Point:
        x: int
        y: int = 0

    class Colour(enum.Enum):
        RED = 1

    out = []
    for obj in (add, Point(1, 2), Colour.RED, [lambda: k, {1, 2}, b"x" * 10]):
        for kw in ({}, {"mode": "portable"}, {"standalone": True}, {"compress": True}):
            out.append(satchel.dumps(obj, **kw))
            out.append(satchel.dumps(obj, key=checks.KEY, **kw))
    return out


def run_child(target, seeds, seed, count, crash_file):
    import checks

    checks.limit_memory()
    module = __import__(f"fuzz_{target}")
    # This interpreter's own signed streams are intact too (a mutation may undo itself).
    module.INTACT |= {s for s in seeds if checks.satchel_signed(s)}
    rng = random.Random(seed)
    for _ in range(count):
        data = _mutate(rng.choice(seeds), 1 << 16, rng)
        crash_file.write_bytes(data)
        module.TestOneInput(data)
    os._exit(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target", choices=["loads", "signed"])
    ap.add_argument("seconds", type=int)
    ap.add_argument("--seed", type=int, default=0, help="0: random")
    ap.add_argument("--batch", type=int, default=200, help="inputs per forked child")
    ap.add_argument("--work", default="/tmp/satchel-mutate")
    args = ap.parse_args()
    work = pathlib.Path(args.work) / args.target
    findings = work / "findings"
    findings.mkdir(parents=True, exist_ok=True)
    seeds = [p.read_bytes() for p in sorted((HERE / "corpus" / args.target).iterdir())]
    seeds += own_seeds()
    master = random.Random(args.seed or None)
    deadline = time.monotonic() + args.seconds
    runs = children = 0
    found = []
    while time.monotonic() < deadline:
        seed = master.randrange(1 << 30)
        current = work / f"current-{os.getpid()}"
        pid = os.fork()
        if pid == 0:
            try:
                run_child(args.target, seeds, seed, args.batch, current)
            except BaseException as exc:  # noqa: BLE001 (a broken contract, a panic: findings)
                print(f"finding: {type(exc).__name__}: {str(exc)[:300]}", file=sys.stderr)
                os._exit(3)
        children += 1
        started = time.monotonic()
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() - started > 10 * args.batch:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                status = "hang"
                break
            time.sleep(0.05)
        if status == 0:
            runs += args.batch
            continue
        kind = (
            "hang"
            if status == "hang"
            else f"signal-{os.WTERMSIG(status)}"
            if os.WIFSIGNALED(status)
            else f"exit-{os.WEXITSTATUS(status)}"
        )
        name = findings / f"{kind}-seed{seed}"
        if current.exists():
            current.rename(name)
        found.append(name)
        print(f"FINDING {kind}: {name}", flush=True)
    print(
        f"{args.target}: {runs} inputs in {children} children, {len(seeds)} seeds, "
        f"{len(found)} findings ({sys.implementation.name} {sys.version.split()[0]})"
    )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
