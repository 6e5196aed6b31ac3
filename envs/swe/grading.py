"""Out-of-band grading of SWE episodes (host side), SWE-bench style, on both backends.

When the agent submits (or the turn limit ends the episode, or the env measures dense progress),
the env takes the agent's diff *from outside the agent's reach* (docker: the root sandbox tool,
which the agent's processes cannot reach, writes it after every agent process is killed, reading
files with the agent's uid and following no symlink -- the engine cannot copy out of the tmpfs
the workspace lives on; local: the host reads the workspace, regular files only, no symlink
followed) against
the starting tree it keeps on the host, and hands it to a **fresh grading sandbox** (a new
container from the task's image / a new bubblewrap jail over a new copy of the starting tree):

1. the diff is restricted to the allow-list of :func:`turngym.envs.swe.sandbox.swe_diff.filter_diff`
   (tracked text files; no new pyc/pth/config/conftest/binary files; test files restored) and
   applied; then the task's ``test_patch``;
2. pytest runs through ``turngym_grade_runner.py`` with ``python -I -B`` (clean ``HOME``, no user
   site, no ``PYTHON*`` variables), ``-p no:cacheprovider``, ``--rootdir`` and ``-c`` naming the
   repository's own (restored) config, plugin autoload off, the repository appended *after* the
   interpreter's own packages, as an unprivileged uid;
3. each test's outcome is read from a nonce-authenticated pipe the runner's plugin writes as the
   tests run (records after the session's end are ignored) **and** from pytest's ``-rA`` summary
   in the log, as SWE-bench reads it; a test counts as passed only when both say so
   (disagreements are reported in ``info["grading"]["mismatch"]``);
4. the grade is **tamper-evident** (verdict ``tampered``: reward 0, outcome and dense, reasons in
   ``info["grading"]["tampered"]``): fresh canary tests, half must-pass and half must-fail, are
   planted in the graded test files for every grade (``sandbox/swe_canary.py``) and every one
   must show its planted outcome in both the stream and the log (:func:`canary_problems`); the
   runner's tripwires (``turngym_grade_runner.py``) freeze pytest's report functions and the
   set of hook implementations at session start (only the repository's own pre-existing
   ``conftest.py`` may add any), and count a swapped implementation, a trace or profile
   function, a new ``sys.meta_path``/``sys.path_hooks`` entry from code the patch touched, a
   report that changed after it was made or says passed for a call that raised; the grader
   fingerprints the graded test files and conftests before the run and compares after;
5. Python files the patch edits or adds are refused (put back, named in ``dropped``) when their
   source encoding is not UTF-8/ASCII, and the rest are analysed on their AST
   (:mod:`turngym.envs.swe.diff_analysis`, ``info["grading"]["flags"]``/``flag_details``); the
   env's ``suspicious`` policy decides whether a high-severity flag zeroes the episode.

Other frameworks (Django's ``runtests.py``, sympy's ``bin/test``) plug in through
:func:`grading_spec`: an external task whose :func:`turngym.envs.swe.harness.test_spec` names a
parser other than pytest runs the harness's command in the grader, and the host parses its log
with :func:`turngym.envs.swe.harness.parse_log`.

What remains possible, and why (the code under test runs inside the test process, as in
SWE-bench, so nothing in that process is out of its reach; each layer only raises the cost):

* **A forgery that knows the real test names.** Canaries catch a rule that cannot tell them from
  the task's tests (all-pass, swallow every failure, drop unknown tests). Code that carries the
  names of the task's tests (read from the agent's own checkout, where no canary exists) and
  forges only those is not caught by the canaries; it still needs a way into pytest that the
  tripwires do not see and an edit the AST analysis does not flag.
* **Hooks the tripwires do not watch.** Hook implementations, report functions, trace/profile
  functions and import hooks are checked at every record and around every report; a change made
  and undone between two checkpoints, an object whose ``__module__`` is forged to look like an
  untouched file, or a patch of something else in pytest (a fixture, the terminal writer) is
  not. A test item's function or ``runtest`` swapped after collection is checked before each
  report (allowed only to code of the test's own file, the interpreter or an untouched
  repository file, so that plugins such as pytest-asyncio may wrap tests): a swap to an existing
  trusted function that happens to accept the test's arguments and return quietly is not caught. The nonce is in this process's memory: code that finds it
  could write records, but the ``-rA`` log must agree and the canaries must still hold.
* **Rewrites that are undone in time.** Test files and conftests are fingerprinted before and
  after the run, not while it runs; tests are restored from the task, never taken from the agent.
* **Obfuscation past the AST.** The analysis reads what the interpreter reads, resolves import
  aliases and follows decoders into ``exec``/``eval``/``compile``/``marshal``, and flags computed
  ``getattr`` on dangerous modules; code that reaches the same objects through ordinary-looking
  data flow (a plain attribute chain built across functions, a C extension already installed)
  is not flagged. ``suspicious="flag"`` turns the analysis into a report only.
* **Special-casing the tests' inputs** (returning the expected values for the inputs the tests
  use) is an honest-looking edit by construction; only held-out tests would catch it.
"""

