"""SWE env on the real Docker engine: conformance, expert 100 % / random 0 %, no leaked containers.

These need an engine and the images that ``docker/ci_setup.sh`` builds; without them they skip
and say so (CI runs ci_setup.sh first, so there they run).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import gymnasium
import numpy as np
import pytest

from helpers.episodes import play
from turngym.envs.swe.projects import PROJECTS, image_name
from turngym.envs.swe.sandbox_base import SandboxError
from turngym.testing import check_env


def _docker_reason() -> str | None:
    from turngym.envs.swe.docker_backend import connect, engine_available

    reason = engine_available()
    if reason:
        return reason
    missing = [
        image_name(p) for p in PROJECTS.values() if not connect().images.list(name=image_name(p))
    ]
    return f"images {missing} are not built; run `source docker/ci_setup.sh`" if missing else None


REASON = _docker_reason()
pytestmark = pytest.mark.skipif(
    REASON is not None, reason=f"no Docker engine for SWE tests: {REASON}"
)


def _ours(client):
    return client.containers.list(
        all=True, filters={"label": ["turngym.swe", f"turngym.pid={os.getpid()}"]}
    )


def test_conformance_docker() -> None:
    env = gymnasium.make("turngym/SWE-v0", backend="docker", max_turns=4)
    try:
        check_env(env)
    finally:
        env.close()


def test_reused_container_keeps_nothing_of_the_last_episode() -> None:
    import json

    env = gymnasium.make("turngym/SWE-v0", backend="docker")
    fresh = gymnasium.make("turngym/SWE-v0", backend="docker")
    first, second = [t for t in env.unwrapped.task_ids if t.startswith("parse__")][:2]

    def bash(command: str) -> str:
        return json.dumps({"tool": "bash", "command": command})

    survivors = (
        "python3 -c \"import os; print('SURVIVORS', sum(open('/proc/%s/cmdline' % p, 'rb').read()"
        ".startswith(b'LEFTOVER') for p in os.listdir('/proc') if p.isdigit()))\""
    )
    try:
        env.reset(options={"task": first})
        container = env.unwrapped._sandbox.container.id
        obs, *_ = env.step(
            bash(
                "(setsid bash -c 'exec -a LEFTOVER sleep 1000' &); echo x > /tmp/left; "
                "echo y > /dev/shm/left; echo z > left.txt; sleep 0.2; " + survivors
            )
        )
        assert "SURVIVORS 1" in obs, obs  # the detached process outlives its command
        env.step('{"tool": "submit"}')
        _, info = env.reset(options={"task": second})
        assert env.unwrapped._sandbox.container.id == container, "the container was not reused"
        _, fresh_info = fresh.reset(options={"task": second})
        assert info["state_key"] == fresh_info["state_key"]
        obs, *_ = env.step(bash("ls -A /tmp /dev/shm; ls left.txt; " + survivors))
        assert (
            "left" not in obs.replace("ls: cannot access 'left.txt'", "") and "SURVIVORS 0" in obs
        ), obs
    finally:
        env.close()
        fresh.close()


def _play(env_id_kwargs: dict, tasks: list[str], policy: str) -> list[bool]:
    from turngym.agents import RandomPolicy, expert

    env = gymnasium.make("turngym/SWE-v0", **env_id_kwargs)
    actor = expert("turngym/SWE-v0") if policy == "expert" else RandomPolicy(seed=0)
    try:
        return [play(env, actor, task)[0] for task in tasks]
    finally:
        env.close()


def test_expert_resolves_all_30_test_tasks_and_random_none() -> None:
    env = gymnasium.make("turngym/SWE-v0", backend="docker", split="test")
    tasks = env.unwrapped.task_ids
    env.close()
    assert len(tasks) >= 30
    shards = [tasks[:30][i::3] for i in range(3)]
    with ThreadPoolExecutor(3) as pool:
        solved = [
            ok
            for part in pool.map(
                lambda s: _play({"backend": "docker", "split": "test"}, s, "expert"), shards
            )
            for ok in part
        ]
    assert len(solved) == 30 and all(solved), f"expert resolved {sum(solved)}/30"
    random = _play({"backend": "docker", "split": "test", "max_turns": 2}, tasks[:4], "random")
    assert random == [False] * 4


def test_200_faulty_episodes_leave_no_container() -> None:
    from turngym.envs.swe.docker_backend import connect, wait_removals

    client = connect()
    rng = np.random.default_rng(0)
    faults = rng.integers(0, 5, size=200)

    def episode(args: tuple[int, int]) -> str:
        index, fault = args
        env = gymnasium.make("turngym/SWE-v0", backend="docker", max_turns=3, command_timeout=5)
        try:
            env.reset(seed=int(index))
            sandbox = env.unwrapped._sandbox
            if fault == 0:  # the container is killed under the env
                sandbox.container.kill()
                _, _, terminated, _, info = env.step('{"tool": "bash", "command": "ls"}')
                assert terminated and "sandbox_error" in info
            elif (
                fault == 1
            ):  # the user's code raises mid-episode; the env is dropped without close()
                try:
                    raise RuntimeError("agent crashed")
                except RuntimeError:
                    pass
                return "dropped"
            elif fault == 2:  # the engine call itself fails mid-step

                def broken(*args, **kwargs):
                    raise SandboxError("injected failure")

                sandbox.call = broken
                _, _, terminated, _, _ = env.step('{"tool": "bash", "command": "ls"}')
                assert terminated
            elif fault == 3:  # a normal invalid step, then reset again (the old container must go)
                env.step("garbage")
                env.reset(seed=int(index) + 1)
            else:  # a bug (not a sandbox failure) escapes step(); the caller drops the env

                def buggy(*args, **kwargs):
                    raise ValueError("injected bug")

                sandbox.call = buggy
                with pytest.raises(ValueError, match="injected bug"):
                    env.step('{"tool": "bash", "command": "ls"}')
                return "dropped"
        finally:
            if fault not in (1, 4):
                env.close()
        return "ok"

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(episode, enumerate(faults)))
    assert outcomes.count("dropped") == int(((faults == 1) | (faults == 4)).sum())
    import gc

    gc.collect()  # dropped envs: their sandboxes' finalizers remove the containers
    wait_removals()
    assert _ours(client) == [], "leaked containers: " + ", ".join(c.name for c in _ours(client))


def test_interrupt_while_starting_leaves_no_container(monkeypatch: pytest.MonkeyPatch) -> None:
    from turngym.envs.swe.docker_backend import DockerSandbox, connect, wait_removals

    original = DockerSandbox.call

    def interrupted(self, request, **kwargs):
        if (
            request["op"] == "setup"
        ):  # Ctrl-C after the container started, before the sandbox exists
            raise KeyboardInterrupt
        return original(self, request, **kwargs)

    monkeypatch.setattr(DockerSandbox, "call", interrupted)
    env = gymnasium.make("turngym/SWE-v0", backend="docker")
    try:
        with pytest.raises(KeyboardInterrupt):
            env.reset(seed=0)
    finally:
        env.close()
    wait_removals()
    assert _ours(connect()) == [], "a container started by an interrupted reset leaked"


@pytest.mark.parametrize("ending", ["keyboard_interrupt", "sys_exit"])
def test_interpreter_exit_removes_containers(ending: str) -> None:
    from turngym.envs.swe.docker_backend import connect

    script = textwrap.dedent(f"""
        import gymnasium, os, sys, turngym
        env = gymnasium.make("turngym/SWE-v0", backend="docker")
        env.reset(seed=0)
        print(os.getpid(), flush=True)
        if {ending!r} == "keyboard_interrupt":
            raise KeyboardInterrupt
        sys.exit(3)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip(), f"the child failed before its reset: {done.stderr[-1500:]}"
    pid = done.stdout.split()[0]
    left = connect().containers.list(
        all=True, filters={"label": ["turngym.swe", f"turngym.pid={pid}"]}
    )
    assert left == [], f"{ending}: containers left behind: {left}; stderr: {done.stderr[-500:]}"


