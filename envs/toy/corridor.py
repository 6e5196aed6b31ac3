"""Corridor: walk to the exit of a short corridor. A tiny env for tests, demos and learning tests.

===============  ===========================================================================
Tasks            ``L{length}-{side}``: the exit is ``length`` steps to the east or the west
Actions          ``go east``, ``go west``, ``wait`` (exact text; anything else is invalid)
Observation      "You are in a corridor. ..." with the distance walked and the exits
Outcome          1.0 when the agent reaches the exit, else 0.0 (turn limit)
Dense reward     ``progress``: +1/length per step toward the exit, -1/length away from it
                 (potential-based, sums to at most 1); ``format``: -0.1 for an invalid action
state_key        the position
===============  ===========================================================================
"""

from __future__ import annotations

import numpy as np

from turngym.core import Outcome, Start, TurnEnv

__all__ = ["CorridorEnv"]

ACTIONS = ("go east", "go west", "wait")
FORMAT_PENALTY = -0.1


class CorridorEnv(TurnEnv):
    """Walk ``length`` steps toward the side the instructions name."""

    expert_policy = "turngym.envs.toy.corridor:CorridorExpert"
    default_max_turns = 12

    _position: int  # signed steps walked (east positive)
    _length: int  # distance of the exit
    _side: int  # +1 exit east, -1 exit west

    def __init__(
        self,
        *,
        lengths: tuple[int, ...] = (2, 3, 4),
        reward_mode: str = "dense",
        split: str = "train",
        max_turns: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            reward_mode=reward_mode, split=split, max_turns=max_turns, render_mode=render_mode
        )
        self.lengths = tuple(int(n) for n in lengths)
        self._position, self._length, self._side = 0, 1, 1

    def _task_ids(self, split: str) -> list[str]:
        # Both splits hold every task: the corridor is for tests, not generalisation.
        return [f"L{n}-{side}" for n in self.lengths for side in ("east", "west")]

    def _start(self, task_id: str, rng: np.random.Generator) -> Start:
        length, side = task_id[1:].split("-")
        self._length, self._side, self._position = int(length), 1 if side == "east" else -1, 0
        instructions = (
            f"You are in a corridor. The exit is to the {side}. Reach it. "
            f"Answer with exactly one action: {', '.join(ACTIONS)}."
        )
        return Start(observation=self._describe(), instructions=instructions)

    def _describe(self) -> str:
        return (
            f"You are in a corridor, {abs(self._position)} steps from the start. Exits: east, west."
        )

    def _act(self, action: str) -> Outcome:
        command = action.strip().lower()
        if command not in ACTIONS:
            shown = action if len(action) <= 80 else action[:80] + "..."
            return Outcome(
                observation=f"Nothing happens: {shown!r} is not an action. Valid: {', '.join(ACTIONS)}.",
                reward_components={"format": FORMAT_PENALTY, "progress": 0.0},
                valid_action=False,
            )
        before = self._potential()
        self._position += {"go east": 1, "go west": -1, "wait": 0}[command]
        progress = self._potential() - before
        if self._position * self._side >= self._length:
            return Outcome(
                "You reach the exit. You win!",
                {"format": 0.0, "progress": progress},
                terminated=True,
                outcome=1.0,
                success=True,
            )
        return Outcome(self._describe(), {"format": 0.0, "progress": progress})

    def _potential(self) -> float:
        return max(0.0, min(1.0, self._position * self._side / self._length))

    def _state(self) -> int:
        return self._position

    def _progress(self) -> float:
        return self._potential()

    def _admissible_actions(self) -> list[str]:
        return list(ACTIONS)

    def _privileged(self) -> dict:
        return {"solution": ["go east" if self._side > 0 else "go west"] * self._length}


class CorridorExpert:
    """Walks toward the exit named in the instructions."""

    privileged = False

    def act(self, batch: list) -> list[str]:
        return ["go east" if "exit is to the east" in c.instructions else "go west" for c in batch]