from __future__ import annotations

import re
import secrets
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turngym.envs.swe import harness
from turngym.envs.swe.sandbox_base import StartTree
from turngym.envs.swe.tasks import Task, grade
from turngym.error import DependencyNotInstalled

__all__ = [
    "GradeSpec",
    "grading_spec",
    "verdict",
    "canary_problems",
    "start_tree",
    "VERDICTS",
]


@dataclass(frozen=True)
class GradeSpec:
    """How the grader runs a task's tests.

    Attributes:
        files: test files (pytest arguments, or the files the harness's command names).
        targets: FAIL_TO_PASS + PASS_TO_PASS ids.
        command: a shell command (another framework); None runs pytest through the runner.
        parser: the harness's log parser name for ``command``.
    """

    files: list[str]
    targets: list[str]
    command: str | None = None
    parser: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    timeout: float = harness.spec.BUNDLED_TIMEOUT


def grading_spec(task: Task, timeout: Any = None) -> GradeSpec:
    """pytest through the runner for bundled tasks and external pytest-family ones; the harness's
    command (behind the image contract's activation, its exit status after a per-grading marker)
    for other frameworks. ``timeout``: the user's override (:func:`.harness.grade_timeout`)."""
    targets = list(task.FAIL_TO_PASS) + list(task.PASS_TO_PASS)
    spec = harness.test_spec(task, timeout)  # SWE-bench's command, parser, test files, timeout
    if task.project:
        return GradeSpec(list(spec.test_files), targets, timeout=spec.timeout)
    if spec.parser in _PYTEST_FAMILY:
        return GradeSpec(list(spec.test_files), targets, None, spec.parser, timeout=spec.timeout)
    marker = f">>>>> turngym exit {secrets.token_hex(8)}:"
    contract = harness.contract_for(task.to_dict(), task.image)
    command = f'{contract.shell(shlex.join(spec.command))}; echo "{marker}$?"'
    extra = {"exit_marker": marker}
    return GradeSpec(list(spec.test_files), targets, command, spec.parser, extra, spec.timeout)


def verdict(task: Task, spec: GradeSpec, result: dict[str, Any]) -> dict[str, Any]:
    """Per-test statuses from the grader's result, then SWE-bench's verdict.

    pytest: a test passes only if the runner's authenticated stream and the ``-rA`` log agree.
    A harness command: the harness parses the log.
    """
    mismatch: list[str] = []
    if spec.command is not None:
        log, exit_code = _split_exit(result.get("log", ""), spec.extra.get("exit_marker"))
        statuses = _lowered(harness.parse_log(spec.parser, log))
        result = dict(result, exit_code=exit_code)
    elif spec.parser is not None:  # external pytest family: SWE-bench's keys on both sides
        statuses, mismatch = _keyed_statuses(spec, result)
    else:
        stream, log = result.get("tests") or {}, result.get("log_tests") or {}
        statuses = {}
        for node in spec.targets:
            a, b = stream.get(node), log.get(node)
            if a == b:
                if a is not None:
                    statuses[node] = a
            else:
                mismatch.append(node)
                statuses[node] = "failed"
    tampered = list(result.get("tampered") or [])
    if spec.command is None:
        tampered += canary_problems(result, statuses_of=_both(result))
        session = result.get("session")
        if session is not None and session.get("end") is None and not result.get("timed_out"):
            # A run cut short (os._exit after a forged summary, before the canaries ran) is no
            # grade: only a session that reached its end counts.
            mismatch.append("the test session did not finish (the runner sent no end record)")
            statuses = {}
    if tampered:
        statuses = {}
    outcome = grade(task, statuses)
    outcome.update(statuses=statuses, mismatch=mismatch, tampered=tampered)
    if tampered:
        outcome.update(resolved=False, f2p_fraction=0.0, p2p_broken_fraction=1.0)
    outcome.update(_kind(spec, result, outcome))
    return outcome


