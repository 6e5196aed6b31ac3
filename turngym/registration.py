"""The turngym registry: gymnasium's registry plus a one-line description per id.

Current ids are gymnasium's (``gymnasium.make``, ``gymnasium.pprint_registry``). An older
version kept for old runs (``listed=False``) is *not* in gymnasium's registry, so
``pprint_registry`` and ``turngym list`` show the same ids and ``gymnasium.make`` of it raises
gymnasium's own ``DeprecatedEnv`` naming the current version; :func:`make` (and everything built
on it: pools, rollouts, the CLI) still builds it, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import difflib
import re
import warnings
from typing import Any

import gymnasium
from gymnasium.envs.registration import EnvSpec

from turngym.error import UnknownEnvError

__all__ = ["CheckResetOptions", "register", "list_envs", "make", "spec", "NAMESPACE"]

NAMESPACE = "turngym"
_DESCRIPTIONS: dict[str, str] = {}
_OLD: dict[str, EnvSpec] = {}  # older versions: built by make(), absent from gymnasium's registry


def register(
    id: str, entry_point: str, description: str, *, listed: bool = True, **kwargs: Any
) -> None:
    """Registers ``id`` with gymnasium and records its one-line description.

    Args:
        id: ``"turngym/<Name>-v<N>"``.
        entry_point: ``"module:Class"``, imported lazily by ``gymnasium.make``.
        description: one line shown by ``turngym list``.
        listed: False for an older version kept for old runs: :func:`make` builds it (with a
            ``DeprecationWarning``), gymnasium's registry and ``turngym list`` do not hold it.
        **kwargs: forwarded to ``gymnasium.register`` (e.g. ``kwargs={...}`` for presets).
    """
    if not id.startswith(NAMESPACE + "/"):
        raise ValueError(f"turngym ids live in the {NAMESPACE!r} namespace: use {NAMESPACE}/{id}")
    kwargs.setdefault("additional_wrappers", (_CHECK_RESET_OPTIONS,))
    if not listed:
        _OLD.setdefault(id, EnvSpec(id=id, entry_point=entry_point, **kwargs))
        return
    if id not in gymnasium.registry:
        gymnasium.register(id=id, entry_point=entry_point, **kwargs)
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
    """Returns ``env_id`` if registered (or an older version :func:`make` still builds), else
    raises :class:`UnknownEnvError` listing valid ids."""
    if env_id in gymnasium.registry or env_id in _OLD:
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


def spec(env_id: str) -> EnvSpec:
    """The ``EnvSpec`` of a registered id or of an older version :func:`make` builds."""
    return _OLD[env_id] if env_id in _OLD else gymnasium.spec(check_env_id(env_id))


def _current(env_id: str) -> str:
    name = re.sub(r"-v\d+$", "", env_id)
    versions = [i for i in _DESCRIPTIONS if re.sub(r"-v\d+$", "", i) == name]
    return max(versions, key=lambda i: int(i.rsplit("-v", 1)[1]), default="the current version")


def make(env_id: str, **kwargs: Any) -> gymnasium.Env:
    """``gymnasium.make`` with a message listing the registered ids when ``env_id`` is unknown;
    also builds the older versions gymnasium's registry no longer lists (with a warning)."""
    if env_id in _OLD:
        warnings.warn(
            f"{env_id} is an older version kept for old runs; new work should use "
            f"{_current(env_id)} (see CHANGELOG.md for what changed).",
            DeprecationWarning,
            stacklevel=2,
        )
        with warnings.catch_warnings():  # gymnasium's own "out of date" says the same, twice
            warnings.filterwarnings("ignore", ".*is out of date", DeprecationWarning)
            return gymnasium.make(_OLD[env_id], **kwargs)
    return gymnasium.make(check_env_id(env_id), **kwargs)
