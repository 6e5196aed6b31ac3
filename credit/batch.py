"""``TurnBatch``: a list of trajectories as padded ``[n_traj, max_turns]`` tensors.

Row ``i`` is ``trajs[i]``; column ``t`` its ``t``-th turn; padding columns hold 0 (``-1`` for ids)
and ``mask`` is False there. String keys are mapped to dense integer ids here, once per batch, so
every credit method is pure tensor code that runs wherever the tensors live (``batch.to("cuda")``).

Where each field comes from:

================  ===============================================================================
field             source
================  ===============================================================================
rewards           ``turn.reward`` (turngym envs put the outcome in the last turn's reward)
components        ``turn.reward_components``, one channel per name in ``component_names``
valid             ``turn.valid_action`` (``info["valid_action"]``, True when absent)
state_ids         the *pre-action* state key (``Trajectory.state_keys()``: ``turn.state_key``, else
                  the previous turn's ``info["state_key"]``, else ``reset_state_key`` for turn 0)
                  -> dense id; a trajectory that records no key at all gives each turn a fresh id
                  (it groups with nothing); a key that cannot be derived in a trajectory that
                  records keys is flagged in ``unknown_states`` (gigpo and salt raise on it)
action_ids        blake2b hash of the normalised action (stripped, lower-case, single spaces)
history_ids       prefix-tree node: equal iff same group and identical (state, action) history
group_ids         ``trajectory.group_id`` (``task_id`` when empty) -> dense id
outcome           ``trajectory.outcome``; if None the last turn's ``info["outcome"]``; else 0.0
progress          ``info["progress"]`` after each turn (0 when the env did not report it)
token_counts      ``len(turn.token_ids)`` (0 when no model produced the action)
================  ===============================================================================

>>> from turngym import Trajectory, Turn
>>> trajs = [Trajectory(turns=[Turn(action="Go  North", reward=0.0, state_key="a"),
...                            Turn(action="open door", reward=1.0, state_key="b")],
...                     group_id="g", outcome=1.0),
...          Trajectory(turns=[Turn(action="go north", reward=0.0, state_key="a")],
...                     group_id="g", outcome=0.0)]
>>> batch = TurnBatch.from_trajectories(trajs)
>>> batch.mask.tolist()
[[True, True], [True, False]]
>>> batch.action_ids.tolist()    # "Go  North" and "go north" normalise to the same action
[[0, 1], [0, -1]]
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Any

import torch

from turngym.error import InvalidArgumentError
from turngym.policy import normalize_action
from turngym.trajectory import Trajectory

__all__ = ["TurnBatch", "action_hash", "normalize_action", "spread_to_tokens"]


def action_hash(action: str) -> int:
    """A stable 63-bit hash of the normalised action (the same in every process and run).

    >>> action_hash("Go North") == action_hash("  go   north ")
    True
    """
    digest = hashlib.blake2b(normalize_action(action).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


@dataclasses.dataclass(frozen=True)
class TurnBatch:
    """Padded per-turn tensors of a list of trajectories (see the module docstring)."""

    rewards: torch.Tensor  #: [n, T] float, the turn rewards
    components: torch.Tensor  #: [n, T, C] float, the reward components
    component_names: tuple[str, ...]  #: the C component names, in channel order
    valid: torch.Tensor  #: [n, T] bool, the action parsed and executed
    mask: torch.Tensor  #: [n, T] bool, True on real turns
    lengths: torch.Tensor  #: [n] int64, turns per trajectory
    group_ids: torch.Tensor  #: [n] int64 dense task-group ids
    state_ids: torch.Tensor  #: [n, T] int64 dense state ids (-1 on padding)
    action_ids: torch.Tensor  #: [n, T] int64 dense normalised-action ids (-1 on padding)
    history_ids: torch.Tensor  #: [n, T] int64 prefix-tree node ids (-1 on padding)
    outcome: torch.Tensor  #: [n] float, the outcome reward
    progress: torch.Tensor  #: [n, T] float, the env's progress after each turn
    token_counts: torch.Tensor  #: [n, T] int64, action tokens per turn
    #: Labels naming each row in error messages, e.g. ``"trajs[3] (traj_id 'x', group 'g')"``.
    labels: tuple[str, ...] = ()
    #: Optional IGPO input: p_t = pi(gold answer | context after turn t), [n, T + 1] (column 0
    #: is the context before the first action). ``igpo`` reads it when no tensor is passed.
    gold_probs: torch.Tensor | None = None
    #: [n, T] bool, set only when some turn's pre-action state is unknown: no ``state_key`` and
    #: none derivable in a trajectory that records keys. ``gigpo`` and ``salt`` raise on it.
    unknown_states: torch.Tensor | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_trajectories(cls, trajectories: Sequence[Trajectory]) -> TurnBatch:
        """Builds the batch; row ``i`` is ``trajectories[i]``.

        The turns are copied into columns by :class:`turngym.credit.TrajectoryRecorder`; a
        rollout that records into one directly skips the per-turn Python work here.

        Raises:
            InvalidArgumentError (a ValueError): an empty list, a non-Trajectory item, a
                trajectory without turns, or a NaN/inf reward, component or outcome; the
                message names the trajectory (and turn) and what to fix.
        """
        trajectories = list(trajectories)
        if not trajectories:
            raise InvalidArgumentError(
                "TurnBatch.from_trajectories got an empty batch; pass at least one Trajectory "
                "(e.g. the list turngym.rollout(...) returns)."
            )
        from .columnar import TrajectoryRecorder  # the one place padded tensors are built

        return TrajectoryRecorder.from_trajectories(trajectories).to_batch()

    # ------------------------------------------------------------------ helpers
    @property
    def num_trajectories(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def max_turns(self) -> int:
        return int(self.rewards.shape[1])

    @property
    def device(self) -> torch.device:
        return self.rewards.device

    @property
    def last_turn(self) -> torch.Tensor:
        """``[n, T]`` bool: each trajectory's final turn."""
        columns = torch.arange(self.max_turns, device=self.device)
        return columns[None, :] == (self.lengths.to(self.device) - 1)[:, None]

    def to(self, device: str | torch.device) -> TurnBatch:
        """The same batch with every tensor on ``device``."""
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return dataclasses.replace(self, **moved)

    def replace(self, **changes: Any) -> TurnBatch:
        """A copy with some fields replaced, e.g. ``batch.replace(rewards=gated(batch))``."""
        return dataclasses.replace(self, **changes)

    def label(self, row: int) -> str:
        """The name of row ``row`` for error messages."""
        return self.labels[row] if row < len(self.labels) else f"trajs[{row}]"


