"""Run CPython's pickle test-suite (``test.pickletester``) with cloudpickle and with satchel
as the pickler and print the tallies side by side.

Not a pytest module (pytest only collects ``test_*.py``). Run it from the repository root:

    .venv/bin/python tests/pickletester_compare.py [-v]

It uses the harness of ``tests/test_pickletester.py`` without the expected-failure markers,
so both picklers are measured on the same raw suite. ``-v`` lists every test whose outcome
is not a pass, and the tests whose outcome differs between the two picklers.
"""

import contextlib
import io
import os
import sys
import unittest
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


class _Tally(unittest.TestResult):
    """Outcome per test: a test with a failing subtest counts once, as failed."""

    def __init__(self, prefix):
        super().__init__()
        self.prefix = prefix
        self.outcomes = {}

    def _set(self, test, outcome):
        # "PickleTests.test_x": the class name without the pickler's prefix.
        cls = type(test).__name__.removeprefix(self.prefix)
        key = f"{cls}.{test._testMethodName}"
        old = self.outcomes.get(key)
        # error > fail > skip > pass: the worst outcome of a test and its subtests wins.
        order = ["pass", "skip", "fail", "error"]
        if old is None or order.index(outcome) > order.index(old):
            self.outcomes[key] = outcome

    def addSuccess(self, test):
        self._set(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._set(test, "fail")

    def addError(self, test, err):
        super().addError(test, err)
        self._set(test, "error")

    def addSkip(self, test, reason):
        self._set(test, "skip")

    def addSubTest(self, test, subtest, err):
        if err is not None:
            if issubclass(err[0], test.failureException):
                super().addFailure(subtest, err)
                self._set(test, "fail")
            else:
                super().addError(subtest, err)
                self._set(test, "error")

    def addExpectedFailure(self, test, err):
        self._set(test, "fail")

    def addUnexpectedSuccess(self, test):
        self._set(test, "pass")


def run(module):
    import test_pickletester

    cases = test_pickletester.make_cases(module)
    loader = unittest.TestLoader()
    suite = unittest.TestSuite(loader.loadTestsFromTestCase(cls) for cls in vars(cases).values())
    result = _Tally(module.__name__.capitalize())
    # Some stdlib tests print (pickletools.dis of a stream they expected to fail).
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        suite.run(result)
    return result


def main(argv):
    import cloudpickle

    import satchel

    verbose = "-v" in argv
    results = {"cloudpickle": run(cloudpickle), "satchel": run(satchel)}
    print(f"{'':12} {'passed':>7} {'failed':>7} {'errors':>7} {'skipped':>8}")
    for name, result in results.items():
        counts = {k: 0 for k in ("pass", "fail", "error", "skip")}
        for outcome in result.outcomes.values():
            counts[outcome] += 1
        print(
            f"{name:12} {counts['pass']:7} {counts['fail']:7} {counts['error']:7}"
            f" {counts['skip']:8}"
        )
    cp, sa = results["cloudpickle"].outcomes, results["satchel"].outcomes
    differ = sorted(k for k in cp.keys() | sa.keys() if cp.get(k) != sa.get(k))
    if differ:
        print("\noutcome differs:")
        for k in differ:
            print(f"  {k}: cloudpickle={cp.get(k)} satchel={sa.get(k)}")
    if verbose:
        for name, result in results.items():
            print(f"\n{name}: not passing")
            for k, outcome in sorted(result.outcomes.items()):
                if outcome in ("fail", "error"):
                    print(f"  {outcome:5} {k}")
            for test, tb in result.failures + result.errors:
                print(f"\n--- {name}: {test.id()}\n{tb}")
    satchel_worse = sum(v == "pass" for v in sa.values()) < sum(v == "pass" for v in cp.values())
    return 1 if satchel_worse else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
