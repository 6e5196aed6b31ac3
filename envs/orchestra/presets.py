"""The bundled orchestra presets and their PettingZoo-style constructors."""

from __future__ import annotations

from typing import Any

from turngym.envs.orchestra.env import OrchestraEnv
from turngym.error import InvalidArgumentError

__all__ = ["ORCHESTRA_ENVS", "aec_env", "list_orchestra_envs", "parallel_env"]

#: A short- and a long-corridor worker, three corridor subtasks (the toy team).
_CORRIDOR_TEAM: dict[str, Any] = {
    "members": {
        "short": ("turngym/Corridor-v0", {"lengths": (2, 3)}),
        "long": ("turngym/Corridor-v0", {"lengths": (4, 5)}),
    },
    "workers": {"short": 1, "long": 1},
    "num_subtasks": 3,
    "max_turns": 24,
}

#: The bundled presets: id -> keyword arguments of :class:`OrchestraEnv`.
ORCHESTRA_ENVS: dict[str, dict[str, Any]] = {
    "turngym/Orchestra-v0": {
        "members": {"shop": "turngym/WebShop-Small-v0", "search": "turngym/SearchQA-1hop-v0"},
        "workers": {"shop": 2, "search": 2},
        "num_subtasks": 4,
    },
    "turngym/Orchestra-Toy-v0": _CORRIDOR_TEAM,
    # The stop decision and the orchestration rewards: the orchestrator must finish itself.
    "turngym/Orchestra-Stop-v0": {
        **_CORRIDOR_TEAM,
        "auto_finish": False,
        "orchestration": {"routing": 0.2, "parallelism": 0.5, "stop": 0.5},
    },
    # Aggregation: three questions answered by search workers, composed by the orchestrator.
    "turngym/Orchestra-Compose-v0": {
        "members": {"search": "turngym/SearchQA-1hop-v0"},
        "workers": {"search": 3},
        "num_subtasks": 3,
        "compose": True,
        "orchestration": {"routing": 0.2, "parallelism": 0.5, "stop": 0.5, "aggregation": 1.0},
    },
}


_DESCRIPTIONS = {
    "turngym/Orchestra-v0": "Multi-agent (PettingZoo): an orchestrator routes 4 WebShop/SearchQA "
    "subtasks to 2 shop and 2 search workers",
    "turngym/Orchestra-Toy-v0": "Multi-agent toy (PettingZoo): an orchestrator routes 3 corridor "
    "subtasks to a short- and a long-corridor worker",
    "turngym/Orchestra-Stop-v0": "Multi-agent toy (PettingZoo): the corridor team, but the "
    "orchestrator must finish itself; routing, parallelism and stop rewards",
    "turngym/Orchestra-Compose-v0": "Multi-agent (PettingZoo): 3 search workers answer SearchQA "
    "questions; the orchestrator composes their answers into the team's (aggregation reward)",
}


def list_orchestra_envs() -> dict[str, str]:
    """The multi-agent preset ids mapped to one-line descriptions (``turngym list`` shows them)."""
    return {env_id: _DESCRIPTIONS[env_id] for env_id in sorted(ORCHESTRA_ENVS)}


def _preset(env_id: str | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    if env_id is None:
        env_id = "turngym/Orchestra-v0"
    if env_id not in ORCHESTRA_ENVS:
        raise InvalidArgumentError(
            f"unknown orchestra id {env_id!r}; the presets are {sorted(ORCHESTRA_ENVS)} (or pass "
            "members= and workers= to OrchestraEnv)."
        )
    return {**ORCHESTRA_ENVS[env_id], **kwargs}


def parallel_env(env_id: str | None = None, **kwargs: Any) -> OrchestraEnv:
    """A preset of :data:`ORCHESTRA_ENVS` (default ``turngym/Orchestra-v0``), kwargs overriding."""
    return OrchestraEnv(**_preset(env_id, kwargs))


def aec_env(env_id: str | None = None, **kwargs: Any) -> Any:
    """The same env with PettingZoo's AEC (agent-by-agent) API, via ``parallel_to_aec``."""
    from pettingzoo.utils.conversions import parallel_to_aec

    return parallel_to_aec(parallel_env(env_id, **kwargs))
