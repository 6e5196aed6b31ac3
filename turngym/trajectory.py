"""``Turn`` and ``Trajectory`` records and their JSON Lines format (one trajectory a line).

A turn is one (observation, action) exchange:

- ``observation``, ``state_key``: what the policy saw and the canonical state its action acted on
  (the *pre-action* state, which GiGPO and SALT group on);
- ``action`` and, when a model produced it, ``token_ids`` / ``logprobs`` / ``prompt_token_ids``;
- ``reward``, ``reward_components``, ``info``: what ``env.step`` returned (``privileged`` removed;
  the trajectory keeps the last step's ``privileged`` once, for learners).

``pandas.read_json(path, lines=True)`` loads a file written by :func:`save_trajectories`.

Pre-action state keys. ``info["state_key"]`` (what ``env.step`` returned) names the state an
action *led to*; a turn's grouping key is the state the action was *taken in*. ``Turn.state_key``
holds the latter (``turngym.rollout`` and the orchestra set it on every turn). When it is None,
:meth:`Trajectory.state_keys` derives it: turn ``t > 0`` acted on turn ``t - 1``'s resulting state
(its ``info["state_key"]``), turn 0 on ``Trajectory.reset_state_key`` (the key ``reset``'s info
returned). A turn whose key cannot be derived in a trajectory that records state keys is an
error (:class:`turngym.error.InvalidArgumentError`); a trajectory that records no key at all gives
each turn a state of its own. :func:`save_trajectories` writes the derived keys, so a file written
by turngym always carries every turn's pre-action key.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from turngym.error import InvalidArgumentError

__all__ = ["Turn", "Trajectory", "save_trajectories", "load_trajectories"]


@dataclass
class Turn:
    """One turn of an episode. Every field has a default so turns can be built by keyword."""

    observation: str = ""
    action: str = ""
    reward: float = 0.0
    reward_components: dict[str, float] = field(default_factory=dict)
    #: The info ``env.step`` returned for this action (without ``privileged``).
    info: dict[str, Any] = field(default_factory=dict)
    #: Key of the state the action acted on (the pre-action state). ``None``: derive it with
    #: :meth:`Trajectory.state_keys` (``info['state_key']`` is the state the action led to).
    state_key: str | None = None
    terminated: bool = False
    truncated: bool = False
    #: Token ids of the action and of the prompt it was generated from, and the action's
    #: per-token log-probabilities under the behaviour policy (set when a model acted).
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    prompt_token_ids: list[int] | None = None

    @property
    def valid_action(self) -> bool:
        """Whether the env parsed and executed the action (SPA's grounding signal)."""
        return bool(self.info.get("valid_action", True))

    @property
    def key(self) -> str | None:
        """The pre-action state key recorded on this turn (``state_key``), or None.

        Never ``info["state_key"]``: that is the state the action led to. Use
        :meth:`Trajectory.state_keys` for keys derived from the neighbouring turns.
        """
        return self.state_key


@dataclass
class Trajectory:
    """One episode. Every field has a default so trajectories can be built by keyword."""

    turns: list[Turn] = field(default_factory=list)
    task_id: str = ""
    #: Trajectories of the same task and seed share a group (GRPO/GiGPO/SALT groups).
    group_id: str = ""
    traj_id: str = ""
    env_id: str = ""
    seed: int | None = None
    outcome: float | None = None
    success: bool | None = None
    instructions: str = ""
    #: The first observation (after reset).
    initial_observation: str = ""
    #: The env's ``privileged`` info at the episode's end: for learners only, never policies.
    privileged: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: ``info["state_key"]`` at reset: the state turn 0 acted on (derives its key when absent).
    reset_state_key: str | None = None

    @property
    def total_reward(self) -> float:
        """The sum of the turn rewards (the episode return without discount)."""
        return float(sum(turn.reward for turn in self.turns))

    @property
    def num_turns(self) -> int:
        return len(self.turns)

    def state_keys(self, *, strict: bool = True) -> list[str | None]:
        """Every turn's pre-action state key, derived where ``Turn.state_key`` is None.

        Turn ``t``'s key is its ``state_key``; else turn ``t - 1``'s ``info["state_key"]`` (the
        state that action led to); for turn 0, ``reset_state_key``. The derivation assumes the
        turns are consecutive env steps (true of ``turngym.rollout``).

        Args:
            strict: raise when a turn's key cannot be derived although the trajectory records
                state keys (a turn with a ``state_key`` or an ``info["state_key"]``). With
                ``strict=False`` such turns get None. A trajectory recording no key at all
                always gives None everywhere (credit gives each such turn a state of its own).

        Raises:
            InvalidArgumentError: see ``strict``; the message names the turn and the fix.

        >>> t = Trajectory(turns=[Turn(info={"state_key": "s1"}), Turn(info={"state_key": "s2"})],
        ...                reset_state_key="s0")
        >>> t.state_keys()
        ['s0', 's1']
        """
        keys: list[str | None] = []
        previous, recorded, missing = self.reset_state_key, self.reset_state_key is not None, -1
        for t, turn in enumerate(self.turns):
            key = turn.state_key if turn.state_key is not None else previous
            if key is None and missing < 0:
                missing = t
            keys.append(key)
            previous = turn.info.get("state_key")
            recorded = recorded or previous is not None or turn.state_key is not None
        if strict and recorded and missing >= 0:
            raise InvalidArgumentError(
                f"trajectory {self.traj_id!r}: turn {missing} has no pre-action state key and none "
                "can be derived (info['state_key'] is the state an action led to, not the one it "
                "acted on). Set Turn.state_key to the key of the state the action was taken in, or "
                "Trajectory.reset_state_key to the key reset() returned in its info."
            )
        return keys

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``total_reward`` and ``num_turns`` included for pandas).

        Each turn's ``state_key`` is written as derived by :meth:`state_keys` (non-strict), so
        the file carries the pre-action keys even when the turns were built without them.
        """
        data = asdict(self)
        for turn, key in zip(data["turns"], self.state_keys(strict=False), strict=True):
            turn["state_key"] = key
        data["total_reward"] = self.total_reward
        data["num_turns"] = self.num_turns
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trajectory:
        """Inverse of :meth:`to_dict`; unknown keys are kept in ``metadata``."""
        names = {f.name for f in fields(cls)}
        turn_names = {f.name for f in fields(Turn)}
        kwargs = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names | {"total_reward", "num_turns"}}
        kwargs["turns"] = [
            Turn(**{k: v for k, v in turn.items() if k in turn_names})
            for turn in data.get("turns", [])
        ]
        if extra:
            kwargs["metadata"] = {**kwargs.get("metadata", {}), **extra}
        return cls(**kwargs)


def _json_safe(value: Any) -> Any:
    """Replaces NaN/inf (not valid JSON) with None and numpy scalars with Python ones."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return _json_safe(value.item())
    return value


def save_trajectories(path: str | os.PathLike, trajectories: Iterable[Trajectory]) -> Path:
    """Writes trajectories as JSON Lines (one a line) atomically; returns the path.

    Raises:
        turngym.atomic.DiskFullError: the disk is full (no partial or temporary file is left).
    """
    from turngym.atomic import atomic_write

    path = Path(path)
    with atomic_write(path) as handle:  # no temp file survives an error; a full disk says so
        for trajectory in trajectories:
            if not isinstance(trajectory, Trajectory):
                raise TypeError(
                    f"save_trajectories expects Trajectory objects, got {type(trajectory).__name__}"
                )
            handle.write(json.dumps(_json_safe(trajectory.to_dict()), ensure_ascii=False))
            handle.write("\n")
    return path


def load_trajectories(path: str | os.PathLike) -> list[Trajectory]:
    """Reads a JSON Lines file written by :func:`save_trajectories`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no trajectory file at {path}; write one with save_trajectories")
    trajectories = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                trajectories.append(Trajectory.from_dict(json.loads(line)))
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"{path}:{number} is not valid JSON ({error}); the file is corrupt"
                ) from None
    return trajectories
