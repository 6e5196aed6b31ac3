"""The orchestra's turn mechanics: workers' steps, the orchestrator's command, its rewards, and
each agent's ``info``. A mixin of :class:`~turngym.envs.orchestra.env.OrchestraEnv` (split out to
keep each file readable; it holds no state of its own)."""

from __future__ import annotations

from typing import Any

import numpy as np

from turngym.core import stable_hash
from turngym.envs.orchestra.board import (
    ORCHESTRATOR,
    REPORT_CHARS,
    echo,
    idle_text,
    one_line,
    parse_command,
    parse_subtask_number,
)
from turngym.envs.orchestra.rewards import (
    LATE_FRACTION,
    aggregation_score,
    parallelism_reward,
    serial_turns,
)

__all__ = ["FORMAT_PENALTY", "MAX_PROBLEMS_SHOWN", "TurnsMixin"]

FORMAT_PENALTY = -0.05
MAX_PROBLEMS_SHOWN = 3  # feedback lists at most this many bad delegations (bounded echo)


class TurnsMixin:
    """Turn mechanics and info of the orchestra env (reads and writes the env's state)."""

    _busy: dict[str, int | None]
    _subtasks: list[Any]
    _turn_info: dict[str, Any]

    # ------------------------------------------------------------------ turns
    def _worker_step(
        self, agent: str, action: str, components: dict[str, dict[str, float]]
    ) -> tuple[str, bool]:
        index = self._busy[agent]
        if index is None:
            return idle_text(agent), True
        sub = self._subtasks[index]
        observation, _, terminated, truncated, info = self._members[agent].step(action)
        sub.turns += 1
        parts = dict(info["reward_components"])
        if "outcome" in parts:
            parts["subtask_outcome"] = parts.pop("outcome")
        if self.reward_mode == "dense":
            components[agent].update(parts)
        self._member_info[agent] = {**info, "new_subtask": False}
        if terminated or truncated:
            sub.status, sub.outcome, sub.success = (
                "done",
                float(info["outcome"]),
                bool(info["success"]),
            )
            sub.report = one_line(observation)[-REPORT_CHARS:]
            sub.answer = one_line(str(info.get("answer", "")))[:REPORT_CHARS]
            self._busy[agent] = None
            self._turn_info["returned"].append([agent, index + 1, sub.outcome, sub.success])
            verdict = "success" if sub.success else "failure"
            self._events.append(
                f"{agent} finished subtask {index + 1}: outcome {sub.outcome:.2f} ({verdict}). "
                f"Its last observation: {sub.report}"
            )
            if self.reward_mode == "dense":
                components[ORCHESTRATOR]["subtask"] = components[ORCHESTRATOR].get(
                    "subtask", 0.0
                ) + sub.outcome / len(self._subtasks)
            observation += f"\n\n[subtask {index + 1} finished: outcome {sub.outcome:.2f}] "
            observation += "Waiting for the orchestrator."
        return observation, bool(info["valid_action"])

    def _orchestrator_step(
        self, action: str, observations: dict[str, str]
    ) -> tuple[bool, str, bool]:
        """Applies the orchestrator's action: (valid, feedback, finish)."""
        command = parse_command(action, self.compose)
        self._turn_info["decision"] = command.kind
        if command.kind == "wait":
            return True, "", False
        if command.kind == "finish":
            self._turn_info["answer"] = command.answer
            return True, "", True
        if command.kind == "invalid":
            finish = "finish[<answer 1>; <answer 2>; ...]" if self.compose else "finish"
            return (
                False,
                "Invalid action: use delegate[<worker>, <subtask number>] (several allowed), "
                f"wait, or {finish}.",
                False,
            )
        problems, plan, taken = [], [], set()
        wrong_family = 0
        for worker, number in command.delegations:
            worker = worker.lower()
            problem = self._delegation_problem(worker, number, taken)
            if problem:
                problems.append(problem)
                number_ok = parse_subtask_number(number, len(self._subtasks))
                wrong_family += bool(
                    worker in self.worker_family
                    and number_ok is not None
                    and self.worker_family[worker] != self._subtasks[number_ok - 1].family
                )
            else:
                index = int(number) - 1  # checked: ASCII digits within 1..len(subtasks)
                plan.append((worker, index))
                taken |= {worker, index}
        if problems:
            shown = " ".join(problems[:MAX_PROBLEMS_SHOWN])
            if len(problems) > MAX_PROBLEMS_SHOWN:
                shown += f" (and {len(problems) - MAX_PROBLEMS_SHOWN} more problems)"
            self._turn_info["decision"] = "invalid"
            self._turn_info["wrong_family"] = wrong_family
            return False, f"Invalid action: {shown} Nothing was delegated.", False
        for worker, index in plan:
            self._start_subtask(worker, index, observations)
            self._turn_info["delegated"].append([worker, index + 1])
        return True, "", False

    def _orchestration_components(
        self, components: dict[str, float], finish: bool, outcome: float | None
    ) -> None:
        """Adds this turn's orchestration rewards (:mod:`.rewards`) to the orchestrator's."""
        weights, count = self.orchestration, len(self._subtasks)
        info = self._turn_info
        if "routing" in weights:
            # Accepted delegations (all fit) earn; a rejected action pays for each misrouting.
            routed = len(info["delegated"]) - info.get("wrong_family", 0)
            if routed:
                components["routing"] = weights["routing"] * routed / count
        if "stop" in weights and not self.auto_finish:
            if finish:
                unfinished = sum(s.status != "done" for s in self._subtasks)
                components["stop"] = (
                    weights["stop"] if not unfinished else -weights["stop"] * unfinished / count
                )
            elif self._all_done:
                components["stop"] = -weights["stop"] * LATE_FRACTION
        if self.compose and finish:
            score = aggregation_score(info.get("answer") or "", [s.golds for s in self._subtasks])
            info["aggregation"] = score
            if "aggregation" in weights:
                components["aggregation"] = weights["aggregation"] * score
        if "parallelism" in weights and outcome is not None:
            serial = serial_turns([s.turns for s in self._subtasks], self.auto_finish)
            reward = parallelism_reward(weights["parallelism"], outcome, self._turn, serial)
            if reward:
                components["parallelism"] = reward

    def _delegation_problem(self, worker: str, number: str, taken: set) -> str:
        if worker not in self.worker_family:
            return f"{echo(worker)} is not a worker (workers: {', '.join(self.worker_family)})."
        parsed = parse_subtask_number(number, len(self._subtasks))
        if parsed is None:
            return f"{echo(number)} is not a subtask number (1-{len(self._subtasks)})."
        index = parsed - 1
        sub = self._subtasks[index]
        if sub.status != "pending" or index in taken:
            return f"subtask {number} is not pending."
        if self._busy[worker] is not None or worker in taken:
            return f"{worker} is busy."
        if self.worker_family[worker] != sub.family:
            return (
                f"{worker} is a {self.worker_family[worker]} worker; subtask {number} needs a "
                f"{sub.family} worker."
            )
        return ""

    def _start_subtask(self, worker: str, index: int, observations: dict[str, str]) -> None:
        sub = self._subtasks[index]
        observation, info = self._members[worker].reset(
            seed=sub.seed, options={"task": sub.task_id}
        )
        sub.status, sub.worker = "running", worker
        self._busy[worker] = index
        self._member_info[worker] = {**info, "new_subtask": True}
        observations[worker] = observation

    # ------------------------------------------------------------------ info
    def _orchestrator_info(
        self, valid: bool, components: dict[str, float], outcome: float | None, success: bool | None
    ) -> dict[str, Any]:
        board = [
            (s.family, s.task_id, s.status, s.worker, round(s.outcome, 6)) for s in self._subtasks
        ]
        progress = [
            s.outcome
            if s.status == "done"
            else float(self._member_info.get(s.worker, {}).get("progress", 0.0))
            if s.status == "running"
            else 0.0
            for s in self._subtasks
        ]
        return {
            "turn": self._turn,
            "reward_components": components,
            "valid_action": bool(valid),
            "state_key": stable_hash(["Orchestra", board]),
            "progress": min(1.0, max(0.0, float(np.mean(progress)))) if progress else 0.0,
            "admissible_actions": self._orchestrator_actions(),
            "outcome": outcome,
            "success": success,
            "privileged": {},
            "decision": self._turn_info.get("decision"),
            "delegated": [list(pair) for pair in self._turn_info.get("delegated", [])],
            "returned": [list(entry) for entry in self._turn_info.get("returned", [])],
            "all_done": all(s.status == "done" for s in self._subtasks),
            **(
                {"aggregation": self._turn_info["aggregation"]}
                if "aggregation" in self._turn_info
                else {}
            ),
        }

    def _orchestrator_actions(self) -> list[str]:
        actions = []
        for number, sub in enumerate(self._subtasks, 1):
            if sub.status != "pending":
                continue
            for worker, family in self.worker_family.items():
                if family == sub.family and self._busy.get(worker) is None:
                    actions.append(f"delegate[{worker}, {number}]")
        if self.compose:
            return [*actions, "wait", f"finish[{'; '.join(s.answer for s in self._subtasks)}]"]
        return [*actions, "wait", "finish"]

    def _worker_info(
        self,
        agent: str,
        valid: bool,
        components: dict[str, float],
        outcome: float | None,
        success: bool | None,
    ) -> dict[str, Any]:
        busy = self._busy.get(agent) is not None
        member = self._member_info.get(agent, {}) if busy else {}
        return {
            "turn": self._turn,
            "reward_components": components,
            "valid_action": bool(valid),
            "state_key": stable_hash(
                ["Orchestra-worker", self.worker_family[agent], member.get("state_key", "idle")]
            ),
            "progress": float(member.get("progress", 0.0)),
            "admissible_actions": member.get("admissible_actions") if busy else ["wait"],
            "outcome": outcome,
            "success": success,
            "privileged": dict(member.get("privileged", {})) if busy else {},
            "busy": busy,
        }
