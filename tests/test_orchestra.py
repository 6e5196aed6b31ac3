"""Orchestra (multi-agent orchestration): PettingZoo's tests, turngym's contract per agent,
routing rules, team rewards computed by hand, experts and random teams, trajectories for credit."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("pettingzoo")

from turngym.credit import TurnBatch, grpo  # noqa: E402
from turngym.envs import orchestra  # noqa: E402
from turngym.envs.orchestra import ORCHESTRATOR, OrchestraEnv  # noqa: E402
from turngym.error import ConformanceError, InvalidArgumentError, ResetNeeded  # noqa: E402
from turngym.testing import check_parallel_env  # noqa: E402

TOY = "turngym/Orchestra-Toy-v0"


@pytest.mark.parametrize("env_id", sorted(orchestra.ORCHESTRA_ENVS))
@pytest.mark.parametrize("reward_mode", ["dense", "sparse"])
def test_conformance(env_id: str, reward_mode: str) -> None:
    check_parallel_env(lambda: orchestra.parallel_env(env_id, reward_mode=reward_mode))


class AcceptsGarbage(OrchestraEnv):
    """Breaks the contract: the orchestrator's unparseable text counts as a valid wait."""

    def _orchestrator_step(self, action, observations):
        valid, feedback, finish = super()._orchestrator_step(action, observations)
        return True, feedback, finish


class ForgetsOutcome(OrchestraEnv):
    """Breaks the contract: the last step pays the team outcome without saying it in info."""

    def _worker_info(self, agent, valid, components, outcome, success):
        return super()._worker_info(agent, valid, components, None, None)


@pytest.mark.parametrize(
    ("broken", "message"),
    [(AcceptsGarbage, "accepted as valid"), (ForgetsOutcome, "outcome")],
)
def test_conformance_check_catches_broken_envs(broken: type, message: str) -> None:
    kwargs = orchestra.ORCHESTRA_ENVS[TOY]
    with pytest.raises(ConformanceError, match=message):
        check_parallel_env(lambda: broken(**kwargs))


def _toy(**kwargs) -> OrchestraEnv:
    return orchestra.parallel_env(TOY, **kwargs)


def _tasks(env: OrchestraEnv) -> list[tuple[str, str]]:
    return [("short", env.task_ids("short")[0]), ("long", env.task_ids("long")[0])]


def _walk(env: OrchestraEnv, worker: str, infos: dict) -> tuple:
    """Plays ``worker``'s corridor solution (privileged) while the orchestrator waits."""
    for move in infos[worker]["privileged"]["solution"]:
        result = env.step({ORCHESTRATOR: "wait", worker: move})
    assert env.subtask_of(worker) is None, "the solution finishes the subtask"
    return result


def test_routing_rules_and_feedback() -> None:
    env = _toy()
    observations, infos = env.reset(seed=0, options={"tasks": _tasks(env)})
    assert "1. [short]" in observations[ORCHESTRATOR] and "2. [long]" in observations[ORCHESTRATOR]
    assert infos[ORCHESTRATOR]["admissible_actions"] == [
        "delegate[short_0, 1]",
        "delegate[long_0, 2]",
        "wait",
        "finish",
    ]
    key = infos[ORCHESTRATOR]["state_key"]
    for action, why in [
        ("delegate[long_0, 1]", "needs a short worker"),
        ("delegate[chef_0, 1]", "is not a worker"),
        ("delegate[short_0, 7]", "is not a subtask number"),
        ("delegate[short_0, 1] delegate[short_0, 1]", "not pending"),
        ("delegate[short_0, 1] and then relax", "Invalid action"),
        ("x" * 100_000, "Invalid action"),
    ]:
        observations, rewards, _, _, infos = env.step({ORCHESTRATOR: action})
        assert why in observations[ORCHESTRATOR], (action, observations[ORCHESTRATOR][:200])
        assert (
            "Nothing was delegated" in observations[ORCHESTRATOR]
            or "use delegate" in (observations[ORCHESTRATOR])
        )
        assert not infos[ORCHESTRATOR]["valid_action"]
        assert rewards[ORCHESTRATOR] == orchestra.FORMAT_PENALTY
        assert infos[ORCHESTRATOR]["state_key"] == key, "a rejected action changes nothing"
        assert env.subtask_of("short_0") is None and env.subtask_of("long_0") is None
    observations, rewards, _, _, infos = env.step(
        {ORCHESTRATOR: "Delegate[ short_0 , 1 ]  delegate[long_0, 2]"}
    )
    assert infos[ORCHESTRATOR]["valid_action"] and rewards[ORCHESTRATOR] == 0.0
    assert env.subtask_of("short_0") == 1 and env.subtask_of("long_0") == 2
    for worker in ("short_0", "long_0"):
        assert infos[worker]["new_subtask"] and infos[worker]["busy"]
        assert "corridor" in observations[worker].lower()
        assert "go east" in infos[worker]["instructions"]
    observations, *_ = env.step({ORCHESTRATOR: "delegate[short_0, 1]"})
    assert "not pending" in observations[ORCHESTRATOR]
    with pytest.raises(InvalidArgumentError, match="not live agents"):
        env.step({"chef_0": "wait"})