#: Verdict kinds (``info["grading"]["verdict"]``), with a ``reason`` beside each.
VERDICTS = ("resolved", "unresolved", "timeout", "env_error", "tampered")
_PYTEST_FAMILY = ("pytest", "pytest_options", "pytest_v2", "seaborn", "matplotlib")
_NAMES = {"PASSED": "passed", "XFAIL": "xfail", "SKIPPED": "skipped"}
#: Lines that say the test run itself broke (collection, imports, the runner's own errors).
RUN_BROKE = re.compile(
    r"^.*(ImportError while loading conftest|INTERNALERROR|ERROR collecting|errors? during "
    r"collection|No module named|command not found|usage: |ModuleNotFoundError|ImportError|"
    r"SyntaxError|Traceback \(most recent call last\)).*$",
    re.MULTILINE,
)


def _lowered(parsed: dict[str, str]) -> dict[str, str]:
    return {key: _NAMES.get(str(status).upper(), "failed") for key, status in parsed.items()}


def _split_exit(log: str, marker: str | None) -> tuple[str, int | None]:
    """The log without the exit marker line, and the exit status it records (last one wins)."""
    if not marker or marker not in log:
        return log, None
    head, _, tail = log.rpartition(marker)
    digits = re.match(r"-?\d+", tail)
    return head, int(digits.group()) if digits else None


