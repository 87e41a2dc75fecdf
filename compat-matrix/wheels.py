"""`make wheels`: build satchel for every provisioned interpreter that can have it.

    .venv/bin/python compat-matrix/wheels.py [--only TAG,...]

One release wheel per ABI tag (cp311, cp312, cp313, cp314, cp315, pp311; pp39 is tried and
reported: pyo3 needs 3.11+), built by the main venv's maturin from the working tree, each with its
own cargo target dir (.interpreters/target-<X.Y>, or target-pypy<X.Y>, shared with
tools/test_other_pythons.sh; the main build in target/ is never touched). The wheel is unpacked into .interpreters/matrix/site-<tag>/
(nothing is installed anywhere: the matrix puts that directory first on sys.path of a ``-I -S``
interpreter), numpy for the same tag is linked from a venv that has it (or installed with pip
into .interpreters/matrix/numpy-<tag>/ when none does), and every interpreter of the tag gets a
smoke test. The record is .interpreters/matrix/wheels.json; matrix.py reads it.

Exit status 0 when at least one CPython wheel was built; failures are reported, not fatal.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interpreters as registry  # noqa: E402

# The venv running this script (the main .venv under `make wheels`) has maturin and pip.
BIN_DIR = pathlib.Path(sys.executable).parent
MATURIN = (
    BIN_DIR / "maturin"
    if (BIN_DIR / "maturin").exists()
    else registry.REPO / ".venv" / "bin" / "maturin"
)
PIP_PYTHON = pathlib.Path(sys.executable)
LOGS = registry.WORK / "logs"

SMOKE = r"""
import json, pickle, sys
sys.path[:0] = sys.argv[1:]
import satchel
from satchel import _satchel
report = {"satchel": satchel.__file__, "label": _satchel.LABEL,
          "live_generators": str(getattr(_satchel, "LIVE_GENERATORS", None))}
assert satchel.__file__.startswith(sys.argv[1]), satchel.__file__
k = 3
assert pickle.loads(satchel.dumps(lambda x: x + k))(1) == 4
def numbers():
    yield 1
    yield 2
gen = numbers()
next(gen)
try:
    report["generator"] = list(pickle.loads(satchel.dumps(gen))) == [2]
except Exception as exc:
    report["generator"] = "%s: %s" % (type(exc).__name__, exc)
try:
    import numpy
    report["numpy"] = numpy.__version__
except ImportError:
    report["numpy"] = None
print(json.dumps(report))
"""


def log(msg):
    print(msg, flush=True)


def clean_env():
    env = dict(os.environ)
    for var in ("VIRTUAL_ENV", "PYO3_PYTHON", "PYO3_CONFIG_FILE", "PYTHONPATH", "PYTHONHOME"):
        env.pop(var, None)
    return env


def first_error(text):
    """The line of a build log that says why it failed."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    compile_errors = [line for line in lines if re.match(r"error\[E\d+\]:", line)]
    if compile_errors:  # rustc's first error, and how many there are
        more = len(compile_errors) - 1
        first = lines.index(compile_errors[0])
        where = next((line[4:] for line in lines[first : first + 4] if line.startswith("--> ")), "")
        return "{}{}{}".format(
            compile_errors[0][:300],
            f" at {where}" if where else "",
            f" (and {more} more)" if more else "",
        )
    for line in lines:  # a build script's own error (pyo3's version check) says it best
        if line.startswith("error: ") and "custom build command" not in line:
            return line[:300]
    for pattern in (r"^error(\[E\d+\])?:", r"^💥", r"error", r"failed"):
        for line in lines:
            if re.search(pattern, line, re.IGNORECASE) and "warning" not in line:
                return line[:300]
    return lines[-1][:300] if lines else "no output"


