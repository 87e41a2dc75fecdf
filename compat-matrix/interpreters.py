"""The interpreters of the compat matrix, as this machine has them (nothing is downloaded here:
`make interpreters`, that is compat-matrix/provision.sh, provisions them).

Used by wheels.py, matrix.py and the tests (tests/test_fixtures.py, tests/test_compat_slice.py).
Every interpreter runs with ``-I -S``: no site-packages, no environment variables, no user
site. A consumer "with satchel" gets the wheel unpacked for its ABI (and numpy, where a numpy
for that ABI exists on this machine) put first on ``sys.path``; a "stdlib-only" consumer gets
nothing at all.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import glob
import json
import os
import pathlib
import re
import shutil
import subprocess

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = REPO / ".interpreters"  # gitignored: provisioned interpreters, builds, matrix work dir
BIN = CACHE / "bin"  # provision.sh's wrappers for the sid interpreters
WORK = CACHE / "matrix"  # wheels, unpacked sites, numpy links, streams, results
WHEELS_JSON = WORK / "wheels.json"  # what `make wheels` built and where (wheels.py)
PYENV = pathlib.Path("/root/.pyenv/versions")
#: Portable streams target 3.9+; older pyenv Pythons (2.7, 3.6-3.8) are not in the matrix.
MIN_VERSION = (3, 9)

PROBE = r"""
import importlib.util, json, platform, struct, sys, sysconfig
try:
    import compression.zstd
    zstd = True
except Exception:
    zstd = False
print(json.dumps({
    "impl": sys.implementation.name,
    "version": list(sys.version_info[:2]),
    "full": platform.python_version(),
    "impl_version": "%d.%d.%d" % tuple(sys.implementation.version[:3]),
    "magic": importlib.util.MAGIC_NUMBER.hex(),
    "pointer": struct.calcsize("P"),
    "gil_disabled": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    "debug": hasattr(sys, "gettotalrefcount"),
    "zstd": zstd,
}))
"""


@dataclasses.dataclass(frozen=True)
class Interpreter:
    name: str  # "cpython-3.11.7", "debian-3.11.2", "sid-3.14.10", "debian-pypy3.9-7.3.11", ...
    path: str
    source: str  # where it comes from, in words
    impl: str  # sys.implementation.name
    version: tuple  # (3, 11)
    full: str  # platform.python_version()
    impl_version: str  # PyPy's own version (7.3.11); CPython's is `full`
    magic: str
    pointer: int
    gil_disabled: bool
    debug: bool
    zstd: bool  # compression.zstd in the stdlib (3.14+)

    @property
    def xy(self):
        return "{}.{}".format(*self.version)

    @property
    def tag(self):
        """The wheel ABI tag: cp311, pp311."""
        return {"cpython": "cp", "pypy": "pp"}.get(self.impl, self.impl) + "{}{}".format(
            *self.version
        )

    @property
    def bytecode_key(self):
        """What satchel's fingerprint pins (docs/FORMAT.md): equal keys, same bytecode."""
        return (self.impl, self.version, self.magic, self.pointer, self.gil_disabled, self.debug)

    @property
    def label(self):
        """Short, for table headers: 3.11.7, deb 3.11.2, sid 3.14.10, PyPy 7.3.11 (3.9)."""
        if self.impl == "pypy":
            text = f"PyPy {self.impl_version} ({self.xy})"
        else:
            text = self.full
        prefix = {"debian": "deb ", "sid": "sid ", "pyenv": ""}[self.name_source]
        return prefix + text

    @property
    def name_source(self):
        return (
            self.name.split("-", 1)[0]
            if self.name.split("-", 1)[0] in ("debian", "sid")
            else "pyenv"
        )

    @property
    def description(self):
        impl = {"cpython": "CPython", "pypy": "PyPy"}.get(self.impl, self.impl)
        if self.impl == "pypy":
            return f"{impl} {self.impl_version} (Python {self.full})"
        return f"{impl} {self.full}"


def _version_key(path):
    numbers = re.findall(r"\d+", pathlib.Path(path).name)
    return tuple(int(n) for n in numbers)


def candidates():
    """(source tag, source description, path) of every interpreter worth probing."""
    found = []
    for version_dir in sorted(glob.glob(str(PYENV / "3.*")), key=_version_key):
        found.append(("cpython", "pyenv", os.path.join(version_dir, "bin", "python3")))
    for path in sorted(glob.glob("/usr/bin/python3.*"), key=_version_key):
        if re.fullmatch(r"python3\.\d+", os.path.basename(path)):
            found.append(("debian", "Debian bookworm (apt)", path))
    for path in sorted(glob.glob(str(BIN / "python3.*")), key=_version_key):
        found.append(("sid", "Debian sid, private root (provision.sh)", path))
    pypy = shutil.which("pypy3") or "/usr/bin/pypy3"
    found.append(("debian", "Debian bookworm (apt)", pypy))
    for path in sorted(glob.glob(str(BIN / "pypy3*")), key=_version_key):
        found.append(("sid", "Debian sid, private root (provision.sh)", path))
    return found


