"""joblib's own pickling tests, run with satchel as the pickler of joblib's loky.

The tests come from joblib 1.6.0's sdist on PyPI (it ships ``joblib/test/``), fetched with pip
at test time and cached under ``.cache/upstream-suites/`` (gitignored; nothing is vendored), and
run in a pytest subprocess against the sdist's own ``joblib`` with ``LOKY_PICKLER=satchel``
(joblib's vendored loky, ``joblib.externals.loky``, reads it too) and ``cloudpickle`` being
``tests/cloudpickle_shim`` (joblib 1.6 imports cloudpickle itself). A plugin checks before any
test that joblib's loky pickler subclasses ``satchel.Pickler``. The selection is joblib's tests
that send what plain pickle cannot (functions, lambdas, bound methods and classes defined in
``__main__``, closures) to loky workers; real cloudpickle 3.1.2 passes the same 18 (CPython
3.11). Every failure must be listed in ``EXPECTED_FAILURES`` with its reason, and every listed
test must fail: the list only shrinks.

    .venv/bin/python -m pytest -q -p no:cacheprovider -s tests/test_joblib_suite.py
"""

import pytest
import upstream_suite as suite

pytest.importorskip("psutil", reason="joblib's loky tests need psutil")

VERSION = "1.6.0"
SDIST = f"joblib-{VERSION}.tar.gz"
SDIST_SHA256 = "2ccc96785b12046c08fd6d55839c12857831b54a3c1673ffadd2f04bfc4eda03"
SUITE_TIMEOUT = 600  # seconds; about 60 s on a busy 2-core machine

P = "joblib/test/test_parallel.py::"
PICKLING_TESTS = [
    "joblib/test/test_cloudpickle_wrapper.py",
    f"{P}test_parallel_pickling",
    f"{P}test_lambda_expression",
    f"{P}test_parallel_with_interactively_defined_functions",
    f"{P}test_parallel_with_interactively_defined_functions_loky",
    f"{P}test_parallel_with_interactively_defined_bound_method_loky",
    f"{P}test_parallel_with_unpicklable_functions_in_args",
    # Only the loky backend of the last one: the others (multiprocessing, spawn) do not use
    # loky's pickler, and each case starts a script with its own pool (about 5 s).
    "-k",
    "not test_parallel_with_unpicklable_functions_in_args or -loky]",
]

# joblib's ParallelBackendBase.MAX_NUM_THREADS_VARS (1.6.0).
THREAD_LIMIT_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMBA_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

# test node id -> why it fails with satchel (none so far). Only ever remove entries; one is
# added only for a deliberate difference, which README's "Differences" section then lists too.
EXPECTED_FAILURES = {}


def test_joblib_suite(tmp_path, capsys):
    archive = suite.sdist("joblib", VERSION, SDIST, SDIST_SHA256)
    suite.extract(archive, tmp_path)
    root = tmp_path / f"joblib-{VERSION}"
    env = suite.child_env(
        tmp_path,
        tmp_path / "report.json",
        [root],
        LOKY_PICKLER="satchel",
        SATCHEL_EXPECT_LOKY_PICKLER="satchel",
        SATCHEL_LOKY_PACKAGE="joblib.externals.loky",
    )
    # joblib's conftest asserts after each test that no thread-limit variable is set; the
    # outer session may have some (a distributed Nanny in it sets OMP_NUM_THREADS in os.environ).
    for name in THREAD_LIMIT_VARS:
        env.pop(name, None)
    args = ["-p", "satchel_loky_check", *PICKLING_TESTS]
    outcomes, reasons = suite.run(args, root, env, SUITE_TIMEOUT)
    title = f"joblib {VERSION}'s pickling tests with satchel (LOKY_PICKLER=satchel)"
    suite.check(title, outcomes, reasons, EXPECTED_FAILURES, capsys)
