"""TextWorld: text adventure quests generated offline with Microsoft's ``textworld`` package.

=================  ===============================================================================
Tasks              a task id is a game seed (``"0"``..``"9"`` train, ``"1000000"``.. test); each
                   game is generated the first time a reset needs it and cached on disk. Presets:
                   easy (1 room, 4 objects, 1-step quest), medium (4 rooms, 8 objects, 3 steps),
                   hard (8 rooms, 16 objects, 6 steps); ``world_size``/``nb_objects``/
                   ``quest_length`` override a preset. ``games=[paths]`` plays your own games
                   (``.z8`` files with the ``.json`` sidecar ``tw-make`` writes next to them);
                   their task ids are the file stems and both splits hold them all.
Actions            one TextWorld command, e.g. ``go north``, ``take key``, ``open chest``; valid
                   when it is one of ``info["admissible_actions"]`` after stripping, lowercasing and
                   collapsing spaces. Anything else is never sent to the engine.
Observation        TextWorld's own text: at reset the first room, then the game's feedback to each
                   command, without the interpreter's chrome (ASCII-art banner, ``>`` prompt, the
                   padded ``-= Room =-0/5`` status line, the RESTART/RESTORE/QUIT/UNDO prompt,
                   indentation and runs of blank lines). The objective is stated once, in
                   ``info["instructions"]``. (``-v0`` ids, ``clean_observations=False``: the raw
                   text with the objective at reset, as in turngym 0.1.)
Outcome            1.0 when the quest is won; 0.0 when lost, unfinishable, or cut by ``max_turns``
Dense reward       ``score``: score gain / max_score (sums to <= 1); ``progress``: (L_prev - L_now)
                   / L_0, L = length of TextWorld's current winning policy (the quantity whose sign
                   is TextWorld's ``intermediate_reward``; potential-based, sums to <= 1);
                   ``format``: -0.1 for an invalid command (state unchanged)
state_key          the sorted facts of TextWorld's logical game state (not the text): ``look`` or
                   ``examine`` keep the key; the same state reached by two paths has one key
progress           1 - L_now / L_0 (1.0 when won)
privileged         ``walkthrough`` (the game's solution) and ``policy_commands`` (TextWorld's plan
                   from the current state)
=================  ===============================================================================

Memory model (one env; a pool worker holds its envs'). TextWorld's own engine keeps ~430 KiB every
time a *different* game is ``load()``ed into a kept engine (1 KiB when the game repeats; measured
with textworld 1.7: 400 loads of 20 games into one engine grew 429 KiB a load, a new engine per
load 1.6 KiB, an engine per game 1.0 KiB), which made a kept worker grow ~200 MiB per 1,000
episodes. So the env never loads a second game into an engine: it keeps one engine per game, up to
``max_engines`` (default :data:`MAX_ENGINES`) most recently played, and closes the least recently
played one beyond that, which returns its memory. A worker costs ~80 MiB (Python, textworld,
numpy) plus ~1.6 MiB an engine: 111 MiB for TextWorld-Easy's 10 train games, growing 0.15 MiB per
1,000 episodes after warm-up (``benchmarks/soak.py``, 5,000 episodes, 4 envs on 2 workers; it was
~200 MiB per 1,000 with one engine reloaded per game). A split of more games than
``max_engines`` pays an engine start (tens of ms) whenever a game outside the kept ones comes up.
"""

from __future__ import annotations

import os
import re
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from turngym.core import Outcome, Start, TurnEnv
from turngym.envs.textworld.games import (
    DEFAULT_NUM_GAMES,
    PRESETS,
    game_pool,
    generate_game,
    resolve_params,
    split_seeds,
)
from turngym.envs.textworld.memo import bound_textworld_memo
from turngym.error import InvalidArgumentError, missing_dependency
from turngym.policy import normalize_action

__all__ = [
    "MAX_ENGINES",
    "TextWorldEnv",
    "game_pool",
    "request_infos",
    "normalize_command",
    "strip_banner",
    "strip_chrome",
]

