"""IGPO: information-gain turn rewards ("Information Gain-based Policy Optimization: A Simple and
Effective Approach for Multi-Turn LLM Agents", 2025).

The learner scores the gold answer under the policy after every turn (teacher-forced),
``p_t = exp(mean_j log pi(answer_j | context after turn t))`` with ``p_0`` the context before
the first action (``turngym.agents.learner.gold_answer_probabilities`` returns exactly this
``[n, max_turns + 1]`` tensor). Then, for trajectory ``i`` with ``T_i`` turns (turns 1-indexed):

    IG_t = p_t - p_{t-1}                        (log=True: log p_t - log p_{t-1})  for t < T_i
    r_{T_i} = F1_i                              (the final answer's score; the outcome by default)
    r~ = group-normalised rewards, the IG pool and the F1 pool normalised *separately* within
         each task group: r~ = (r - mean_pool) / (std_pool + eps)
    A_t = r~_t + gamma * A_{t+1}                (A_{T_i + 1} = 0; gamma = 1 by default)

A pool of one value (e.g. a group where a single intermediate turn exists) normalises to 0. std
is the unbiased sample std. 0 on padding.
"""

from __future__ import annotations

import torch

from turngym.error import InvalidArgumentError

from ._ops import (
    check_finite,
    check_gamma,
    check_groups,
    discounted_reverse_cumsum,
    group_normalize,
    masked,
)
from .batch import TurnBatch

__all__ = ["igpo"]


def igpo(
    batch: TurnBatch,
    *,
    gold_probs: torch.Tensor | None = None,
    f1: torch.Tensor | None = None,
    gamma: float = 1.0,
    log: bool = False,
    normalize_std: bool = True,
    eps: float = 1e-6,
    prob_floor: float = 1e-8,
) -> torch.Tensor:
    """Information-gain advantages.

    Args:
        batch: the trajectories (every task group needs >= 2).
        gold_probs: ``[n, max_turns + 1]`` p_t, column 0 before the first turn; defaults to
            ``batch.gold_probs``.
        f1: ``[n]`` final-answer scores; defaults to ``batch.outcome``.
        gamma: discount of the accumulation.
        log: use log-probability gains ``log p_t - log p_{t-1}`` (p floored at ``prob_floor``).
        normalize_std: divide each pool by its std (or only centre it).
        eps: added to the stds.
        prob_floor: smallest p used by the log variant.

    >>> from turngym import Trajectory, Turn
    >>> trajs = [Trajectory(turns=[Turn(), Turn()], group_id="g", outcome=o) for o in (1.0, 0.0)]
    >>> p = torch.tensor([[0.1, 0.5, 0.9], [0.1, 0.2, 0.0]])
    >>> # IG pool {0.4, 0.1} -> +-0.7071; F1 pool {1, 0} -> +-0.7071; A_0 = r~_0 + A_1
    >>> igpo(TurnBatch.from_trajectories(trajs), gold_probs=p, eps=0.0)
    tensor([[ 1.4142,  0.7071],
            [-1.4142, -0.7071]])
    """
    gamma = check_gamma("gamma", gamma)
    check_groups(batch)
    n, width = batch.mask.shape
    probs = batch.gold_probs if gold_probs is None else gold_probs
    if probs is None:
        raise InvalidArgumentError(
            "igpo needs gold_probs, p_t = pi(gold answer | context after turn t) as [n_traj, "
            "max_turns + 1]; compute them with turngym.agents.learner.gold_answer_probabilities "
            "and pass igpo(batch, gold_probs=...) or batch.replace(gold_probs=...)."
        )
    probs = torch.as_tensor(probs, device=batch.device).float()
    if tuple(probs.shape) != (n, width + 1):
        raise InvalidArgumentError(
            f"gold_probs has shape {tuple(probs.shape)}; igpo needs [n_traj, max_turns + 1] = "
            f"{(n, width + 1)} (column 0 = before the first turn, column t = after turn t)."
        )
    seen = torch.cat([torch.ones(n, 1, dtype=torch.bool, device=batch.device), batch.mask], 1)
    check_finite(batch, torch.where(seen, probs, torch.zeros_like(probs)), "gold_probs")
    if log:
        probs = probs.clamp(min=prob_floor).log()
    gain = probs[:, 1:] - probs[:, :-1]
    scores = (
        batch.outcome.float() if f1 is None else torch.as_tensor(f1, device=batch.device).float()
    )
    if tuple(scores.shape) != (n,):
        raise InvalidArgumentError(
            f"f1 has shape {tuple(scores.shape)}; igpo needs one score per trajectory, [{n}]."
        )
    check_finite(batch, scores, "f1")
    num_groups = int(batch.group_ids.max()) + 1
    final = torch.arange(width, device=batch.device)[None, :] == (batch.lengths - 1)[:, None]
    intermediate = batch.mask & ~final
    group_per_turn = batch.group_ids[:, None].expand(n, width)
    shaped = torch.zeros(n, width, dtype=torch.float32, device=batch.device)
    shaped[intermediate] = group_normalize(
        gain[intermediate], group_per_turn[intermediate], num_groups, normalize_std, eps
    )
    shaped[final] = group_normalize(scores, batch.group_ids, num_groups, normalize_std, eps)
    return masked(discounted_reverse_cumsum(shaped, gamma), batch.mask)
