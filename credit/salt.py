"""SALT: step-level advantages from a trajectory graph (Li et al., 2025, "SALT: Step-level
Advantage Assignment for Long-horizon Agents via Trajectory Graph").

Each task group's trajectories are merged into one graph and every turn is an edge of it. A
trajectory first gets its GRPO advantage ``A_i`` (group mean/std of its score); then

    A(e) = (1 / |T(e)|) * sum_{i in T(e)} A_i,       A_t = A(edge of turn t),

where ``T(e)`` is the set of trajectories whose path contains edge ``e`` (a trajectory that
traverses ``e`` twice counts once). Steps shared by winners and losers average toward 0; a step
only one trajectory took keeps that trajectory's advantage and sign; a step every trajectory of
the group took gets exactly the group-mean advantage, 0.

Merge rule (``merge=``):

- ``"edge"`` (default): two turns are the same edge iff they are in the same task group, act on
  the same state (equal ``state_key``) and take the same normalised action (stripped,
  lower-cased, whitespace collapsed), whatever happened before. This is the state graph: paths
  that reconverge share their later edges.
- ``"prefix"``: two turns are the same edge iff their whole (state, action) histories up to and
  including this turn are identical, i.e. the trajectories form a prefix tree and merge only
  until they first diverge.

Nodes are the states actions were *taken in* (``TurnBatch.state_ids``, pre-action keys); a turn
of a trajectory that records no key is an edge of its own, and a batch whose pre-action keys are
unknown raises (see ``turngym.trajectory``). 0 on padding.

Compared with
-------------
No public SALT implementation was found (code search of public repositories, this session), so
the numbers are checked against the paper's equations only (``tests/test_credit.py``). The
conventions of the episode term are GRPO's (see ``turngym.credit.grpo``): exactly 0 for an
all-equal group, an error for a group of one.
"""

from __future__ import annotations

import torch

from turngym.error import InvalidArgumentError

from ._ops import check_states, dense_ids
from .batch import TurnBatch
from .grpo import episode_advantages

__all__ = ["salt", "MERGE_RULES"]

MERGE_RULES = ("edge", "prefix")


def salt(
    batch: TurnBatch,
    *,
    merge: str = "edge",
    rewards: torch.Tensor | None = None,
    score: str | None = None,
    normalize_std: bool = True,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Trajectory-graph edge advantages.

    Args:
        batch: the trajectories (every task group needs >= 2).
        merge: ``"edge"`` or ``"prefix"`` (see the module docstring).
        rewards: optional ``[n, T]`` per-turn rewards; when given the score is their sum.
        score: ``"outcome"`` (default without ``rewards``) or ``"return"``.
        normalize_std: GRPO's std normalisation of the trajectory advantages.
        eps: added to the std.

    >>> from turngym import Trajectory, Turn
    >>> def traj(actions, outcome):
    ...     return Trajectory(turns=[Turn(action=a, state_key=s) for s, a in actions], group_id="g", outcome=outcome)
    >>> trajs = [traj([("s0", "look"), ("s1", "open")], 1.0), traj([("s0", "look"), ("s1", "wait")], 0.0)]
    >>> # A = +-0.7071; "look" at s0 is shared -> 0; "open"/"wait" are decisive -> keep their sign
    >>> salt(TurnBatch.from_trajectories(trajs), eps=0.0)
    tensor([[ 0.0000,  0.7071],
            [ 0.0000, -0.7071]])
    """
    if merge not in MERGE_RULES:
        raise InvalidArgumentError(f"merge={merge!r} is not valid; use one of {list(MERGE_RULES)}.")
    check_states(batch, "salt")
    advantage = episode_advantages(
        batch, rewards, score=score, normalize_std=normalize_std, eps=eps
    )
    n = batch.num_trajectories
    rows = torch.arange(n, device=batch.device)[:, None].expand_as(batch.mask)[batch.mask]
    if merge == "edge":
        num_states = int(batch.state_ids.max()) + 1
        num_actions = int(batch.action_ids.max()) + 1
        # (group, state, action) packed in one int64; ids are dense so the product stays small.
        state_key = batch.group_ids[:, None] * num_states + batch.state_ids
        key = (state_key * num_actions + batch.action_ids)[batch.mask]
    else:
        key = batch.history_ids[batch.mask]
    edges, num_edges = dense_ids(key)
    # Count each (edge, trajectory) pair once, however often the trajectory repeats the edge:
    # the distinct packed keys, in sorted order (edge, then row), are exactly those pairs.
    pairs = torch.unique(edges * n + rows)
    pair_edge, pair_row = pairs // n, pairs % n
    total = torch.zeros(num_edges, dtype=advantage.dtype, device=batch.device)
    total.index_add_(0, pair_edge, advantage[pair_row])
    count = torch.zeros(num_edges, dtype=advantage.dtype, device=batch.device)
    count.index_add_(0, pair_edge, torch.ones_like(pair_edge, dtype=advantage.dtype))
    result = torch.zeros(batch.mask.shape, dtype=advantage.dtype, device=batch.device)
    result[batch.mask] = (total / count)[edges]
    return result
