"""The policies ``turngym bench --policy NAME`` builds, checked before any env runs.

===========================  ====================================================================
``random``                   :class:`~turngym.agents.RandomPolicy` (admissible actions)
``expert``                   the env family's expert (:func:`turngym.agents.expert`)
``hf:PATH``                  a transformers causal LM: a model folder, a ``turngym train``
                             checkpoint folder (its ``model/``), or a hub id ``owner/name``
``openai:MODEL``             an OpenAI-compatible server at ``--base-url`` / ``$OPENAI_BASE_URL``
``module:Class``             your own: ``Class(**policy_kwargs)`` from an importable module
``path/to/file.py:Class``    the same from a Python file (loaded as a module of its own)
===========================  ====================================================================

``Class`` may be any callable that returns a policy (a class, or a factory function); it
receives ``--policy-kwargs`` as keyword arguments, plus ``seed=--seed`` when it takes a
``seed`` parameter that the kwargs do not set. A policy has ``act(batch) -> list[str]``
(see the README's "Plug in your own policy").
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path
from typing import Any

import turngym
from turngym.error import InvalidArgumentError

__all__ = ["check_policy_name", "hf_model_folder", "load_policy_factory", "make_policy"]

_FORMS = "random, expert, hf:PATH, openai:MODEL, module:Class or file.py:Class"


def _is_custom(name: str) -> bool:
    return ":" in name and not name.startswith(("hf:", "openai:"))


def hf_model_folder(path: str) -> str:
    """``path``, or ``path/model`` when ``path`` is a ``turngym train`` checkpoint folder."""
    local = Path(path).expanduser()
    if not (local / "config.json").is_file() and (local / "model" / "config.json").is_file():
        return str(local / "model")
    return path


def load_policy_factory(name: str) -> Any:
    """The callable ``module:Class`` / ``file.py:Class`` names; one-line errors for each miss."""
    target, _, attribute = name.rpartition(":")
    if not target or not attribute:
        raise InvalidArgumentError(f"--policy {name}: use module:Class or path/to/file.py:Class")
    if target.endswith(".py"):
        path = Path(target).expanduser()
        if not path.is_file():
            raise InvalidArgumentError(f"--policy {name}: no file {path}")
        digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
        module_name = f"turngym_user_policy_{path.stem}_{digest}"
        module = sys.modules.get(module_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module  # pickling and dataclasses look it up there
            try:
                spec.loader.exec_module(module)
            except Exception as error:
                del sys.modules[module_name]
                raise InvalidArgumentError(
                    f"--policy {name}: importing {path} failed: {type(error).__name__}: {error}"
                ) from None
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as error:
            raise InvalidArgumentError(
                f"--policy {name}: no module {error.name!r}; run from the folder that holds "
                f"it, add it to PYTHONPATH, or pass path/to/{target.replace('.', '/')}.py:"
                f"{attribute}"
            ) from None
    found: Any = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            public = [n for n in dir(found) if not n.startswith("_")]
            close = difflib.get_close_matches(part, public, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise InvalidArgumentError(f"--policy {name}: {target} has no {part!r}.{hint}")
        found = getattr(found, part)
    if not callable(found):
        raise InvalidArgumentError(
            f"--policy {name}: {attribute} is not a class or factory; name the policy's class"
        )
    return found


def _make_custom(name: str, seed: int, kwargs: dict[str, Any]) -> Any:
    factory = load_policy_factory(name)
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        parameters = {}
    if "seed" in parameters and "seed" not in kwargs:
        kwargs = {**kwargs, "seed": seed}
    policy = factory(**kwargs)
    if not (hasattr(policy, "act") or callable(policy)):
        raise InvalidArgumentError(
            f"--policy {name} built a {type(policy).__name__}, which has no act(batch) method"
        )
    return policy


def make_policy(
    name: str,
    env_id: str,
    *,
    seed: int = 0,
    base_url: str | None = None,
    policy_kwargs: dict[str, Any] | None = None,
) -> Any:
    """The policy called ``name`` for ``env_id`` (any form of the module docstring's table).

    ``policy_kwargs`` go to ``HFPolicy.from_pretrained`` / ``OpenAIPolicy`` (sampling parameters
    such as ``temperature``, ``top_p``, ``max_tokens``, ``seed``, ``logprobs``, ``extra_body``)
    or to your ``Class``.
    """
    kwargs = dict(policy_kwargs or {})
    if kwargs and name in ("random", "expert"):
        raise InvalidArgumentError(
            f"--policy-kwargs apply to hf:, openai: and module:Class policies, not {name!r}"
        )
    try:
        return _make_policy(name, env_id, seed, base_url, kwargs)
    except TypeError as error:
        raise InvalidArgumentError(
            f"policy kwargs {kwargs} do not fit {name!r}: {error}; see the policy's docstring"
        ) from None


def _make_policy(
    name: str, env_id: str, seed: int, base_url: str | None, kwargs: dict[str, Any]
) -> Any:
    if name == "random":
        return turngym.agents.RandomPolicy(seed=seed)
    if name == "expert":
        return turngym.agents.expert(env_id)
    if name.startswith("hf:"):
        from turngym.agents.hf import HFPolicy

        return HFPolicy.from_pretrained(hf_model_folder(name[3:]), **{"seed": seed, **kwargs})
    if name.startswith("openai:"):
        from turngym.agents.openai_compat import OpenAIPolicy

        return OpenAIPolicy(name[7:], **{"base_url": base_url, **kwargs})
    if _is_custom(name):
        return _make_custom(name, seed, kwargs)
    raise InvalidArgumentError(f"unknown policy {name!r}; use {_FORMS}")


def check_policy_name(name: str) -> None:
    """Raises :class:`InvalidArgumentError` for a policy name ``make_policy`` would reject.

    Called before any env runs, so a typo costs no env builds and no model loading. ``hf:PATH``
    must name an existing local folder, unless PATH has the ``owner/name`` form of a Hugging
    Face Hub id and no such local path exists (transformers then resolves it). ``module:Class``
    and ``file.py:Class`` are imported here and must name a callable.
    """
    if name in ("random", "expert"):
        return
    if name.startswith("hf:"):
        path = name[3:]
        local = Path(path).expanduser()
        hub_id = re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", path) is not None
        if not path:
            raise InvalidArgumentError("hf: needs a model folder, e.g. --policy hf:./my-model")
        if local.is_dir() or (hub_id and not local.exists()):
            return
        what = "is not a folder" if local.exists() else "does not exist"
        raise InvalidArgumentError(
            f"--policy {name}: {local} {what}; pass hf:<folder holding config.json and the "
            "weights> (e.g. one saved with save_pretrained, or a turngym train checkpoint)."
        )
    if name.startswith("openai:"):
        if not name[7:].strip():
            raise InvalidArgumentError(
                "openai: needs a model name, e.g. --policy openai:gpt-4o-mini"
            )
        return
    if _is_custom(name):
        load_policy_factory(name)
        return
    close = difflib.get_close_matches(name, ["random", "expert"], n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise InvalidArgumentError(f"unknown policy {name!r}.{hint} Use {_FORMS}.")
