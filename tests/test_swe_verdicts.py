"""Verdict kinds of SWE grading (``resolved``, ``unresolved``, ``timeout``, ``env_error``) with their
reasons, and SWE-bench's test keys on external pytest tasks: the runner's per-test stream (whole
node ids) and the log (parsed as SWE-bench parses it) must agree key by key. Real records from
../shared/data/realdata/swe where a test needs one (skipped when absent)."""

from __future__ import annotations

import pytest

from helpers.realdata import REALDATA
from turngym.envs.swe.grading import VERDICTS, GradeSpec, grading_spec, verdict
from turngym.envs.swe.harness import test_key
from turngym.envs.swe.tasks import Task, load_tasks

RECORDS = REALDATA / "swe"
needs_records = pytest.mark.skipif(
    not RECORDS.is_dir(),
    reason=f"the real SWE records are not at {RECORDS} (../shared/data/realdata/ next to the repo)",
)


def _task(repo: str = "o/r", f2p=("t.py::a",), p2p=("t.py::b",), **kw) -> Task:
    return Task("o__r-1", repo, "c", "p", "patch", list(f2p), list(p2p), **kw)


def _log(statuses: dict[str, str]) -> str:
    return "".join(f"{status.upper()} {node}\n" for node, status in statuses.items())


def test_verdicts_are_named() -> None:
    assert VERDICTS == ("resolved", "unresolved", "timeout", "env_error", "tampered")


def test_resolved_and_unresolved_say_why() -> None:
    task = _task()
    spec = grading_spec(task)
    both = {"t.py::a": "passed", "t.py::b": "passed"}
    judged = verdict(task, spec, {"tests": both, "log": _log(both)})
    assert judged["resolved"] and judged["verdict"] == "resolved"
    half = {"t.py::a": "failed", "t.py::b": "passed"}
    judged = verdict(task, spec, {"tests": half, "log": _log(half)})
    assert judged["verdict"] == "unresolved" and "t.py::a" in judged["reason"]
    applied = verdict(task, spec, {"apply_error": "the patch does not apply: hunk 1"})
    assert applied["verdict"] == "unresolved" and "does not apply" in applied["reason"]


def test_a_timeout_is_never_resolved_and_names_the_limit() -> None:
    task = _task(extra={"timeout": 42})
    spec = grading_spec(task)
    assert spec.timeout == 42.0
    both = {"t.py::a": "passed", "t.py::b": "passed"}
    judged = verdict(task, spec, {"tests": both, "log": _log(both), "timed_out": True})
    assert judged["verdict"] == "timeout" and not judged["resolved"]
    assert "42 s" in judged["reason"] and "grade_timeout=" in judged["reason"]


@pytest.mark.parametrize(
    "log",
    [
        "ImportError while loading conftest '/testbed/conftest.py'.\nconftest.py:3: in <module>\n",
        "ERROR: usage: pytest [options] [file_or_dir]\npytest: error: unrecognized arguments: --cov\n",
        "INTERNALERROR> Traceback (most recent call last):\n",
        "",
    ],
)
def test_a_broken_test_run_is_env_error_not_a_wrong_patch(log: str) -> None:
    task = _task()
    judged = verdict(task, grading_spec(task), {"tests": {}, "log": log})
    assert judged["verdict"] == "env_error" and not judged["resolved"]
    assert "none of the task's tests" in judged["reason"]


def test_other_frameworks_exit_status_is_checked_against_the_log() -> None:
    """SWE-bench's rule: a non-zero exit whose log reports no failure is no valid run."""
    task = _task("django/django", ["test_a (app.tests.T)"], [])
    spec = grading_spec(task)
    marker = spec.extra["exit_marker"]
    assert marker in spec.command and spec.command.endswith(f'echo "{marker}$?"')
    passing = "test_a (app.tests.T) ... ok\n"
    assert verdict(task, spec, {"log": f"{passing}{marker}0\n"})["verdict"] == "resolved"
    odd = verdict(task, spec, {"log": f"{passing}{marker}1\n"})
    assert odd["verdict"] == "env_error" and "exited 1" in odd["reason"]
    # the marker carries a fresh nonce per grading: a patch cannot print a valid one in advance
    assert grading_spec(task).extra["exit_marker"] != marker
    forged = verdict(task, spec, {"log": f"{passing}>>>>> turngym exit 0000:0\n{marker}1\n"})
    assert forged["verdict"] == "env_error"


@needs_records
def test_pytest_11143_keys_resolve_gold_as_swebench_does() -> None:
    """Real targets with blanks in their parameters (``test_get_assertion_exprs[assert``) and a
    path parameter: the runner reports whole node ids, the log's ``-rA`` lines hold them too."""
    task = {t.instance_id: t for t in load_tasks(RECORDS / "swe-bench-lite-test.json")}[
        "pytest-dev__pytest-11143"
    ]
    spec = grading_spec(task)
    assert spec.command is None and spec.parser == "pytest"
    nodes = []
    for target in spec.targets:  # a whole node id for each key, as pytest would print it
        nodes.append(f"{target} x == 1]" if target.count("[") > target.count("]") else target)
    assert all(test_key("pytest", node) in spec.targets for node in nodes)
    passed = dict.fromkeys(nodes, "passed")
    judged = verdict(task, spec, {"tests": passed, "log": _log(passed)})
    assert judged["resolved"] and judged["verdict"] == "resolved", judged["reason"]
    # whole-id matching (turngym before this) counted the truncated targets as missing
    assert sum(t.count("[") > t.count("]") for t in spec.targets) == 10  # as the issue counted


def test_a_forged_log_line_does_not_pass_a_test_the_runner_saw_fail() -> None:
    """The attack: library code prints ``PASSED t.py::a`` into the log; the runner's
    authenticated stream says it failed; the keys disagree, so the test counts as failed."""
    task = _task()
    spec = grading_spec(task)
    stream = {"t.py::a": "failed", "t.py::b": "passed"}
    forged = _log({"t.py::a": "passed", "t.py::b": "passed"})
    judged = verdict(task, spec, {"tests": stream, "log": forged})
    assert not judged["resolved"] and judged["mismatch"] == ["t.py::a"]
    # and the other way: a stream record alone (no log line) is no pass either
    judged = verdict(task, spec, {"tests": {"t.py::a": "passed", "t.py::b": "passed"}, "log": ""})
    assert not judged["resolved"]


def test_a_skipped_p2p_test_is_maintained_on_external_tasks() -> None:
    task = _task()
    spec = grading_spec(task)
    run = {"t.py::a": "passed", "t.py::b": "skipped"}
    assert verdict(task, spec, {"tests": run, "log": _log(run)})["resolved"]
    run = {"t.py::a": "skipped", "t.py::b": "passed"}
    assert not verdict(task, spec, {"tests": run, "log": _log(run)})["resolved"]


def test_bundled_tasks_keep_whole_ids_and_get_verdicts_too() -> None:
    task = _task(project="parse")
    spec = grading_spec(task)
    assert isinstance(spec, GradeSpec) and spec.parser is None and spec.timeout == 180.0
    both = {"t.py::a": "passed", "t.py::b": "passed"}
    judged = verdict(task, spec, {"tests": both, "log_tests": both})
    assert judged["verdict"] == "resolved"