def test_reap_removes_containers_of_killed_processes() -> None:
    from turngym.envs.swe.docker_backend import connect, reap

    script = textwrap.dedent("""
        import gymnasium, os, signal, turngym
        env = gymnasium.make("turngym/SWE-v0", backend="docker")
        env.reset(seed=0)
        print(os.getpid(), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no finalizers: the container leaks
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip(), f"the child failed before its reset: {done.stderr[-1500:]}"
    pid = done.stdout.split()[0]
    client = connect()
    filters = {"label": ["turngym.swe", f"turngym.pid={pid}"]}
    assert len(client.containers.list(all=True, filters=filters)) == 1  # leaked, labelled
    assert reap(client) >= 1
    assert client.containers.list(all=True, filters=filters) == []


def test_buggy_tree_travels_by_put_archive_and_clean_code_falls_back_to_the_image(
    monkeypatch,
) -> None:
    """The agent's container gets the host-built buggy tree only; without the host's cache the
    clean code comes out of the image (root-only /opt/src) on the host, never into the sandbox."""
    from turngym.envs.swe import docker_backend
    from turngym.envs.swe import grading as swe_env
    from turngym.envs.swe.expert import patch_to_calls

    env = gymnasium.make("turngym/SWE-v0", backend="docker", split="test")
    try:
        task = env.unwrapped.tasks[env.unwrapped.task_ids[0]]
        host = swe_env._host_source(task)
        assert host is not None, "ci_setup.sh caches the project sources on the host"
        env.reset(options={"task": task.instance_id})
        sandbox = env.unwrapped._sandbox
        bug_file = task.extra["bug_file"]
        workspace = sandbox.container.exec_run(["cat", f"/testbed/{bug_file}"])
        assert workspace.exit_code == 0
        assert workspace.output == env.unwrapped._start_tree.files[bug_file]  # the bug, not the fix
        assert workspace.output != (host / bug_file).read_bytes()
        hidden = sandbox.container.exec_run(["ls", "-A", "/opt/src", "/opt"], user="0:0")
        assert b"turngym-stage" not in hidden.output and b"workspace-src" not in hidden.output
        agent_write = sandbox.container.exec_run(["touch", "/opt/turngym/base/x"], user="1000:1000")
        assert agent_write.exit_code != 0  # the agent cannot change the starting snapshot
        _, reward, terminated, _, info = env.step('{"tool": "submit"}')
        assert terminated and info["success"] is False  # the injected bug is in the workspace
    finally:
        env.close()

    monkeypatch.setattr(swe_env, "_host_source", lambda task: None)
    docker_backend.image_source.cache_clear()
    env = gymnasium.make("turngym/SWE-v0", backend="docker", split="test")
    try:
        env.reset(options={"task": task.instance_id})
        clean = docker_backend.image_source(task.image)
        assert open(f"{clean}/{bug_file}", "rb").read() == (host / bug_file).read_bytes()
        for call in patch_to_calls(task.patch):  # the gold patch resolves the image's copy too
            env.step(call)
        _, _, terminated, _, info = env.step('{"tool": "submit"}')
        assert terminated and info["success"] is True
    finally:
        env.close()


def test_reap_never_inspects_what_it_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process may remove a sandbox between reap's listing and a look at it (its own close
    or its own reap): reap reads the listing's labels, so that race cannot crash a reset."""
    import socket

    from docker.errors import NotFound
    from docker.models.containers import ContainerCollection

    from turngym.envs.swe.docker_backend import connect, reap
    from turngym.envs.swe.docker_engine import LABEL

    finished = subprocess.Popen(["true"])
    finished.wait()  # a pid whose process is gone
    client = connect()
    labels = {LABEL: "1", "turngym.pid": str(finished.pid), "turngym.host": socket.gethostname()}
    container = client.containers.create(
        image_name(PROJECTS[sorted(PROJECTS)[0]]), ["true"], labels=labels
    )

    def removed_meanwhile(*args, **kwargs):
        raise NotFound("removed by another process")

    monkeypatch.setattr(ContainerCollection, "get", removed_meanwhile)
    try:
        assert reap(client) >= 1
    finally:
        monkeypatch.undo()
        try:
            container.remove(force=True)
        except NotFound:
            pass
    filters = {"label": [LABEL, f"turngym.pid={finished.pid}"]}
    assert client.containers.list(all=True, filters=filters) == []
