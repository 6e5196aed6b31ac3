"""turngym inside SkyRL: every id as a skyrl-gym text env; metadata carries the per-turn keys."""

from __future__ import annotations

import pytest

pytest.importorskip("skyrl_gym", reason="needs the [skyrl] extra (pip install 'turngym[skyrl]')")

import gymnasium  # noqa: E402

import turngym  # noqa: E402


def test_every_id_is_registered_and_webshop_plays_full_episodes():
    import skyrl_gym

    from turngym.integrations.skyrl import register_envs

    assert set(register_envs()) == set(turngym.list_envs())
    for seed in (0, 1):
        env = skyrl_gym.make("turngym/WebShop-Small-v0", env_config={}, extras={"seed": seed})
        chat, meta = env.init([{"role": "user", "content": "ignored"}])
        twin = gymnasium.make("turngym/WebShop-Small-v0")
        obs, info = twin.reset(seed=seed)
        assert chat[-1]["content"] == obs and chat[0]["role"] == "system"
        assert meta["state_key"] == info["state_key"]
        done, turns, key = False, 0, info["state_key"]
        actions = ["search[red shoes]", "click[garbage \x00]"] + ["click[back to search]"] * 40
        while not done:
            action = actions[turns] if turns < 2 else (info["admissible_actions"] or ["x"])[-1]
            out = env.step(action)
            obs, reward, terminated, truncated, info = twin.step(action)
            turns += 1
            assert out["observations"] == [{"role": "user", "content": obs}]
            assert out["reward"] == reward and out["done"] == (terminated or truncated)
            md = out["metadata"]
            assert md["state_key"] == info["state_key"] and md["pre_state_key"] == key
            assert md["reward_components"] == info["reward_components"]
            assert md["valid_action"] == info["valid_action"]
            assert "privileged" not in md
            key, done = info["state_key"], out["done"]
            if turns == 2:
                assert md["valid_action"] is False
        assert md["outcome"] is not None and md["success"] is not None
        env.close()


def test_corridor_through_skyrl_make_ends():
    import skyrl_gym

    from turngym.integrations.skyrl import register_envs

    register_envs()
    env = skyrl_gym.make(
        "turngym/Corridor-v0", env_config={"env_kwargs": {"max_turns": 3}}, extras={"seed": 2}
    )
    env.init([])
    outs = [env.step("wait") for _ in range(3)]
    assert [o["done"] for o in outs] == [False, False, True]
    assert outs[-1]["metadata"]["truncated"] is True


def test_outcome_estimators_in_skyrl_trains_registry():
    pytest.importorskip(
        "skyrl_train.utils.ppo_utils",
        reason="skyrl-train 0.3.1 needs Python 3.12 and flash-attn (CUDA build); not on CPU CI",
    )
    import numpy as np
    import torch
    from skyrl_train.utils.ppo_utils import (
        AdvantageEstimatorRegistry,
        compute_grpo_outcome_advantage,
    )

    from turngym.integrations.skyrl import register_estimators

    assert set(register_estimators()) <= set(AdvantageEstimatorRegistry.list_available())
    rewards = torch.zeros(6, 5)
    rewards[:, -1] = torch.tensor([1.0, 0.0, 0.5, 0.0, 0.0, 1.0])
    mask = torch.ones(6, 5)
    index = np.array(["a", "a", "a", "b", "b", "b"], dtype=object)
    ours, _ = AdvantageEstimatorRegistry.get("turngym_grpo")(
        token_level_rewards=rewards, response_mask=mask, index=index
    )
    theirs, _ = compute_grpo_outcome_advantage(rewards, mask, index)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-4)


@pytest.mark.parametrize(
    ("env_config", "extras", "limit"),
    [
        ({"max_turns": 3}, {"seed": 0}, 3),  # the case: env_config alone
        ({"max_turns": 3}, {"seed": 0, "max_turns": 2}, 2),  # extras win, as in SkyRL's envs
        ({}, {"seed": 0, "max_turns": 4}, 4),
        ({}, {"seed": 0, "extra_info": {"max_turns": 2}}, 2),  # skyrl-gym's GSM8K place
    ],
)
def test_max_turns_is_enforced_as_skyrl_envs_do(env_config, extras, limit):
    import skyrl_gym

    from turngym.integrations.skyrl import register_envs

    register_envs()
    env = skyrl_gym.make("turngym/TextWorld-Easy-v1", env_config=env_config, extras=extras)
    env.init([])
    assert env.max_turns == limit
    outs = []
    for _ in range(limit + 5):  # an agent that never finishes the task
        outs.append(env.step("look"))
        if outs[-1]["done"]:
            break
    assert len(outs) == limit
    assert outs[-1]["metadata"]["truncated"] is True
    assert outs[-1]["metadata"]["terminated"] is False
    env.close()


@pytest.mark.parametrize("bad", [0, -1, "ten", 2.5, True])
def test_bad_max_turns_says_how_to_fix(bad):
    import skyrl_gym

    from turngym.integrations.skyrl import register_envs

    register_envs()
    with pytest.raises(ValueError, match=r"extras\[\"max_turns\"\].*positive int"):
        skyrl_gym.make("turngym/Corridor-v0", env_config={}, extras={"seed": 0, "max_turns": bad})
