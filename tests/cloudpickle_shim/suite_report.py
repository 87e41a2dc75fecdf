"""pytest plugin for the inner run of cloudpickle's suite (``-p suite_report``): writes each
test's outcome, and the reason of each failure, as JSON to $SATCHEL_SUITE_REPORT, and checks
first that ``cloudpickle`` here is satchel's shim, not the real cloudpickle."""

import json
import os

_OUTCOMES = {}
_REASONS = {}


def pytest_sessionstart(session):
    import cloudpickle

    import satchel

    if cloudpickle.dumps is not satchel.dumps:
        raise RuntimeError(f"cloudpickle is not satchel's shim here: {cloudpickle.__file__}")


def _reason(report):
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()] or ["?"]
    # A script's failure ("script errored with output: ... Traceback ...") ends with its error.
    reason = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
    return reason[:300]


def pytest_collectreport(report):
    if report.failed:
        _OUTCOMES[report.nodeid or "<collection>"] = "error"
        _REASONS[report.nodeid or "<collection>"] = _reason(report)


def pytest_runtest_logreport(report):
    nodeid = report.nodeid
    xfail = hasattr(report, "wasxfail")
    if report.when == "call":
        if report.passed:
            outcome = "xpassed" if xfail else "passed"
        elif report.skipped:
            outcome = "xfailed" if xfail else "skipped"
        else:
            outcome = "failed"
    elif report.failed:
        outcome = "error"  # in setup or teardown: it overrides whatever the call did
    elif report.skipped:
        outcome = "xfailed" if xfail else "skipped"
    else:
        return
    if _OUTCOMES.get(nodeid) != "error":
        _OUTCOMES[nodeid] = outcome
    if outcome in ("failed", "error"):
        _REASONS.setdefault(nodeid, _reason(report))


def pytest_sessionfinish(session):
    path = os.environ.get("SATCHEL_SUITE_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump({"outcomes": _OUTCOMES, "reasons": _REASONS}, f, indent=1, sort_keys=True)
