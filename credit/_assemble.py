"""Builds the padded :class:`TurnBatch` from a :class:`TrajectoryRecorder`'s columns (vectorised
NumPy; no per-turn Python work). ``TrajectoryRecorder.to_batch`` calls :func:`assemble`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from turngym.error import InvalidArgumentError

from .batch import TurnBatch

__all__ = ["assemble"]


def assemble(rec: Any) -> TurnBatch:
    """The padded :class:`TurnBatch` of every recorded episode (vectorised NumPy).

    Raises:
        InvalidArgumentError: no episodes, an episode without turns or not finished, a
            row given twice, or a non-finite number; the message names the trajectory
            (and turn) and the fix.
    """
    n = len(rec._rows)
    if n == 0:
        raise InvalidArgumentError(
            "the batch is empty; record at least one episode (or pass at least one "
            "Trajectory, e.g. the list turngym.rollout(...) returns)."
        )
    # the batch is ordered by `row` (start(..., row=...)); rows need only be distinct, so a
    # runner may leave failed episodes out and still pass their episode indices
    given = np.frombuffer(rec._rows, dtype=np.int64)
    handle_of_row = np.argsort(given, kind="stable")
    if np.unique(given).size != n:
        repeated = given[handle_of_row][1:][np.diff(given[handle_of_row]) == 0]
        raise InvalidArgumentError(
            f"episode row {int(repeated[0])} was given to more than one start(row=...); give each "
            "episode a distinct row, or leave row out."
        )
    rows = np.empty(n, dtype=np.int64)
    rows[handle_of_row] = np.arange(n)
    labels = [_label(int(rows[h]), rec._traj_ids[h], rec._group_names[h]) for h in handle_of_row]
    lengths = np.frombuffer(rec._length, dtype=np.int64)[handle_of_row]
    _check_episodes(rec, handle_of_row, lengths, labels)
    width = int(lengths.max())
    episode_row = rows[np.frombuffer(rec._episode, dtype=np.int64)]
    turn = np.frombuffer(rec._turn, dtype=np.int64)
    mask = np.arange(width)[None, :] < lengths[:, None]

    def locate(k: int) -> str:
        return f"{labels[episode_row[k]]}, turn {turn[k]}"

    def padded(values: np.ndarray, dtype: Any, fill: Any) -> np.ndarray:
        out = np.full((n, width), fill, dtype=dtype)
        out[episode_row, turn] = values
        return out

    rewards = np.frombuffer(rec._reward, dtype=np.float64)
    progress = np.frombuffer(rec._progress, dtype=np.float64)
    _check_finite(rewards, lambda k: f"{locate(k)} reward", (episode_row, turn))
    _check_finite(progress, lambda k: f"{locate(k)} progress", (episode_row, turn))
    states = padded(np.frombuffer(rec._state, dtype=np.int64), np.int64, -1)
    actions = padded(np.frombuffer(rec._action, dtype=np.int64), np.int64, -1)
    groups = np.frombuffer(rec._group, dtype=np.int64)[handle_of_row]
    outcome = np.where(
        np.frombuffer(rec._outcome_given, dtype=np.int8)[handle_of_row] == 1,
        np.frombuffer(rec._outcome, dtype=np.float64)[handle_of_row],
        np.frombuffer(rec._last_outcome, dtype=np.float64)[handle_of_row],
    )
    _check_finite(outcome, lambda row: f"{labels[row]}: outcome")
    components, names = _components(rec, n, width, episode_row, turn, locate)
    # a turn without a key in an episode that records keys: its state is unknown, and
    # state-grouping methods (gigpo, salt) refuse it; a key-less episode groups with nothing
    keyed = np.frombuffer(rec._keyed, dtype=np.int8)[np.frombuffer(rec._episode, np.int64)]
    unknown = (np.frombuffer(rec._unknown, dtype=np.int8) == 1) & (keyed == 1)
    unknown_states = torch.from_numpy(padded(unknown, bool, False)) if unknown.any() else None
    return TurnBatch(
        rewards=torch.from_numpy(padded(rewards, np.float32, 0.0)),
        components=torch.from_numpy(components),
        component_names=names,
        valid=torch.from_numpy(padded(np.frombuffer(rec._valid, dtype=np.int8), bool, False)),
        mask=torch.from_numpy(mask),
        lengths=torch.from_numpy(lengths.copy()),
        group_ids=torch.from_numpy(groups.copy()),
        state_ids=torch.from_numpy(states),
        action_ids=torch.from_numpy(actions),
        history_ids=torch.from_numpy(_history_ids(states, actions, groups, lengths, mask)),
        outcome=torch.from_numpy(outcome.astype(np.float32)),
        progress=torch.from_numpy(padded(progress, np.float32, 0.0)),
        token_counts=torch.from_numpy(padded(np.frombuffer(rec._tokens, np.int64), np.int64, 0)),
        labels=tuple(labels),
        unknown_states=unknown_states,
    )


def _check_episodes(
    rec: Any, handle_of_row: np.ndarray, lengths: np.ndarray, labels: list[str]
) -> None:
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        raise InvalidArgumentError(
            f"{labels[empty[0]]} has no turns; drop empty trajectories before computing credit."
        )
    open_ = np.flatnonzero(np.frombuffer(rec._finished, dtype=np.int8)[handle_of_row] == 0)
    if open_.size:
        raise InvalidArgumentError(
            f"{labels[open_[0]]} was never finished; call recorder.finish(handle) when the "
            "episode ends (or build the batch after every episode ended)."
        )


def _components(
    rec: Any, n: int, width: int, episode_row: np.ndarray, turn: np.ndarray, locate: Any
) -> tuple[np.ndarray, tuple[str, ...]]:
    names = sorted(rec._channels)
    out = np.zeros((n, width, len(names)), dtype=np.float32)
    if not names:
        return out, ()
    remap = np.empty(len(names), dtype=np.int64)
    for sorted_index, name in enumerate(names):
        remap[rec._channels[name]] = sorted_index
    at = np.frombuffer(rec._component_at, dtype=np.int64)
    channel = remap[np.frombuffer(rec._component_channel, dtype=np.int64)]
    values = np.frombuffer(rec._component_value, dtype=np.float64)
    _check_finite(values, lambda k: f"{locate(int(at[k]))} component {names[channel[k]]!r}")
    out[episode_row[at], turn[at], channel] = values
    return out, tuple(names)


def _label(row: int, traj_id: str, group: str) -> str:
    return f"trajs[{row}] (traj_id {traj_id!r}, group {group!r})"


def _check_finite(
    values: np.ndarray, where: Any, order: tuple[np.ndarray, np.ndarray] | None = None
) -> None:
    """Raises for the first non-finite value: in ``values``' own order, or, given
    ``order=(rows, turns)``, in row-major order (row, then turn), as the error names it."""
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        if order is None:
            k = int(bad[0])
        else:
            rows, turns = order
            k = int(bad[np.lexsort((turns[bad], rows[bad]))[0]])
        raise InvalidArgumentError(
            f"{where(k)} is {values[k]}; credit needs finite rewards. Fix the env's reward (or "
            "drop this trajectory) so it never reports NaN/inf."
        )


def _history_ids(
    states: np.ndarray,
    actions: np.ndarray,
    groups: np.ndarray,
    lengths: np.ndarray,
    mask: np.ndarray,
) -> np.ndarray:
    """Prefix-tree node per turn: equal iff same group and identical (state, action) history.

    One ``np.unique`` per column over (parent node, (state, action) pair) packed in an int64.
    """
    n, width = states.shape
    history = np.full((n, width), -1, dtype=np.int64)
    num_actions = int(actions.max()) + 1
    pair = np.zeros((n, width), dtype=np.int64)
    pair_values, pair_ids = np.unique(
        states[mask] * num_actions + actions[mask], return_inverse=True
    )
    pair[mask] = pair_ids.reshape(-1)
    num_pairs = max(int(pair_values.size), 1)
    num_groups = int(groups.max()) + 1
    parent = groups.astype(np.int64)  # roots are 0..G-1; nodes are G + their id
    if (
        num_groups + int(mask.sum())
    ) * num_pairs >= 2**62:  # pragma: no cover - astronomically large
        raise InvalidArgumentError("too many distinct turns to number the prefix tree in int64")
    order = np.argsort(-lengths, kind="stable")  # rows alive at column t are a prefix of `order`
    alive = np.searchsorted(-lengths[order], -np.arange(1, width + 1), side="right")
    next_id = 0
    for column in range(width):
        live = order[: alive[column]]
        key = parent[live] * num_pairs + pair[live, column]
        unique, inverse = np.unique(key, return_inverse=True)
        history[live, column] = next_id + inverse
        parent[live] = num_groups + next_id + inverse
        next_id += int(unique.size)
    return history
