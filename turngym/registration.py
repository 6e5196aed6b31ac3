"""The turngym registry: gymnasium's registry plus a one-line description per id."""

from __future__ import annotations

import difflib
from typing import Any

import gymnasium

from turngym.error import UnknownEnvError

__all__ = ["CheckResetOptions", "register", "list_envs", "make", "NAMESPACE"]

NAMESPACE = "turngym"
_DESCRIPTIONS: dict[str, str] = {}


def register(
    id: str, entry_point: str, description: str, *, listed: bool = True, **kwargs: Any
) -> None:
    """Registers ``id`` with gymnasium and records its one-line description.

    Args:
        id: ``"turngym/<Name>-v<N>"``.
        entry_point: ``"module:Class"``, imported lazily by ``gymnasium.make``.
        description: one line shown by ``turngym list``.
        listed: False for an older version kept loadable: ``make`` builds it (gymnasium warns
            that it is out of date) but ``list_envs`` and ``turngym list`` show only current ids.
        **kwargs: forwarded to ``gymnasium.register`` (e.g. ``kwargs={...}`` for presets).
    """
    if not id.startswith(NAMESPACE + "/"):
        raise ValueError(f"turngym ids live in the {NAMESPACE!r} namespace: use {NAMESPACE}/{id}")
    kwargs.setdefault("additional_wrappers", (_CHECK_RESET_OPTIONS,))
    if id not in gymnasium.registry:
        gymnasium.register(id=id, entry_point=entry_point, **kwargs)
    if listed:
        _DESCRIPTIONS[id] = description


class CheckResetOptions(gymnasium.Wrapper, gymnasium.utils.RecordConstructorArgs):
    """Rejects bad ``reset`` options before the wrappers inside it see the reset.

    ``gymnasium.make`` puts its ``PassiveEnvChecker`` under every other wrapper, and that checker
    marks its one-time reset check done *before* calling the env: a first reset that raises (an
    unknown task) left it without the reset's data, and the next ``step`` failed inside
    gymnasium with ``TypeError: cannot unpack non-iterable NoneType``. This outermost wrapper
    asks the env (``check_reset_options``, :class:`turngym.core.TurnEnv`) first, so a rejected
    reset never reaches the checker.
    """

    def __init__(self, env: gymnasium.Env) -> None:
        gymnasium.utils.RecordConstructorArgs.__init__(self)
        gymnasium.Wrapper.__init__(self, env)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        check = getattr(self.env.unwrapped, "check_reset_options", None)
        if check is not None:
            check(options)
        return self.env.reset(seed=seed, options=options)


_CHECK_RESET_OPTIONS = gymnasium.envs.registration.WrapperSpec(
    name="CheckResetOptions",
    entry_point="turngym.registration:CheckResetOptions",
    kwargs={},
)


def list_envs() -> dict[str, str]:
    """Returns every registered turngym id mapped to its one-line description (sorted by id)."""
    return dict(sorted(_DESCRIPTIONS.items()))


def check_env_id(env_id: str) -> str:
    """Returns ``env_id`` if registered, else raises :class:`UnknownEnvError` listing valid ids."""
    if env_id in gymnasium.registry:
        return env_id
    try:  # the orchestra package needs PettingZoo; without it the id is just unknown
        from turngym.envs.orchestra.presets import ORCHESTRA_ENVS
    except ImportError:
        ORCHESTRA_ENVS = {}
    if env_id in ORCHESTRA_ENVS:
        raise UnknownEnvError(
            f"{env_id} is a multi-agent (PettingZoo) env, not a gymnasium one: build it with "
            f"turngym.envs.orchestra.parallel_env({env_id!r}) (or aec_env), and run it with "
            "turngym.envs.orchestra.rollout."
        )
    valid = list(list_envs())
    close = difflib.get_close_matches(env_id, valid, n=3, cutoff=0.5)
    hint = f" Did you mean {close}?" if close else ""
    raise UnknownEnvError(
        f"unknown env id {env_id!r}.{hint} Registered turngym ids: {valid} "
        "(run `turngym list` for descriptions)."
    )


def make(env_id: str, **kwargs: Any) -> gymnasium.Env:
    """``gymnasium.make`` with a message listing the registered ids when ``env_id`` is unknown."""
    return gymnasium.make(check_env_id(env_id), **kwargs)
