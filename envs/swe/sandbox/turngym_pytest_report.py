"""A pytest plugin that writes each test's status to ``$TURNGYM_PYTEST_REPORT`` as JSON.

Loaded inside SWE sandboxes with ``-p turngym_pytest_report`` (through ``PYTEST_ADDOPTS`` for the
agent's own runs) so the env reads exact per-test outcomes instead of parsing terminal output.
A test counts as failed if any of its phases (or subtests) failed, passed if its call passed.
"""

import json
import os

_STATUS = {}


def pytest_runtest_logreport(report):
    """Records the worst outcome seen for each test id."""
    previous = _STATUS.get(report.nodeid)
    if report.failed:
        _STATUS[report.nodeid] = "failed"
    elif previous != "failed":
        if report.when == "call" and report.passed:
            _STATUS[report.nodeid] = "passed"
        elif report.skipped and previous is None:
            _STATUS[report.nodeid] = "skipped"


def pytest_sessionfinish(session, exitstatus):
    """Writes the statuses (only when the report path is set)."""
    path = os.environ.get("TURNGYM_PYTEST_REPORT")
    if path:
        with open(path, "w") as handle:
            json.dump(_STATUS, handle)