def build_env(interp):
    """An interpreter maturin can run *and* whose sys.executable runs: a sid CPython reports
    the binary inside the private root as sys.executable, which needs sid's loader. A venv
    whose python is the wrapper with --argv0 (as tools/test_other_pythons.sh does) fixes
    that; other interpreters are used as they are."""
    wrapper = pathlib.Path(interp.path)
    with open(wrapper, "rb") as f:
        head = f.read(4096)
    if interp.impl != "cpython" or not head.startswith(b"#!") or b"ld-linux" not in head:
        return str(wrapper)
    venv = registry.WORK / ("buildenv-" + interp.name)
    vpy = venv / "bin" / ("python" + interp.xy)
    if vpy.exists() and subprocess.run([str(vpy), "-c", "pass"], check=False).returncode == 0:
        return str(vpy)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run(
        [str(wrapper), "-m", "venv", "--without-pip", "--clear", str(venv)],
        check=True,
        capture_output=True,
    )
    text = wrapper.read_text()
    binary = re.findall(rf'"([^"]*/python{re.escape(interp.xy)})"', text)[-1]
    text = text.replace(f'"{binary}"', f'--argv0 "{vpy}" "{binary}"', 1)
    for name in ("python", "python3", "python" + interp.xy):
        path = venv / "bin" / name
        if path.is_symlink() or path.exists():
            path.unlink()
    vpy.write_text(text)
    vpy.chmod(0o755)
    for name in ("python", "python3"):
        (venv / "bin" / name).symlink_to(vpy.name)
    probe = subprocess.run(
        [str(vpy), "-c", "import sys; print(sys.prefix != sys.base_prefix)"],
        capture_output=True,
        check=False,
    )
    if probe.stdout.strip() != b"True":
        raise RuntimeError(f"build venv {venv} does not run: {probe.stderr.decode()[-300:]}")
    return str(vpy)


def target_dir(interp):
    if interp.impl == "cpython":
        return registry.CACHE / ("target-" + interp.xy)  # shared with test_other_pythons.sh
    return registry.CACHE / (f"target-{interp.impl}{interp.xy}")


def build(tag, interp):
    """Build the wheel for ``tag`` with ``interp``; returns the record."""
    out = registry.WORK / "wheels" / tag
    logfile = LOGS / (f"build-{tag}.log")
    LOGS.mkdir(parents=True, exist_ok=True)
    record = {"tag": tag, "builder": interp.name, "log": str(logfile)}
    started = time.monotonic()
    try:
        python = build_env(interp)
    except (OSError, subprocess.CalledProcessError, RuntimeError, IndexError) as exc:
        record.update(status="failed", reason=f"no build interpreter: {exc}")
        return record
    shutil.rmtree(out, ignore_errors=True)
    env = clean_env()
    env["CARGO_TARGET_DIR"] = str(target_dir(interp))
    cmd = [str(MATURIN), "build", "--release", "-q", "-i", python, "--out", str(out)]
    with open(logfile, "w") as f:
        f.write("$ CARGO_TARGET_DIR={} {}\n".format(env["CARGO_TARGET_DIR"], " ".join(cmd)))
        f.flush()
        proc = subprocess.run(
            cmd, cwd=registry.REPO, env=env, stdout=f, stderr=subprocess.STDOUT, check=False
        )
    record["seconds"] = round(time.monotonic() - started, 1)
    wheels = sorted(glob.glob(str(out / "*.whl")))
    if proc.returncode != 0 or not wheels:
        record.update(status="failed", reason=first_error(logfile.read_text(errors="replace")))
        return record
    site = registry.site_dir(tag)
    shutil.rmtree(site, ignore_errors=True)
    with zipfile.ZipFile(wheels[-1]) as whl:
        whl.extractall(site)
    record.update(status="built", wheel=wheels[-1], site=str(site))
    return record


def numpy_importable(interp, directory):
    proc = subprocess.run(
        [
            interp.path,
            "-I",
            "-S",
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import numpy; print(numpy.__version__)",
            str(directory),
        ],
        capture_output=True,
        check=False,
        timeout=120,
    )
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def provide_numpy(tag, interp):
    """numpy for the tag, in numpy-<tag>/: linked from a venv of this machine that has it for
    the same X.Y, else installed with the main venv's pip (binary wheels only). Returns
    (directory or None, how)."""
    directory = registry.numpy_dir(tag)
    version = numpy_importable(interp, directory) if directory.exists() else None
    if version:
        return str(directory), f"numpy {version} (cached)"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    xy = interp.xy
    sources = [
        registry.CACHE / ("venv-" + xy) / "lib" / ("python" + xy) / "site-packages",
        registry.REPO / ".venv" / "lib" / ("python" + xy) / "site-packages",
    ]
    for site in sources:
        if (site / "numpy" / "__init__.py").exists():
            for entry in glob.glob(str(site / "numpy*")):
                (directory / os.path.basename(entry)).symlink_to(entry)
            version = numpy_importable(interp, directory)
            if version:
                return str(directory), f"numpy {version} (linked from {site})"
            for entry in directory.iterdir():
                entry.unlink()
    if interp.impl == "cpython":
        nodot = "{}{}".format(*interp.version)
        proc = subprocess.run(
            [
                str(PIP_PYTHON),
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--only-binary=:all:",
                "--target",
                str(directory),
                "--python-version",
                xy,
                "--implementation",
                "cp",
                "--abi",
                "cp" + nodot,
                "--platform",
                "manylinux_2_28_x86_64",
                "--platform",
                "manylinux2014_x86_64",
                "numpy",
            ],
            capture_output=True,
            check=False,
        )
        version = numpy_importable(interp, directory) if proc.returncode == 0 else None
        if version:
            return str(directory), f"numpy {version} (pip install --target)"
    shutil.rmtree(directory, ignore_errors=True)
    return None, f"no numpy for {tag} on this machine (numpy objects are N/A there)"