def test_team_rewards_by_hand() -> None:
    # Two subtasks; short_0 solves subtask 1, then the orchestrator finishes with subtask 2
    # still running. Team outcome = (1.0 + 0) / 2 = 0.5, paid to every agent as "outcome".
    env = _toy(render_mode="ansi")
    _, infos = env.reset(seed=0, options={"tasks": _tasks(env)})
    _, _, _, _, infos = env.step({ORCHESTRATOR: "delegate[short_0, 1] delegate[long_0, 2]"})
    _, rewards, terminations, _, infos = _walk(env, "short_0", infos)
    assert not any(terminations.values())
    # short_0's member (Corridor) paid its last progress step and outcome 1.0 (renamed).
    assert infos["short_0"]["reward_components"]["subtask_outcome"] == 1.0
    # The orchestrator's dense "subtask" part: outcome 1.0 / 2 subtasks.
    assert infos[ORCHESTRATOR]["reward_components"] == {"subtask": 0.5}
    assert "short_0 finished subtask 1: outcome 1.00 (success)" in env.render()
    observations, rewards, terminations, truncations, infos = env.step({ORCHESTRATOR: "finish"})
    assert all(terminations.values()) and not any(truncations.values()) and env.agents == []
    for agent in env.possible_agents:
        assert infos[agent]["outcome"] == 0.5 and infos[agent]["success"] is False
        assert infos[agent]["reward_components"]["outcome"] == 0.5
        assert math.isclose(rewards[agent], sum(infos[agent]["reward_components"].values()))
    assert "done by short_0: outcome 1.00 (success)" in observations[ORCHESTRATOR]
    assert "running on long_0" in observations[ORCHESTRATOR]
    with pytest.raises(ResetNeeded, match="reset"):
        env.step({})


def test_sparse_mode_pays_only_the_team_outcome() -> None:
    env = _toy(reward_mode="sparse")
    _, infos = env.reset(seed=0, options={"tasks": _tasks(env)})
    _, _, _, _, infos = env.step({ORCHESTRATOR: "delegate[short_0, 1]"})
    _, rewards, _, _, infos = _walk(env, "short_0", infos)
    assert all(r == 0.0 for r in rewards.values())
    assert all(info["reward_components"] == {} for info in infos.values())


def test_turn_limit_truncates_everyone() -> None:
    env = _toy(max_turns=3)
    env.reset(seed=1)
    for _ in range(3):
        _, rewards, terminations, truncations, infos = env.step({ORCHESTRATOR: "wait"})
    assert all(truncations.values()) and not any(terminations.values())
    assert all(info["outcome"] == 0.0 and info["success"] is False for info in infos.values())


def test_experts_solve_every_team_task_and_random_teams_do_not() -> None:
    for env_id in orchestra.ORCHESTRA_ENVS:
        env = orchestra.parallel_env(env_id)
        episodes = orchestra.rollout(env, orchestra.expert_policies(env), num_episodes=8)
        assert all(e.success and e.outcome == 1.0 for e in episodes), env_id
        assert len({tuple(e.subtasks) for e in episodes}) > 1, "seeds draw different team tasks"
        random = orchestra.rollout(env, orchestra.random_policies(env, seed=0), num_episodes=20)
        mean = float(np.mean([e.outcome for e in random]))
        print(f"\n{env_id}: random team mean outcome {mean:.3f}, expert 1.000")
        assert mean < 0.5


