"""cloudpickle's own test suite, run with satchel standing in for ``cloudpickle``.

The tests come from cloudpickle 3.1.0's sdist on PyPI (the 3.1.2 sdist ships none), fetched
with pip at test time and cached under ``.cache/cloudpickle-suite/`` (gitignored); nothing of
it is vendored. In a fresh copy of the sdist, the ``cloudpickle`` package is replaced by
``tests/cloudpickle_shim/cloudpickle`` (satchel's public API, nothing private) and its test
package ``_cloudpickle_testpkg`` is made importable, at the top of the copy: cloudpickle's
``testutils`` puts exactly that folder on the PYTHONPATH of the interpreters it starts, so they
see the shim too. ``tests/cloudpickle_test.py`` and ``tests/cloudpickle_file_test.py`` then
run in a pytest subprocess with cloudpickle's own settings (its ``tox.ini``).

A test passes or fails as it does upstream. What cloudpickle itself skips or marks xfail is not
counted, as upstream's own count does not (real cloudpickle passes 258 of the same 260 here;
the two it fails need numpy 1.x). Every failure must be listed in ``EXPECTED_FAILURES`` with
its reason, and every listed test must fail: the list only shrinks.

    .venv/bin/python -m pytest -q -p no:cacheprovider -s tests/test_cloudpickle_suite.py
"""

import functools
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import upstream_suite

import satchel

# cloudpickle's testutils imports psutil (requirements-dev.txt has it); tornado and numpy are
# optional there (their tests skip without them).
pytest.importorskip("psutil", reason="cloudpickle's test suite needs psutil")

VERSION = "3.1.0"
SDIST = f"cloudpickle-{VERSION}.tar.gz"
SDIST_SHA256 = "81a929b6e3c7335c863c771d673d105f02efdb89dfaba0c90495d1c64796601b"
TEST_FILES = ("tests/cloudpickle_test.py", "tests/cloudpickle_file_test.py")

HERE = Path(__file__).resolve().parent
SHIM = HERE / "cloudpickle_shim"
CACHE = Path(os.environ.get("SATCHEL_SUITE_CACHE", HERE.parent / ".cache" / "cloudpickle-suite"))

SUITE_TIMEOUT = 1200  # seconds; about 30 s on an idle 2-core machine

T = "tests/cloudpickle_test.py::"
F = "tests/cloudpickle_file_test.py::"
CLASSES = ("CloudPickleTest", "Protocol2CloudPickleTest")  # protocol 5 and protocol 2


def _both(name):
    """A method of CloudPickleTest, which runs once per protocol."""
    return [f"{T}{cls}::{name}" for cls in CLASSES]


def _expected_failures():
    """test node id -> why it fails with satchel. Only ever remove entries (the test fails if a
    listed test passes); an entry is added only for a deliberate difference, which the README's
    "Differences" section then lists too."""
    out = {}

    def add(ids, why, when=True):
        """``when``: the interpreters on which it fails (measured on CPython 3.11, 3.13, 3.14)."""
        for nodeid in [ids] if isinstance(ids, str) else ids:
            assert nodeid not in out, nodeid
            if when:
                out[nodeid] = why

    # Out of scope: the test calls one of cloudpickle's private helpers, which the
    # shim does not fake (calling it raises ImportError).
    private = "calls cloudpickle's private helper {}"
    add(f"{T}test_extract_class_dict", private.format("_extract_class_dict"))
    add(_both("test_cell_manipulation"), private.format("_make_empty_cell"))
    add(_both("test_cloudpickle_extract_nested_globals"), private.format("_extract_code_globals"))
    add(_both("test_module_importability"), private.format("_should_pickle_by_reference"))
    add(_both("test_non_module_object_passing_whichmodule_test"), private.format("_whichmodule"))
    for name in ("dynamic", "importable", "stdlib"):
        add(
            f"{T}test_lookup_module_and_qualname_{name}_typevar",
            private.format("_lookup_module_and_qualname"),
        )
    # Also fails with real cloudpickle under numpy 2 (it expects numpy 1's module name); where
    # numpy is missing (PyPy 3.11 has no wheel) the test never calls the helper, and passes.
    add(
        _both("test_importing_multiprocessing_does_not_impact_whichmodule"),
        private.format("_whichmodule"),
        importlib.util.find_spec("numpy") is not None,
    )

    # PyPy: float.__dict__["fromhex"] is a classmethod around a built-in function whose
    # __module__ says '__main__', so nothing names it (cloudpickle does not import there at all).
    add(
        _both("test_builtin_classmethod_descriptor"),
        "PyPy's built-in classmethod descriptors wrap functions that cannot be found by name",
        sys.implementation.name == "pypy",
    )

    # The 3.1.0 tests predate Python 3.14's lazy annotations (PEP 649/749): these fail before
    # anything is pickled (instance.__annotations__ is gone; functools.wraps copies
    # __annotate__, not an assigned __annotations__), with real cloudpickle 3.1.2 too.
    py314 = "the test's own assumption fails on Python 3.14 (cloudpickle 3.1.2 fails it too)"
    add(_both("test_locally_defined_class_with_type_hints"), py314, sys.version_info >= (3, 14))
    add(_both("test_wraps_preserves_function_annotations"), py314, sys.version_info >= (3, 14))

    return out