def spread_to_tokens(
    advantages: torch.Tensor,
    token_counts: torch.Tensor | TurnBatch,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spreads per-turn advantages over each turn's action tokens.

    Row ``i`` of the result is the concatenation, turn by turn, of ``token_counts[i, t]`` copies
    of ``advantages[i, t]`` (the tokens of trajectory ``i``'s actions in order), right-padded.

    Args:
        advantages: ``[n, T]`` per-turn advantages.
        token_counts: ``[n, T]`` action tokens per turn, or a :class:`TurnBatch` (its
            ``token_counts`` and ``mask``).
        mask: ``[n, T]`` real turns (default: ``token_counts > 0``).

    Returns:
        ``(token_advantages, token_mask)``, both ``[n, max tokens per trajectory]``.

    >>> adv = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    >>> values, token_mask = spread_to_tokens(adv, torch.tensor([[2, 1], [3, 0]]))
    >>> values.tolist()
    [[1.0, 1.0, -2.0], [0.5, 0.5, 0.5]]
    """
    if isinstance(token_counts, TurnBatch):
        token_counts, mask = token_counts.token_counts, token_counts.mask
    if advantages.shape != token_counts.shape:
        raise InvalidArgumentError(
            f"advantages {tuple(advantages.shape)} and token_counts {tuple(token_counts.shape)} "
            "must both be [n_traj, max_turns] of the same batch."
        )
    counts = token_counts.to(advantages.device).long().clamp(min=0)
    if mask is not None:
        counts = counts * mask.to(counts.device)
    per_row = counts.sum(1)
    width = int(per_row.max()) if per_row.numel() else 0
    flat = advantages.reshape(-1).repeat_interleave(counts.reshape(-1))
    rows = torch.arange(advantages.shape[0], device=advantages.device).repeat_interleave(per_row)
    starts = torch.cumsum(per_row, 0) - per_row
    columns = torch.arange(flat.numel(), device=advantages.device) - starts[rows]
    values = advantages.new_zeros(advantages.shape[0], width)
    token_mask = torch.zeros(advantages.shape[0], width, dtype=torch.bool, device=advantages.device)
    values[rows, columns] = flat
    token_mask[rows, columns] = True
    return values, token_mask
