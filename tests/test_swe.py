"""SWE env: tool-call parsing, bug injection, tasks and grading, the in-sandbox tool, the local backend."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import gymnasium
import pytest

from turngym.envs.swe.actions import parse_action
from turngym.envs.swe.expert import SWEExpert, patch_to_calls
from turngym.envs.swe.local_backend import bwrap_available
from turngym.envs.swe.mutate import apply_mutation, find_mutations
from turngym.envs.swe.projects import PROJECTS, project_source
from turngym.envs.swe.sandbox.swe_tool import apply_diff, handle, make_diff
from turngym.envs.swe.tasks import Task, grade, load_tasks
from turngym.error import DependencyNotInstalled, InvalidArgumentError
from turngym.policy import Conversation
from turngym.testing import adversarial_actions, check_env

TASKS = load_tasks()


def _local_reason() -> str | None:
    reason = bwrap_available()
    if reason:
        return reason
    try:
        for proj in PROJECTS.values():
            project_source(proj)
    except DependencyNotInstalled as error:
        return str(error)
    return None


LOCAL_REASON = _local_reason()
needs_local = pytest.mark.skipif(
    LOCAL_REASON is not None, reason=f"local SWE backend unavailable: {LOCAL_REASON}"
)


# ---------------------------------------------------------------- actions
def test_parse_accepts_each_tool() -> None:
    for text, tool in [
        ('{"tool": "bash", "command": "ls"}', "bash"),
        ('{"tool": "view", "path": "a.py", "start": 1, "end": 5}', "view"),
        ('{"tool": "edit", "path": "a.py", "old": "x", "new": "y"}', "edit"),
        ('{"tool": "create", "path": "a.py", "content": ""}', "create"),
        ('```json\n{"tool": "submit"}\n```', "submit"),
    ]:
        call, problem = parse_action(text)
        assert call is not None and call.tool == tool, problem


@pytest.mark.parametrize(
    "text",
    [
        'Sure! {"tool": "submit"} thanks',
        '{"tool": "bash"}',
        '{"tool": "bash", "command": "ls", "x": 1}',
        '{"tool": "view", "path": "a", "start": "1"}',
        '{"tool": "rm", "path": "a"}',
        "[1, 2]",
        "{not json}",
        '{"tool": "bash", "command": "  "}',
        '{"tool": "view", "path": "a", "start": true}',
    ],
)
def test_parse_rejects_with_feedback(text: str) -> None:
    call, problem = parse_action(text)
    assert call is None and problem


def test_adversarial_actions_are_all_invalid() -> None:
    for name, text in adversarial_actions('{"tool": "bash", "command": "ls"}').items():
        assert parse_action(text)[0] is None, name


# ---------------------------------------------------------------- mutations, diffs, tasks
SOURCE = """
def clamp(x, low, high):
    if x < low:
        return low
    elif x > high:
        return high
    else:
        total = x + 0
    return max(low, total)
