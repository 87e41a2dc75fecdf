"""loky's own pickling tests, run with satchel as loky's pickler.

The tests come from loky 3.7.0's sdist on PyPI (it ships ``tests/``), fetched with pip at test
time and cached under ``.cache/upstream-suites/`` (gitignored; nothing is vendored). They run
in a pytest subprocess against the sdist's own ``loky`` package, in two ways satchel can stand
in for cloudpickle there:

- ``LOKY_PICKLER=satchel``: loky's documented switch (a module providing ``Pickler``); loky
  subclasses ``satchel.Pickler`` for every task and result, in the parent and in the workers.
- ``shim``: LOKY_PICKLER unset, ``cloudpickle`` is ``tests/cloudpickle_shim`` (satchel), so
  loky's default pickler, "cloudpickle", and ``wrap_non_picklable_objects`` are satchel's.

In both the shim is first on the path, and a plugin checks before any test that loky's pickler
subclasses ``satchel.Pickler``. The selection is loky's tests that pickle something (functions
and classes from ``__main__``, interactively defined and recursive functions, objects that crash
or raise while pickled or unpickled, initializers); loky's cpu-count tests
(``test_loky_module.py``) pickle nothing and are left out. Real cloudpickle 3.1.2 (no shim,
LOKY_PICKLER unset) passes the same 34 tests on CPython 3.11. Every failure must be listed in
``EXPECTED_FAILURES`` with its reason, and every listed test must fail: the list only shrinks.

    .venv/bin/python -m pytest -q -p no:cacheprovider -s tests/test_loky_suite.py
"""

import pytest
import upstream_suite as suite

from conftest import PYPY

pytest.importorskip("psutil", reason="loky's tests need psutil")

VERSION = "3.7.0"
SDIST = f"loky-{VERSION}.tar.gz"
SDIST_SHA256 = "80928106fe18b5300c6f1b3a871d71e68a81dc9b2fe5c8ee4afe93bb9ba6424d"
SUITE_TIMEOUT = 600  # seconds; about 50 s for both runs on a busy 2-core machine

W = "tests/test_cloudpickle_wrapper.py"
R = "tests/test_reusable_executor.py::"
PICKLING_TESTS = [
    W,
    f"{R}TestExecutorDeadLock::test_crashes",
    f"{R}TestExecutorDeadLock::test_callback_crash_on_submit",
    f"{R}TestExecutorDeadLock::test_informative_error_when_fail_at_unpickle",
    f"{R}TestTerminateExecutor::test_call_item_gc_crash_or_exit",
    f"{R}TestGetReusableExecutor::test_interactively_defined_executor_no_main",
    f"{R}TestGetReusableExecutor::test_interactively_defined_nested_functions",
    f"{R}TestGetReusableExecutor::test_interactively_defined_recursive_functions",
    f"{R}TestGetReusableExecutor::test_compat_with_concurrent_futures_exception",
    f"{R}TestExecutorInitializer::test_reusable_initializer",
]

MODES = {
    # test_set_loky_pickler asserts that loky's default pickler is named "cloudpickle", which
    # LOKY_PICKLER overrides by design: it runs in the shim mode, where that holds.
    "LOKY_PICKLER=satchel": (
        {"LOKY_PICKLER": "satchel", "SATCHEL_EXPECT_LOKY_PICKLER": "satchel"},
        [*PICKLING_TESTS, "-k", "not test_set_loky_pickler or test_set_loky_pickler_failures"],
    ),
    "shim": ({"SATCHEL_EXPECT_LOKY_PICKLER": "cloudpickle"}, [W]),
}

# test node id -> why it fails with satchel (none so far). Only ever remove entries; one is
# added only for a deliberate difference, which README's "Differences" section then lists too.
EXPECTED_FAILURES = {}

# PyPy only: these switch loky to the stdlib pickler (set_loky_pickler("pickle")), and loky's
# CustomizablePickler then passes its own `reducers=` keyword to PyPy's _pickle.Pickler.__new__,
# which refuses it (CPython's ignores it): loky's incompatibility with PyPy, not satchel's
# (satchel.Pickler's own __new__ takes it; real cloudpickle does not import on PyPy).
_STDLIB_PICKLER_ON_PYPY = (
    "loky's stdlib-pickler mode fails on PyPy: _pickle.Pickler.__new__ refuses reducers="
)
PYPY_FAILURES = {
    "LOKY_PICKLER=satchel": [
        f"{W}::TestCloudpickleWrapper::test_cloudpickle_flag_wrapper",
        f"{W}::TestCloudpickleWrapper::test_serialization_function_from_main",
    ],
    "shim": [
        f"{W}::TestCloudpickleWrapper::test_cloudpickle_flag_wrapper",
        f"{W}::TestCloudpickleWrapper::test_serialization_function_from_main",
        f"{W}::TestCloudpickleWrapper::test_set_loky_pickler['pickle']",
    ],
}


@pytest.mark.parametrize("mode", list(MODES))
def test_loky_suite(mode, tmp_path, capsys):
    archive = suite.sdist("loky", VERSION, SDIST, SDIST_SHA256)
    suite.extract(archive, tmp_path)
    root = tmp_path / f"loky-{VERSION}"
    overrides, args = MODES[mode]
    env = suite.child_env(tmp_path, tmp_path / "report.json", [root], **overrides)
    # WARNING: loky's conftest logs multiprocessing at DEBUG level by default.
    args = ["-p", "satchel_loky_check", "--loky-verbosity=30", *args]
    outcomes, reasons = suite.run(args, root, env, SUITE_TIMEOUT)
    title = f"loky {VERSION}'s pickling tests with satchel ({mode})"
    expected = dict(EXPECTED_FAILURES)
    if PYPY:
        expected.update(dict.fromkeys(PYPY_FAILURES[mode], _STDLIB_PICKLER_ON_PYPY))
    suite.check(title, outcomes, reasons, expected, capsys)