def probe(path, timeout=60):
    """The interpreter's facts, or None when it does not run."""
    if not (os.path.isabs(path) and os.access(path, os.X_OK)):
        return None
    try:
        proc = subprocess.run(
            [path, "-I", "-S", "-c", PROBE],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    try:
        return json.loads(proc.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def _name(tag, facts):
    if facts["impl"] == "pypy":
        base = "pypy{}.{}-{}".format(*facts["version"], facts["impl_version"])
        return ("sid-" if tag == "sid" else "debian-" if tag == "debian" else "") + base
    return {"cpython": "cpython-", "debian": "debian-", "sid": "sid-"}[tag] + facts["full"]


def from_path(path, name=None, source="given", tag="cpython"):
    """The Interpreter at ``path`` (None when it does not run), named ``name`` or as
    discover() would name it."""
    fact = probe(path)
    if fact is None:
        return None
    return _make(name or _name(tag, fact), path, source, fact)


def _make(name, path, source, fact):
    return Interpreter(
        name=name,
        path=path,
        source=source,
        impl=fact["impl"],
        version=tuple(fact["version"]),
        full=fact["full"],
        impl_version=fact["impl_version"],
        magic=fact["magic"],
        pointer=fact["pointer"],
        gil_disabled=fact["gil_disabled"],
        debug=fact["debug"],
        zstd=fact["zstd"],
    )


def discover():
    """Every interpreter (3.9+) that runs here, in a stable order: CPythons by version
    (pyenv, Debian, sid), then PyPys."""
    cands = candidates()
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        facts = list(pool.map(lambda c: probe(c[2]), cands))
    seen, found = set(), []
    for (tag, source, path), fact in zip(cands, facts):
        if fact is None or tuple(fact["version"]) < MIN_VERSION:
            continue
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        found.append(_make(_name(tag, fact), path, source, fact))
    order = {"pyenv": 0, "debian": 1, "sid": 2}
    found.sort(key=lambda i: (i.impl != "cpython", i.version, order[i.name_source], i.full))
    return found


def expected_interpreters():
    """What the issue asks for, to report what could not be provisioned (name, reason)."""
    return [
        ("CPython 3.11.2 (Debian bookworm)", "/usr/bin/python3.11", "apt-get install python3.11"),
        ("CPython 3.9-3.13 (pyenv)", str(PYENV), "present only on some images"),
        ("CPython 3.13 (Debian sid)", str(BIN / "python3.13"), "make interpreters"),
        ("CPython 3.14 (Debian sid)", str(BIN / "python3.14"), "make interpreters"),
        ("CPython 3.15 (Debian sid)", str(BIN / "python3.15"), "make interpreters"),
        ("PyPy 3.9 (Debian bookworm)", "/usr/bin/pypy3", "apt-get install pypy3 pypy3-dev"),
        ("PyPy 3.11 (Debian sid)", str(BIN / "pypy3.11"), "make interpreters"),
    ]


# ---------------------------------------------------------------------------------------------
# What `make wheels` left: satchel (and numpy) per ABI tag
# ---------------------------------------------------------------------------------------------


def site_dir(tag):
    """Where wheels.py unpacks satchel's wheel for an ABI tag."""
    return WORK / ("site-" + tag)


def numpy_dir(tag):
    """Where wheels.py links (or installs) numpy for an ABI tag."""
    return WORK / ("numpy-" + tag)


def load_wheels():
    """wheels.py's record: {"builds": {tag: ...}, "interpreters": {name: ...}}, or None."""
    try:
        return json.loads(WHEELS_JSON.read_text())
    except (OSError, ValueError):
        return None


@dataclasses.dataclass(frozen=True)
class Column:
    """A consumer: an interpreter with satchel (its sys.path additions) or stdlib-only."""

    interp: Interpreter
    satchel: bool
    sys_path: tuple = ()  # put first on sys.path (satchel's site, numpy)
    numpy: bool = False

    @property
    def key(self):
        return "{}+{}".format(self.interp.name, "satchel" if self.satchel else "stdlib")

    @property
    def header(self):
        return "{}<br>{}".format(self.interp.label, "satchel" if self.satchel else "stdlib only")