"""


def test_find_mutations_covers_kinds_and_compiles() -> None:
    mutations = find_mutations(SOURCE)
    kinds = {m.kind for m in mutations}
    assert {
        "compare_flip",
        "binop_flip",
        "off_by_one",
        "negate_if",
        "swap_args",
        "remove_else",
    } <= kinds
    for mutation in mutations:
        mutated = apply_mutation(SOURCE, mutation)
        assert mutated is not None and mutated != SOURCE
        ast.parse(mutated)
        changed = [
            a for a, b in zip(SOURCE.splitlines(), mutated.splitlines(), strict=False) if a != b
        ]
        assert mutation.kind.startswith("remove") or len(changed) == 1, mutation


def test_diff_apply_roundtrip(tmp_path: Path) -> None:
    base, work = tmp_path / "base", tmp_path / "work"
    (base / "pkg").mkdir(parents=True)
    (base / "pkg" / "m.py").write_text("a = 1\nb = 2\nc = 3\n")
    (base / "gone.txt").write_text("bye\n")
    shutil.copytree(base, work)
    (work / "pkg" / "m.py").write_text("a = 1\nb = 20\nc = 3\n")
    (work / "new.txt").write_text("no newline")
    (work / "gone.txt").unlink()
    diff = make_diff(str(base), str(work))
    assert "-b = 2" in diff and "+b = 20" in diff and "new.txt" in diff
    target = tmp_path / "target"
    shutil.copytree(base, target)
    apply_diff(str(target), diff)
    assert make_diff(str(target), str(work)) == ""


def test_bundled_tasks_follow_swe_bench_schema() -> None:
    assert len(TASKS) >= 100
    assert len({t.project for t in TASKS}) >= 3
    for task in TASKS:
        assert task.FAIL_TO_PASS and task.patch.startswith("diff --git") and task.setup_patch
        assert not set(task.FAIL_TO_PASS) & set(task.PASS_TO_PASS)
        assert task.patch not in task.problem_statement
    record = TASKS[0].to_dict()
    record["FAIL_TO_PASS"] = json.dumps(
        record["FAIL_TO_PASS"]
    )  # SWE-bench's HF datasets store JSON strings
    assert Task.from_dict(record).FAIL_TO_PASS == TASKS[0].FAIL_TO_PASS
    with pytest.raises(InvalidArgumentError, match="lacks the fields"):
        Task.from_dict({"instance_id": "x"})


def test_grade_is_swe_bench_resolved() -> None:
    task = Task("t", "r", "c", "p", "patch", ["a::f1", "a::f2"], ["a::p1"])
    everything = {"a::f1": "passed", "a::f2": "passed", "a::p1": "passed"}
    assert grade(task, everything)["resolved"]
    assert not grade(task, {**everything, "a::p1": "failed"})["resolved"]
    half = grade(task, {"a::f1": "passed", "a::p1": "passed"})  # a missing test counts as failed
    assert not half["resolved"] and half["f2p_fraction"] == 0.5


def test_gold_patch_inverts_the_bug(tmp_path: Path) -> None:
    # Pure file-level check (no sandbox): setup_patch then patch gives back the original code.
    for task in TASKS[::20]:
        if LOCAL_REASON:
            pytest.skip(LOCAL_REASON)
        source = project_source(PROJECTS[task.project])
        work = tmp_path / task.instance_id
        handle(
            {
                "op": "setup",
                "src": str(source),
                "patch": task.setup_patch,
                "workspace": str(work),
                "base": str(tmp_path / "b"),
            }
        )
        apply_diff(str(work), task.patch)
        rel = task.extra["bug_file"]
        assert (work / rel).read_text() == (source / rel).read_text()


def test_expert_turns_patch_into_edit_calls() -> None:
    task = TASKS[0]
    calls = patch_to_calls(task.patch)
    assert calls and all(parse_action(c)[0] is not None for c in calls)
    expert = SWEExpert()
    conversation = Conversation(
        messages=[{"role": "system", "content": ""}], privileged={"patch": task.patch}
    )
    assert expert.act([conversation]) == [calls[0]]


def test_wrong_arguments_list_valid_ones() -> None:
    with pytest.raises(InvalidArgumentError, match="backend"):
        gymnasium.make("turngym/SWE-v0", backend="podman")
    with pytest.raises(InvalidArgumentError, match="valid arguments"):
        gymnasium.make("turngym/SWE-v0", backend="local", colour="red")


# ---------------------------------------------------------------- local backend
@needs_local
def test_conformance_local() -> None:
    env = gymnasium.make("turngym/SWE-v0", backend="local", max_turns=4)
    try:
        check_env(env)
    finally:
        env.close()


@needs_local
def test_local_expert_resolves_and_tools_work() -> None:
    env = gymnasium.make("turngym/SWE-v0", backend="local", split="test")
    try:
        task = env.unwrapped.tasks[env.unwrapped.task_ids[0]]
        _, info = env.reset(options={"task": task.instance_id})
        start_key = info["state_key"]
        path = task.extra["bug_file"]
        obs, _, _, _, info = env.step(
            json.dumps({"tool": "view", "path": path, "start": 1, "end": 3})
        )
        assert info["valid_action"] and "     1  " in obs and info["state_key"] == start_key
        obs, reward, _, _, info = env.step(
            json.dumps({"tool": "edit", "path": "missing.py", "old": "a", "new": "b"})
        )
        assert not info["valid_action"] and "missing.py" in obs and reward < 0
        for call in patch_to_calls(task.patch):
            _, _, _, _, info = env.step(call)
            assert info["valid_action"]
        assert info["state_key"] != start_key  # the workspace diff changed
        obs, reward, terminated, _, info = env.step('{"tool": "submit"}')
        assert terminated and info["success"] and info["outcome"] == 1.0
        assert info["reward_components"]["patch"] > 0 and info["reward_components"]["submitted"] > 0
    finally:
        env.close()


@needs_local
def test_gated_chain_submitted_patch_resolved() -> None:
    from turngym.envs.swe.env import GATE_CHAIN, gated

    env = gated(gymnasium.make("turngym/SWE-v0", backend="local", split="test"))
    try:
        task = env.unwrapped.tasks[env.unwrapped.task_ids[0]]
        # Submitting an untouched repository: the first gate (submitted) opens, the second (patch) does not,
        # so the immediate valid_call rewards are withheld: R = 0.1.
        env.reset(options={"task": task.instance_id})
        _, reward, *_ = env.step('{"tool": "bash", "command": "ls"}')
        assert reward == 0.0
        *_, info = env.step('{"tool": "submit"}')
        assert info["gates_opened"] == [True, False, False]
        assert (
            env.unwrapped.reward_mode == "dense"
            and abs(info["reward_components"]["submitted"] - 0.1) < 1e-9
        )
        # The expert opens every gate: R = submitted + patch + outcome + every immediate component.
        env.reset(options={"task": task.instance_id})
        calls = patch_to_calls(task.patch) + ['{"tool": "submit"}']
        for call in calls:
            _, reward, terminated, _, info = env.step(call)
        assert terminated and info["gates_opened"] == [True] * len(GATE_CHAIN)
        expected = 0.1 + 0.1 + 1.0 + 0.01 * len(calls) + 0.5  # + f2p_partial at 100 %
        assert abs(reward - expected) < 1e-6, (reward, info["reward_components"])
    finally:
        env.close()


@needs_local
@pytest.mark.parametrize("plant", ["conftest", "symlinked conftest"])
def test_grading_ignores_planted_pytest_hooks(plant: str) -> None:
    # A conftest.py that reports every test as passed fools the agent's own pytest runs, but neither
    # the dense reward (the env measures progress itself, in a grading sandbox) nor the grade.
    env = gymnasium.make("turngym/SWE-v0", backend="local", split="test")
    try:
        task = env.unwrapped.tasks[env.unwrapped.task_ids[0]]
        env.reset(options={"task": task.instance_id})
        hook = (
            "import pytest\n\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
            "    outcome = yield\n    outcome.get_result().outcome = 'passed'\n"
        )
        env.step(json.dumps({"tool": "create", "path": "conftest.py", "content": hook}))
        if plant == "symlinked conftest":
            env.step(
                json.dumps(
                    {
                        "tool": "bash",
                        "command": "mv conftest.py hook.py && ln -s hook.py conftest.py",
                    }
                )
            )
        test_file = task.FAIL_TO_PASS[0].split("::")[0]
        obs, _, _, _, info = env.step(
            json.dumps({"tool": "bash", "command": f"python -m pytest -q {test_file}"})
        )
        assert "failed" not in obs.split("[exit code")[0].lower()  # the agent's own run is fooled
        assert (
            info["progress"] == 0.0 and info["reward_components"].get("test_progress", 0.0) == 0.0
        )
        _, _, terminated, _, info = env.step('{"tool": "submit"}')
        assert terminated and not info["success"] and info["outcome"] == 0.0
        planted = (
            "conftest.py" if plant == "conftest" else "hook.py"
        )  # a symlink is no file to grade
        assert any(entry.startswith(planted) for entry in info["grading"]["dropped"]), info[
            "grading"
        ]
    finally:
        env.close()


@needs_local
def test_turn_limit_grades_after_an_invalid_last_action() -> None:
    task = TASKS[0]
    calls = patch_to_calls(task.patch)
    env = gymnasium.make("turngym/SWE-v0", backend="local", max_turns=len(calls) + 1)
    try:
        env.reset(options={"task": task.instance_id})
        for call in calls:
            env.step(call)
        _, reward, terminated, truncated, info = env.step("not a tool call")
        assert truncated and not terminated and not info["valid_action"]
        assert info["success"] and info["outcome"] == 1.0 and info["reward_components"]["patch"] > 0
    finally:
        env.close()


def test_auto_backend_without_any_sandbox_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from turngym.envs.swe import docker_backend, local_backend

    monkeypatch.setattr(
        docker_backend, "engine_available", lambda: "no Docker engine answers (test)"
    )
    monkeypatch.setattr(
        local_backend, "local_available", lambda projects: "bubblewrap is not installed (test)"
    )
    with pytest.raises(DependencyNotInstalled) as caught:
        gymnasium.make("turngym/SWE-v0")
    message = str(caught.value)
    assert (
        "no Docker engine answers (test)" in message
        and "bubblewrap is not installed (test)" in message
    )
    assert "docker/ci_setup.sh" in message