FORMAT_PENALTY = -0.1
#: Engines (one per game) an env keeps by default; see the module doc's memory model.
MAX_ENGINES = 16
#: The lines of TextWorld's ASCII-art banner: only these characters and spaces.
_BANNER_LINE = re.compile(r"[\s_|\\$/<>]*")
#: The Z-machine status line: ``-= Room =-`` then moves/score, e.g. ``-= Cubicle =-0/5``.
_STATUS_LINE = re.compile(r"-= [^\n]{1,200} =-\s*-?\d+/-?\d+")
_RESTART_PROMPT = "Would you like to RESTART, RESTORE a saved game, QUIT or UNDO"
_INVALID_FEEDBACK = (
    "That is not an available command here, so nothing happens. Type exactly one command from "
    "the admissible commands, for example 'look' or 'inventory'."
)


#: How commands are matched to admissible ones (strip, lower-case, collapse whitespace).
normalize_command = normalize_action


def strip_banner(text: str) -> str:
    """Drops the ASCII-art "TEXTWORLD" banner that opens every game (noise tokens for an LLM)."""
    lines = text.split("\n")
    start = 0
    while start < len(lines) and _BANNER_LINE.fullmatch(lines[start]):
        start += 1
    return "\n".join(lines[start:]) if start < len(lines) else text


def strip_chrome(text: str, objective: str = "") -> str:
    """The game's text without the interpreter's chrome, and without ``objective`` at its start.

    Drops the ``>`` prompt, the status line, the restart prompt, each line's padding and runs of
    blank lines; room titles (``-= Study =-`` on a line of their own) are the game's text and stay.
    """
    lines = []
    for line in strip_banner(text).split("\n"):
        line = line.strip()
        if line.startswith(">"):
            line = line[1:].strip()
        if _STATUS_LINE.fullmatch(line) or line.startswith(_RESTART_PROMPT):
            continue
        if line or (lines and lines[-1]):
            lines.append(line)
    cleaned = "\n".join(lines).strip()
    objective = objective.strip()
    if objective and cleaned.startswith(objective):
        cleaned = cleaned[len(objective) :].lstrip()
    return cleaned


def request_infos() -> Any:
    """The ``textworld.EnvInfos`` this env asks the engine for (the benchmark's baseline uses it too)."""
    try:
        import textworld
    except ImportError as error:  # pragma: no cover - depends on the install
        raise missing_dependency("textworld", "textworld") from error
    return textworld.EnvInfos(
        admissible_commands=True,
        intermediate_reward=True,
        policy_commands=True,
        score=True,
        max_score=True,
        won=True,
        lost=True,
        objective=True,
        extras=["walkthrough"],
    )


def _user_games(games: Sequence[str | os.PathLike]) -> dict[str, Path]:
    if isinstance(games, (str, os.PathLike)) or not games:
        raise InvalidArgumentError(
            "games must be a non-empty list of paths to .z8 or .json TextWorld games."
        )
    found: dict[str, Path] = {}
    for entry in games:
        path = Path(entry).expanduser().resolve()
        if path.suffix == ".ulx":
            raise InvalidArgumentError(
                f"{path}: Glulx (.ulx) games are not supported by textworld >= 1.7; regenerate the "
                "game as .z8 (tw-make ... --format z8)."
            )
        if not path.is_file():
            raise InvalidArgumentError(
                f"game file {path} does not exist; pass paths to .z8 or .json games."
            )
        if path.suffix == ".json":
            # TextWorld's .json backend simulates the logic but writes no narrative text.
            if not path.with_suffix(".z8").is_file():
                raise InvalidArgumentError(
                    f"{path}: a .json game alone has no text observations in textworld; pass the "
                    ".z8 that tw-make wrote next to it (or recompile: tw-make ... --format z8)."
                )
            path = path.with_suffix(".z8")
        if not re.fullmatch(r"\.z[1-8]", path.suffix):
            raise InvalidArgumentError(
                f"{path}: unsupported game format {path.suffix!r}; use .z8 (or its .json)."
            )
        if not path.with_suffix(".json").is_file():
            raise InvalidArgumentError(
                f"{path}: the .json sidecar written by tw-make is missing ({path.with_suffix('.json')}); "
                "it holds the game logic needed for admissible commands and rewards."
            )
        task_id = path.stem if path.stem not in found else f"{path.stem}-{len(found)}"
        found[task_id] = path
    return found


