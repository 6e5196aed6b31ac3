"""SWE sandboxes after faults: killed drivers, dropped envs, failing calls leave nothing behind.

Local: a driver killed with SIGKILL leaves its workspace, site folder and cgroups; the next
process's first sandbox, :func:`turngym.envs.swe.local_backend.reap` and ``turngym swe reap``
remove them. 200 faulted local episodes (5 of them in killed driver processes) leave no
workspace or cgroup. The gold patch resolves every bundled task on both backends (the control of
the attack suite), graded by the same out-of-band path as a submission.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from test_swe_attacks import BACKENDS, backend_reason  # noqa: E402 - tests/ is on sys.path

from helpers.episodes import play
from turngym.envs.swe.grading import grading_spec, verdict
from turngym.envs.swe.tasks import load_tasks

needs_local = pytest.mark.skipif(
    backend_reason("local") is not None, reason=f"local: {backend_reason('local')}"
)

KILLED_DRIVER = textwrap.dedent("""
    import gymnasium, json, os, signal, turngym
    env = gymnasium.make("turngym/SWE-v0", backend="local")
    env.reset(seed=int(os.environ.get("SEED", "0")))
    sandbox = env.unwrapped._sandbox
    print(json.dumps({"pid": os.getpid(), "root": str(sandbox.root),
                      "cgroups": [str(g) for g in sandbox.cgroups]}), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no finalizers
""")


def _killed_driver(seed: int = 0) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", KILLED_DRIVER], capture_output=True, text=True, timeout=120,
        env=dict(os.environ, SEED=str(seed)),
    )  # fmt: skip
    assert done.stdout.strip(), f"the driver failed before its reset: {done.stderr[-1500:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def _left_by(pid: int) -> list[str]:
    from turngym.envs.swe.local_backend import LOCAL_ROOT, _cgroup_roots

    paths = [str(p) for p in LOCAL_ROOT.glob(f"{pid}[-.]*")] if LOCAL_ROOT.is_dir() else []
    for root in _cgroup_roots():
        paths += [str(g) for g in root.glob(f"turngym-swe-{pid}-*")] if root.is_dir() else []
    return paths


@needs_local
def test_killed_driver_is_reaped_by_function_and_cli(capsys: pytest.CaptureFixture) -> None:
    from turngym.cli import main
    from turngym.envs.swe.local_backend import reap

    first = _killed_driver(0)
    assert Path(first["root"]).is_dir(), "the killed driver's workspace should be left behind"
    assert all(Path(g).is_dir() for g in first["cgroups"]) and _left_by(first["pid"])
    assert reap() >= 1 and _left_by(first["pid"]) == []
    second = _killed_driver(1)
    assert _left_by(second["pid"])
    assert main(["swe", "reap"]) == 0
    assert "local: " in capsys.readouterr().out and _left_by(second["pid"]) == []


@needs_local
def test_next_process_reaps_a_killed_driver() -> None:
    driver = _killed_driver(3)
    script = "import gymnasium, turngym; e = gymnasium.make('turngym/SWE-v0', backend='local'); e.reset(seed=0); e.close()"
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=120)
    assert not Path(driver["root"]).exists() and _left_by(driver["pid"]) == []


@pytest.mark.slow
@needs_local
def test_200_faulted_local_episodes_leave_nothing() -> None:
    from turngym.envs.swe.local_backend import reap
    from turngym.envs.swe.sandbox_base import SandboxError

    faults = np.random.default_rng(0).integers(0, 5, size=195)
    killed = [_killed_driver(10 + i)["pid"] for i in range(5)]  # 5 more episodes: killed drivers

    def episode(args: tuple[int, int]) -> str:
        index, fault = args
        env = gymnasium.make("turngym/SWE-v0", backend="local", max_turns=3, command_timeout=5)
        env.reset(seed=int(index))
        sandbox = env.unwrapped._sandbox
        if fault == 0:  # the agent kills everything it can, then the episode runs out of turns
            for _ in range(3):
                env.step('{"tool": "bash", "command": "kill -9 -1"}')
        elif fault == 1:  # dropped without close()
            return "dropped"
        elif fault == 2:  # the sandbox fails mid-step
            sandbox.call = lambda *a, **k: (_ for _ in ()).throw(SandboxError("injected"))
            assert env.step('{"tool": "bash", "command": "ls"}')[2]
        elif fault == 3:  # garbage, then a new episode (the old sandbox must go)
            env.step("garbage")
            env.reset(seed=int(index) + 1)
        else:  # a bug escapes step(); the caller drops the env
            sandbox.call = lambda *a, **k: (_ for _ in ()).throw(ValueError("injected bug"))
            with pytest.raises(ValueError):
                env.step('{"tool": "bash", "command": "ls"}')
            return "dropped"
        env.close()
        return "ok"

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(episode, enumerate(faults)))
    assert len(outcomes) + len(killed) == 200
    gc.collect()
    reap()
    assert [p for pid in killed for p in _left_by(pid)] == []
    ours = [p for p in _left_by(os.getpid()) if not p.endswith(("-site", ".lock"))]
    assert ours == [], f"leaked: {ours}"


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_gold_patch_resolves_every_task(backend: str) -> None:
    """The control: every bundled task's gold patch is resolved by the out-of-band grader."""
    tasks = load_tasks()
    count = 3 if backend == "docker" else 2
    shards = [tasks[i::count] for i in range(count)]

    def grade_all(shard: list) -> list[str]:
        env = gymnasium.make("turngym/SWE-v0", backend=backend)
        failed = []
        try:
            for task in shard:
                env.reset(options={"task": task.instance_id})
                spec = grading_spec(task)
                request = {"files": spec.files, "targets": spec.targets, "command": spec.command,
                           "test_patch": task.test_patch, "task": task.instance_id}  # fmt: skip
                result = env.unwrapped._sandbox.evaluate(task.patch, request, timeout=180)
                judged = verdict(task, spec, result)
                if not judged["resolved"] or result.get("dropped") or judged["mismatch"]:
                    failed.append(
                        f"{task.instance_id}: {judged['statuses']} {result.get('output', '')[-300:]}"
                    )
        finally:
            env.close()
        return failed

    with ThreadPoolExecutor(len(shards)) as pool:
        failed = [f for part in pool.map(grade_all, shards) for f in part]
    assert failed == [], f"{len(failed)}/{len(tasks)} gold patches not resolved: {failed[:3]}"


@needs_local
def test_random_policy_resolves_nothing_locally() -> None:
    from turngym.agents import RandomPolicy

    env = gymnasium.make("turngym/SWE-v0", backend="local", split="test", max_turns=3)
    policy = RandomPolicy(seed=0)
    try:
        results = [play(env, policy, task)[0] for task in env.unwrapped.task_ids[:4]]
    finally:
        env.close()
    assert results == [False] * 4