EXPECTED_FAILURES = _expected_failures()


def _pip_download(dest):
    """Fetch the sdist with pip; None, or why it could not. cloudpickle 3.1.0 builds with
    flit_core's old [tool.flit.metadata] table, which flit_core 4 refuses."""
    return upstream_suite.pip_download(
        "cloudpickle", VERSION, SDIST, SDIST_SHA256, dest, build_constraints="flit_core<4\n"
    )


@functools.cache
def _fetch():
    """The cached sdist (fetched once), or why it cannot be had; asked once per session."""
    dest = CACHE / SDIST
    if dest.exists() and hashlib.sha256(dest.read_bytes()).hexdigest() == SDIST_SHA256:
        return dest, None
    CACHE.mkdir(parents=True, exist_ok=True)
    return dest, _pip_download(dest)


def _sdist():
    """The sdist; skips the calling test when it cannot be fetched."""
    dest, why = _fetch()
    if why is not None:
        pytest.skip(f"cannot fetch cloudpickle {VERSION}'s tests from PyPI (no network?): {why}")
    return dest


def _prepare(sdist, where):
    """A fresh copy of the sdist whose ``cloudpickle`` is the shim; returns its root."""
    with tarfile.open(sdist) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(where, filter="data")
        else:  # Python < 3.11.4 (the archive's hash is pinned above)
            tar.extractall(where)
    root = where / f"cloudpickle-{VERSION}"
    shutil.rmtree(root / "cloudpickle")
    shutil.copytree(SHIM / "cloudpickle", root / "cloudpickle")
    # What `pip install tests/cloudpickle_testpkg` does in cloudpickle's CI, for this copy only.
    shutil.copytree(
        root / "tests" / "cloudpickle_testpkg" / "_cloudpickle_testpkg",
        root / "_cloudpickle_testpkg",
    )
    return root


def _child_env(root, report):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(SHIM)])
    env["SATCHEL_SUITE_REPORT"] = str(report)
    # testutils runs its scripts from tempfile.mkstemp() files, so the scripts' folder comes
    # first on their sys.path: a stray /tmp/nt.py (ntpath imports `nt`) would break them.
    tmp = report.parent / "tmp"
    tmp.mkdir()
    env["TMPDIR"] = str(tmp)
    return env


def test_testutils_children_see_the_shim(tmp_path):
    """The interpreters cloudpickle's testutils starts (its PYTHONPATH replaces ours) import
    the shim, not the real cloudpickle installed beside satchel."""
    root = _prepare(_sdist(), tmp_path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root / "tests"), str(root)]))
    code = "import cloudpickle, satchel; print(cloudpickle.dumps is satchel.dumps)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == "True", out.stderr


def test_cloudpickle_suite(tmp_path, capsys):
    root = _prepare(_sdist(), tmp_path)
    env = _child_env(root, tmp_path / "report.json")
    outcomes, reasons = upstream_suite.run(list(TEST_FILES), root, env, SUITE_TIMEOUT)

    title = f"cloudpickle {VERSION}'s suite with satchel {satchel.__version__}"
    upstream_suite.check(title, outcomes, reasons, EXPECTED_FAILURES, capsys)
