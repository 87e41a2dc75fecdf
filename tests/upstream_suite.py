"""What ``tests/test_loky_suite.py`` and ``tests/test_distributed_suite.py`` share: fetch a
pinned sdist from PyPI with pip (cached under ``.cache/``, gitignored; nothing is vendored), run
some of its tests in a pytest subprocess with satchel standing in, and hold the outcome against
an expected-failure list that may only shrink (``tests/test_cloudpickle_suite.py`` does the same
for cloudpickle's own suite).

The inner pytest always loads ``suite_report`` (``tests/cloudpickle_shim``), which first checks
that ``cloudpickle`` there is satchel's shim and then writes every test's outcome as JSON."""

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SHIM = HERE / "cloudpickle_shim"
PLUGINS = HERE / "suite_plugins"
CACHE = Path(os.environ.get("SATCHEL_SUITE_CACHE", HERE.parent / ".cache" / "upstream-suites"))


def pip_download(name, version, filename, sha256, dest, build_constraints=None):
    """Fetch the sdist with pip into ``dest`` (atomically); None, or why it could not.
    ``build_constraints``: requirement lines for the isolated build pip runs to read the
    sdist's metadata (even a download prepares it)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
        if build_constraints:
            # pip >= 25.3 reads build constraints from PIP_BUILD_CONSTRAINT, older pips from
            # PIP_CONSTRAINT.
            constraints = Path(tmp) / "build-constraints.txt"
            constraints.write_text(build_constraints)
            env["PIP_BUILD_CONSTRAINT"] = env["PIP_CONSTRAINT"] = str(constraints)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        cmd += ["-d", tmp, f"{name}=={version}"]
        try:
            proc = subprocess.run(
                cmd, check=False, capture_output=True, text=True, env=env, timeout=600
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"pip download failed: {e}"
        got = Path(tmp) / filename
        if proc.returncode != 0 or not got.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return f"pip download failed ({proc.returncode}): " + " | ".join(tail)
        digest = hashlib.sha256(got.read_bytes()).hexdigest()
        if digest != sha256:
            return f"{filename} from PyPI has sha256 {digest}, expected {sha256}"
        partial = dest.with_suffix(f".{os.getpid()}.part")
        shutil.copyfile(got, partial)
        os.replace(partial, dest)  # atomic: a concurrent run sees the whole file or none
    return None


@functools.cache
def _fetch(name, version, filename, sha256):
    dest = CACHE / filename
    if dest.exists() and hashlib.sha256(dest.read_bytes()).hexdigest() == sha256:
        return dest, None
    CACHE.mkdir(parents=True, exist_ok=True)
    return dest, pip_download(name, version, filename, sha256, dest)


def sdist(name, version, filename, sha256):
    """The cached sdist (fetched once per session); skips the caller when it cannot be had."""
    dest, why = _fetch(name, version, filename, sha256)
    if why is not None:
        pytest.skip(f"cannot fetch {name} {version}'s sdist from PyPI (no network?): {why}")
    return dest


def extract(archive, where, members=None):
    """Unpack ``archive`` (or only the ``members`` under it) into ``where``."""
    with tarfile.open(archive) as tar:
        chosen = None
        if members is not None:
            chosen = [m for m in tar.getmembers() if any(m.name.startswith(p) for p in members)]
        if hasattr(tarfile, "data_filter"):
            tar.extractall(where, members=chosen, filter="data")
        else:  # Python < 3.11.4 (the archive's hash is pinned by the caller)
            tar.extractall(where, members=chosen)


def child_env(tmp_path, report, extra_path=(), **overrides):
    """The inner pytest's environment: the shim and our plugins first on its path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("LOKY_PICKLER", None)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, extra_path), str(SHIM), str(PLUGINS)])
    env["SATCHEL_SUITE_REPORT"] = str(report)
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    env["TMPDIR"] = str(tmp)
    env.update(overrides)
    return env


def run(args, cwd, env, timeout):
    """Run the inner pytest; returns its outcomes and reasons, and the tail of its output."""
    report = Path(env["SATCHEL_SUITE_REPORT"])
    log = report.with_suffix(".log")
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "suite_report"]
    cmd += ["-q", "-rN", *args]
    with open(log, "wb") as out:
        proc = subprocess.run(
            cmd,
            check=False,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    assert report.exists(), f"the inner pytest wrote no report ({proc.returncode}):\n{tail}"
    data = json.loads(report.read_text())
    assert data["outcomes"], f"the inner pytest ran no test:\n{tail}"
    return data["outcomes"], data["reasons"]


def check(title, outcomes, reasons, expected_failures, capsys):
    """Print the counts; fail on a failure not listed, or on a listed test that passes now."""
    counted = {n: o for n, o in outcomes.items() if o in ("passed", "failed", "error")}
    passed = sorted(n for n, o in counted.items() if o == "passed")
    failed = sorted(n for n, o in counted.items() if o != "passed")
    other = {o: sum(1 for x in outcomes.values() if x == o) for o in ("skipped", "xfailed")}
    xpassed = sum(1 for o in outcomes.values() if o == "xpassed")
    line = (
        f"{title}: {len(passed)}/{len(counted)} passed, {len(failed)} failed "
        f"({other['skipped']} skipped, {other['xfailed']} xfailed, {xpassed} xpassed, "
        "not counted)"
    )
    with capsys.disabled():
        print(f"\n{line}")
    unexpected = [
        f"{n}: {reasons.get(n, outcomes[n])}" for n in failed if n not in expected_failures
    ]
    now_pass = [n for n in expected_failures if outcomes.get(n) == "passed"]
    gone = [n for n in expected_failures if n not in outcomes]
    problems = []
    if unexpected:
        problems.append("failures not in the expected-failure list:\n  " + "\n  ".join(unexpected))
    if now_pass:
        problems.append(
            "listed as failing but passing now (remove them):\n  " + "\n  ".join(now_pass)
        )
    if gone:
        problems.append("listed as failing but not run:\n  " + "\n  ".join(gone))
    assert not problems, f"{line}\n" + "\n".join(problems)
