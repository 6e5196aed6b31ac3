"""Columnar turn recording: episodes go straight into NumPy-backed columns, then one ``TurnBatch``.

``TurnBatch.from_trajectories`` walks Python ``Turn`` objects at batch time (seconds per million
turns, see ``benchmarks/credit_speed.py``); a :class:`TrajectoryRecorder` is filled while
the episodes run and builds the same batch from flat arrays with vectorised NumPy (no per-turn
Python object at batch time). String keys are interned to dense ints as they are recorded: state
keys, normalised actions, task groups and reward-component names.

A rollout runner records either turn by turn (``start`` at reset with the reset info's
``state_key``, ``add_turn`` after each step with the step's info, ``finish`` at the end) or, the
smallest change to an existing runner, one finished episode at a time::

    recorder = TrajectoryRecorder()
    ...                                             # when episode `index` ends:
    recorder.add_trajectory(trajectory, row=index)  # a few us/turn, paid during the rollout
    ...
    batch = recorder.to_batch()                     # ~0.4 s per million turns

>>> recorder = TrajectoryRecorder()
>>> a, b = recorder.start("g", reset_state_key="s0"), recorder.start("g", reset_state_key="s0")
>>> recorder.add_turn(a, "go north", 0.0, info={"state_key": "s1"})
>>> recorder.add_turn(b, "wait", 0.0, info={"state_key": "s0"})
>>> recorder.add_turn(a, "open door", 1.0, info={"state_key": "s2"})
>>> recorder.finish(a, outcome=1.0); recorder.finish(b, outcome=0.0)
>>> batch = recorder.to_batch()
>>> batch.state_ids.tolist()   # pre-action states: s0, s1 | s0 (derived from reset and info)
[[0, 1], [0, -1]]

Row ``i`` of the batch is the ``i``-th started episode unless ``start(..., row=i)`` says
otherwise. Every field is defined exactly as in ``TurnBatch.from_trajectories`` (same numbers;
state, action and group ids are dense in order of first *recording*, so turns interleaved across
episodes group identically under another numbering). ``TrajectoryRecorder.from_trajectories`` is
the path ``TurnBatch.from_trajectories`` itself takes, so both give every method the same result.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from typing import Any

from turngym.error import InvalidArgumentError
from turngym.trajectory import Trajectory

from ._assemble import _label, assemble
from .batch import TurnBatch, action_hash

__all__ = ["TrajectoryRecorder"]


class TrajectoryRecorder:
    """Appends turns of many concurrent episodes into flat columns; :meth:`to_batch` pads them.

    The API a rollout runner calls: :meth:`start` at reset (returns an episode handle),
    :meth:`add_turn` after each ``env.step`` (or :meth:`add_turns` for all live episodes of a
    lock-step turn at once), :meth:`finish` when the episode ends, :meth:`to_batch` for credit.
    """

    def __init__(self) -> None:
        # per turn (record order)
        self._episode, self._turn = array("q"), array("q")
        self._reward, self._progress = array("d"), array("d")
        self._valid, self._tokens = array("b"), array("q")
        self._state, self._action = array("q"), array("q")
        self._unknown = array("b")  # no key given and none derivable
        # reward components as (turn index, channel, value) triples
        self._component_at, self._component_channel = array("q"), array("q")
        self._component_value = array("d")
        # per episode
        self._group, self._rows, self._length = array("q"), array("q"), array("q")
        self._outcome, self._last_outcome = array("d"), array("d")
        self._outcome_given = array("b")
        self._finished, self._keyed = array("b"), array("b")
        self._after: list[str | None] = []
        self._traj_ids: list[str] = []
        self._group_names: list[str] = []
        # interning tables
        self._group_index: dict[str, int] = {}
        self._state_index: dict[str, int] = {}
        self._num_states = 0
        self._raw_action: dict[str, int] = {}
        self._hashed_action: dict[int, int] = {}
        self._channels: dict[str, int] = {}

    # ------------------------------------------------------------------ recording
    def start(
        self,
        group_id: str,
        *,
        traj_id: str = "",
        reset_state_key: str | None = None,
        row: int | None = None,
    ) -> int:
        """Opens an episode and returns its handle (pass it to ``add_turn``/``finish``).

        Args:
            group_id: the task group (trajectories of the same task and seed).
            traj_id: a name used in error messages.
            reset_state_key: ``info["state_key"]`` returned by ``reset``: the state turn 0 acts on.
            row: where this episode goes in the batch: rows are sorted by it (e.g. the
                episode index; distinct, gaps allowed). Default: the order of ``start`` calls.
        """
        handle = len(self._rows)
        self._rows.append(handle if row is None else int(row))
        self._group.append(self._group_index.setdefault(group_id, len(self._group_index)))
        self._group_names.append(group_id)
        self._traj_ids.append(traj_id)
        self._length.append(0)
        self._outcome.append(0.0)
        self._last_outcome.append(0.0)
        self._outcome_given.append(0)
        self._finished.append(0)
        self._keyed.append(reset_state_key is not None)
        self._after.append(reset_state_key)
        return handle

    def add_turn(
        self,
        episode: int,
        action: str,
        reward: float,
        *,
        state_key: str | None = None,
        info: Mapping[str, Any] | None = None,
        reward_components: Mapping[str, float] | None = None,
        num_tokens: int = 0,
    ) -> None:
        """Records one turn of ``episode``.

        Args:
            episode: the handle :meth:`start` returned.
            action: the action text.
            reward: the reward ``env.step`` returned.
            state_key: the pre-action state key; None derives it (the previous turn's
                ``info["state_key"]``, or the reset key for turn 0).
            info: the info ``env.step`` returned (``state_key``, ``valid_action``,
                ``progress``, ``outcome``, ``reward_components`` are read).
            reward_components: overrides ``info["reward_components"]``.
            num_tokens: number of action tokens (0 when no model produced the action).
        """
        info = info or {}
        if reward_components is None:
            reward_components = info.get("reward_components") or {}
        self.add_turns(
            [episode],
            [action],
            [reward],
            state_keys=[state_key],
            next_state_keys=[info.get("state_key")],
            valid=[info.get("valid_action", True)],
            progress=[info.get("progress") or 0.0],
            outcomes=[info.get("outcome")],
            reward_components=[reward_components] if reward_components else None,
            num_tokens=[num_tokens],
        )

    def add_turns(
        self,
        episodes: Sequence[int],
        actions: Sequence[str],
        rewards: Sequence[float],
        *,
        state_keys: Sequence[str | None] | None = None,
        next_state_keys: Sequence[str | None] | None = None,
        valid: Sequence[bool] | None = None,
        progress: Sequence[float] | None = None,
        outcomes: Sequence[float | None] | None = None,
        reward_components: Sequence[Mapping[str, float]] | None = None,
        num_tokens: Sequence[int] | None = None,
    ) -> None:
        """Records one turn for each of ``episodes`` (e.g. every live episode of a lock-step turn).

        Every sequence is aligned with ``episodes``; an episode listed several times gets that
        many consecutive turns, in order.
        ``next_state_keys`` are the post-action keys (``info["state_key"]``) used to derive the
        next turn's pre-action key; ``outcomes`` the info's ``outcome`` (None when not set).
        """
        episodes = list(episodes)
        count = len(episodes)
        base = len(self._reward)
        items: list[tuple[int, str, Any]] = []
        try:  # convert everything before touching the columns, so a bad value changes nothing
            reward_column = array("d", rewards)
            progress_column = array("d", progress) if progress is not None else None
            token_column = array("q", num_tokens) if num_tokens is not None else None
            items = (
                [
                    (base + k, name, value)
                    for k, parts in enumerate(reward_components)
                    if parts
                    for name, value in parts.items()
                ]
                if reward_components is not None
                else []
            )
            component_values = array("d", [value for _, _, value in items])
        except (TypeError, ValueError, OverflowError):
            raise self._not_a_number(episodes, rewards, progress, num_tokens, items) from None
        if not (len(reward_column) == len(actions) == count):
            raise InvalidArgumentError(
                f"add_turns got {count} episodes, {len(actions)} actions and {len(reward_column)} "
                "rewards; pass one of each per episode."
            )
        lengths, after, keyed = self._length, self._after, self._keyed
        given = list(state_keys) if state_keys is not None else [None] * count
        nexts = list(next_state_keys) if next_state_keys is not None else [None] * count
        recorded = [k is not None or f is not None for k, f in zip(given, nexts, strict=True)]
        first = episodes[0] if count else 0
        if count and episodes.count(first) == count:  # one episode's consecutive turns
            turn_numbers: Sequence[int] = range(lengths[first], lengths[first] + count)
            lengths[first] += count
            previous = [after[first], *nexts[:-1]]
            derived = [k if k is not None else p for k, p in zip(given, previous, strict=True)]
            keyed[first] |= any(recorded)
            after[first] = nexts[-1]
        else:  # e.g. one turn of every live episode; an episode may repeat, in order
            turn_numbers, derived = [], []
            for e, key, following, seen in zip(episodes, given, nexts, recorded, strict=True):
                turn_numbers.append(lengths[e])
                lengths[e] += 1
                derived.append(key if key is not None else after[e])
                keyed[e] |= seen
                after[e] = following
        # pre-action state ids: interned; a key that is None is a state of its own (flagged)
        index, get = self._state_index, self._state_index.get
        states = [get(key, -1) for key in derived]
        for j in [j for j, state in enumerate(states) if state < 0]:
            key = derived[j]
            state = None if key is None else get(key)
            if state is None:
                state = self._num_states
                self._num_states += 1
                if key is not None:
                    index[key] = state
            states[j] = state
        raw, hashed = self._raw_action, self._hashed_action
        action_ids = [raw.get(text, -1) for text in actions]
        for j in [j for j, action in enumerate(action_ids) if action < 0]:
            text = actions[j]
            action = raw.get(text)
            if action is None:
                action = raw[text] = hashed.setdefault(action_hash(text), len(hashed))
            action_ids[j] = action
        self._reward.extend(reward_column)
        self._episode.extend(array("q", episodes))
        self._turn.extend(array("q", turn_numbers))
        self._valid.extend(array("b", [1 if v else 0 for v in valid] if valid else [1] * count))
        self._progress.extend(progress_column or array("d", [0.0]) * count)
        self._tokens.extend(token_column or array("q", [0]) * count)
        self._state.extend(array("q", states))
        self._unknown.extend(array("b", [key is None for key in derived]))
        self._action.extend(array("q", action_ids))
        if outcomes is not None:
            last = self._last_outcome
            for e, value in zip(episodes, outcomes, strict=True):
                if value is not None:
                    last[e] = float(value)
        if items:
            channels = self._channels
            for name in {name for _, name, _ in items} - channels.keys():
                channels[name] = len(channels)
            self._component_at.extend(array("q", [at for at, _, _ in items]))
            self._component_channel.extend(array("q", [channels[name] for _, name, _ in items]))
            self._component_value.extend(component_values)

    def _not_a_number(
        self,
        episodes: list[int],
        rewards: Sequence[Any],
        progress: Sequence[Any] | None,
        num_tokens: Sequence[Any] | None,
        items: list[tuple[int, str, Any]] | None,
    ) -> Exception:
        """The error naming the first value of an ``add_turns`` call that is not a number."""
        for name, values in (
            ("reward", rewards),
            ("progress", progress),
            ("num_tokens", num_tokens),
        ):
            for k, value in enumerate(values or ()):
                if not isinstance(value, (int, float)):
                    return InvalidArgumentError(
                        f"{self._where(episodes, k)} {name} is {value!r}, not a number; "
                        "record a float."
                    )
        base = len(self._reward)
        for at, name, value in items or ():
            if not isinstance(value, (int, float)):
                return InvalidArgumentError(
                    f"{self._where(episodes, at - base)} component {name!r} is {value!r}, not a "
                    "number; record a float."
                )
        return InvalidArgumentError("add_turns got a value that is not a number; record floats.")

    def finish(self, episode: int, *, outcome: float | None = None) -> None:
        """Closes ``episode``; ``outcome`` None takes the last recorded ``info["outcome"]`` (else 0)."""
        self._finished[episode] = 1
        if outcome is not None:
            self._outcome[episode], self._outcome_given[episode] = float(outcome), 1

    def _where(self, episodes: Sequence[int], k: int) -> str:
        """Names the ``k``-th turn of an ``add_turns`` call that has not been recorded yet."""
        e = episodes[k]
        if not 0 <= e < len(self._rows):
            return f"episode handle {e}"
        turn = self._length[e] + sum(1 for j in range(k) if episodes[j] == e)
        return f"{_label(self._rows[e], self._traj_ids[e], self._group_names[e])}, turn {turn}"

    @property
    def num_trajectories(self) -> int:
        return len(self._rows)

    @property
    def num_turns(self) -> int:
        return len(self._reward)

    # ------------------------------------------------------------------ from objects
    def add_trajectory(self, trajectory: Trajectory, *, row: int | None = None) -> int:
        """Records a whole finished ``Trajectory`` (e.g. when a rollout finishes an episode);
        returns its handle. ``row`` as in :meth:`start`."""
        if not isinstance(trajectory, Trajectory):
            raise InvalidArgumentError(
                f"{'trajs' if row is None else 'episode'}[{len(self._rows) if row is None else row}] "
                f"is a {type(trajectory).__name__}, not a turngym.Trajectory; load recorded "
                "episodes with turngym.load_trajectories(path)."
            )
        turns = trajectory.turns
        handle = self.start(
            trajectory.group_id or trajectory.task_id,
            traj_id=trajectory.traj_id,
            reset_state_key=trajectory.reset_state_key,
            row=row,
        )
        if not turns:
            return handle  # to_batch names it: a trajectory without turns has no credit
        infos = [turn.info for turn in turns]
        components = [turn.reward_components for turn in turns]
        self.add_turns(
            [handle] * len(turns),
            [turn.action for turn in turns],
            [turn.reward for turn in turns],
            state_keys=[turn.state_key for turn in turns],
            next_state_keys=[info.get("state_key") for info in infos],
            valid=[info.get("valid_action", True) for info in infos],
            progress=[info.get("progress") or 0.0 for info in infos],
            reward_components=components if any(components) else None,
            num_tokens=[len(turn.token_ids or ()) for turn in turns],
        )
        outcome = trajectory.outcome
        if outcome is None:
            outcome = turns[-1].info.get("outcome")
        self.finish(handle, outcome=0.0 if outcome is None else outcome)
        return handle

    @classmethod
    def from_trajectories(cls, trajectories: Sequence[Trajectory]) -> TrajectoryRecorder:
        """Records ``Trajectory`` objects (row ``i`` = ``trajectories[i]``), one list per field."""
        recorder = cls()
        for trajectory in trajectories:
            recorder.add_trajectory(trajectory)
        return recorder

    # ------------------------------------------------------------------ batch
    def to_batch(self) -> TurnBatch:
        """The padded :class:`TurnBatch` of every recorded episode (vectorised NumPy).

        Raises:
            InvalidArgumentError: no episodes, an episode without turns or not finished, a row
                given twice, or a non-finite number; the message names the
                trajectory (and turn) and the fix.
        """
        return assemble(self)
