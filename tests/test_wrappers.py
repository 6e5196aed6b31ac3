"""GateReward (G-RA) on hand-made episodes."""

from __future__ import annotations

import gymnasium
import pytest

from turngym import GateReward
from turngym.error import InvalidArgumentError
from turngym.wrappers import gate_chain


def play(env, task, actions):
    env.reset(options={"task": task})
    rewards, infos = [], []
    for action in actions:
        _, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            break
    return rewards, infos


def test_gate_open_pays_immediate_rewards_at_the_end() -> None:
    # L2-east with one invalid action first: dense components are format -0.1, progress 0.5+0.5,
    # outcome 1.0 >= delta=1 so the gate opens: R = 1.0 + (-0.1 + 1.0) = 1.9, all on the last step.
    env = GateReward(gymnasium.make("turngym/Corridor-v0"), threshold=1.0)
    rewards, infos = play(env, "L2-east", ["jump", "go east", "go east"])
    assert rewards == pytest.approx([0.0, 0.0, 1.9])
    assert infos[0]["gate_pending"] == pytest.approx({"format": -0.1, "progress": 0.0})
    assert infos[-1]["reward_components"] == pytest.approx(
        {"outcome": 1.0, "gated_format": -0.1, "gated_progress": 1.0}
    )
    assert sum(infos[-1]["reward_components"].values()) == pytest.approx(rewards[-1])


def test_gate_closed_drops_immediate_rewards() -> None:
    # L3-east truncated after 2 east steps: progress 2/3 earned, outcome 0 < 1: R = 0.
    env = GateReward(gymnasium.make("turngym/Corridor-v0", max_turns=2), threshold=1.0)
    rewards, infos = play(env, "L3-east", ["go east", "go east"])
    assert rewards == pytest.approx([0.0, 0.0])
    assert infos[-1]["gates_opened"] == [False]
    # With delta = 0 the same episode keeps its progress: R = 0 + 2/3.
    env = GateReward(gymnasium.make("turngym/Corridor-v0", max_turns=2), threshold=0.0)
    rewards, _ = play(env, "L3-east", ["go east", "go east"])
    assert rewards[-1] == pytest.approx(2 / 3)


def test_chain_of_priorities() -> None:
    # Chain: outcome (delta 1) > progress (delta 0.9) > rest (format).
    # Winning L2-east with one invalid action: outcome 1 opens gate 1, progress 1.0 >= 0.9 opens
    # gate 2, format -0.1 counts: R = 1 + 1 - 0.1 = 1.9.
    env = GateReward(
        gymnasium.make("turngym/Corridor-v0"), chain=[("outcome", 1.0), ("progress", 0.9)]
    )
    rewards, infos = play(env, "L2-east", ["jump", "go east", "go east"])
    assert rewards[-1] == pytest.approx(1.9)
    assert infos[-1]["gates_opened"] == [True, True]
    assert gate_chain([(1.0, 1.0), (0.5, 0.9)], rest=-0.1) == (pytest.approx(1.5), [True, False])
    assert gate_chain([(0.0, 1.0), (0.5, 0.9)], rest=-0.1) == (0.0, [False, False])


def test_bad_chain() -> None:
    with pytest.raises(InvalidArgumentError):
        GateReward(gymnasium.make("turngym/Corridor-v0"), chain=[])
    with pytest.raises(InvalidArgumentError):
        GateReward(gymnasium.make("turngym/Corridor-v0"), chain=[(3, 1.0)])


@pytest.mark.parametrize(
    "chain, message",
    [
        ([], "at least one"),
        ([("outcome",)], "must be a \\(component names, delta\\) pair"),
        ([(3, 1.0)], "must be a component name or a sequence of names"),
        ([(["patch", 7], 1.0)], "must be a component name or a sequence of names"),
    ],
)
def test_bad_gate_chains_say_how_to_fix(chain, message):
    from turngym.wrappers import parse_chain

    with pytest.raises(InvalidArgumentError, match=message):
        parse_chain(chain)
    with pytest.raises(InvalidArgumentError, match=message):
        GateReward(gymnasium.make("turngym/Corridor-v0"), chain=chain)
