"""The other interpreters the cross-version tests may use, chosen by the interpreter that runs
the tests: "another version" means another one than this, whatever this is (the suite runs on
CPython 3.11 to 3.15, see tools/test_other_pythons.sh). Missing interpreters are skipped by the
tests that want them, saying which and where; `make interpreters` provisions the sid ones."""

import os
import pathlib
import shutil
import sys

import pytest

import satchel

REPO = pathlib.Path(__file__).resolve().parent.parent
_PYENV = "/root/.pyenv/versions/{}/bin/python3"
_SID = REPO / ".interpreters" / "bin"  # compat-matrix/provision.sh's wrappers


class Python:
    def __init__(self, name, path, impl, version):
        self.name, self.path, self.impl, self.version = name, path, impl, version

    @property
    def exists(self):
        return os.path.exists(self.path)

    @property
    def label(self):
        """How the bootstrap's messages name it: 'CPython 3.12' (then ' (bytecode N)')."""
        return "{} {}.{}".format({"cpython": "CPython", "pypy": "PyPy"}[self.impl], *self.version)

    def __repr__(self):
        return f"{self.name} ({self.path})"


KNOWN = [
    Python("cpython-3.9", _PYENV.format("3.9.18"), "cpython", (3, 9)),
    Python("cpython-3.10", _PYENV.format("3.10.13"), "cpython", (3, 10)),
    Python("cpython-3.11.7", _PYENV.format("3.11.7"), "cpython", (3, 11)),
    Python("debian-3.11", "/usr/bin/python3.11", "cpython", (3, 11)),
    Python("cpython-3.12", _PYENV.format("3.12.1"), "cpython", (3, 12)),
    Python("cpython-3.13", _PYENV.format("3.13.0"), "cpython", (3, 13)),
    Python("cpython-3.14", str(_SID / "python3.14"), "cpython", (3, 14)),
    Python("cpython-3.15", str(_SID / "python3.15"), "cpython", (3, 15)),
    Python("pypy-3.9", shutil.which("pypy3") or "/usr/bin/pypy3", "pypy", (3, 9)),
    Python("pypy-3.11", str(_SID / "pypy3.11"), "pypy", (3, 11)),
]
BY_NAME = {p.name: p for p in KNOWN}
HERE = (sys.implementation.name, sys.version_info[:2])

#: Interpreters of this implementation and language version (other builds, or this one's base):
#: they share its bytecode and fingerprint.
SAME_VERSION = [p for p in KNOWN if (p.impl, p.version) == HERE]
#: Every other language version or implementation.
OTHER_VERSIONS = [p for p in KNOWN if (p.impl, p.version) != HERE]


def need(python):
    """``python``'s path, or skip the test: it is not installed here."""
    if not python.exists:
        pytest.skip(f"{python.name} ({python.path}) is not installed")
    return python.path


def other_cpython(*, below=None, at_least=None):
    """One installed CPython of another version than this (older than ``below``, at least
    ``at_least``, if given), or skip the test naming what it looked for. Nearest versions first
    (3.12, 3.13, 3.11, ...): the most common senders and receivers."""
    found = [p for p in OTHER_VERSIONS if p.impl == "cpython" and p.exists]
    found = [p for p in found if (below is None or p.version < below)]
    found = [p for p in found if (at_least is None or p.version >= at_least)]
    order = [(3, 12), (3, 13), (3, 11), (3, 14), (3, 15), (3, 10), (3, 9)]
    found.sort(key=lambda p: order.index(p.version) if p.version in order else len(order))
    if not found:
        bounds = [f"older than {below[0]}.{below[1]}"] if below else []
        bounds += [f"{at_least[0]}.{at_least[1]} or newer"] if at_least else []
        what = " ".join(["CPython", *bounds, "of another version than this one"])
        pytest.skip(f"no {what} is installed")
    return found[0]


def stdlib_here():
    """This very interpreter without site-packages (``-I -S``): stdlib only, no satchel, and
    this interpreter's fingerprint."""
    return [sys.executable, "-I", "-S"]


#: A producer label of another interpreter, for forged headers: the same length as this one's
#: (the header holds it as a length-prefixed string), another language version than this.
OTHER_LABEL = next(
    label
    for label in ["CPython 3.12/3531", "CPython 3.13/3571", "PyPy 3.10/413", "PyPy 3.11/432"]
    if len(label) == len(satchel._satchel.LABEL) and label != satchel._satchel.LABEL
)


def describe(label):
    """How the bootstrap names an interpreter in its messages: 'CPython 3.11 (bytecode 3495)'."""
    name, _, bytecode = label.partition("/")
    return f"{name} (bytecode {bytecode})"


def compact(label):
    """A producer label as a lean header writes it (format 1.4): 'CPython 3.11/3495' ->
    'cp311/3495', 'PyPy 3.11/3495' -> 'pp311/3495' (src/envelope/fingerprint.rs)."""
    name, _, rest = label.partition(" ")
    version, _, bytecode = rest.partition("/")
    major, minor = version.split(".")
    return f"{ {'CPython': 'cp', 'PyPy': 'pp'}[name] }{major}{minor}/{bytecode}"


def producer_field(label):
    """A header's producer argument from protocol 2 on (SHORT_BINUNICODE)."""
    return b"\x8c" + bytes([len(label)]) + label.encode()


#: A packed lean header's argument (format 1.5): SHORT_BINBYTES of 25 bytes, right after its
#: global (src/envelope/header.rs).
PACKED_OPENING = b"\nc\nC\x19"


def packed(head):
    """The packed argument of a lean header ``head`` (version 3, flags 1, fingerprint 16,
    producer 5 bytes), or None when it has the four arguments."""
    at = head.find(PACKED_OPENING)
    return None if at < 0 else head[at + len(PACKED_OPENING) : at + len(PACKED_OPENING) + 25]


def packed_label(label):
    """A producer label packed as a format 1.5 lean header packs it: 'CPython 3.11/3495' ->
    b'c' 3 11 and 3495 as u16 LE."""
    name, _, rest = label.partition(" ")
    version, _, bytecode = rest.partition("/")
    major, minor = version.split(".")
    return (
        {"CPython": b"c", "PyPy": b"p"}[name]
        + bytes([int(major), int(minor)])
        + int(bytecode).to_bytes(2, "little")
    )


def four_arguments(data):
    """``data`` with a packed lean header written with the four arguments instead
    (``MARK version flags fingerprint producer TUPLE REDUCE POP``): what satchel writes at
    protocols 0-1 and where the producer has no packed label, and what the same check takes.
    Tests that forge one field of a header use it; a header that has them already is returned
    as it is."""
    size = satchel.inspect(data)["header_size"]
    head = data[:size]
    p = packed(head)
    if p is None:
        return data
    at = head.find(PACKED_OPENING) + 3
    version = f"{p[0]}.{p[1]}.{p[2]}"
    label = satchel.inspect(data)["producer"]
    args = (
        b"("
        + producer_field(version)
        + b"K"
        + p[3:4]
        + b"C\x10"
        + p[4:20]
        + producer_field(compact(label))
        + b"tR0"
    )
    return head[:at] + args + data[size:]
