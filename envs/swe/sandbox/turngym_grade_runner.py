"""Runs pytest for grading inside a grader sandbox, reporting each test over an authenticated pipe.

    python3 -I -B turngym_grade_runner.py NONCE_FD REPORT_FD REPO SITE -- PYTEST_ARGS...

Started by the grader (``swe_tool.py``'s ``grade`` op) with ``-I`` (no ``PYTHON*`` variables, no
user site, no script or working folder on ``sys.path``) and ``-B``. Before any repository code
is imported it reads a one-time nonce from ``NONCE_FD`` (a pipe the grader wrote and closed, so
the nonce exists only in this plugin's memory), imports pytest and its dependencies from the
interpreter's own site-packages (and ``SITE``, a folder holding pytest, when not empty), and only then appends the repository folder at the *end* of
``sys.path``: nothing in the repository can shadow the test runner or the standard library.

Each test report is written at once, as ``NONCE json`` on one line, to ``REPORT_FD``; the grader
takes the first ``end`` record as the end of the stream and ignores everything after it, so code
that rewrites results at exit (``atexit``, ``os._exit``) changes nothing already written. Every
record also says whether pytest's report-making functions are still the originals (code under test
that patches them fails every test). Code under test runs in this process and could, in
principle, still find the nonce in memory or hook in where no check looks; the grader flags
patches that reach for such things (see ``grading.py``).
"""

import json
import os
import sys


def _snapshot() -> dict:
    """The pytest/pluggy functions that make and carry test reports (taken before repository code)."""
    import _pytest.python as python
    import _pytest.reports as reports
    import _pytest.runner as runner
    import pluggy._callers as callers

    return {
        "TestReport.from_item_and_call": reports.TestReport.__dict__["from_item_and_call"],
        "TestReport.__init__": reports.TestReport.__init__,
        "BaseReport.passed": reports.BaseReport.__dict__.get("passed"),
        "BaseReport.failed": reports.BaseReport.__dict__.get("failed"),
        "CallInfo.from_call": runner.CallInfo.__dict__["from_call"],
        "runner.call_and_report": runner.call_and_report,
        "runner.runtestprotocol": runner.runtestprotocol,
        "runner.call_runtest_hook": getattr(runner, "call_runtest_hook", None),
        "runner.pytest_runtest_makereport": runner.pytest_runtest_makereport,
        "python.pytest_pyfunc_call": python.pytest_pyfunc_call,
        "Function.runtest": python.Function.runtest,
        "pluggy._multicall": callers._multicall,
        "os.write": os.write,
        "json.dumps": json.dumps,
    }


class _Reporter:
    """The pytest plugin object (not a module: ``-p`` cannot name or replace it).

    Before each record it checks that the functions of :func:`_snapshot` are still the ones
    taken at start; if code under test replaced one, it reports ``tampered`` (the grader then
    fails every test).
    """

    def __init__(self, nonce: str, fd: int) -> None:
        self._nonce, self._fd = nonce, fd
        self._write, self._dumps, self._original = os.write, json.dumps, _snapshot()

    def _send(self, record: dict) -> None:
        try:
            now = _snapshot()
        except Exception:  # noqa: BLE001 - a module of pytest's was replaced
            now = {}
        changed = [name for name, value in self._original.items() if now.get(name) is not value]
        if changed:
            record = dict(record, tampered=changed)
        line = (self._nonce + " " + self._dumps(record) + "\n").encode()
        try:
            while line:
                line = line[self._write(self._fd, line) :]
        except OSError:
            pass

    def pytest_runtest_logreport(self, report) -> None:
        """Streams one phase's outcome (setup/call/teardown) of one test."""
        self._send({"id": report.nodeid, "when": report.when, "outcome": report.outcome})

    def pytest_collectreport(self, report) -> None:
        """A file that fails to collect fails every test in it."""
        if report.failed:
            self._send({"collect_error": report.nodeid})

    def pytest_sessionfinish(self, session, exitstatus) -> None:
        """Closes the stream: records after this one are ignored."""
        self._send({"end": int(exitstatus)})


def main() -> int:
    nonce_fd, report_fd, repo, site = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    args = sys.argv[sys.argv.index("--") + 1 :]
    with os.fdopen(nonce_fd, "rb") as handle:
        nonce = handle.read(256).decode().strip()
    if site:
        sys.path.insert(0, site)
    import _pytest.config  # noqa: F401
    import pluggy  # noqa: F401
    import pytest  # noqa: E402 - the runner's own dependencies load before the repository's code

    reporter = _Reporter(nonce, report_fd)
    sys.path.append(repo)
    os.chdir(repo)
    code = pytest.main(args, plugins=[reporter])
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
