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

Compared with
-------------
IGPO's released code, ``compute_grpo_outcome_advantage`` in ``verl/trainer/ppo/core_algos.py``
(debajoycs98/IGPO at 8660196, the authors' updated codebase; GuoqingWang1/IGPO at bff163b computes
``p_t`` the same way, ``exp(mean log p)`` of the teacher-forced answer, in
``scrl/llm_agent/generation.py``). Its turn-level accumulation ``A_t = r~_t + gamma * A_{t+1}``
and its final-turn F1 are the same. Conventions that differ, each with the keyword that
reproduces IGPO's code:

- *Pools*: the paper normalises IG and F1 separately; the code's default
  (``info_gain_norm_mode: joint``) puts a group's IG values and F1 scores in ONE pool.
  ``pool="joint"`` reproduces it; ``pool="separate"`` (default) is the paper.
- *Std*: the code uses the population std ``sqrt(mean (x - mean)^2 + 1e-8)``; turngym the
  unbiased sample std. ``std="population"`` reproduces it (without the ``1e-8`` inside the root,
  a difference below 1e-7 for any std above 1e-3).
- *Zero gains*: the code selects IG turns by ``reward != 0``, so a turn whose gain is exactly 0 is
  left out of the pool and gets r~ = 0; turngym keeps it in the pool (it is a measured gain of
  0). ``drop_zero_gain=True`` reproduces the code.
- So ``igpo(batch, pool="joint", std="population", drop_zero_gain=True)`` = IGPO's code.
- *Degenerate pools*: a one-value pool is 0 in both (the code uses std 1 there); an all-equal
  pool is exactly 0 here, rounding noise divided by ``1e-4`` in the code. The code's ``-2`` F1
  for a malformed answer is the env's business here (``f1=`` takes any score).
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

__all__ = ["igpo", "POOLS", "STDS"]

POOLS = ("separate", "joint")
STDS = ("sample", "population")


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
    pool: str = "separate",
    std: str = "sample",
    drop_zero_gain: bool = False,
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
        pool: ``"separate"`` (IG and F1 normalised apart, the paper) or ``"joint"`` (one pool
            per group, IGPO's code).
        std: ``"sample"`` (unbiased) or ``"population"`` (IGPO's code).
        drop_zero_gain: leave turns whose gain is exactly 0 out of the IG pool (r~ = 0 there),
            as IGPO's code does.

    >>> from turngym import Trajectory, Turn
    >>> trajs = [Trajectory(turns=[Turn(), Turn()], group_id="g", outcome=o) for o in (1.0, 0.0)]
    >>> p = torch.tensor([[0.1, 0.5, 0.9], [0.1, 0.2, 0.0]])
    >>> # IG pool {0.4, 0.1} -> +-0.7071; F1 pool {1, 0} -> +-0.7071; A_0 = r~_0 + A_1
    >>> igpo(TurnBatch.from_trajectories(trajs), gold_probs=p, eps=0.0)
    tensor([[ 1.4142,  0.7071],
            [-1.4142, -0.7071]])
    """
    gamma = check_gamma("gamma", gamma)
    if pool not in POOLS:
        raise InvalidArgumentError(f"pool={pool!r} is not valid; use one of {list(POOLS)}.")
    if std not in STDS:
        raise InvalidArgumentError(f"std={std!r} is not valid; use one of {list(STDS)}.")
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
    final = batch.last_turn
    intermediate = batch.mask & ~final
    if drop_zero_gain:
        intermediate = intermediate & (gain != 0)
    group_per_turn = batch.group_ids[:, None].expand(n, width)
    unbiased = std == "sample"
    shaped = torch.zeros(n, width, dtype=torch.float32, device=batch.device)
    gains, gain_groups = gain[intermediate], group_per_turn[intermediate]
    if pool == "joint":
        # one pool per group: its IG values and its trajectories' final scores together
        joint = group_normalize(
            torch.cat([gains, scores]),
            torch.cat([gain_groups, batch.group_ids]),
            num_groups,
            normalize_std,
            eps,
            unbiased,
        )
        shaped[intermediate], final_values = joint[: gains.numel()], joint[gains.numel() :]
    else:
        shaped[intermediate] = group_normalize(
            gains, gain_groups, num_groups, normalize_std, eps, unbiased
        )
        final_values = group_normalize(
            scores, batch.group_ids, num_groups, normalize_std, eps, unbiased
        )
    # the final turn of row i is its only True in `final`, in row order
    shaped[final] = final_values
    return masked(discounted_reverse_cumsum(shaped, gamma), batch.mask)
