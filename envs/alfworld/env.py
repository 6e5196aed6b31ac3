"""ALFWorld: household tasks of six types, played on ALFWorld's own TextWorld PDDL engine, offline.

=================  ===============================================================================
Tasks              ALFWorld's six types: ``pick_and_place_simple``, ``look_at_obj_in_light``,
                   ``pick_clean_then_place_in_recep``, ``pick_heat_then_place_in_recep``,
                   ``pick_cool_then_place_in_recep``, ``pick_two_obj_and_place``. Task id
                   ``{type}-{rooms}-{seed}``: a PDDL problem generated over one of ALFRED's real
                   floor plans (objects placed per seed), proven solvable by replaying its
                   walkthrough through the engine, cached on disk. Train seeds ``0..n-1``, test
                   seeds ``1_000_000 + 0..n-1``. ``rooms="seen"``: ALFRED's train floor plans;
                   ``rooms="unseen"``: its held-out floor plans (never in ``rooms="seen"``), the
                   analogue of ALFWorld's valid_unseen. With ``data_dir=`` (or ``$ALFWORLD_DATA``)
                   holding the official ``json_2.1.1``, those games are played instead: train ->
                   ``train``, test -> ``valid_seen`` (``rooms="seen"``) or ``valid_unseen``; task
                   ids are trial paths such as ``valid_seen/pick_and_place_simple-.../trial_...``
Actions            one ALFWorld command: ``go to countertop 1``, ``open fridge 1``, ``take apple 1
                   from countertop 1``, ``move apple 1 to fridge 1``, ``heat apple 1 with microwave
                   1``, ``cool ...``, ``clean ... with sinkbasin 1``, ``use desklamp 1``,
                   ``examine ...``, ``inventory``, ``look``, ``help``. Valid when it is one of
                   ``info["admissible_actions"]`` (after stripping, lower-casing and collapsing
                   spaces); anything else is never sent to the engine
Observation        the engine's own text ("You are in the middle of a room. Looking quickly around
                   you, you see ...", "You arrive at countertop 1. On the countertop 1, you see
                   ..."), the "-= Welcome to TextWorld, ALFRED! =-" banner dropped, each line's
                   padding and runs of blank lines removed; the task ("Your task is to: ...") is
                   stated once, in ``info["instructions"]``; ``"Nothing happens."`` for an invalid
                   command. (``-v0`` ids, ``clean_observations=False``: the task also ends the
                   first observation, as in turngym 0.1.)
Outcome            1.0 when the engine's goal check holds (``won``); 0.0 when cut by ``max_turns``
Dense reward       ``progress``: change of the fraction of the goal's conditions satisfied in the PDDL
                   state (:mod:`turngym.envs.alfworld.goals`; potential-based, sums to <= 1);
                   ``format``: -0.1 for an invalid command (state unchanged)
state_key          the sorted positive dynamic PDDL facts (not the text, not the path): static
                   facts, the ``checked`` bookkeeping of look/examine and the translator's
                   ``not_*`` atoms are left out, so ``look`` keeps the key and two routes to the
                   same state share it, across episodes and processes
progress           the goal fraction above (1.0 when won)
privileged         ``walkthrough`` (the game's verified solution; for an official game shipped
                   without one, the plan of ALFWorld's planner expert) and ``pddl_params``
=================  ===============================================================================

Memory model (one env; a pool worker holds its envs'). Each task is generated once, in a helper
process (:mod:`turngym.envs.alfworld.builder`; generating in the env's process kept ~7 MiB a
game), and cached on disk; every later reset reuses it. A worker costs ~100-160 MiB. The first
reset of a task in a process adds ~1 MiB to textworld's proposition memo, which never evicts (120
tasks: 78 -> 196 MiB in one process), so the env clears it past 20,000 entries
(:mod:`turngym.envs.textworld.memo`; same outputs) and a worker stays flat whatever the split's
size: 240 train tasks (``num_tasks=(40, 1)``), 20,000 random episodes on a kept pool (4 envs, 2
workers): 130-157 MiB per worker after a 2,000-episode warm-up (the memo filling and clearing),
0.17 MiB per 1,000 episodes (``benchmarks/soak.py``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from turngym.core import Outcome, Start, TurnEnv
from turngym.envs.alfworld.engine import STATIC_PREDICATES, AlfredEngine, canonical_state
from turngym.envs.alfworld.games import (
    OFFICIAL_SPLITS,
    data_root,
    find_official_games,
    generated_game,
)
from turngym.envs.alfworld.goals import GOAL_STATIC_PREDICATES, GoalSpec, goal_progress
from turngym.envs.alfworld.problems import TASK_TYPES
from turngym.envs.alfworld.scenes import ROOMS
from turngym.envs.textworld.memo import bound_textworld_memo
from turngym.error import InvalidArgumentError
from turngym.policy import normalize_action

__all__ = [
    "ALFWorldEnv",
    "normalize_command",
    "DEFAULT_NUM_TASKS",
    "TEST_SEED_OFFSET",
    "INVALID_FEEDBACK",
]

FORMAT_PENALTY = -0.1
#: Tasks per type and split: (train, test).
DEFAULT_NUM_TASKS = (500, 25)
TEST_SEED_OFFSET = 1_000_000
#: ALFWorld's own answer to a command it cannot execute.
INVALID_FEEDBACK = "Nothing happens."
_BANNER = re.compile(r"^\s*-= Welcome to TextWorld, ALFRED! =-\s*")
_TASK = re.compile(r"Your task is to: (.*)")
_SYNTAX = (
    "Each turn, answer with exactly one command, using the names the game shows (e.g. 'apple 1', "
    "'countertop 2'): go to (receptacle); open (receptacle); close (receptacle); take (object) from "
    "(receptacle); move (object) to (receptacle); heat (object) with (receptacle); cool (object) "
    "with (receptacle); clean (object) with (receptacle); use (object); examine (something); "
    "inventory; look. A command counts only when it is admissible in the current state; any other "
    "text does nothing."
)


#: How commands are matched to admissible ones (strip, lower-case, collapse whitespace).
normalize_command = normalize_action


def _tidy(text: str) -> str:
    """Each line stripped, runs of blank lines collapsed to one, no blank lines at the ends."""
    lines: list[str] = []
    for line in text.split("\n"):
        line = line.strip()
        if line or (lines and lines[-1]):
            lines.append(line)
    return "\n".join(lines).strip()


def _task_types(task_types: str | Sequence[str] | None) -> tuple[str, ...]:
    if task_types is None:
        return TASK_TYPES
    chosen = (task_types,) if isinstance(task_types, str) else tuple(task_types)
    unknown = [t for t in chosen if t not in TASK_TYPES]
    if not chosen or unknown:
        raise InvalidArgumentError(
            f"task_types={task_types!r} is not valid; use None (all) or a list of {list(TASK_TYPES)}."
        )
    return chosen


class ALFWorldEnv(TurnEnv):
    """ALFWorld's household tasks through ``PddlEnv`` + ``AlfredDemangler`` (see the module doc).

    Args:
        task_types: task types to draw from (default: all six).
        rooms: ``"seen"`` (ALFRED's train floor plans) or ``"unseen"`` (held-out floor plans). The
            core's ``split`` only takes ``"train"``/``"test"``, so the unseen-rooms split is this
            separate argument: ``split="test", rooms="unseen"`` is ALFWorld's valid_unseen.
        num_tasks: generated tasks per type in each split, or ``(train, test)``; default (500, 25).
        data_dir: folder holding ALFWorld's official ``json_2.1.1`` (default: ``$ALFWORLD_DATA``
            when it holds that folder); its games are played instead of generated ones.
        reward_mode: ``"dense"`` or ``"sparse"`` (see :class:`turngym.core.TurnEnv`).
        split: ``"train"`` or ``"test"``.
        max_turns: turn limit (default 50, ALFWorld's usual budget).
        render_mode: ``None``, ``"ansi"`` or ``"human"``.
        clean_observations: state the task only in the instructions and drop padding (see
            the module doc); False gives the ``-v0`` observations.
    """

    expert_policy = "turngym.envs.alfworld.expert:ALFWorldExpert"
    default_max_turns = 50

    _engine: AlfredEngine | None  # the game engine (one per env, reloaded per game)
    _admissible: dict[str, str]  # normalised command -> command as the engine spells it
    _spec: GoalSpec | None  # the current task's targets, for progress
    _progress_value: float  # fraction of goal conditions satisfied now
    _static_facts: list[tuple[str, ...]]  # the static facts progress reads (types, locations)
    _state_cache: list[str] | None  # canonical PDDL state of the current engine state
    _walkthrough: list[str]  # the current game's verified solution
    _pddl_params: dict[str, Any]  # the current task's pddl_params

    def __init__(
        self,
        *,
        task_types: str | Sequence[str] | None = None,
        rooms: str = "seen",
        num_tasks: int | tuple[int, int] | None = None,
        data_dir: str | os.PathLike | None = None,
        reward_mode: str = "dense",
        split: str = "train",
        max_turns: int | None = None,
        render_mode: str | None = None,
        clean_observations: bool = True,
    ) -> None:
        super().__init__(
            reward_mode=reward_mode, split=split, max_turns=max_turns, render_mode=render_mode
        )
        self.clean_observations = bool(clean_observations)
        if rooms not in ROOMS:
            raise InvalidArgumentError(f"rooms={rooms!r} is not valid; use one of {list(ROOMS)}.")
        self.task_types = _task_types(task_types)
        self.rooms = rooms
        counts = DEFAULT_NUM_TASKS if num_tasks is None else num_tasks
        counts = (counts, counts) if isinstance(counts, int) else tuple(counts)
        if len(counts) != 2 or any(not isinstance(n, int) or n < 1 for n in counts):
            raise InvalidArgumentError(
                f"num_tasks={num_tasks!r} must be a positive int or a (train, test) pair."
            )
        self.num_tasks = counts
        self.data_root = data_root(data_dir)
        if data_dir is not None and self.data_root is None:
            raise InvalidArgumentError(
                f"data_dir={str(data_dir)!r} does not hold ALFWorld's json_2.1.1 folder; point it at "
                "the folder alfworld-download fills (the one containing json_2.1.1)."
            )
        self._official: dict[str, dict[str, Path]] = {}
        self._meta: dict[Path, tuple[dict[str, Any], list[str]]] = {}
        self._engine, self._admissible, self._spec = None, {}, None
        self._progress_value, self._state_cache, self._static_facts = 0.0, None, []
        self._walkthrough, self._pddl_params = [], {}

    # ------------------------------------------------------------------ tasks and games
    def _official_games(self, split: str) -> dict[str, Path]:
        if split not in self._official:
            folder = OFFICIAL_SPLITS[(split, self.rooms)]
            self._official[split] = find_official_games(self.data_root, folder, self.task_types)
        return self._official[split]

    def _task_ids(self, split: str) -> list[str]:
        if self.data_root is not None:
            return list(self._official_games(split))
        count = self.num_tasks[0] if split == "train" else self.num_tasks[1]
        offset = 0 if split == "train" else TEST_SEED_OFFSET
        return [
            f"{task_type}-{self.rooms}-{offset + i}"
            for i in range(count)
            for task_type in self.task_types
        ]

    def game_path(self, task_id: str) -> Path:
        """The ``game.tw-pddl`` of ``task_id`` (generated, verified and cached on first use)."""
        if self.data_root is not None:
            for split in ("train", "test"):
                if task_id in self._official_games(split):
                    return self._official_games(split)[task_id]
            raise InvalidArgumentError(f"unknown ALFWorld task {task_id!r}")
        task_type, rooms, seed = task_id.rsplit("-", 2)
        return generated_game(task_type, int(seed), rooms)

    def _game_meta(self, path: Path) -> tuple[dict[str, Any], list[str]]:
        if path not in self._meta:
            traj = json.loads((path.parent / "traj_data.json").read_text())
            walkthrough = json.loads(path.read_text()).get("walkthrough") or []
            self._meta[path] = (traj, [str(c) for c in walkthrough])
        return self._meta[path]

    # ------------------------------------------------------------------ hooks
    def _start(self, task_id: str, rng: np.random.Generator) -> Start:
        path = self.game_path(task_id)
        traj, self._walkthrough = self._game_meta(path)
        bound_textworld_memo()  # textworld interns every proposition forever (see memo.py)
        if self._engine is None:
            self._engine = AlfredEngine()
        self._engine.load(path)
        state = self._engine.reset()
        if not self._walkthrough:
            # An official game solved by ALFWorld's planner expert may ship without a walkthrough:
            # ask the same planner once per game.
            self._walkthrough = self._engine.plan()
            self._meta[path] = (traj, list(self._walkthrough))
        self._spec = GoalSpec.from_traj_data(traj)
        self._pddl_params = dict(traj.get("pddl_params") or {})
        self._absorb(start=True)
        observation = _BANNER.sub("", state.feedback).strip()
        match = _TASK.search(observation)
        task = match.group(1).strip() if match else "solve the household task."
        instructions = f"You are a household robot in a text world (ALFWorld). Your task is to: {task}\n{_SYNTAX}"
        if self.clean_observations:
            if match:
                observation = observation[: match.start()] + observation[match.end() :]
            observation = _tidy(observation)
        return Start(observation, instructions, info={"task_type": traj["task_type"]})

    def _absorb(self, start: bool = False) -> None:
        engine = self._engine
        self._admissible = {normalize_command(c): c for c in engine.admissible_commands}
        if start:
            # Static facts never change: keep the few progress reads once per episode, and
            # convert only the dynamic facts on every step (most of a room's facts are static).
            self._static_facts = [f for f in engine.facts() if f[0] in GOAL_STATIC_PREDICATES]
        facts = engine.facts(skip=STATIC_PREDICATES)
        self._state_cache = canonical_state(facts) + (["won"] if engine.won else [])
        self._progress_value = (
            1.0 if engine.won else goal_progress(self._spec, self._static_facts + facts)
        )

    def _act(self, action: str) -> Outcome:
        command = self._admissible.get(normalize_command(action))
        if command is None:
            return Outcome(
                INVALID_FEEDBACK, {"format": FORMAT_PENALTY, "progress": 0.0}, valid_action=False
            )
        before = self._progress_value
        state = self._engine.step(command)
        self._absorb()
        components = {"format": 0.0, "progress": self._progress_value - before}
        feedback = _tidy(state.feedback) if self.clean_observations else state.feedback
        if self._engine.won:
            return Outcome(feedback, components, terminated=True, outcome=1.0, success=True)
        return Outcome(feedback, components)

    def _state(self) -> Any:
        return self._state_cache

    def _progress(self) -> float:
        return self._progress_value

    def _admissible_actions(self) -> list[str] | None:
        return list(self._admissible.values())

    def _privileged(self) -> dict[str, Any]:
        return {"walkthrough": list(self._walkthrough), "pddl_params": dict(self._pddl_params)}

    def example_action(self) -> str:
        """An always-admissible command (used by the conformance check when it needs one)."""
        return "look"

    def close(self) -> None:
        """Releases the engine."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        super().close()
