"""G-RA, gated reward accumulation over recorded trajectories ("Stabilizing Long-term Multi-turn
Reinforcement Learning with Gated Rewards", 2025; the rule of ``turngym.wrappers.GateReward``).

A reward *transform*: it returns gated per-turn **rewards** ``[n, T]``, which any estimator then
consumes, e.g. ``grpo(batch, rewards=gated(batch))`` or ``batch.replace(rewards=gated(batch))``.
Single gate (``threshold=delta``): immediate rewards count only if the outcome reaches delta,

    r~_t = r_low_t * 1[R_high >= delta],       R = R_high + sum_t r~_t.

Chain of priorities ``chain=[(names_1, delta_1), ..., (names_k, delta_k)]``, highest first: level
``i``'s per-turn reward ``L_i,t`` is the sum of its named components; everything else is the
lowest level, ``rest_t = r_t - sum_i L_i,t``. With ``R_i = sum_t L_i,t``,

    open_1 = 1,   open_{i+1} = open_i * 1[R_i >= delta_i],
    r~_t = sum_i open_i * L_i,t + open_{k+1} * rest_t,

so each trajectory's ``sum_t r~_t`` equals ``turngym.wrappers.gate_chain`` of its level sums, and
with every gate open ``r~_t = r_t`` exactly. Each reward stays on the turn that earned it (the
outcome on the last turn). If ``"outcome"`` is a level but no turn recorded an ``"outcome"``
component, ``batch.outcome`` stands in for it on the last turn (and is taken to be part of that
turn's reward, as turngym envs report it). A named component absent from the batch counts 0.

Compared with
-------------
No public G-RA implementation was compared here (none was located for this review); the
rule is the paper's equation, and it agrees with ``turngym.wrappers.gate_chain`` (the env
wrapper) on every batch (``tests/test_credit_properties.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from turngym.wrappers import parse_chain

from ._ops import masked, per_turn
from .batch import TurnBatch

__all__ = ["gated"]

OUTCOME = "outcome"


def gated(
    batch: TurnBatch,
    *,
    threshold: float = 1.0,
    chain: Sequence[tuple[str | Sequence[str], float]] | None = None,
    rewards: torch.Tensor | None = None,
) -> torch.Tensor:
    """Gated per-turn rewards (a reward transform, not advantages).

    Args:
        batch: the trajectories (their ``components`` name the levels).
        threshold: delta of the single gate on the ``"outcome"`` component.
        chain: ``[(component name or names, delta), ...]`` from highest priority down; overrides
            ``threshold``.
        rewards: optional ``[n, T]`` turn rewards replacing ``batch.rewards``.

    Returns:
        ``[n_traj, max_turns]`` gated rewards, 0 on padding.

    >>> from turngym import Trajectory, Turn
    >>> def traj(outcome):
    ...     return Trajectory(turns=[Turn(reward=0.5, reward_components={"progress": 0.5}),
    ...                              Turn(reward=outcome, reward_components={"outcome": outcome})])
    >>> batch = TurnBatch.from_trajectories([traj(1.0), traj(0.0)])
    >>> gated(batch, threshold=1.0).tolist()  # the failed episode loses its progress reward
    [[0.5, 1.0], [0.0, 0.0]]
    """
    levels = _levels(chain if chain is not None else [(OUTCOME, threshold)])
    rewards = per_turn(batch, rewards, "rewards", batch.rewards)
    names = batch.component_names
    components = batch.components.to(rewards.dtype)
    last_turn = batch.last_turn
    is_open = torch.ones(batch.num_trajectories, dtype=torch.bool, device=batch.device)
    result = torch.zeros_like(rewards)
    rest = rewards.clone()
    for level_names, delta in levels:
        selected = torch.tensor(
            [name in level_names for name in names], dtype=rewards.dtype, device=batch.device
        )
        level = components @ selected if names else torch.zeros_like(rewards)
        if OUTCOME in level_names and OUTCOME not in names:
            level = level + last_turn * batch.outcome.to(rewards.dtype)[:, None]
        level = masked(level, batch.mask)
        rest = rest - level
        result = result + is_open[:, None] * level
        is_open = is_open & (level.sum(1) >= delta)
    return masked(result + is_open[:, None] * rest, batch.mask)


def _levels(
    chain: Sequence[tuple[str | Sequence[str], float]],
) -> list[tuple[frozenset[str], float]]:
    return [(frozenset(names), delta) for names, delta in parse_chain(chain)]
