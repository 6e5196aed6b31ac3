"""Credit methods the lab compares, by name, and a user's own by ``module:function``.

A lab method is any ``fn(batch: TurnBatch) -> Tensor[n_traj, max_turns]``, exactly the signature
of ``turngym.credit``'s functions called with their defaults. Names:

==================  ==========================================================================
name                what it is
==================  ==========================================================================
``grpo``            ``credit.grpo`` (the reference every paired difference is taken against)
``rloo``            ``credit.rloo``
``gigpo``           ``credit.gigpo`` (gamma 0.95, std normalisation)
``gigpo_gamma1``    control: ``gigpo(gamma=1.0)``: the anchor grouping without the discount
``gigpo_nostd``     ``gigpo(normalize_std=False)`` (verl-agent's ``mean_norm``)
``salt``            ``credit.salt``
``spa``             ``credit.spa`` (defaults: progress oracle, grounding penalty)
``spa_bonus``       ``spa(grounding="bonus")``: the paper's +0.1 per valid turn (a living reward)
``discounted``      control: ``reinforce(gamma=0.95, baseline="none")``, no baseline at all
``reinforce``       ``credit.reinforce`` (reward-to-go minus the batch mean)
``gated``           ``grpo(rewards=gated(batch))``
==================  ==========================================================================

A spec may add keyword arguments, ``gigpo[gamma=0.9,normalize_std=false]`` (values read as JSON,
else strings), and an aggregation override ``grpo@episode`` (see ``turngym.lab.train``). Anything
with a ``:`` is ``module:function`` or ``path/to/file.py:function``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from turngym import credit
from turngym.error import InvalidArgumentError

__all__ = ["BUILTIN", "LabMethod", "resolve_method"]

BUILTIN: dict[str, tuple[Callable[..., torch.Tensor], dict[str, Any]]] = {
    "grpo": (credit.grpo, {}),
    "rloo": (credit.rloo, {}),
    "gigpo": (credit.gigpo, {}),
    "gigpo_gamma1": (credit.gigpo, {"gamma": 1.0}),
    "gigpo_nostd": (credit.gigpo, {"normalize_std": False}),
    "salt": (credit.salt, {}),
    "spa": (credit.spa, {}),
    "spa_bonus": (credit.spa, {"grounding": "bonus"}),
    "discounted": (credit.reinforce, {"gamma": 0.95, "baseline": "none"}),
    "reinforce": (credit.reinforce, {}),
    "gated": (lambda batch, **kw: credit.grpo(batch, rewards=credit.gated(batch, **kw)), {}),
}
AGGREGATIONS = ("turn", "episode")


@dataclass(frozen=True)
class LabMethod:
    """A resolved method: its spec (the name in reports), function and aggregation override."""

    spec: str
    function: Callable[[Any], torch.Tensor]
    aggregation: str | None = None

    def __call__(self, batch: Any) -> torch.Tensor:
        advantages = self.function(batch)
        if not isinstance(advantages, torch.Tensor) or tuple(advantages.shape) != tuple(
            batch.mask.shape
        ):
            shape = tuple(getattr(advantages, "shape", ()))
            raise InvalidArgumentError(
                f"credit method {self.spec!r} returned {type(advantages).__name__} of shape "
                f"{shape}; it must return a tensor [n_traj, max_turns] = {tuple(batch.mask.shape)}."
            )
        if not bool(torch.isfinite(advantages[batch.mask]).all()):
            raise InvalidArgumentError(f"credit method {self.spec!r} returned NaN or inf.")
        return advantages


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _kwargs(text: str, spec: str) -> dict[str, Any]:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, equals, value = part.partition("=")
        if not equals or not name.strip():
            raise InvalidArgumentError(
                f"method {spec!r}: {part!r} is not key=value; write e.g. gigpo[gamma=0.9]."
            )
        out[name.strip()] = _value(value.strip())
    return out


def _load_user(path: str, spec: str) -> Callable[..., torch.Tensor]:
    module_name, _, function = path.rpartition(":")
    try:
        if module_name.endswith(".py"):
            location = Path(module_name)
            if not location.is_file():
                raise FileNotFoundError(module_name)
            loader = importlib.util.spec_from_file_location(location.stem, location)
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            # like ``python -m``: a module in the working directory is importable
            if os.getcwd() not in sys.path and "" not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except (ImportError, FileNotFoundError) as error:
        raise InvalidArgumentError(
            f"method {spec!r}: cannot import {module_name!r} ({error}); give an importable "
            "module (on PYTHONPATH) or a path/to/file.py, then :function."
        ) from error
    found = getattr(module, function, None)
    if not callable(found):
        raise InvalidArgumentError(
            f"method {spec!r}: {module_name!r} has no callable {function!r}; it must define "
            "fn(batch: TurnBatch) -> Tensor[n_traj, max_turns]."
        )
    return found


def resolve_method(spec: str) -> LabMethod:
    """The :class:`LabMethod` a spec names (see the module docstring).

    >>> resolve_method("gigpo[gamma=1.0]@episode").aggregation
    'episode'
    """
    text = spec.strip()
    aggregation = None
    if "@" in text:
        text, _, aggregation = text.rpartition("@")
        if aggregation not in AGGREGATIONS:
            raise InvalidArgumentError(
                f"method {spec!r}: @{aggregation} is not an aggregation; use @turn or @episode."
            )
    kwargs: dict[str, Any] = {}
    if text.endswith("]") and "[" in text:
        text, _, inner = text[:-1].partition("[")
        kwargs = _kwargs(inner, spec)
    if ":" in text:
        function, defaults = _load_user(text, spec), {}
    elif text in BUILTIN:
        function, defaults = BUILTIN[text]
    else:
        raise InvalidArgumentError(
            f"unknown credit method {spec!r}; use one of {', '.join(BUILTIN)}, or "
            "module:function for your own."
        )
    return LabMethod(
        spec.strip(), functools.partial(function, **{**defaults, **kwargs}), aggregation
    )
