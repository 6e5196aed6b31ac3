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
that patches them fails every test).

Runtime tripwires (:class:`_Tripwires`), checked at every record and around every report: the set
of hook implementations is frozen when the session starts (later ones may come only from the
repository's ``conftest.py`` files that existed before pytest started, or be functions whose code
lives in the interpreter's folders or in a repository file the patch left alone); an existing
implementation whose function was swapped, a trace or profile function (``sys``/``threading``),
or a new ``sys.meta_path``/``sys.path_hooks`` entry whose class does not come from such a file
all count as tampering; so does a report that changed
after it was made (a wrapper outside ours) or a passed report for a call that raised (one
inside). Every record then carries ``tampered`` (the grader's verdict is ``tampered``). Code under
test runs in this process and could, in principle, still find the nonce in memory or hook in
where no check looks; the canaries and the diff analysis (see ``grading.py``) cover the rest.
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


def _conftests(repo: str) -> set:
    """Real paths of the ``conftest.py`` files below ``repo`` now (an iterative walk)."""
    found, stack = set(), [repo]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in ("__pycache__", ".git"):
                    stack.append(entry.path)
            elif entry.name == "conftest.py" and entry.is_file(follow_symlinks=False):
                found.add(os.path.realpath(entry.path))
    return found


def _interpreter_dirs(repo: str, site: str) -> tuple:
    """Folders whose code is the interpreter's or the runner's own (none that holds ``repo``)."""
    import site as site_module
    import sysconfig

    paths = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        os.path.dirname(os.path.abspath(__file__)),
    }
    paths.update(p for p in sysconfig.get_paths().values() if p)
    paths.update(getattr(site_module, "getsitepackages", list)())
    paths.update([site] if site else [])
    folders = (os.path.realpath(p).rstrip(os.sep) + os.sep for p in paths)
    return tuple(f for f in folders if not (os.path.realpath(repo) + os.sep).startswith(f))


class _Tripwires:
    """What the test process looked like when the session started, and how it differs now."""

    def __init__(self, pluginmanager, conftests: set, trusted) -> None:
        import threading

        self._pm, self._conftests, self._trusted, self._threading = (
            pluginmanager,
            conftests,
            trusted,
            threading,
        )
        self._impls = self._hookimpls()
        self._hooks = {"sys.meta_path": list(sys.meta_path), "sys.path_hooks": list(sys.path_hooks)}
        self.found = []

    def _hookimpls(self) -> dict:
        impls = {}
        for name, caller in list(vars(self._pm.hook).items()):
            for impl in getattr(caller, "get_hookimpls", list)():
                impls[id(impl)] = (impl, impl.function, name)
        return impls

    def _trusted_object(self, obj) -> bool:
        module = sys.modules.get(getattr(type(obj), "__module__", ""), None)
        return self._trusted_file(getattr(module, "__file__", None))

    def _trusted_file(self, path) -> bool:
        return bool(path) and os.path.isfile(path) and self._trusted(path)

    def check(self) -> list:
        """Names of what changed since start (also kept in ``found``)."""
        problems = []
        for key, (impl, function, name) in self._hookimpls().items():
            if key not in self._impls:
                path = getattr(impl.plugin, "__file__", None)
                conftest = (
                    type(impl.plugin).__name__ == "module"
                    and path
                    and (os.path.realpath(path) in self._conftests)
                )
                code = getattr(function, "__code__", None)
                if not (conftest or self._trusted_file(getattr(code, "co_filename", None))):
                    problems.append(f"a new {name} hook implementation ({impl.plugin_name})")
                    continue
                # The repository's own conftest.py, or code of pytest or of a file the patch
                # left alone (a fixture of the repository that registers a plugin).
                self._impls[key] = (impl, function, name)
            elif self._impls[key][1] is not function:
                problems.append(f"the {name} hook implementation of {impl.plugin_name} was swapped")
        for name, value in (("sys.settrace", sys.gettrace()), ("sys.setprofile", sys.getprofile()),
                            ("threading.settrace", getattr(self._threading, "_trace_hook", None)),
                            ("threading.setprofile", getattr(self._threading, "_profile_hook", None))):  # fmt: skip
            if value is not None:
                problems.append(f"a {name} function is installed")
        for name, now in (("sys.meta_path", sys.meta_path), ("sys.path_hooks", sys.path_hooks)):
            before = self._hooks[name]
            problems.extend(f"a new {name} entry ({type(hook).__name__})" for hook in list(now)
                            if all(hook is not old for old in before) and not self._trusted_object(hook))  # fmt: skip
        self.found.extend(p for p in problems if p not in self.found)
        return problems


class _Reporter:
    """The pytest plugin object (not a module: ``-p`` cannot name or replace it).

    Before each record it checks that the functions of :func:`_snapshot` are still the ones
    taken at start; if code under test replaced one, it reports ``tampered`` (the grader then
    fails every test).
    """

    def __init__(self, nonce: str, fd: int, conftests: set, trusted) -> None:
        self._nonce, self._fd = nonce, fd
        self._write, self._dumps, self._original = os.write, json.dumps, _snapshot()
        self._conftests, self._trusted = conftests, trusted
        self._wires = None  # set when the session starts
        self._made = {}  # (node id, phase) -> the outcome of the report as our wrapper saw it
        self._functions = {}  # id(item) -> the test function collection left on the item

    def _check(self) -> list:
        try:
            now = _snapshot()
        except Exception:  # noqa: BLE001 - a module of pytest's was replaced
            now = {}
        changed = [f"pytest's {name} was replaced during the run"
                   for name, value in self._original.items() if now.get(name) is not value]  # fmt: skip
        if self._wires is not None:
            try:
                self._wires.check()
            except Exception as error:  # noqa: BLE001 - the plugin manager itself was broken
                self._wires.found.append(
                    f"the plugin manager cannot be read: {type(error).__name__}"
                )
            changed += self._wires.found
        return changed

    def _send(self, record: dict) -> None:
        changed = self._check()
        if changed:
            record = dict(record, tampered=changed)
        line = (self._nonce + " " + self._dumps(record) + "\n").encode()
        try:
            while line:
                line = line[self._write(self._fd, line) :]
        except OSError:
            pass

    def pytest_sessionstart(self, session) -> None:
        """Freezes the hook implementations (after every other plugin's start-up)."""
        self._wires = _Tripwires(session.config.pluginmanager, self._conftests, self._trusted)

    def pytest_collection_finish(self, session) -> None:
        """Takes each collected test's function as collection left it (read without side effects)."""
        for item in session.items:
            obj = item.__dict__.get("_obj")
            self._functions[id(item)] = getattr(obj, "__func__", obj)

    def _replaced(self, item) -> list:
        """A test whose function or ``runtest`` was swapped on the item after collection.

        A swap to code of the test's own file, of the interpreter or of an untouched repository
        file (a plugin such as pytest-asyncio wrapping coroutine tests) is allowed; code from a
        patched file, or an object with no code of its own, is not.
        """
        problems = [f"{item.nodeid}'s runtest was replaced"] if "runtest" in vars(item) else []
        obj = item.__dict__.get("_obj")
        function = getattr(obj, "__func__", obj)
        if obj is None or function is self._functions.get(id(item)):
            return problems
        path = getattr(getattr(function, "__code__", None), "co_filename", None)
        own = bool(path) and os.path.realpath(path) == os.path.realpath(str(item.path))
        if not (own or (path and os.path.isfile(path) and self._trusted(path))):
            problems.append(
                f"{item.nodeid}'s test function was replaced ({path or type(obj).__name__})"
            )
        return problems

    def pytest_runtest_makereport(self, item, call):
        """Keeps what the report said when it was made, and checks it against the call."""
        raised = call.excinfo is not None
        if self._wires is not None and call.when == "call":
            self._wires.found.extend(p for p in self._replaced(item) if p not in self._wires.found)
        self._check()
        outcome = yield
        report = outcome.get_result()
        self._check()
        self._made[(report.nodeid, report.when)] = report.outcome
        if raised and report.outcome == "passed" and self._wires is not None:
            self._wires.found.append(f"{report.nodeid} raised but its report said passed")

    def pytest_runtest_logreport(self, report) -> None:
        """Streams one phase's outcome (setup/call/teardown) of one test."""
        made = self._made.pop((report.nodeid, report.when), None)
        if made is not None and made != report.outcome and self._wires is not None:
            self._wires.found.append(f"{report.nodeid}'s report changed after it was made")
        self._send({"id": report.nodeid, "when": report.when, "outcome": report.outcome})

    def pytest_collectreport(self, report) -> None:
        """A file that fails to collect fails every test in it."""
        if report.failed:
            self._send({"collect_error": report.nodeid})

    def pytest_sessionfinish(self, session, exitstatus) -> None:
        """Closes the stream: records after this one are ignored."""
        self._send({"end": int(exitstatus)})


def _runner_dirs(modules) -> tuple:
    """The folders of the runner's own packages (pytest, _pytest, pluggy), as imported at start."""
    folders = set()
    for module in modules:
        path = getattr(module, "__file__", None)
        if path:
            folders.add(os.path.dirname(os.path.realpath(path)).rstrip(os.sep) + os.sep)
    return tuple(sorted(folders))


def _trust_rule(repo: str, site: str, changed: set, runner_modules):
    """Which code files the tripwires trust.

    Code of the interpreter; code of the runner's own packages as imported before any repository
    code (for pytest-dev/pytest the repository under test *is* the runner, installed from the
    work tree: its own assertion-rewriting import hook is not tampering, and a patch to the
    runner can only be caught by the canaries and the diff analysis); and files of the
    repository the patch left alone.
    """
    dirs = _interpreter_dirs(repo, site) + _runner_dirs(runner_modules)
    root = os.path.realpath(repo) + os.sep

    def trusted(path: str) -> bool:
        real = os.path.realpath(path)
        return real.startswith(dirs) or (real.startswith(root) and real not in changed)

    return trusted


def main() -> int:
    nonce_fd, report_fd, repo, site = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    args, extra = sys.argv[sys.argv.index("--") + 1 :], sys.argv[5 : sys.argv.index("--")]
    changed = {
        os.path.realpath(os.path.join(repo, p)) for p in (json.loads(extra[0]) if extra else [])
    }
    with os.fdopen(nonce_fd, "rb") as handle:
        nonce = handle.read(256).decode().strip()
    if site:
        sys.path.insert(0, site)
    import _pytest.config
    import pluggy
    import pytest  # noqa: E402 - the runner's own dependencies load before the repository's code

    # Marked here, with this pytest's own marker (attribute markers are deprecated).
    _Reporter.pytest_sessionstart = pytest.hookimpl(trylast=True)(_Reporter.pytest_sessionstart)
    _Reporter.pytest_runtest_makereport = pytest.hookimpl(hookwrapper=True, tryfirst=True)(
        _Reporter.pytest_runtest_makereport
    )
    trusted = _trust_rule(repo, site, changed, (_pytest, pluggy, pytest))

    reporter = _Reporter(nonce, report_fd, _conftests(repo), trusted)
    sys.path.append(repo)
    os.chdir(repo)
    code = pytest.main(args, plugins=[reporter])
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
