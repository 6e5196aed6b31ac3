"""Config-time checks of :class:`~turngym.agents.learner_config.LearnerConfig` values that need
more than a range: credit keyword arguments against the credit function's signature, and a model
path that names no folder.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

__all__ = ["BASE_DEFAULTS", "check_credit_kwargs", "check_model_source"]

#: The estimator a ``gated``/``spa`` credit feeds when ``credit_kwargs`` names no ``base``
#: (spa's is ``turngym.credit.spa``'s own default; a test keeps them equal).
BASE_DEFAULTS = {"gated": "grpo", "spa": "reinforce"}

#: Keyword arguments the learner itself passes to a credit method (not the user's to set).
_LEARNER_SUPPLIED = {"batch", "rewards", "gold_probs", "features", "estimator"}


def check_credit_kwargs(credit: str, kwargs: dict[str, Any]) -> None:
    """Raises a ValueError naming the valid keywords when ``kwargs`` does not fit ``credit``.

    The check reads the credit function's signature; ``gated`` also accepts ``base`` and
    ``base_kwargs`` (checked against that estimator), ``spa`` forwards extra keywords to its
    ``base`` estimator (checked against it too).
    """
    import turngym.credit as credit_module
    from turngym.credit.spa import BASES  # the estimators a gated/spa base may name

    kwargs = dict(kwargs)
    if credit == "gated":
        base = kwargs.pop("base", BASE_DEFAULTS["gated"])
        base_kwargs = kwargs.pop("base_kwargs", {})
        if base not in BASES:
            raise ValueError(
                f"LearnerConfig.credit_kwargs['base']={base!r} is invalid: use an estimator such "
                f"as {', '.join(BASES[:-1])} or {BASES[-1]}"
            )
        if not isinstance(base_kwargs, dict):
            raise ValueError("LearnerConfig.credit_kwargs['base_kwargs'] must be a mapping")
        check_credit_kwargs(base, base_kwargs)
        extra = {"base", "base_kwargs"}
    else:
        extra = set()
    function = getattr(credit_module, credit)
    parameters = inspect.signature(function).parameters
    valid = sorted(
        name
        for name, p in parameters.items()
        if p.kind is p.KEYWORD_ONLY and name not in _LEARNER_SUPPLIED
    )
    forwards = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    unknown = sorted(set(kwargs) - set(valid) - (_LEARNER_SUPPLIED & set(parameters)))
    if unknown and forwards and credit == "spa":
        base = kwargs.get("base", BASE_DEFAULTS["spa"])
        if isinstance(base, str) and base in BASES:
            rest = {k: kwargs[k] for k in unknown}
            try:
                check_credit_kwargs(base, rest)
                unknown = []
            except ValueError:
                pass
    if unknown:
        raise ValueError(
            f"LearnerConfig.credit_kwargs has unknown key(s) {unknown} for credit={credit!r}; "
            f"valid keys: {', '.join(sorted(set(valid) | extra)) or '(none)'}"
            + (" (plus those of its base estimator)" if forwards else "")
        )


def check_model_source(model: str) -> None:
    """Raises a ValueError when ``model`` names a local folder that does not exist.

    A string that is not an existing folder is taken for a hub id only when it looks like one
    (``name`` or ``org/name``); anything else (absolute, ``./``, ``~``, deeper paths) is a path.
    """
    path = Path(os.path.expanduser(model))
    if path.is_dir():
        return
    looks_like_path = (
        path.is_absolute()
        or model.startswith((".", "~"))
        or model.count("/") > 1
        or (os.sep != "/" and os.sep in model)
    )
    if looks_like_path or path.exists():
        what = "is a file, not a model folder" if path.exists() else "no such directory"
        raise ValueError(
            f"LearnerConfig.model={model!r}: {what}; give the folder a model was saved to with "
            "save_pretrained (config.json, weights and tokenizer), or a Hugging Face hub id"
        )