class TextWorldEnv(TurnEnv):
    """Plays TextWorld games through ``textworld.start`` with state tracking (see module doc).

    Args:
        difficulty: preset of the generated games: ``"easy"``, ``"medium"`` or ``"hard"``.
        num_games: games per split (train seeds ``0..n-1``, test seeds ``1_000_000 + 0..n-1``).
        game_seeds: explicit game seeds; both splits then hold exactly these games.
        games: paths to your own ``.z8`` games (with their ``.json`` sidecars) instead.
        world_size: rooms per game (overrides the preset).
        nb_objects: objects per game (overrides the preset).
        quest_length: walkthrough length (overrides the preset).
        reward_mode: ``"dense"`` or ``"sparse"`` (see :class:`turngym.core.TurnEnv`).
        split: ``"train"`` or ``"test"``.
        max_turns: turn limit (default 50).
        render_mode: ``None``, ``"ansi"`` or ``"human"``.
        clean_observations: drop the interpreter's chrome and the repeated objective (see the
            module doc); False gives the ``-v0`` observations.
        max_engines: TextWorld engines kept, one per recently played game (see the module
            doc's memory model): more costs ~1.6 MiB each, fewer restarts engines more often.
    """

    expert_policy = "turngym.envs.textworld.expert:TextWorldExpert"
    default_max_turns = 50

    _engine: Any  # the textworld Environment of the game being played
    _engines: OrderedDict[Path, Any]  # game file -> its engine, least recently played first
    _game_state: Any  # textworld's last GameState
    _admissible: dict[str, str]  # normalised command -> command as TextWorld spells it
    _initial_plan: int  # L_0: length of the winning policy at reset
    _plan: int  # L: length of the current winning policy
    _walkthrough: list[str]  # the game's solution
    _unfinishable: bool  # the quest can no longer be won
    _has_quest: bool  # the game has a quest TextWorld can plan for

    def __init__(
        self,
        *,
        difficulty: str = "medium",
        num_games: int = DEFAULT_NUM_GAMES,
        game_seeds: Sequence[int] | None = None,
        games: Sequence[str | os.PathLike] | None = None,
        world_size: int | None = None,
        nb_objects: int | None = None,
        quest_length: int | None = None,
        reward_mode: str = "dense",
        split: str = "train",
        max_turns: int | None = None,
        render_mode: str | None = None,
        clean_observations: bool = True,
        max_engines: int = MAX_ENGINES,
    ) -> None:
        super().__init__(
            reward_mode=reward_mode, split=split, max_turns=max_turns, render_mode=render_mode
        )
        self.clean_observations = bool(clean_observations)
        if not isinstance(max_engines, int) or isinstance(max_engines, bool) or max_engines < 1:
            raise InvalidArgumentError(f"max_engines={max_engines!r} must be a positive int.")
        self.max_engines = max_engines
        self.difficulty = difficulty
        self.params = resolve_params(difficulty, world_size, nb_objects, quest_length)
        self._user_paths = _user_games(games) if games is not None else None
        if game_seeds is not None:
            if games is not None:
                raise InvalidArgumentError(
                    "pass either games (your files) or game_seeds, not both."
                )
            try:
                seeds = [int(s) for s in game_seeds]
            except (TypeError, ValueError):
                seeds = []
            if not seeds or any(s < 0 for s in seeds):
                raise InvalidArgumentError(
                    f"game_seeds={game_seeds!r} must be a non-empty list of ints >= 0."
                )
            self._splits = {"train": seeds, "test": seeds}
        else:
            self._splits = {name: split_seeds(name, num_games) for name in ("train", "test")}
        self._engine, self._engines, self._game_state = None, OrderedDict(), None
        self._fact_names: dict[Any, str] = {}
        self._admissible, self._walkthrough = {}, []
        self._initial_plan, self._plan, self._unfinishable, self._has_quest = 0, 0, False, False

    # ------------------------------------------------------------------ tasks and games
    def _task_ids(self, split: str) -> list[str]:
        if self._user_paths is not None:
            return list(self._user_paths)
        return [str(seed) for seed in self._splits[split]]

    def game_path(self, task_id: str) -> Path:
        """The game file of ``task_id`` (generated and cached on first use)."""
        if self._user_paths is not None:
            return self._user_paths[task_id]
        return generate_game(self.params, int(task_id))

    def _load(self, path: Path) -> None:
        """Makes ``self._engine`` the engine of ``path``: a kept one, or a new one (never a kept
        engine reloaded with another game, which leaks; see the module doc)."""
        import textworld

        engine = self._engines.get(path)
        if engine is None:
            with warnings.catch_warnings():
                # Jericho warns that it has no score/move tables for games it does not know;
                # TextWorld tracks score and moves itself, so the warning says nothing here.
                warnings.filterwarnings("ignore", message=".*not fully supported.*")
                engine = textworld.start(str(path), request_infos=request_infos())
            self._engines[path] = engine
            while len(self._engines) > self.max_engines:
                _, oldest = self._engines.popitem(last=False)
                oldest.close()
        self._engines.move_to_end(path)
        self._engine = engine

    # ------------------------------------------------------------------ hooks
    def _start(self, task_id: str, rng: np.random.Generator) -> Start:
        bound_textworld_memo()  # textworld interns every proposition forever (see memo.py)
        self._load(self.game_path(task_id))
        self._engine.seed(int(rng.integers(2**31 - 1)))
        state = self._engine.reset()
        self._has_quest = state.get("_winning_policy") is not None
        self._absorb(state)
        self._walkthrough = list(
            state.get("extra.walkthrough") or state.get("policy_commands") or []
        )
        self._initial_plan = max(self._plan, 1)
        instructions = (
            "You are playing a TextWorld text adventure. "
            f"Your task: {state.get('objective') or 'win the game.'}\n"
            "Each turn, answer with exactly one command, such as 'go north', 'take key', "
            "'open chest', 'look' or 'inventory'. A command counts only when it is one of the "
            "admissible commands of the current state; any other text does nothing."
        )
        observation = (
            strip_chrome(state.feedback, state.get("objective") or "")
            if self.clean_observations
            else strip_banner(state.feedback)
        )
        return Start(
            observation=observation,
            instructions=instructions,
            info={"max_score": self._max_score},
        )

    def _absorb(self, state: Any) -> None:
        self._game_state = state
        self._admissible = {normalize_command(c): c for c in state.get("admissible_commands") or []}
        policy = state.get("_winning_policy")
        self._plan = len(policy) if policy is not None else 0
        self._unfinishable = self._has_quest and policy is None and not state.get("won")

    @property
    def _max_score(self) -> int:
        return int(self._game_state.get("max_score") or 0) if self._game_state is not None else 0

    def _act(self, action: str) -> Outcome:
        command = self._admissible.get(normalize_command(action))
        if command is None:
            return Outcome(
                observation=_INVALID_FEEDBACK,
                reward_components={"format": FORMAT_PENALTY, "score": 0.0, "progress": 0.0},
                valid_action=False,
            )
        score_before, plan_before = int(self._game_state.get("score") or 0), self._plan
        state, _, _ = self._engine.step(command)
        self._absorb(state)
        max_score = self._max_score
        score_gain = (int(state.get("score") or 0) - score_before) / max_score if max_score else 0.0
        won, lost = bool(state.get("won")), bool(state.get("lost"))
        plan_after = 0 if won else self._plan
        components = {
            "format": 0.0,
            "score": float(score_gain),
            "progress": (plan_before - plan_after) / self._initial_plan,
        }
        observation = strip_chrome(state.feedback) if self.clean_observations else state.feedback
        if won or lost or self._unfinishable:
            if self._unfinishable and not (won or lost):
                observation += "\n(The quest can no longer be completed: the game is over.)"
            return Outcome(
                observation, components, terminated=True, outcome=float(won), success=won
            )
        return Outcome(observation, components)

    def _state(self) -> Any:
        if self._game_state is None:
            return None
        # str(Proposition) is ~1 us a fact, every step: remember each fact's text.
        names = self._fact_names
        if len(names) > 50_000:
            names.clear()
        facts = sorted(
            names.get(fact) or names.setdefault(fact, str(fact))
            for fact in self._game_state.get("_facts") or []
        )
        return [facts, bool(self._game_state.get("won")), bool(self._game_state.get("lost"))]

    def _progress(self) -> float:
        if self._game_state is None:
            return 0.0
        if self._game_state.get("won"):
            return 1.0
        return 1.0 - self._plan / self._initial_plan if self._initial_plan else 0.0

    def _admissible_actions(self) -> list[str] | None:
        return list(self._admissible.values())

    def _privileged(self) -> dict[str, Any]:
        plan = self._game_state.get("policy_commands") if self._game_state is not None else None
        return {"walkthrough": list(self._walkthrough), "policy_commands": list(plan or [])}

    def close(self) -> None:
        """Stops every TextWorld engine the env keeps."""
        while self._engines:
            _, engine = self._engines.popitem()
            engine.close()
        self._engine = None
        super().close()

    @staticmethod
    def presets() -> dict[str, Any]:
        """The difficulty presets and their generation knobs."""
        return dict(PRESETS)
