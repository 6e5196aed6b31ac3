"""``Turn`` and ``Trajectory`` records and their JSON Lines format (one trajectory a line).

A turn is one (observation, action) exchange:

- ``observation``, ``state_key``: what the policy saw and the canonical state its action acted on;
- ``action`` and, when a model produced it, ``token_ids`` / ``logprobs`` / ``prompt_token_ids``;
- ``reward``, ``reward_components``, ``info``: what ``env.step`` returned (``privileged`` removed;
  the trajectory keeps the last step's ``privileged`` once, for learners).

``pandas.read_json(path, lines=True)`` loads a file written by :func:`save_trajectories`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

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
    #: Key of the state the action acted on. ``None`` means "use ``info['state_key']``".
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
        """The state id credit methods group on: ``state_key`` or, failing that, the info's."""
        return self.state_key if self.state_key is not None else self.info.get("state_key")


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

    @property
    def total_reward(self) -> float:
        """The sum of the turn rewards (the episode return without discount)."""
        return float(sum(turn.reward for turn in self.turns))

    @property
    def num_turns(self) -> int:
        return len(self.turns)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``total_reward`` and ``num_turns`` included for pandas)."""
        data = asdict(self)
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
    """Writes trajectories as JSON Lines (one a line) atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for trajectory in trajectories:
            if not isinstance(trajectory, Trajectory):
                raise TypeError(
                    f"save_trajectories expects Trajectory objects, got {type(trajectory).__name__}"
                )
            handle.write(json.dumps(_json_safe(trajectory.to_dict()), ensure_ascii=False))
            handle.write("\n")
    os.replace(tmp, path)
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