def smoke(interp, site, numpy):
    args = [str(site)] + ([numpy] if numpy else [])
    proc = subprocess.run(
        [interp.path, "-I", "-S", "-c", SMOKE, *args],
        capture_output=True,
        check=False,
        timeout=120,
        env={**clean_env(), "OPENBLAS_NUM_THREADS": "1"},
    )
    if proc.returncode != 0:
        return {"ok": False, "reason": first_line_of_error(proc.stderr.decode(errors="replace"))}
    report = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    report["ok"] = True
    return report


def first_line_of_error(stderr):
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated ABI tags (cp311,cp314,pp311)")
    args = parser.parse_args(argv)
    if not MATURIN.exists():
        log(f"no maturin at {MATURIN}: run it with the main venv's python (`make wheels`)")
        return 2
    interps = registry.discover()
    previous = registry.load_wheels() or {}
    builds = dict(previous.get("builds", {}))
    # One builder per tag: pyenv first, then sid, then Debian (discover()'s order).
    builders = {}
    for interp in interps:
        if interp.impl == "cpython" and interp.version < (3, 11):
            continue  # satchel needs 3.11+ (pyproject.toml); 3.9/3.10 are stdlib-only consumers
        builders.setdefault(interp.tag, interp)
    only = set(args.only.split(",")) if args.only else None
    git = subprocess.run(
        ["git", "-C", str(registry.REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        [
            "git",
            "-C",
            str(registry.REPO),
            "status",
            "--porcelain",
            "--",
            "src",
            "bootstrap",
            "python",
            "Cargo.toml",
            "Cargo.lock",
            "pyproject.toml",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.count("\n")
    log(f"source: {git} + {dirty} changed paths under src/ bootstrap/ python/ (working tree)")
    for tag, interp in builders.items():
        if only and tag not in only:
            continue
        log(f"== {tag}: building with {interp.name} ({interp.path})")
        record = build(tag, interp)
        record["source"] = f"{git} + {dirty} changed paths" if dirty else git
        builds[tag] = record
        if record["status"] == "built":
            log("   built in {}s: {}".format(record["seconds"], record["wheel"]))
        else:
            log("   FAILED: {} (log: {})".format(record["reason"], record["log"]))
    numpy = dict(previous.get("numpy", {}))
    per_interp = {}
    for interp in interps:
        record = builds.get(interp.tag)
        if interp.impl == "cpython" and interp.version < (3, 11):
            per_interp[interp.name] = {"satchel": False, "reason": "satchel needs Python 3.11+"}
            continue
        if not record or record.get("status") != "built":
            reason = record["reason"] if record else f"no wheel built for {interp.tag}"
            per_interp[interp.name] = {"satchel": False, "reason": "build failed: " + reason}
            continue
        if interp.tag not in numpy or (only and interp.tag in only):
            numpy[interp.tag] = provide_numpy(interp.tag, interp)
            log(f"   {interp.tag}: {numpy[interp.tag][1]}")
        numpy_path = numpy[interp.tag][0]
        report = smoke(interp, record["site"], numpy_path)
        if report["ok"] and numpy_path and not report.get("numpy"):
            numpy_path = None
        report.update(satchel=report["ok"], numpy_path=numpy_path, site=record["site"])
        per_interp[interp.name] = report
        if report["ok"]:
            log(
                "   {}: satchel ok ({}, generators: {}, numpy {})".format(
                    interp.name, report["label"], report["generator"], report.get("numpy")
                )
            )
        else:
            log("   {}: satchel does not import: {}".format(interp.name, report["reason"]))
    registry.WORK.mkdir(parents=True, exist_ok=True)
    registry.WHEELS_JSON.write_text(
        json.dumps({"builds": builds, "numpy": numpy, "interpreters": per_interp}, indent=1)
    )
    log("== summary")
    for tag, record in builds.items():
        status = "built" if record["status"] == "built" else "FAILED: " + record["reason"]
        log(f"{tag:<6} {status}")
    for name, report in per_interp.items():
        status = "satchel" if report.get("satchel") else "stdlib only: " + report["reason"]
        log(f"{name:<24} {status}")
    ok = any(r["status"] == "built" and t.startswith("cp") for t, r in builds.items())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
