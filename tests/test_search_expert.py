"""The hop-chain expert solves the questions by search; answering without search does not."""

from __future__ import annotations

import gymnasium

import turngym
from turngym.envs.search.expert import NoSearchPolicy, SearchExpert, evaluate


def test_expert_exact_match_on_300_questions_and_no_search_baseline() -> None:
    env = gymnasium.make("turngym/SearchQA-v0", split="test").unwrapped  # 10k passages, default
    tasks = [t for hop in (1, 2, 3) for t in env.task_ids if t.startswith(f"h{hop}-")][:300]
    assert len(tasks) == 300 and all(
        sum(t.startswith(f"h{h}-") for t in tasks) == 100 for h in (1, 2, 3)
    )
    expert = evaluate(env, SearchExpert(), tasks)
    assert expert["exact_match"] >= 0.98, expert
    assert expert["turns"] >= 2.0, "the expert must search before answering"
    baseline = evaluate(env, NoSearchPolicy(), tasks)
    bridge = [t for t in tasks if env._questions[t]["type"] == "bridge"]
    baseline_bridge = evaluate(env, NoSearchPolicy(), bridge)
    print(
        f"expert EM {expert['exact_match']:.3f}; no-search EM {baseline['exact_match']:.3f} "
        f"(bridge only {baseline_bridge['exact_match']:.3f}, {len(bridge)} questions)"
    )
    # Comparison questions name both candidates, so a guess scores ~50 % on them; bridge ~0.
    assert baseline_bridge["exact_match"] <= 0.02 and baseline["exact_match"] <= 0.25


def test_expert_through_rollout_on_every_hop_variant() -> None:
    for hops in (1, 2, 3, 4):
        env_id = f"turngym/SearchQA-{hops}hop-v0"
        trajectories = turngym.rollout(
            env_id, turngym.agents.expert(env_id), num_episodes=10, progress=False
        )
        assert all(t.success for t in trajectories), env_id
        assert all(t.turns[-1].info["progress"] == 1.0 for t in trajectories)
        assert all(len(t.turns) >= hops for t in trajectories) or hops == 1
        # Dense mode: retrieval reward + outcome; the expert reads every supporting passage.
        assert all(abs(t.total_reward - 1.2) < 1e-6 for t in trajectories), [
            t.total_reward for t in trajectories
        ]
