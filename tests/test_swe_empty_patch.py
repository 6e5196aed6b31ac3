"""An empty patch at the end is not run (SWE-bench's harness does not run one either): no grading
sandbox, verdict ``unresolved`` with ``empty_patch``, and the same reward as running it gave,
because a task's FAIL_TO_PASS tests fail on its starting tree. A non-empty patch still runs."""

from __future__ import annotations

import json

import pytest
from test_swe_attacks import backend_reason

import turngym
from turngym.envs.swe.judging import FINAL_TIMEOUT
from turngym.envs.swe.local_backend import LocalSandbox
from turngym.envs.swe.projects import PROJECTS

pytestmark = pytest.mark.skipif(
    backend_reason("local", tuple(PROJECTS)) is not None,
    reason=str(backend_reason("local", tuple(PROJECTS))),
)


@pytest.fixture
def grades(monkeypatch):
    """Counts the grading sandboxes started (LocalSandbox.evaluate calls)."""
    calls = []
    original = LocalSandbox.evaluate

    def counted(self, diff, request, timeout):
        calls.append(diff)
        return original(self, diff, request, timeout)

    monkeypatch.setattr(LocalSandbox, "evaluate", counted)
    return calls


def _first_task_per_project(env) -> list[str]:
    tasks = env.unwrapped.tasks
    return sorted({t.project: i for i, t in sorted(tasks.items(), reverse=True)}.values())


def test_an_untouched_submit_runs_no_test_and_earns_what_a_run_would(grades):
    env = turngym.make("turngym/SWE-v0", backend="local", split="all")
    try:
        for task_id in _first_task_per_project(env):
            env.reset(options={"task": task_id})
            ran = env.unwrapped._judge.evaluate(final=False, timeout=FINAL_TIMEOUT)  # the old path
            assert len(grades) == 1 and grades.pop() == ""
            assert not ran["resolved"] and ran["f2p_fraction"] == 0.0 and not ran["empty_patch"]
            env.reset(options={"task": task_id})
            said, _, terminated, _, info = env.step(json.dumps({"tool": "submit"}))
            assert terminated and grades == [], task_id  # no grading sandbox
            assert "You changed nothing" in said and "tests ran" not in said
            grading = info["grading"]
            assert grading["empty_patch"] and grading["verdict"] == "unresolved", grading
            assert "empty patch" in grading["reason"] and not info["success"]
            components = info["reward_components"]
            assert components["patch"] == components["f2p_partial"] == 0.0
            assert components["submitted"] > 0 and info["outcome"] == 0.0
    finally:
        env.close()


def test_the_turn_limit_on_an_untouched_tree_runs_no_test_either(grades):
    env = turngym.make("turngym/SWE-v0", backend="local", max_turns=1)
    try:
        env.reset(seed=0)
        _, _, terminated, truncated, info = env.step(json.dumps({"tool": "bash", "command": "ls"}))
        assert (terminated or truncated) and grades == []
        assert info["grading"]["empty_patch"] and info["reward_components"]["f2p_partial"] == 0.0
    finally:
        env.close()


def test_a_changed_tree_is_still_run(grades):
    env = turngym.make("turngym/SWE-v0", backend="local")
    try:
        env.reset(seed=0)
        task = env.unwrapped._task
        source = next(p for p in env.unwrapped._start_tree.files if p.endswith(".py")
                      and "test" not in p)  # fmt: skip
        edit = {"tool": "bash", "command": f"echo '# a comment' >> {source}"}
        env.step(json.dumps(edit))
        said, _, terminated, _, info = env.step(json.dumps({"tool": "submit"}))
        assert terminated and len(grades) == 1 and "+# a comment" in grades[0], task.instance_id
        assert info["grading"]["empty_patch"] is False and "The tests ran" in said
        assert info["reward_components"]["patch"] > 0  # the patch was graded
    finally:
        env.close()
