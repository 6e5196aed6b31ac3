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
"""

from __future__ import annotations

import torch

from ._ops import dense_ids, group_normalize, masked, per_turn
from .batch import TurnBatch
from .grpo import episode_advantages
from .returns import returns

__all__ = ["gigpo", "step_advantages"]


def step_advantages(
    batch: TurnBatch,
    *,
    gamma: float = 0.95,
    rewards: torch.Tensor | None = None,
    normalize_std: bool = True,
    eps: float = 1e-6,
) -> torch.Tensor:
    """GiGPO's step-level advantage ``A^S`` ``[n, T]`` over (task group, state) anchor groups."""
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
) -> torch.Tensor:
    """Episode advantage plus ``step_weight`` times the anchor-state step advantage.

    Args:
        batch: the trajectories (every task group needs >= 2).
        step_weight: ``w``, the weight of the step-level advantage.
        gamma: discount of the step returns.
        rewards: optional ``[n, T]`` per-turn rewards replacing ``batch.rewards`` (the episode
            score then becomes their sum unless ``score`` says otherwise).
        score: the episode score, ``"outcome"`` (default without ``rewards``) or ``"return"``.
        normalize_std: divide by the std in both groups (or only centre).
        eps: added to the stds.

    >>> from turngym import Trajectory, Turn
    >>> trajs = [Trajectory(turns=[Turn(action="a", state_key="s", reward=1.0)], group_id="g", outcome=1.0),
    ...          Trajectory(turns=[Turn(action="b", state_key="s", reward=0.0)], group_id="g", outcome=0.0)]
    >>> # A^E = +-0.7071 and, both turns sharing state "s", A^S = +-0.7071 as well
    >>> gigpo(TurnBatch.from_trajectories(trajs), eps=0.0)
    tensor([[ 1.4142],
            [-1.4142]])
    """
    episode = episode_advantages(batch, rewards, score=score, normalize_std=normalize_std, eps=eps)
    step = step_advantages(
        batch, gamma=gamma, rewards=rewards, normalize_std=normalize_std, eps=eps
    )
    return masked(episode[:, None] + step_weight * step, batch.mask)
