"""Run an atheris target for a total time, restarting it after each finding (libFuzzer stops at
the first), and summarize: executions, coverage, findings by kind.

    .venv/bin/python fuzz/run.py signed 60      # targets: loads, signed, buffers, frames
    .venv/bin/python fuzz/run.py loads 300 --work /tmp/satchel-fuzz
    .venv/bin/python fuzz/run.py buffers 300 --skip-open   # count the open findings instead

Findings (crash-*, oom-*, timeout-*) are written to WORK/findings/ and listed; minimize one with
`python fuzz/fuzz_loads.py -minimize_crash=1 -runs=10000 FILE`. The exit status is 1 when the
run found anything.
"""

import argparse
import os
import pathlib
import re
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target", choices=["loads", "signed", "buffers", "frames"])
    ap.add_argument("seconds", type=int)
    ap.add_argument("--work", default="/tmp/satchel-fuzz")
    ap.add_argument("--timeout", type=int, default=10, help="seconds per input")
    ap.add_argument("--seed", type=int, default=0, help="libFuzzer -seed (0: random)")
    ap.add_argument(
        "--skip-open",
        action="store_true",
        help="count the open findings of checks.OPEN (SATCHEL_FUZZ_SKIP_OPEN=1) instead of "
        "stopping at them; inputs kept in WORK/corpus may then hit them",
    )
    args = ap.parse_args()
    if args.target == "frames":  # not atheris: structured edits of frame states (fuzz_frames.py)
        cmd = [sys.executable, str(HERE / "fuzz_frames.py"), "--seconds", str(args.seconds)]
        cmd += ["--work", args.work, "--timeout", str(args.timeout), "--seed", str(args.seed)]
        return subprocess.run(cmd, check=False).returncode
    env = dict(os.environ, SATCHEL_FUZZ_SKIP_OPEN="1") if args.skip_open else None

    work = pathlib.Path(args.work) / args.target
    corpus, findings = work / "corpus", work / "findings"
    corpus.mkdir(parents=True, exist_ok=True)
    findings.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.seconds
    runs, cov, found, rounds = 0, 0, [], 0
    while (left := int(deadline - time.monotonic())) > 0:
        rounds += 1
        cmd = [
            sys.executable,
            str(HERE / f"fuzz_{args.target}.py"),
            str(corpus),
            str(HERE / "corpus" / args.target),
            f"-max_total_time={left}",
            f"-timeout={args.timeout}",
            "-rss_limit_mb=3072",
            "-print_final_stats=1",
            f"-seed={args.seed + rounds if args.seed else 0}",
            f"-artifact_prefix={findings}/",
        ]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, errors="replace", check=False, env=env
        )
        log = proc.stderr
        (work / f"log-{rounds}.txt").write_text(log)
        execs = re.findall(r"stat::number_of_executed_units: (\d+)", log) or re.findall(
            r"^#(\d+)", log, re.M
        )
        runs += int(execs[-1]) if execs else 0
        covs = re.findall(r"cov: (\d+)", log)
        cov = max([cov] + [int(c) for c in covs])
        written = re.findall(r"Test unit written to (\S+)", log)
        for path in written:
            kind = re.search(r"(ERROR|SUMMARY): libFuzzer: ([\w-]+)", log)
            found.append((path, kind.group(2) if kind else "?"))
        if not written and proc.returncode != 0:
            found.append((None, f"exit {proc.returncode}, see {work}/log-{rounds}.txt"))
            break
    print(
        f"{args.target}: {runs} executions in {args.seconds} s ({rounds} runs of libFuzzer), "
        f"coverage {cov} (Python side), {len(found)} finding(s)"
    )
    for path, kind in found:
        print(f"  {kind}: {path}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
