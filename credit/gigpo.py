"""GiGPO: group-in-group policy optimisation (Feng et al., 2025, "Group-in-Group Policy
Optimization for LLM Agent Training", arXiv:2505.10978).

Two nested groups. The episode group is the task group (GRPO's advantage ``A^E_i``). An anchor
(step) group collects every turn, of any trajectory in the same task group, whose action acts
on the same state (equal ``state_key``, repeats within one trajectory included). Each turn's
discounted step return

    G_t = sum_{k >= t} gamma^(k - t) r_k                          (gamma = 0.95 by default)

is normalised within its anchor group, and the two are combined:

    A^S_t = (G_t - mean_anchor G) / (std_anchor G + eps)          (normalize_std=True)
    A_t   = A^E_i + w * A^S_t,

with ``A^S_t = 0`` for an anchor group of one turn (a state no other turn visited), so GiGPO
with no repeated states equals GRPO. std is the unbiased sample std. 0 on padding.

The anchor state of a turn is the state its action was *taken in* (``TurnBatch.state_ids``, the
pre-action key); a batch whose pre-action keys are unknown raises (see ``turngym.trajectory``).

What the credit lab found (``benchmarks/results/credit_lab/``, tabular policies, Corridor lengths
6/8, 24 turns, 10 paired seeds, AUC of success over 640 episodes):

- *gamma*: with the env's dense progress rewards gigpo beats grpo by +0.090 +- 0.035, and
  ``gamma=1.0`` keeps +0.052 +- 0.032 of it (step returns still differ by the progress still to
  come); on the longer corridor (8/10, 30 turns) +0.183 and +0.132. With outcome-only rewards
  (``reward_mode="sparse"``) none of it is significant: gigpo +0.015 +- 0.030, ``gamma=1.0``
  +0.004 +- 0.022 (GRPO's numbers within noise). A baseline-free discounted reward-to-go
  (``reinforce(gamma=0.95, baseline="none")``) gains as much as gigpo in both (+0.085 dense,
  +0.025 sparse): the gain is the per-turn, length-aware signal of discounted (dense) returns,
  which GRPO's one advantage per episode lacks, more than the anchor grouping itself.
- *Long horizons*: from a behaviour-cloned start (5 paired seeds, 80 episodes) gigpo is ahead
  of grpo by +0.053 (TextWorld-Medium, n.s.), +0.067 (TextWorld-Hard) and +0.068 (ALFWorld, all
  six task types) AUC; from scratch these envs give unanimous groups (0.75-1.00) and nothing to
  rank.
- *std normalisation*: ``normalize_std=False`` is within noise of the default (+0.075 vs +0.090
  dense, +0.012 vs +0.015 sparse). Its risk is an anchor whose members all succeed: a 0.05 gap
  of one discount step becomes a unit-size advantage and the slower winner's turn goes negative
  (-1.155; -0.033 without std; ``tests/test_lab_credit_signs.py``).

Compared with
-------------
verl-agent, ``gigpo/core_gigpo.py`` (``episode_norm_reward``, ``build_step_group``,
``step_norm_reward``, ``compute_step_discounted_returns``) and its shipped config
``verl/trainer/config/ppo_trainer.yaml`` (``algorithm.gigpo.mode: mean_norm``,
``step_advantage_w: 1.0``); read in the vanzll/verl-agent fork at 3038c3b1 / 29e3e8b3 (the
langfengQ original was not reachable here). Anchor groups there are identical pre-action
observations within a task group, as here. Differences:

- *Episode pool*: verl-agent's rows are steps, and ``episode_norm_reward`` (with its default
  ``compute_mean_std_cross_steps=True``) pools the episode score once per *step row*, so a long
  trajectory weighs more in its group's mean and std. turngym uses one score per trajectory
  (the paper's Eq. 3). ``episode_pool="step"`` reproduces verl-agent's pool.
- *Std*: the shipped ``mode: mean_norm`` only subtracts the means; turngym divides by the std
  by default. ``normalize_std=False`` reproduces ``mean_norm``.
- So ``gigpo(batch, episode_pool="step", normalize_std=False)`` = verl-agent's defaults (with the
  same ``gamma`` as its ``algorithm.gamma`` and ``step_weight`` = ``step_advantage_w``).
- *All-equal groups* give exactly 0 here; verl-agent turns float32 rounding into small nonzero
  values when it divides by a near-zero std (``mean_std_norm``). *Groups of one trajectory*
  raise here; verl-agent gives a one-row episode group its raw score (mean 0, std 1). A
  one-turn anchor group is 0 in both.
"""

