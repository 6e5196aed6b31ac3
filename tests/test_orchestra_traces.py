"""Orchestration traces (export, schema, replay), orchestration rewards computed by hand on
scripted episodes, the trainable stop decision, and trace metrics."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

pytest.importorskip("pettingzoo")
jsonschema = pytest.importorskip("jsonschema")

from turngym.credit import TurnBatch, gigpo  # noqa: E402
from turngym.envs import orchestra  # noqa: E402
from turngym.envs.orchestra import ORCHESTRATOR, OrchestraEnv  # noqa: E402
from turngym.envs.orchestra.trace import SCHEMA_PATH  # noqa: E402
from turngym.error import InvalidArgumentError  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "orchestration-traces"
WEIGHTS = {"routing": 0.2, "parallelism": 0.5, "stop": 0.5}


def _two_corridors(**kwargs) -> OrchestraEnv:
    """Two families, one worker each, every subtask a 2-step corridor: turns are predictable."""
    corridor = ("turngym/Corridor-v0", {"lengths": (2,)})
    return OrchestraEnv(
        members={"a": corridor, "b": corridor},
        workers={"a": 1, "b": 1},
        num_subtasks=2,
        max_turns=12,
        **kwargs,
    )


def _play(env: OrchestraEnv, script: list[dict[str, str]]) -> list[dict[str, float]]:
    """Resets on tasks (a: L2-east, b: L2-east) and plays ``script``; the orchestrator's
    reward components per turn."""
    env.reset(seed=0, options={"tasks": [("a", "L2-east"), ("b", "L2-east")]})
    parts = []
    for actions in script:
        *_, infos = env.step(actions)
        parts.append(dict(infos[ORCHESTRATOR]["reward_components"]))
    return parts


EAST = "go east"


def test_parallel_team_earns_routing_parallelism_and_stop() -> None:
    env = _two_corridors(auto_finish=False, orchestration=WEIGHTS)
    parts = _play(
        env,
        [
            {ORCHESTRATOR: "delegate[a_0, 1] delegate[b_0, 2]"},
            {ORCHESTRATOR: "wait", "a_0": EAST, "b_0": EAST},
            {ORCHESTRATOR: "wait", "a_0": EAST, "b_0": EAST},  # both finish (it cannot know yet)
            {ORCHESTRATOR: "finish"},
        ],
    )
    # Turn 1: two fitting delegations, routing = 0.2 * 2 / 2.
    assert parts[0] == pytest.approx({"routing": 0.2})
    assert parts[1] == {}
    # Turn 3: both subtasks finish, outcome 1 each: subtask = 1/2 + 1/2; no lateness yet.
    assert parts[2] == pytest.approx({"subtask": 1.0})
    # Turn 4: finish with all done: stop = +0.5. S = (2+1) + (2+1) + 1 (finish) = 7, T = 4:
    # parallelism = 0.5 * 1.0 * (1 - 4/7) = 0.2142857.
    assert parts[3] == pytest.approx({"outcome": 1.0, "stop": 0.5, "parallelism": 0.5 * 3 / 7})


def test_serial_team_earns_no_parallelism() -> None:
    env = _two_corridors(auto_finish=False, orchestration=WEIGHTS)
    parts = _play(
        env,
        [
            {ORCHESTRATOR: "delegate[a_0, 1]"},
            {ORCHESTRATOR: "wait", "a_0": EAST},
            {ORCHESTRATOR: "wait", "a_0": EAST},
            {ORCHESTRATOR: "delegate[b_0, 2]"},
            {ORCHESTRATOR: "wait", "b_0": EAST},
            {ORCHESTRATOR: "wait", "b_0": EAST},
            {ORCHESTRATOR: "finish"},
        ],
    )
    assert parts[0] == pytest.approx({"routing": 0.1})  # 0.2 * 1 / 2
    assert parts[3] == pytest.approx({"routing": 0.1})
    # T = 7 = S: 1 - 7/7 = 0, so no parallelism component at all.
    assert parts[-1] == pytest.approx({"outcome": 1.0, "stop": 0.5})


def test_finishing_late_costs_and_finishing_early_costs_more() -> None:
    env = _two_corridors(auto_finish=False, orchestration=WEIGHTS)
    parts = _play(
        env,
        [
            {ORCHESTRATOR: "delegate[a_0, 1] delegate[b_0, 2]"},
            {ORCHESTRATOR: "wait", "a_0": EAST, "b_0": EAST},
            {ORCHESTRATOR: "wait", "a_0": EAST, "b_0": EAST},
            {ORCHESTRATOR: "wait"},  # all done since turn 3: late, -0.5 * 0.1
            {ORCHESTRATOR: "finish"},
        ],
    )
    assert parts[3] == pytest.approx({"stop": -0.05})
    # T = 5, S = 7: parallelism = 0.5 * (1 - 5/7) = 0.142857.
    assert parts[4] == pytest.approx({"outcome": 1.0, "stop": 0.5, "parallelism": 0.5 * 2 / 7})

    early = _play(
        env,
        [
            {ORCHESTRATOR: "delegate[a_0, 1] delegate[b_0, 2]"},
            {ORCHESTRATOR: "finish", "a_0": EAST, "b_0": EAST},  # 2 of 2 unfinished
        ],
    )
    # stop = -0.5 * 2/2; outcome 0 gates parallelism to 0.
    assert early[1] == pytest.approx({"outcome": 0.0, "stop": -0.5})


def test_wrong_routing_is_penalised_and_rejected() -> None:
    env = _two_corridors(auto_finish=False, orchestration=WEIGHTS)
    parts = _play(env, [{ORCHESTRATOR: "delegate[a_0, 2]"}])
    # a_0 is an "a" worker, subtask 2 is "b": format -0.05 and routing -0.2 * 1/2.
    assert parts[0] == pytest.approx({"format": -0.05, "routing": -0.1})
    assert env.subtask_of("a_0") is None  # nothing was delegated
    # A busy worker is a protocol error, not a routing one: no routing term.
    env.step({ORCHESTRATOR: "delegate[a_0, 1]"})
    *_, infos = env.step({ORCHESTRATOR: "delegate[a_0, 1]", "a_0": EAST})
    assert infos[ORCHESTRATOR]["reward_components"] == pytest.approx({"format": -0.05})


def test_orchestration_rewards_are_off_by_default_and_checked() -> None:
    env = _two_corridors()
    parts = _play(env, [{ORCHESTRATOR: "delegate[a_0, 1] delegate[b_0, 2]"}])
    assert parts[0] == {}
    with pytest.raises(InvalidArgumentError, match="unknown orchestration"):
        _two_corridors(orchestration={"speed": 1.0})
    with pytest.raises(InvalidArgumentError, match="non-negative"):
        _two_corridors(orchestration={"stop": -1})


def test_aggregation_scores_the_composed_answer() -> None:
    env = orchestra.parallel_env("turngym/Orchestra-Compose-v0")
    env.reset(seed=3)
    golds = [sub.golds for sub in env._subtasks]
    answer = f"{golds[0][0]}; {golds[1][0]}; certainly not this"
    *_, infos = env.step({ORCHESTRATOR: f"finish[{answer}]"})
    info = infos[ORCHESTRATOR]
    # Parts 1 and 2 exact (F1 1), part 3 F1 0 (no shared token): 2/3, times weight 1.0.
    assert info["aggregation"] == pytest.approx(2 / 3)
    # Finished with 3 of 3 subtasks unfinished: stop = -0.5 * 3/3; team outcome 0.
    assert info["reward_components"] == pytest.approx(
        {"aggregation": 2 / 3, "stop": -0.5, "outcome": 0.0}
    )
    env.close()


def test_compose_expert_composes_its_workers_answers() -> None:
    env = orchestra.parallel_env("turngym/Orchestra-Compose-v0")
    episodes = orchestra.rollout(env, orchestra.expert_policies(env), num_episodes=2)
    for episode in episodes:
        last = episode.trajectories[ORCHESTRATOR].turns[-1]
        assert last.action.startswith("finish[")
        assert last.info["aggregation"] == 1.0
        assert last.reward_components["aggregation"] == 1.0
    env.close()


class Script:
    """Plays a fixed list of orchestrator actions."""

    privileged = False

    def __init__(self, actions: list[str]) -> None:
        self.actions = list(actions)

    def act(self, batch):
        return [self.actions.pop(0) for _ in batch]


def test_stop_decision_gets_its_own_credit() -> None:
    """finish is an ordinary action: GiGPO groups it with the waits taken in the same (all done)
    board state and gives it its own advantage, apart from the delegations."""
    env = _two_corridors(auto_finish=False, orchestration=WEIGHTS)
    experts = orchestra.expert_policies(env)
    delegate = "delegate[a_0, 1] delegate[b_0, 2]"
    prompt = [delegate, "wait", "wait", "finish"]
    late = [delegate, "wait", "wait", "wait", "finish"]
    trajectories = []
    for script in (prompt, late):
        policies = {**experts, ORCHESTRATOR: Script(script)}
        (episode,) = orchestra.rollout(env, policies, num_episodes=1, seed=0)
        trajectories.append(episode.trajectories[ORCHESTRATOR])
    assert trajectories[0].group_id == trajectories[1].group_id
    advantages = gigpo(TurnBatch.from_trajectories(trajectories)).numpy()
    on_time, slow = advantages[0], advantages[1]
    # Same state, same action (the opening delegation): one step group of identical returns.
    assert trajectories[0].turns[0].action == trajectories[1].turns[0].action == delegate
    # The all-done state holds: finish (on time), wait and finish (late). Finishing beats
    # waiting there. Within the late episode the episode-level term is shared, so finish_late
    # > wait_late is the step-level credit of the stop decision alone.
    finish_on_time, wait_late, finish_late = on_time[3], slow[3], slow[4]
    assert finish_on_time > wait_late
    assert finish_late > wait_late
    assert trajectories[1].turns[3].action == "wait"
    assert trajectories[1].turns[3].state_key == trajectories[1].turns[4].state_key
    assert not math.isclose(finish_on_time, on_time[0])  # not the delegation's advantage


def _episodes(env_id: str, policy: str, count: int) -> list:
    env = orchestra.parallel_env(env_id)
    policies = (
        orchestra.expert_policies(env) if policy == "expert" else orchestra.random_policies(env)
    )
    episodes = orchestra.rollout(env, policies, num_episodes=count, seed=11)
    env.close()
    return episodes


@pytest.mark.parametrize("env_id", sorted(orchestra.ORCHESTRA_ENVS))
def test_every_exported_trace_validates(env_id: str) -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    for policy in ("expert", "random"):
        for episode in _episodes(env_id, policy, 5):
            trace = json.loads(json.dumps(orchestra.to_trace(episode)))
            assert not list(validator.iter_errors(trace))  # the real JSON Schema validator
            orchestra.validate_trace(trace)  # plus the survey's structural rules
            ids = [event["id"] for event in trace["events"]]
            assert len(ids) == len(set(ids))
            assert all(edge["src"] in ids and edge["dst"] in ids for edge in trace["edges"])
            times = [event["t"] for event in trace["events"]]
            assert times == sorted(times)  # seconds from the episode's start, in order
            assert trace["rewards"]["team"] == episode.outcome
            assert trace["metrics"]["task_success"] == float(episode.success)


def test_schema_copy_is_the_shared_one_and_accepts_its_example() -> None:
    if not SHARED.exists():
        pytest.skip(f"no shared/ folder beside the checkout ({SHARED})")
    shared = json.loads((SHARED / "trace_schema.json").read_text())
    assert json.loads(SCHEMA_PATH.read_text()) == shared
    orchestra.validate_trace(json.loads((SHARED / "example_trace.json").read_text()))


def test_replay_reproduces_the_episode(tmp_path: Path) -> None:
    for env_id in ("turngym/Orchestra-Stop-v0", "turngym/Orchestra-v0"):
        for episode in _episodes(env_id, "random", 2) + _episodes(env_id, "expert", 1):
            path = orchestra.save_traces(tmp_path / "run.jsonl", [orchestra.to_trace(episode)])
            (loaded,) = orchestra.load_traces(path)
            replayed = orchestra.replay(loaded)
            assert replayed.outcome == episode.outcome
            for agent, trajectory in episode.trajectories.items():
                again = replayed.trajectories[agent]
                assert [t.action for t in again.turns] == [t.action for t in trajectory.turns]
                assert [t.reward for t in again.turns] == [t.reward for t in trajectory.turns]
                assert again.turns == trajectory.turns
            stripped = [dict(e, t=0) for e in replayed.events]
            assert stripped == [dict(e, t=0) for e in episode.events]


def test_trace_metrics_by_hand() -> None:
    env = _two_corridors(auto_finish=False, orchestration=WEIGHTS)
    experts = orchestra.expert_policies(env)
    script = Script(["delegate[a_0, 1] delegate[b_0, 2]", "wait", "wait", "finish"])
    (episode,) = orchestra.rollout(env, {**experts, ORCHESTRATOR: script}, num_episodes=1)
    metrics = orchestra.to_trace(episode)["metrics"]
    # 4 team turns, 2 workers, 4 worker turns: efficiency 4 / (4 * 2); serial S = 7: 7/4;
    # 4 orchestrator turns for 2 subtasks; no failed subtask.
    assert metrics == pytest.approx(
        {
            "task_success": 1.0,
            "team_turns": 4.0,
            "parallelism_efficiency": 0.5,
            "speedup": 7 / 4,
            "protocol_overhead": 2.0,
            "error_amplification": 0.0,
        }
    )
    kinds = [event["type"] for event in episode.events]
    assert kinds.count("spawn") == 2 and kinds.count("return") == 2
    assert kinds.count("tool_call") == kinds.count("tool_result") == 4
    assert kinds[0] == "message" and kinds[-1] == "aggregate"
    decisions = [e for e in episode.events if e["type"] == "orchestrator_decision"]
    assert decisions[-1]["decision"] == "finish"  # the stop decision is its own event


def test_bad_traces_name_the_failing_path() -> None:
    (episode,) = _episodes("turngym/Orchestra-Toy-v0", "expert", 1)
    trace = orchestra.to_trace(episode)
    broken = copy.deepcopy(trace)
    broken["events"][2]["type"] = "teleport"
    with pytest.raises(orchestra.TraceError, match=r"\$\.events\[2\]\.type.*valid event types"):
        orchestra.validate_trace(broken)
    broken = copy.deepcopy(trace)
    del broken["costs"]["wall_clock_s"]
    with pytest.raises(orchestra.TraceError, match=r"\$\.costs"):
        orchestra.validate_trace(broken)
    broken = copy.deepcopy(trace)
    broken["edges"].append({"src": "e1", "dst": "e999", "type": "causal"})
    with pytest.raises(orchestra.TraceError, match=r"edges\[\d+\]\.dst"):
        orchestra.validate_trace(broken)
    broken = copy.deepcopy(trace)
    broken["events"][3]["id"] = broken["events"][2]["id"]
    with pytest.raises(orchestra.TraceError, match="duplicate id"):
        orchestra.validate_trace(broken)


def test_trace_recording_can_be_turned_off() -> None:
    env = orchestra.parallel_env("turngym/Orchestra-Toy-v0")
    (episode,) = orchestra.rollout(
        env, orchestra.expert_policies(env), num_episodes=1, record_traces=False
    )
    assert episode.events == [] and episode.success
    with pytest.raises(InvalidArgumentError, match="no recorded events"):
        orchestra.to_trace(episode)


def test_trace_cli_export_validate_replay(tmp_path: Path, capsys) -> None:
    from turngym.cli import main

    episodes = _episodes("turngym/Orchestra-Stop-v0", "random", 3)
    run = orchestra.save_episodes(tmp_path / "run.jsonl", episodes)
    assert main(["trace", "export", str(run), "--out", str(tmp_path / "t.jsonl")]) == 0
    assert main(["trace", "validate", str(tmp_path / "t.jsonl")]) == 0
    assert main(["trace", "replay", str(tmp_path / "t.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "wrote 3 traces" in out and "3 traces valid" in out
    assert out.count("reproduced") == 3
    # A tampered trace (another action) no longer reproduces; a broken one names its path.
    lines = (tmp_path / "t.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    decision = next(e for e in first["events"] if e["type"] == "orchestrator_decision")
    decision["action"] = "wait" if decision["action"] != "wait" else "finish"
    (tmp_path / "tampered.jsonl").write_text(json.dumps(first) + "\n")
    assert main(["trace", "replay", str(tmp_path / "tampered.jsonl")]) == 1
    first["edges"].append({"src": "e1", "dst": "nowhere", "type": "causal"})
    (tmp_path / "broken.jsonl").write_text(json.dumps(first) + "\n")
    assert main(["trace", "validate", str(tmp_path / "broken.jsonl")]) == 2
    assert "$.edges[" in capsys.readouterr().err


def test_bench_reports_trace_metrics(tmp_path: Path) -> None:
    from turngym.agents.bench import run_bench

    report = run_bench(
        ["turngym/Orchestra-Toy-v0"], ["expert"], episodes=2, out_dir=tmp_path, progress=False
    )
    (row,) = report["results"]
    assert row["trace_metrics"]["task_success"] == 1.0
    assert 0 < row["trace_metrics"]["parallelism_efficiency"] <= 1
    assert (tmp_path / "episodes" / "Orchestra-Toy-v0__expert.jsonl").is_file()


class CountingExpert:
    """The orchestrator expert, reporting token usage as an LLM server would."""

    privileged = False

    def __init__(self) -> None:
        self.expert = orchestra.OrchestratorExpert()

    def act(self, batch):
        from turngym.policy import GeneratedAction

        usage = {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107}
        return [GeneratedAction(text, usage=usage) for text in self.expert.act(batch)]


def test_token_counts_come_from_the_policy() -> None:
    env = orchestra.parallel_env("turngym/Orchestra-Toy-v0")
    policies = {**orchestra.expert_policies(env), ORCHESTRATOR: CountingExpert()}
    (episode,) = orchestra.rollout(env, policies, num_episodes=1)
    trace = orchestra.to_trace(episode)
    decisions = [e for e in trace["events"] if e["type"] == "orchestrator_decision"]
    assert all(event["tokens"] == 107 for event in decisions)
    # Workers (text-only experts) report none: the cost is the orchestrator's alone.
    assert trace["costs"]["tokens"] == 107 * len(decisions)
    turns = episode.trajectories[ORCHESTRATOR].turns
    assert turns[0].info["usage"]["total_tokens"] == 107


def test_compose_orchestrator_cannot_read_the_gold_answers() -> None:
    """An agent is an adversary: the aggregation reward must need the workers' answers. At reset
    (before any worker reported) nothing the orchestrator sees holds a gold answer, and the
    finish action offered composes reported answers only (empty parts)."""
    env = orchestra.parallel_env("turngym/Orchestra-Compose-v0")
    for seed in range(5):
        observations, infos = env.reset(seed=seed)
        seen = observations[ORCHESTRATOR] + json.dumps(infos[ORCHESTRATOR])
        golds = [gold for sub in env._subtasks for gold in sub.golds]
        assert golds and not any(gold in seen for gold in golds), (seed, golds)
        assert infos[ORCHESTRATOR]["admissible_actions"][-1] == "finish[; ; ]"
        assert infos[ORCHESTRATOR]["privileged"] == {}
    env.close()