def test_trajectories_per_agent_feed_credit() -> None:
    env = _toy()
    episodes = orchestra.rollout(
        env, orchestra.expert_policies(env), num_episodes=4, seed=3, group_size=2
    )
    first, second = episodes[0], episodes[1]
    assert first.subtasks == second.subtasks, "a group shares its team task"
    orchestrator = first.trajectories[ORCHESTRATOR]
    assert orchestrator.num_turns == first.turns and orchestrator.outcome == 1.0
    assert orchestrator.group_id == second.trajectories[ORCHESTRATOR].group_id
    # Dense: the "subtask" parts sum to the team outcome, plus the outcome itself.
    assert math.isclose(orchestrator.total_reward, 2.0)
    worker = first.trajectories["long_0"]
    numbers = {turn.info["subtask"] for turn in worker.turns if turn.info["subtask"]}
    assert numbers and all(turn.action.startswith(("go ", "wait")) for turn in worker.turns)
    assert worker.turns[-1].reward_components.get("outcome") == 1.0
    batch = TurnBatch.from_trajectories([e.trajectories[ORCHESTRATOR] for e in episodes])
    advantages = grpo(batch)
    assert advantages.shape == (4, max(e.turns for e in episodes))


def test_num_envs_batches_across_episodes_with_the_same_results() -> None:
    experts = orchestra.expert_policies(_toy())
    sizes: list[int] = []

    class Counting:
        """The orchestrator expert, recording each batch size it is called with."""

        privileged = False

        def act(self, batch):
            sizes.append(len(batch))
            return experts[ORCHESTRATOR].act(batch)

    policies = {**experts, ORCHESTRATOR: Counting()}
    one = orchestra.rollout(TOY, policies, num_episodes=6, seed=5, group_size=2)
    assert max(sizes) == 1
    sizes.clear()
    three = orchestra.rollout(TOY, policies, num_episodes=6, seed=5, group_size=2, num_envs=3)
    assert max(sizes) == 3, "one act call per turn over the three live episodes"

    def played(episodes):
        return [
            (e.subtasks, e.outcome, e.turns, [t.action for t in e.trajectories["long_0"].turns])
            for e in episodes
        ]

    assert played(one) == played(three)
    with pytest.raises(InvalidArgumentError, match="num_envs"):
        orchestra.rollout(_toy(), experts, num_episodes=2, num_envs=2)
    with pytest.raises(InvalidArgumentError, match="use num_episodes=2"):
        orchestra.rollout(TOY, experts, num_episodes=3, group_size=2)
    with pytest.raises(InvalidArgumentError, match="num_envs=0 must be a positive int"):
        orchestra.rollout(TOY, experts, num_episodes=2, num_envs=0)


def test_wrong_arguments_say_how_to_fix_them() -> None:
    with pytest.raises(InvalidArgumentError, match="presets"):
        orchestra.parallel_env("turngym/Orchestra-v9")
    with pytest.raises(InvalidArgumentError, match="Registered turngym ids"):
        OrchestraEnv(members={"shop": "turngym/Shop-v0"}, workers={"shop": 1})
    with pytest.raises(InvalidArgumentError, match="member families"):
        OrchestraEnv(members={"walk": "turngym/Corridor-v0"}, workers={"run": 1})
    with pytest.raises(InvalidArgumentError, match="lowercase"):
        OrchestraEnv(members={"Walk": "turngym/Corridor-v0"}, workers={"Walk": 1})
    env = _toy()
    with pytest.raises(InvalidArgumentError, match="families"):
        env.reset(options={"tasks": [("cook", "x")]})
    with pytest.warns(UserWarning, match="ignores unknown options"):
        env.reset(seed=0, options={"task": "L2-east"})  # PettingZoo's tests pass such options
    with pytest.raises(InvalidArgumentError, match="unknown task"):
        env.reset(options={"tasks": [("short", "no-such-task")]})
    with pytest.raises(InvalidArgumentError, match="agents are"):
        env.observation_space("chef_0")
    with pytest.raises(ResetNeeded, match="before reset"):
        _toy().step({})
    env.reset(seed=0)
    with pytest.raises(InvalidArgumentError, match="actions are text"):
        env.step({ORCHESTRATOR: 3})


def test_aec_view_plays_an_episode() -> None:
    env = orchestra.aec_env(TOY)
    env.reset(seed=0)
    steps = 0
    for agent in env.agent_iter(max_iter=1_000):
        observation, reward, terminated, truncated, info = env.last()
        assert isinstance(observation, str) and "state_key" in info
        assert agent in env.possible_agents
        action = None if terminated or truncated else (info["admissible_actions"] or ["wait"])[0]
        env.step(action)
        steps += 1
    assert steps > 3
