"""One exception hierarchy for turngym. Every message says what to do next."""

from __future__ import annotations

import gymnasium.error

__all__ = [
    "TurnGymError",
    "InvalidArgumentError",
    "UnknownEnvError",
    "UnknownTaskError",
    "ResetNeeded",
    "DependencyNotInstalled",
    "CorruptCacheError",
    "ConformanceError",
    "PolicyError",
]


class TurnGymError(Exception):
    """Base class of every error turngym raises on purpose."""


class InvalidArgumentError(TurnGymError, ValueError):
    """A user passed a wrong argument (bad kwarg, bad value). The message lists what is valid."""


class UnknownEnvError(InvalidArgumentError):
    """An env id that is not registered. The message lists the registered ids."""


class UnknownTaskError(InvalidArgumentError):
    """``reset(options={"task": ...})`` named a task the env does not have."""


class ResetNeeded(TurnGymError, gymnasium.error.ResetNeeded):
    """``step`` was called before ``reset`` or after the episode ended."""


class DependencyNotInstalled(TurnGymError, ImportError):
    """An optional dependency of an env family or tool is missing; the message names the extra."""


class CorruptCacheError(TurnGymError):
    """A cached artefact failed its checksum; callers rebuild it."""


class ConformanceError(TurnGymError, AssertionError):
    """Raised by :func:`turngym.testing.check_env` when an env breaks the turngym contract."""


class PolicyError(TurnGymError):
    """A policy returned something the rollout runner cannot use (wrong count, wrong type)."""


def missing_dependency(package: str, extra: str) -> DependencyNotInstalled:
    """Builds the error for a missing optional dependency, naming the pip extra that installs it."""
    return DependencyNotInstalled(
        f"{package!r} is not installed. Install it with: pip install 'turngym[{extra}]' "
        f"(or pip install {package})."
    )
