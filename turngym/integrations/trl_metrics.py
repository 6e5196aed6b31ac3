"""What :class:`~turngym.integrations.trl.TurngymGRPOTrainer` adds to TRL's logs.

TRL's own ``reward``/``reward_std``/``frac_reward_zero_std`` describe the outcome reward of its
GRPO; these describe what turngym optimises: the per-turn advantages of the configured credit
method, how many task groups carry no signal at all, and whether the episodes succeed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["turn_metrics"]

#: An advantage this close to 0 carries no gradient.
ZERO = 1e-8


def turn_metrics(
    inputs: Sequence[dict[str, Any]], batch: Any, per_turn: torch.Tensor
) -> dict[str, float]:
    """The ``turngym/*`` metrics of one batch.

    Args:
        inputs: the rollout rows (``turngym_episode``, ``turngym_outcome``, ``turngym_success``).
        batch: their :class:`turngym.credit.TurnBatch` (``mask`` of real turns, ``group_ids``).
        per_turn: the advantages ``[n, max_turns]`` the credit method gave them.

    Returns:
        ``turngym/turn_advantage_{mean,std,min,max,abs_mean}`` over real turns,
        ``turngym/zero_advantage_group_frac`` (share of task groups whose every turn advantage
        is 0), ``turngym/success_rate``, ``turngym/outcome_mean`` and
        ``turngym/episodes_over_context`` (a count).
    """
    mask = batch.mask.bool()
    values = per_turn[mask].float()
    zero_groups: dict[int, bool] = {}
    for row, group in enumerate(batch.group_ids.tolist()):
        silent = bool((per_turn[row][mask[row]].abs() < ZERO).all())
        zero_groups[group] = zero_groups.get(group, True) and silent
    count = max(1, len(inputs))
    any_values = values.numel() > 0
    return {
        "turngym/turn_advantage_mean": float(values.mean()) if any_values else 0.0,
        "turngym/turn_advantage_std": float(values.std()) if values.numel() > 1 else 0.0,
        "turngym/turn_advantage_min": float(values.min()) if any_values else 0.0,
        "turngym/turn_advantage_max": float(values.max()) if any_values else 0.0,
        "turngym/turn_advantage_abs_mean": float(values.abs().mean()) if any_values else 0.0,
        "turngym/zero_advantage_group_frac": sum(zero_groups.values()) / max(1, len(zero_groups)),
        "turngym/success_rate": sum(bool(x.get("turngym_success")) for x in inputs) / count,
        "turngym/outcome_mean": sum(float(x["turngym_outcome"]) for x in inputs) / count,
        "turngym/episodes_over_context": float(
            sum(bool(x["turngym_episode"].get("over_context")) for x in inputs)
        ),
    }
