"""The env contract: :class:`TurnEnv`, a ``gymnasium.Env[str, str]`` with turngym's standard info.

A family implements five small hooks and gets every standard ``info`` key of DESIGN.md, the
``reward_mode`` switch, the turn limit, task selection, end-of-episode bookkeeping and a clear
error when stepped after the end, identically across families:

=====================  ==========================================================================
hook                   returns
=====================  ==========================================================================
``_task_ids(split)``   the ids of the tasks in a split (``reset`` draws one with the seed)
``_start(task, rng)``  a :class:`Start`: first observation, instructions (task text + syntax)
``_act(action)``       a :class:`Outcome`: observation, reward components, validity, end flags
``_state()``           canonical, JSON-serialisable state; hashed into ``info["state_key"]``
``_progress()``        task completion in [0, 1] (ground truth where the env knows it)
=====================  ==========================================================================

Optional hooks: ``_admissible_actions()``, ``_privileged()``, ``_truncation_outcome()``,
``_task_info()``.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium
import numpy as np
from gymnasium import spaces

from turngym.error import InvalidArgumentError, ResetNeeded, UnknownTaskError

__all__ = [
    "TurnEnv",
    "TextSpace",
    "Start",
    "Outcome",
    "REWARD_MODES",
    "SPLITS",
    "action_text",
    "stable_hash",
]

REWARD_MODES = ("sparse", "dense")
SPLITS = ("train", "test")
OUTCOME = "outcome"
#: The longest action text an env looks at; longer actions are cut before parsing.
MAX_ACTION_CHARS = 100_000


def action_text(action: Any) -> str:
    """An action as the text an env parses: bytes decoded, cut at :data:`MAX_ACTION_CHARS`.

    Raises:
        InvalidArgumentError: ``action`` is neither ``str`` nor ``bytes`` (a caller's bug, not
            an agent's garbage: any text is a legal action).
    """
    if isinstance(action, bytes):
        action = action.decode("utf-8", errors="replace")
    if not isinstance(action, str):
        raise InvalidArgumentError(
            f"actions are text: got {type(action).__name__}; pass a str "
            "(e.g. one of info['admissible_actions'])."
        )
    return action[:MAX_ACTION_CHARS]


def stable_hash(value: Any, length: int = 16) -> str:
    """Hashes JSON-serialisable ``value`` identically across processes and machines."""
    payload = json.dumps(value, sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha1(payload.encode()).hexdigest()[:length]


class TextSpace(spaces.Text):
    """A text space that contains any ``str`` up to ``max_length`` characters.

    ``gymnasium.spaces.Text`` only admits strings over a fixed charset, but an LLM's action (and an
    env's echo of it) can hold any unicode character. Sampling draws printable ASCII text.
    """

    def __init__(self, max_length: int = 1_000_000, min_length: int = 0, seed: int | None = None):
        super().__init__(
            max_length=max_length,
            min_length=min_length,
            charset=string.ascii_letters + string.digits + string.punctuation + " ",
            seed=seed,
        )

    def sample(self, mask: Any = None, probability: Any = None) -> str:  # noqa: D102
        length = int(self.np_random.integers(self.min_length, min(self.max_length, 64) + 1))
        chars = self.np_random.choice(np.array(list(self.characters)), size=length)
        return "".join(chars.tolist())

    def contains(self, x: Any) -> bool:  # noqa: D102
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"TextSpace(max_length={self.max_length})"


@dataclass
class Start:
    """What a family returns from ``_start``: the first observation and the instructions."""

    observation: str
    instructions: str
    #: Extra info keys for the reset info (e.g. ``task_type``); must not hold privileged data.
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """What a family returns from ``_act`` for one action.

    ``reward_components`` holds the *dense* (turn-level) parts of the reward; the episode's
    outcome reward goes in ``outcome`` and is added by the base class as the ``"outcome"``
    component on the step that ends the episode.
    """

    observation: str
    reward_components: dict[str, float] = field(default_factory=dict)
    valid_action: bool = True
    terminated: bool = False
    #: Outcome reward in [0, 1]; required when ``terminated`` is True.
    outcome: float | None = None
    success: bool | None = None
    info: dict[str, Any] = field(default_factory=dict)


class TurnEnv(gymnasium.Env[str, str]):
    """Base class of every turngym environment (observations and actions are text).

    Args:
        reward_mode: ``"dense"`` pays the family's turn-level components every step plus the
            outcome at the end; ``"sparse"`` pays only the outcome, on the last step.
        split: ``"train"`` or ``"test"``: which task split ``reset`` draws from.
        max_turns: the turn limit; the episode is truncated when reached.
        render_mode: ``None``, ``"ansi"`` (``render()`` returns the last observation) or
            ``"human"`` (prints it).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "human"], "render_fps": 4}
    #: ``"module:Class"`` of the family's expert policy (used by ``turngym.agents.expert``).
    expert_policy: ClassVar[str | None] = None
    #: Default turn limit of the family.
    default_max_turns: ClassVar[int] = 50

    # Episode state shared by every family.
    _turn: int  # turns taken in this episode
    _task_id: str | None  # id of the current task, None before the first reset
    _done: bool  # the episode ended (terminated or truncated); stepping again raises
    _last_observation: str  # for render()
    _instructions: str  # instructions of the current task

    def __init__(
        self,
        *,
        reward_mode: str = "dense",
        split: str = "train",
        max_turns: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        if reward_mode not in REWARD_MODES:
            raise InvalidArgumentError(
                f"reward_mode={reward_mode!r} is not valid; use one of {list(REWARD_MODES)}."
            )
        if split not in SPLITS:
            raise InvalidArgumentError(f"split={split!r} is not valid; use one of {list(SPLITS)}.")
        max_turns = self.default_max_turns if max_turns is None else max_turns
        if not isinstance(max_turns, int) or max_turns < 1:
            raise InvalidArgumentError(f"max_turns={max_turns!r} must be a positive int.")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise InvalidArgumentError(
                f"render_mode={render_mode!r} is not valid; use None or one of "
                f"{self.metadata['render_modes']}."
            )
        self.reward_mode = reward_mode
        self.split = split
        self.max_turns = max_turns
        self.render_mode = render_mode
        self.observation_space = TextSpace()
        self.action_space = TextSpace()
        self._turn = 0
        self._task_id = None
        self._done = True
        self._last_observation = ""
        self._instructions = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Wraps each family's ``__init__`` so a wrong keyword lists the valid ones."""
        super().__init_subclass__(**kwargs)
        original = cls.__dict__.get("__init__")
        if original is None:
            return
        signature = inspect.signature(original)
        if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
            return
        valid = [name for name in signature.parameters if name != "self"]

        @functools.wraps(original)
        def __init__(self: TurnEnv, *args: Any, **kw: Any) -> None:
            unknown = sorted(set(kw) - set(valid))
            if unknown:
                raise InvalidArgumentError(
                    f"{cls.__name__} got unknown argument(s) {unknown}; valid arguments are "
                    f"{valid}."
                )
            original(self, *args, **kw)

        cls.__init__ = __init__  # type: ignore[method-assign]

    # ------------------------------------------------------------------ hooks for families
    def _task_ids(self, split: str) -> Sequence[str]:
        raise NotImplementedError

    def _start(self, task_id: str, rng: np.random.Generator) -> Start:
        raise NotImplementedError

    def _act(self, action: str) -> Outcome:
        raise NotImplementedError

    def _state(self) -> Any:
        raise NotImplementedError

    def _progress(self) -> float:
        return 0.0

    def _admissible_actions(self) -> list[str] | None:
        return None

    def _privileged(self) -> dict[str, Any]:
        return {}

    def _truncation_outcome(self) -> tuple[float, bool]:
        """Outcome reward and success of an episode cut by the turn limit."""
        return 0.0, False

    # ------------------------------------------------------------------ public API
    @property
    def task_ids(self) -> list[str]:
        """The task ids of this env's split."""
        return list(self._task_ids(self.split))

    @property
    def task_id(self) -> str | None:
        """The current task's id."""
        return self._task_id

    @property
    def instructions(self) -> str:
        """The current task's instructions (also in the reset info)."""
        return self._instructions

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Starts an episode on ``options["task"]`` or on a task drawn with ``seed``."""
        self.check_reset_options(options)
        super().reset(seed=seed)
        task_id = self._resolve_task((options or {}).get("task"))
        start = self._start(task_id, self.np_random)
        self._task_id = task_id
        self._turn = 0
        self._done = False
        self._instructions = start.instructions
        self._last_observation = start.observation
        info = self._standard_info(valid_action=True, components={}, outcome=None, success=None)
        info.update(start.info)
        info["instructions"] = start.instructions
        info["task_id"] = task_id
        self._render_if_human()
        return start.observation, info

    def check_reset_options(self, options: dict[str, Any] | None) -> None:
        """Raises what :meth:`reset` would raise for ``options``, changing nothing.

        Raises:
            InvalidArgumentError: an option other than ``task``.
            UnknownTaskError: ``options["task"]`` names no task of any split.
        """
        options = dict(options or {})
        task = options.pop("task", None)
        if options:
            raise InvalidArgumentError(
                f"unknown reset options {sorted(options)}; the only option is 'task' "
                "(a task id of this env's split or of any split)."
            )
        if task is not None:
            self._resolve_task(task)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Takes one turn. Any text is a legal action; unparseable text gets feedback."""
        if self._done:
            raise ResetNeeded(
                f"{type(self).__name__}.step() called "
                + ("before reset()" if self._task_id is None else "after the episode ended")
                + "; call env.reset() to start an episode."
            )
        result = self._act(action_text(action))
        self._turn += 1
        dense = {name: float(value) for name, value in result.reward_components.items()}
        if OUTCOME in dense:
            raise RuntimeError(
                f"{type(self).__name__}._act must report the outcome in Outcome.outcome"
            )
        components = dense if self.reward_mode == "dense" else {}
        terminated = bool(result.terminated)
        truncated = not terminated and self._turn >= self.max_turns
        outcome, success = result.outcome, result.success
        if terminated and outcome is None:
            raise RuntimeError(f"{type(self).__name__}._act ended the episode without an outcome")
        if truncated:
            outcome, success = self._truncation_outcome()
        if terminated or truncated:
            components[OUTCOME] = float(outcome)
            success = bool(success) if success is not None else float(outcome) >= 1.0
            self._done = True
        else:
            outcome, success = None, None
        reward = float(sum(components.values()))
        info = self._standard_info(result.valid_action, components, outcome, success)
        info.update(result.info)
        self._last_observation = result.observation
        self._render_if_human()
        return result.observation, reward, terminated, truncated, info

    def render(self) -> str | None:
        """Returns (``"ansi"``) or prints (``"human"``) the last observation."""
        if self.render_mode == "ansi":
            return self._last_observation
        if self.render_mode == "human":
            print(self._last_observation)
        return None

    # ------------------------------------------------------------------ internals
    def _render_if_human(self) -> None:
        if self.render_mode == "human":
            self.render()

    def _resolve_task(self, task: Any) -> str:
        if task is None:
            ids = self._task_ids(self.split)
            if len(ids) == 0:
                raise InvalidArgumentError(
                    f"{type(self).__name__} has no tasks in split {self.split!r}; "
                    "check the env's data arguments."
                )
            return str(ids[int(self.np_random.integers(len(ids)))])
        task = str(task)
        for split in (self.split, *[s for s in SPLITS if s != self.split]):
            if task in set(self._task_ids(split)):
                return task
        sample = list(self._task_ids(self.split))[:10]
        raise UnknownTaskError(
            f"unknown task {task!r} for {type(self).__name__}; valid tasks are the ids in "
            f"env.unwrapped.task_ids ({len(self._task_ids(self.split))} in split "
            f"{self.split!r}, e.g. {sample})."
        )

    def _standard_info(
        self,
        valid_action: bool,
        components: dict[str, float],
        outcome: float | None,
        success: bool | None,
    ) -> dict[str, Any]:
        progress = min(1.0, max(0.0, float(self._progress())))  # np.clip costs ~20 us a step
        return {
            "turn": self._turn,
            "reward_components": components,
            "valid_action": bool(valid_action),
            "state_key": stable_hash([type(self).__name__, self._task_id, self._state()]),
            "progress": progress,
            "admissible_actions": self._admissible_actions(),
            "outcome": None if outcome is None else float(outcome),
            "success": success,
            "privileged": self._privileged(),
        }