from __future__ import annotations

import torch

from turngym.error import InvalidArgumentError

from ._ops import (
    check_states,
    dense_ids,
    group_normalize,
    masked,
    per_turn,
)
from .batch import TurnBatch
from .grpo import episode_advantages
from .returns import returns

__all__ = ["gigpo", "step_advantages", "EPISODE_POOLS"]

EPISODE_POOLS = ("trajectory", "step")


def step_advantages(
    batch: TurnBatch,
    *,
    gamma: float = 0.95,
    rewards: torch.Tensor | None = None,
    normalize_std: bool = True,
    eps: float = 1e-6,
) -> torch.Tensor:
    """GiGPO's step-level advantage ``A^S`` ``[n, T]`` over (task group, state) anchor groups."""
    check_states(batch, "gigpo")
    rewards = per_turn(batch, rewards, "rewards", batch.rewards)
    step_return = returns(batch, gamma=gamma, rewards=rewards)
    num_states = int(batch.state_ids.max()) + 1
    anchor_key = (batch.group_ids[:, None] * num_states + batch.state_ids)[batch.mask]
    anchors, num_anchors = dense_ids(anchor_key)
    advantage = torch.zeros_like(step_return)
    advantage[batch.mask] = group_normalize(
        step_return[batch.mask], anchors, num_anchors, normalize_std, eps
    )
    return advantage


def gigpo(
    batch: TurnBatch,
    *,
    step_weight: float = 1.0,
    gamma: float = 0.95,
    rewards: torch.Tensor | None = None,
    score: str | None = None,
    normalize_std: bool = True,
    eps: float = 1e-6,
    episode_pool: str = "trajectory",
) -> torch.Tensor:
    """Episode advantage plus ``step_weight`` times the anchor-state step advantage.

    Args:
        batch: the trajectories (every task group needs >= 2).
        step_weight: ``w``, the weight of the step-level advantage.
        gamma: discount of the step returns.
        rewards: optional ``[n, T]`` per-turn rewards replacing ``batch.rewards`` (the episode
            score then becomes their sum unless ``score`` says otherwise).
        score: the episode score, ``"outcome"`` (default without ``rewards``) or ``"return"``.
        normalize_std: divide by the std in both groups (or only centre; verl-agent's
            ``mode: mean_norm``).
        eps: added to the stds.
        episode_pool: ``"trajectory"`` (one score per trajectory, the paper) or ``"step"``
            (one per turn, verl-agent's ``episode_norm_reward``).

    >>> from turngym import Trajectory, Turn
    >>> trajs = [Trajectory(turns=[Turn(action="a", state_key="s", reward=1.0)], group_id="g", outcome=1.0),
    ...          Trajectory(turns=[Turn(action="b", state_key="s", reward=0.0)], group_id="g", outcome=0.0)]
    >>> # A^E = +-0.7071 and, both turns sharing state "s", A^S = +-0.7071 as well
    >>> gigpo(TurnBatch.from_trajectories(trajs), eps=0.0)
    tensor([[ 1.4142],
            [-1.4142]])
    """
    if episode_pool not in EPISODE_POOLS:
        raise InvalidArgumentError(
            f"episode_pool={episode_pool!r} is not valid; use one of {list(EPISODE_POOLS)}."
        )
    check_states(batch, "gigpo")
    episode = episode_advantages(
        batch,
        rewards,
        score=score,
        normalize_std=normalize_std,
        eps=eps,
        per_step=episode_pool == "step",
    )
    step = step_advantages(
        batch, gamma=gamma, rewards=rewards, normalize_std=normalize_std, eps=eps
    )
    return masked(episode[:, None] + step_weight * step, batch.mask)
