"""distributed's and dask's own pickling tests, run with satchel standing in for cloudpickle.

Fetched with pip at test time (pinned sha256) and cached under ``.cache/upstream-suites/``
(gitignored; nothing is vendored):

- distributed: its sdists stopped shipping tests with 2021.07.1 (dask/distributed#5054), and
  the 2026.8.0 one has none. ``distributed/protocol/tests/test_pickle.py`` therefore comes from
  2021.7.0, the last sdist that has it, and runs against the installed distributed 2026.8.0
  (its ``dumps``/``loads``/``serialize`` contract has not changed). That sdist's
  ``test_serialize.py`` cannot be used: it imports names 2026.8.0 no longer has
  (``nested_deserialize``), so its module fails to import with real cloudpickle too.
  Two ways satchel stands in: ``shim`` (``cloudpickle`` is ``tests/cloudpickle_shim``, so
  ``distributed.protocol.pickle`` falls back to satchel where it would use cloudpickle) and
  ``satchel.dask`` (every pickle distributed writes is ``satchel.dask.dumps``, as after
  ``satchel.dask.install(client)``).
- dask 2026.8.0 (its sdist ships tests): the modules that use cloudpickle,
  ``test_multiprocessing.py`` (``dask.multiprocessing`` ships tasks with cloudpickle),
  ``test_tokenize.py`` (``dask.tokenize`` hashes functions and ``__main__`` objects by their
  cloudpickle stream) and ``test_delayed.py``'s pickling tests, with the shim, under dask's own
  pytest settings (warnings are errors). ``dask/tests/test_distributed.py`` is left out: it
  starts a cluster per test (about 6 minutes here); ``tests/test_dask.py`` covers satchel on a
  real cluster.

Real cloudpickle 3.1.2 (no shim) gives the same counts on CPython 3.11: 5/5, and 135/135 with 24
skipped and 4 xfailed. Every failure must be listed in ``EXPECTED_FAILURES`` with its reason,
and every listed test must fail: the list only shrinks.

    .venv/bin/python -m pytest -q -p no:cacheprovider -s tests/test_distributed_suite.py
"""

import shutil
import sys

import pytest
import upstream_suite as suite

pytest.importorskip("distributed", reason="distributed is not installed")

SUITE_TIMEOUT = 600  # seconds; about 45 s for the three runs on a busy 2-core machine

DISTRIBUTED = (
    "distributed",
    "2021.7.0",
    "6257f399ea564bfdcd80dcc9df6cdaf703dbadb94b7c068d103f8366dc7f8d1f",
)
DASK = ("dask", "2026.8.0", "8a94c37b5de6d869343340dc26c3c3acca7ec48a3abdabe00ea3abb1125884d5")

# dask's pyproject.toml asks for plugins not installed here (pytest-cov's --cov-config,
# pytest-timeout's "timeout", pytest-rerunfailures' "flaky"); its other settings stand.
DASK_ARGS = [
    "-o",
    "addopts=-ra --strict-markers",
    "-W",
    "ignore::pytest.PytestConfigWarning",
    "dask/tests/test_multiprocessing.py",
    "dask/tests/test_tokenize.py",
    "dask/tests/test_delayed.py",
    "-k",
    "not test_delayed.py or pickle",
]
if sys.version_info >= (3, 12):
    # Not a pickling test: it forks a pool while threads of earlier tests are alive; 3.12+
    # warns about fork() in a multi-threaded process, and dask's filterwarnings=error makes
    # that a failure (seen on 3.15.2 in this selection).
    DASK_ARGS += [
        "--deselect",
        "dask/tests/test_multiprocessing.py::test_custom_context_used_python3_posix",
    ]

RUNS = {
    "distributed-shim": (DISTRIBUTED, []),
    "distributed-satchel.dask": (DISTRIBUTED, ["-p", "satchel_dask_patch"]),
    "dask-shim": (DASK, DASK_ARGS),
}

# test node id -> why it fails with satchel (none so far). Only ever remove entries; one is
# added only for a deliberate difference, which README's "Differences" section then lists too.
EXPECTED_FAILURES = {}


def _prepare(source, tmp_path):
    name, version, sha256 = source
    archive = suite.sdist(name, version, f"{name}-{version}.tar.gz", sha256)
    top = f"{name}-{version}"
    if name == "distributed":
        # The test file alone: the sdist's own (2021) distributed package must not shadow
        # the installed one.
        member = f"{top}/distributed/protocol/tests/test_pickle.py"
        suite.extract(archive, tmp_path / "sdist", [member])
        root = tmp_path / "distributed-tests"
        root.mkdir()
        shutil.copy(tmp_path / "sdist" / member, root / "test_pickle.py")
        return root, []
    suite.extract(archive, tmp_path)
    root = tmp_path / top
    return root, [root]  # dask's tests run against the sdist's dask (the pinned version)


@pytest.mark.parametrize("run", list(RUNS))
def test_distributed_suite(run, tmp_path, capsys):
    source, args = RUNS[run]
    root, path = _prepare(source, tmp_path)
    env = suite.child_env(tmp_path, tmp_path / "report.json", path)
    outcomes, reasons = suite.run(args, root, env, SUITE_TIMEOUT)
    title = f"{source[0]} {source[1]}'s pickling tests with satchel ({run})"
    suite.check(title, outcomes, reasons, EXPECTED_FAILURES, capsys)
