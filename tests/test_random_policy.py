"""The random baseline speaks each family's syntax, so its rows mean something."""

from __future__ import annotations

import re

import pytest

import turngym
from turngym.agents import RandomPolicy
from turngym.policy import Conversation

SMALL_SEARCH = {"num_passages": 1_000, "questions_per_hop": 40}


def test_random_searchqa_searches_and_answers_with_retrieved_names() -> None:
    pytest.importorskip("bm25s")
    trajectories = turngym.rollout(
        "turngym/SearchQA-2hop-v0",
        RandomPolicy(seed=0),
        num_episodes=12,
        progress=False,
        env_kwargs=SMALL_SEARCH,
    )
    for trajectory in trajectories:
        actions = [turn.action for turn in trajectory.turns]
        assert actions[0].startswith("<search>"), "random searches before it answers"
        assert all(turn.info["valid_action"] for turn in trajectory.turns)
        shown = " ".join(turn.observation for turn in trajectory.turns)
        for action in actions:
            answer = re.fullmatch(r"<answer>(.*)</answer>", action)
            if answer:  # a name it was shown, not a made-up one
                assert f"title: {answer[1]})" in shown
    searches = sum(t.action.startswith("<search>") for tr in trajectories for t in tr.turns)
    answers = sum(t.action.startswith("<answer>") for tr in trajectories for t in tr.turns)
    assert searches > 2 * len(trajectories) and answers > 0
    assert any(turn.reward_components["retrieval"] > 0 for tr in trajectories for turn in tr.turns)


def test_random_rows_differ_across_searchqa_envs() -> None:
    pytest.importorskip("bm25s")
    rows = set()
    for hops in (1, 4):
        trajectories = turngym.rollout(
            f"turngym/SearchQA-{hops}hop-v0",
            RandomPolicy(seed=0),
            num_episodes=8,
            progress=False,
            env_kwargs=SMALL_SEARCH,
        )
        rows.add(tuple(round(t.total_reward, 6) for t in trajectories))
    assert len(rows) == 2


def test_random_tool_calls_parse_as_swe_actions() -> None:
    from turngym.envs.swe.actions import SYNTAX, parse_action

    conversation = Conversation.start(
        f"Fix the bug.\n{SYNTAX}", "Repository files:\npkg/core.py\ntests/test_core.py"
    )
    policy = RandomPolicy(seed=1)
    calls = [parse_action(policy.act([conversation])[0]) for _ in range(60)]
    assert all(call is not None for call, _ in calls), [error for _, error in calls if error]
    tools = {call.tool for call, _ in calls}
    assert {"bash", "view", "submit"} <= tools
    assert {call.args["path"] for call, _ in calls if call.tool == "view"} <= {
        "pkg/core.py",
        "tests/test_core.py",
    }


def test_admissible_actions_are_drawn_uniformly_and_seeded() -> None:
    conversation = Conversation.start("Play.", "A room.")
    conversation.admissible_actions = ["go east", "go west", "look"]
    first = RandomPolicy(seed=5).act([conversation] * 300)
    assert first == RandomPolicy(seed=5).act([conversation] * 300)
    assert set(first) == {"go east", "go west", "look"} and min(map(first.count, set(first))) > 60
