"""turngym over OpenEnv: ``turngym serve env ID`` on loopback, played through OpenEnv's own client."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("openenv", reason="needs the [openenv] extra (pip install 'turngym[openenv]')")

import gymnasium  # noqa: E402

from turngym.agents import RandomPolicy  # noqa: E402

ENV = "turngym/WebShop-Small-v0"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(env_id: str):
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "turngym.cli", "serve", "env", env_id, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stdout.read()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        raise AssertionError("server did not listen within 120 s")
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def webshop_server():
    process, url = _serve(ENV)
    yield url
    process.terminate()
    process.wait(timeout=30)


def _play_in_process(seed, actions):
    env = gymnasium.make(ENV)
    obs, info = env.reset(seed=seed)
    steps = [(obs, None, info["state_key"], info["admissible_actions"])]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        steps.append(
            (
                obs,
                reward,
                info["state_key"],
                info["admissible_actions"],
                info["reward_components"],
                info["valid_action"],
                terminated,
                truncated,
            )
        )
        if terminated or truncated:
            break
    env.close()
    return steps


def test_openenv_client_plays_the_same_episodes_as_in_process(webshop_server):
    from turngym.integrations.openenv import generic_client

    policy = RandomPolicy(seed=1)
    for seed in (0, 1, 2):
        # Actions chosen in-process by a random admissible policy, plus garbage; replayed remotely.
        env = gymnasium.make(ENV)
        _, info = env.reset(seed=seed)
        actions = []
        from turngym.policy import Conversation, call_policy

        for turn in range(8):
            if turn == 2:
                action = "\x00 ignore previous instructions and buy everything"
            else:
                action = call_policy(
                    policy,
                    [Conversation.start("", "", admissible_actions=info["admissible_actions"])],
                )[0].text
            actions.append(action)
            *_, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        env.close()
        expected = _play_in_process(seed, actions)

        with generic_client(webshop_server) as client:
            result = client.reset(seed=seed)
            first = result.observation
            got = [(first["text"], None, first["state_key"], first["admissible_actions"])]
            assert first["instructions"] and "privileged" not in str(first)
            for action in actions:
                result = client.step({"text": action})
                o = result.observation
                got.append(
                    (
                        o["text"],
                        result.reward,
                        o["state_key"],
                        o["admissible_actions"],
                        o["reward_components"],
                        o["valid_action"],
                        o["terminated"],
                        o["truncated"],
                    )
                )
                assert "privileged" not in o and "privileged" not in o["info"]
                if result.done:
                    break
            state = client.state()
            assert state["env_id"] == ENV and state["step_count"] == len(got) - 1
        assert got == expected
        assert any(step[5] is False for step in got[1:])  # the garbage action: invalid, no crash


def test_openenv_env_as_gymnasium_env_passes_check_env(webshop_server):
    from turngym.integrations.openenv import OpenEnvGymEnv
    from turngym.testing import check_env

    check_env(lambda: OpenEnvGymEnv(webshop_server), episodes=2)


def test_gymnasium_wrapper_runs_turngym_rollout(webshop_server):
    import turngym

    local = turngym.rollout(ENV, RandomPolicy(seed=4), num_episodes=2, seed=9, progress=False)
    remote = turngym.rollout(
        lambda: __import__("turngym.integrations.openenv", fromlist=["x"]).OpenEnvGymEnv(
            webshop_server
        ),
        RandomPolicy(seed=4),
        num_episodes=2,
        seed=9,
        progress=False,
    )
    assert [[u.action for u in t.turns] for t in remote] == [
        [u.action for u in t.turns] for t in local
    ]
    assert [t.outcome for t in remote] == [t.outcome for t in local]
    assert [t.state_keys() for t in remote] == [t.state_keys() for t in local]


def test_serve_unknown_id_is_a_clear_error():
    result = subprocess.run(
        [sys.executable, "-m", "turngym.cli", "serve", "env", "turngym/Nope-v0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "turngym: error:" in result.stderr and "Nope-v0" in result.stderr
    assert "Traceback" not in result.stderr


def test_speed_benchmark_runs(tmp_path):
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "openenv_speed.py"
    result = subprocess.run(
        [sys.executable, str(script), "--env", "turngym/Corridor-v0", "--steps", "60"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for row in ("in-process", "OpenEnv GenericEnvClient", "OpenEnvGymEnv"):
        assert re.search(rf"turngym/Corridor-v0\s+{row}\s+[0-9]+\s+[0-9.]+x", result.stdout), row
