"""The TurnEnv contract, the registry and the packaging promises."""

from __future__ import annotations

import subprocess
import sys

import gymnasium
import pytest

import turngym
from turngym.core import TextSpace, stable_hash
from turngym.error import InvalidArgumentError, ResetNeeded, UnknownEnvError, UnknownTaskError


def make(**kwargs):
    return gymnasium.make("turngym/Corridor-v0", **kwargs)


def test_import_turngym_does_not_import_heavy_packages() -> None:
    code = "import turngym, turngym.agents, sys; sys.exit(sorted(m for m in ('torch','transformers','docker') if m in sys.modules) != [])"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_list_envs_describes_every_id() -> None:
    envs = turngym.list_envs()
    assert "turngym/Corridor-v0" in envs
    assert all(env_id.startswith("turngym/") and text for env_id, text in envs.items())


def test_dense_and_sparse_rewards() -> None:
    # L2-east: two "go east" steps win. Dense pays progress 0.5 + 0.5 and the outcome 1.0;
    # sparse pays only the outcome on the last step.
    for mode, expected in (("dense", [0.5, 1.5]), ("sparse", [0.0, 1.0])):
        env = make(reward_mode=mode)
        env.reset(options={"task": "L2-east"})
        rewards, infos = [], []
        for _ in range(2):
            _, reward, terminated, truncated, info = env.step("go east")
            rewards.append(reward)
            infos.append(info)
        assert rewards == pytest.approx(expected)
        assert terminated and not truncated
        assert infos[-1]["outcome"] == 1.0 and infos[-1]["success"] is True
        assert infos[0]["outcome"] is None and infos[0]["success"] is None


def test_truncation_sets_outcome() -> None:
    env = make(max_turns=3)
    env.reset(options={"task": "L4-east"})
    for _ in range(2):
        assert env.step("wait")[3] is False
    _, reward, terminated, truncated, info = env.step("wait")
    assert truncated and not terminated
    assert info["outcome"] == 0.0 and info["success"] is False
    assert info["reward_components"]["outcome"] == 0.0


def test_step_after_end_and_before_reset_raise_reset_needed() -> None:
    env = turngym.envs.toy.corridor.CorridorEnv(max_turns=1)
    with pytest.raises(ResetNeeded, match="before reset"):
        env.step("wait")
    env.reset(seed=0)
    env.step("wait")
    with pytest.raises(ResetNeeded, match="reset()"):
        env.step("wait")


def test_wrong_arguments_list_what_is_valid() -> None:
    with pytest.raises(UnknownEnvError, match="turngym/Corridor-v0"):
        turngym.make("turngym/Coridor-v0")
    with pytest.raises(InvalidArgumentError, match="valid arguments are .*lengths"):
        make(lenghts=(2,))
    with pytest.raises(InvalidArgumentError, match="reward_mode"):
        make(reward_mode="shaped")
    with pytest.raises(InvalidArgumentError, match="split"):
        make(split="validation")
    env = make()
    with pytest.raises(UnknownTaskError, match="L2-east"):
        env.reset(options={"task": "L9-north"})
    with pytest.raises(InvalidArgumentError, match="'task'"):
        env.reset(options={"level": 3})
    env.reset(seed=0)
    with pytest.raises(InvalidArgumentError, match="pass a str"):
        env.step(3)


def test_bytes_actions_are_decoded() -> None:
    env = make()
    env.reset(options={"task": "L2-east"})
    _, reward, *_, info = env.step(b"go east")
    assert info["valid_action"] and reward == pytest.approx(0.5)


def test_seed_selects_task_and_task_option_overrides() -> None:
    env = make()
    tasks = {env.reset(seed=seed)[1]["task_id"] for seed in range(30)}
    assert tasks == set(env.unwrapped.task_ids)
    assert env.reset(seed=0, options={"task": "L3-west"})[1]["task_id"] == "L3-west"


def test_state_key_equal_for_equal_states_across_episodes() -> None:
    env = make()
    env.reset(options={"task": "L4-east"})
    _, _, _, _, east = env.step("go east")
    _, _, _, _, back = env.step("go west")
    _, start = env.reset(options={"task": "L4-east"})
    assert back["state_key"] == start["state_key"] != east["state_key"]


def test_state_key_is_process_independent() -> None:
    code = "from turngym.core import stable_hash; print(stable_hash({'b': [1, 2], 'a': 'x'}))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={"PYTHONHASHSEED": str(s)},
        ).stdout.strip()
        for s in (1, 2)
    }
    assert outputs == {stable_hash({"a": "x", "b": [1, 2]})}


def test_text_space_contains_any_text() -> None:
    space = TextSpace(max_length=10)
    assert space.contains("ça → ok") and not space.contains("x" * 11) and not space.contains(3)
    sample = space.sample()
    assert space.contains(sample)


def test_instructions_in_reset_info_and_render() -> None:
    env = make(render_mode="ansi")
    observation, info = env.reset(seed=1)
    assert "exit is to the" in info["instructions"]
    assert env.render() == observation