def _keyed_statuses(spec: GradeSpec, result: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Statuses by SWE-bench's keys where the runner's stream and the parsed log agree."""
    stream: dict[str, str] = {}
    for node, status in (result.get("tests") or {}).items():
        key = harness.test_key(spec.parser, node)
        stream[key] = "failed" if "failed" in (status, stream.get(key)) else status
    if "log" in result:  # the whole log, parsed as SWE-bench parses it
        log = _lowered(harness.parse_log(spec.parser, result["log"]))
    else:
        log = {
            harness.test_key(spec.parser, n): s for n, s in (result.get("log_tests") or {}).items()
        }
    statuses, mismatch = {}, []
    for key in set(stream) | set(log):
        a, b = stream.get(key), log.get(key)
        if a == b or (a == "skipped" and b == "xfail"):
            statuses[key] = b
        else:
            statuses[key] = "failed"
            if any(key.startswith(target) for target in spec.targets):
                mismatch.append(key)
    return statuses, sorted(mismatch)


def _kind(spec: GradeSpec, result: dict[str, Any], outcome: dict[str, Any]) -> dict[str, Any]:
    """The verdict and its reason (see :data:`VERDICTS`); a timeout is never resolved."""
    if outcome.get("tampered"):
        return {"verdict": "tampered", "reason": "; ".join(map(str, outcome["tampered"]))}
    if result.get("apply_error"):
        return {"verdict": "unresolved", "reason": str(result["apply_error"]), "resolved": False}
    if result.get("timed_out"):
        return {
            "verdict": "timeout",
            "resolved": False,
            "reason": f"the tests did not finish within {spec.timeout:.0f} s (pass grade_timeout= "
            "or a 'timeout' field on the task to allow more)",
        }
    statuses, code = outcome.get("statuses") or {}, result.get("exit_code")
    if code not in (None, 0) and statuses and "failed" not in statuses.values():
        return {
            "verdict": "env_error",
            "resolved": False,
            "reason": f"the test command exited {code} while its log reports no failure",
        }
    if outcome["resolved"]:
        return {
            "verdict": "resolved",
            "reason": "every FAIL_TO_PASS test passes and no PASS_TO_PASS test broke",
        }
    log = str(result.get("log") or result.get("output") or "")
    seen = [t for t in spec.targets if t in statuses or any(k.startswith(t) for k in statuses)]
    broke = RUN_BROKE.search(log)
    if not seen and (broke or not statuses):
        line = broke.group(0).strip()[:300] if broke else "the log names no test"
        return {
            "verdict": "env_error",
            "reason": f"the test run reported none of the task's tests: {line} (a broken "
            "environment or a patch that breaks importing; counted as not resolved)",
        }
    failed = outcome.get("f2p_failed", []) + outcome.get("p2p_failed", [])
    shown = ", ".join(failed[:3]) + (", ..." if len(failed) > 3 else "")
    return {
        "verdict": "unresolved",
        "reason": f"{len(failed)} target tests fail or are missing: {shown}",
    }


def _both(result: dict[str, Any]) -> dict[str, tuple[str | None, str | None]]:
    """{canary node id: (its status in the runner's stream, its status in the ``-rA`` log)}."""
    stream, log = result.get("tests") or {}, result.get("log_tests") or {}
    return {node: (stream.get(node), log.get(node)) for node in result.get("canaries") or {}}


def canary_problems(
    result: dict[str, Any], statuses_of: dict[str, tuple[str | None, str | None]]
) -> list[str]:
    """Why the canaries of ``result`` say the run was tampered with (empty when they agree).

    A must-fail canary reported anything but failed is always tampering; one that went missing
    is when the session ended, other tests ran and its file (and every folder above it)
    collected. A must-pass canary that did not pass is tampering when its file collected, the
    session ended and some other test passed (a broken import or a crash that fails everything
    pays nothing and is no forgery).
    """
    session = result.get("session") or {}
    broken = [node.split("::")[0].rstrip("/") for node in session.get("collect_errors") or []]
    broken = [b[: -len("/__init__.py")] if b.endswith("/__init__.py") else b for b in broken]
    finished = session.get("end") is not None and not result.get("timed_out")
    canaries = result.get("canaries") or {}
    others = [s for node, s in (result.get("tests") or {}).items() if node not in canaries]
    ran, others_passed = bool(others), "passed" in others

    def collected(node: str) -> bool:  # no collection error in its file or a folder above it
        path = node.split("::")[0]
        return not any(path == b or path.startswith(b + "/") or not b for b in broken)

    problems = []
    for node, planted in canaries.items():
        seen = statuses_of.get(node, (None, None))
        if planted == "failed" and any(status not in ("failed", None) for status in seen):
            problems.append(f"a canary test that must fail was reported {seen}")
        elif (
            planted == "failed"
            and finished
            and ran
            and collected(node)
            and seen != ("failed", "failed")
        ):
            problems.append(f"a canary test that must fail went missing ({seen})")
        elif planted == "passed" and finished and others_passed and collected(node):
            if seen != ("passed", "passed"):
                problems.append(f"a canary test that must pass was reported {seen}")
    return problems


def _host_source(task: Task) -> Path | None:
    """The bundled project's clean source in this host's turngym cache (None if absent or external)."""
    if not task.project:
        return None
    from turngym.envs.swe.projects import project, project_source

    try:
        return project_source(project(task.project))
    except DependencyNotInstalled:
        return None


def start_tree(task: Task, backend: str) -> StartTree | None:
    """The task's starting tree (clean code + the bug), built on the host; None for external tasks.

    The clean code comes from the host's cache, else (docker) from the image's ``/opt/src``.
    """
    if not task.project:
        return None
    source = _host_source(task)
    if source is None:
        if backend != "docker" or not task.image:
            from turngym.envs.swe.projects import project, project_source

            project_source(project(task.project))  # raises, naming the fetch command
        from turngym.envs.swe.docker_backend import image_source

        source = Path(image_source(task.image))
    return StartTree.build(source, task.setup_patch)
