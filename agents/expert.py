"""``expert(env_id)``: the expert/oracle policy of an env's family.

Each env class names its expert in the class attribute ``expert_policy = "module:Class"``, so
families add experts without touching a central table. Experts are privileged policies: they read
``Conversation.privileged`` (walkthroughs, gold answers, gold patches) and prove every task
solvable.
"""

from __future__ import annotations

import importlib
from typing import Any

from turngym.error import InvalidArgumentError
from turngym.registration import check_env_id
from turngym.registration import spec as registry_spec

__all__ = ["expert"]


def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def expert(env_id: str, **kwargs: Any) -> Any:
    """Returns the expert policy of ``env_id``'s family (keyword arguments go to its constructor)."""
    spec = registry_spec(check_env_id(env_id))
    entry = spec.entry_point
    env_class = _load(entry) if isinstance(entry, str) else entry
    path = getattr(env_class, "expert_policy", None)
    if not path:
        raise InvalidArgumentError(
            f"{env_id} ({env_class.__name__}) declares no expert policy; set the class attribute "
            "expert_policy = 'module:Class' on the env."
        )
    return _load(path)(**kwargs)
