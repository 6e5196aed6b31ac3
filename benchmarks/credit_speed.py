"""Speed of ``turngym.credit``, end to end (rollout output -> advantages) and per method.

    python benchmarks/credit_speed.py            # 16384 trajectories x 64 turns = 1M turns
    python benchmarks/credit_speed.py --quick    # 2048 x 32

Trajectories come in task groups of ``--group-size`` and walk a small random state graph, so
states and (state, action) edges repeat across a group as in real rollouts (GiGPO anchors and
SALT edges are non-trivial). The same episodes are recorded two ways, as a rollout would:

- **objects**: ``Turn``/``Trajectory`` objects (what ``turngym.rollout`` returns), then
  ``TurnBatch.from_trajectories`` (the old path);
- **columns**: a :class:`turngym.credit.TrajectoryRecorder` filled one lock-step turn at a time
  (``add_turns`` over all live episodes), then ``recorder.to_batch()`` (the columnar path).

Table 1 times *end to end* for grpo, gigpo and salt: batch building + the method, both paths in
the same run (goal: <= 1 s on CPU for 1M turns on the columnar path). The recording cost of each
path is printed too; it is paid during the rollout, turn by turn, beside env steps and generation.
Table 2 times every method alone on the built batch (median of ``--repeats``; ratio to GRPO; CUDA
beside CPU when present). ``--threads 1`` avoids torch's thread-pool oversubscription on a shared
machine (the load average is printed so runs can be compared).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from turngym import Trajectory, Turn
from turngym.credit import (
    TrajectoryRecorder,
    TurnBatch,
    gae,
    gated,
    gigpo,
    grpo,
    igpo,
    reinforce,
    returns,
    rloo,
    salt,
    spa,
)

GOAL_SECONDS = 1.0  # CPU goal for grpo / gigpo / salt on 1M turns, batch building included
ACTIONS = ["go north", "go south", "take key", "open door"]


class Episodes:
    """Synthetic lock-step rollout data: per (trajectory, turn) arrays, generated with NumPy."""

    def __init__(
        self,
        num_traj: int,
        turns: int,
        group_size: int,
        num_states: int = 12,
        seed: int = 0,
        ragged: bool = False,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.n, self.width, self.group_size = num_traj, turns, group_size
        self.lengths = (
            rng.integers(max(1, turns // 2), turns + 1, num_traj)
            if ragged
            else np.full(num_traj, turns)
        )
        self.actions = rng.integers(0, 4, (num_traj, turns))
        self.states = np.zeros((num_traj, turns + 1), dtype=np.int64)
        for t in range(turns):
            self.states[:, t + 1] = (self.states[:, t] * 3 + self.actions[:, t] + 1) % num_states
        self.outcomes = (rng.random(num_traj) < 0.5).astype(float)
        self.groups = np.arange(num_traj) // group_size

    def key(self, i: int, t: int) -> str:
        return f"g{self.groups[i]}-s{self.states[i, t]}"

    def turn(self, i: int, t: int) -> tuple[str, float, dict, dict]:
        """(action, reward, components, info) of turn ``t`` of trajectory ``i``."""
        action = int(self.actions[i, t])
        components = {"progress": 0.01 * action, "format": -0.1 if action == 3 else 0.0}
        last = t == self.lengths[i] - 1
        if last:
            components["outcome"] = float(self.outcomes[i])
        info = {
            "valid_action": action != 3,
            "progress": min(1.0, t / self.width),
            "state_key": self.key(i, t + 1),
            "reward_components": components,
        }
        if last:
            info["outcome"] = float(self.outcomes[i])
        return ACTIONS[action], sum(components.values()), components, info

    def as_trajectories(self) -> list[Trajectory]:
        trajectories = []
        for i in range(self.n):
            turns = []
            for t in range(int(self.lengths[i])):
                action, reward, components, info = self.turn(i, t)
                turns.append(
                    Turn(
                        action=action,
                        reward=reward,
                        reward_components=components,
                        state_key=self.key(i, t),
                        info=info,
                    )
                )
            trajectories.append(
                Trajectory(
                    turns=turns,
                    group_id=f"g{self.groups[i]}",
                    traj_id=str(i),
                    outcome=float(self.outcomes[i]),
                    reset_state_key=self.key(i, 0),
                )
            )
        return trajectories

    def turn_columns(self) -> list[tuple]:
        """Per lock-step turn, what a runner holds after stepping every live env (not timed)."""
        columns = []
        for t in range(self.width):
            live = np.flatnonzero(self.lengths > t).tolist()
            turns = [self.turn(i, t) for i in live]
            columns.append((live, turns, [self.key(i, t) for i in live]))
        return columns

    def record(self, columns: list[tuple]) -> TrajectoryRecorder:
        recorder = TrajectoryRecorder()
        for i in range(self.n):
            recorder.start(f"g{self.groups[i]}", traj_id=str(i), reset_state_key=self.key(i, 0))
        for live, turns, keys in columns:
            infos = [info for _, _, _, info in turns]
            recorder.add_turns(
                live,
                [action for action, _, _, _ in turns],
                [reward for _, reward, _, _ in turns],
                state_keys=keys,
                next_state_keys=[info["state_key"] for info in infos],
                valid=[info["valid_action"] for info in infos],
                progress=[info["progress"] for info in infos],
                outcomes=[info.get("outcome") for info in infos],
                reward_components=[components for _, _, components, _ in turns],
            )
        for i in range(self.n):
            recorder.finish(i)
        return recorder


def check_same(old: TurnBatch, new: TurnBatch) -> None:
    """Both paths give the same batch: equal numbers, and ids that partition turns alike (the
    columnar path numbers states/actions in recording order, lock-step, not row by row)."""
    for field in (
        "rewards",
        "components",
        "valid",
        "mask",
        "group_ids",
        "outcome",
        "progress",
        "token_counts",
    ):
        if not torch.equal(getattr(old, field), getattr(new, field)):
            raise SystemExit(f"the two paths disagree on {field}: a bug, not a benchmark result")
    for field in ("state_ids", "action_ids", "history_ids"):
        a, b = getattr(old, field)[old.mask], getattr(new, field)[new.mask]
        pairs = torch.unique(torch.stack([a, b]), dim=1).shape[1]
        if not pairs == torch.unique(a).numel() == torch.unique(b).numel():
            raise SystemExit(f"the two paths group turns differently by {field}: a bug")


def timed(function: Callable[[], object], repeats: int, sync: Callable[[], None]) -> float:
    function()  # warm-up (allocations, CUDA kernels)
    sync()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        sync()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def methods(batch: TurnBatch) -> dict[str, Callable[[TurnBatch], torch.Tensor]]:
    n, width = batch.mask.shape
    generator = torch.Generator().manual_seed(0)
    values = torch.rand(n, width, generator=generator).to(batch.device)
    probs = torch.rand(n, width + 1, generator=generator).to(batch.device)
    return {
        "grpo": lambda b: grpo(b),
        "rloo": lambda b: rloo(b),
        "reinforce": lambda b: reinforce(b, gamma=0.99),
        "returns": lambda b: returns(b, gamma=0.99),
        "gae": lambda b: gae(b, values=values.to(b.device), gamma=0.99, lam=0.95),
        "gigpo": lambda b: gigpo(b),
        "salt": lambda b: salt(b),
        "salt (prefix)": lambda b: salt(b, merge="prefix"),
        "igpo": lambda b: igpo(b, gold_probs=probs.to(b.device)),
        "spa": lambda b: spa(b),
        "gated": lambda b: gated(b, chain=[("outcome", 1.0), ("progress", 0.1)]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trajectories", type=int, default=16384)
    parser.add_argument("--turns", type=int, default=64)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ragged", action="store_true", help="random lengths in [turns/2, turns]")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0 = torch default)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="2048 trajectories x 32 turns, 3 repeats"
    )
    args = parser.parse_args()
    if args.quick:
        args.trajectories, args.turns, args.repeats = 2048, 32, 3
    if args.threads:
        torch.set_num_threads(args.threads)

    episodes = Episodes(args.trajectories, args.turns, args.group_size, ragged=args.ragged)
    started = time.perf_counter()
    trajectories = episodes.as_trajectories()
    record_objects = time.perf_counter() - started
    columns = episodes.turn_columns()
    started = time.perf_counter()
    recorder = episodes.record(columns)
    record_columns = time.perf_counter() - started
    del columns
    old_batch = TurnBatch.from_trajectories(trajectories)
    batch = recorder.to_batch()
    check_same(old_batch, batch)
    del old_batch
    total_turns = int(batch.mask.sum())
    cuda = torch.cuda.is_available()
    print(
        f"{args.trajectories} trajectories x {'<= ' if args.ragged else ''}{args.turns} turns = "
        f"{total_turns} turns (groups of {args.group_size}); torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads{', ' + torch.cuda.get_device_name() if cuda else ''}"
    )
    print(f"load average {os.getloadavg()[0]:.1f} (other processes slow every row alike)")
    print(
        f"recording during the rollout (not in the table): Turn/Trajectory objects "
        f"{record_objects:.2f} s, recorder.add_turns {record_columns:.2f} s "
        f"({record_columns / total_turns * 1e6:.2f} us/turn)\n"
    )

    header = f"{'end to end (CPU)':<22}{'objects s':>10}{'columns s':>10}{'x faster':>9}"
    print(header + "  goal (columns)")
    print("-" * (len(header) + 16))
    paths = {
        "objects": lambda t=trajectories: TurnBatch.from_trajectories(t),
        "columns": recorder.to_batch,
    }
    build = {name: timed(make, args.repeats, lambda: None) for name, make in paths.items()}
    print(
        f"{'batch building only':<22}{build['objects']:>10.3f}{build['columns']:>10.3f}"
        f"{build['objects'] / build['columns']:>9.1f}"
    )
    for name in ("grpo", "gigpo", "salt"):
        method = methods(batch)[name]
        seconds = {
            path: timed(lambda m=make, f=method: f(m()), args.repeats, lambda: None)
            for path, make in paths.items()
        }
        verdict = "ok" if seconds["columns"] <= GOAL_SECONDS else f"MISSED (> {GOAL_SECONDS} s)"
        print(
            f"{name:<22}{seconds['objects']:>10.3f}{seconds['columns']:>10.3f}"
            f"{seconds['objects'] / seconds['columns']:>9.1f}  {verdict}"
        )
    del trajectories, paths

    gpu_batch = batch.to("cuda") if cuda else None
    rows = []
    for name, function in methods(batch).items():
        cpu = timed(lambda f=function: f(batch), args.repeats, lambda: None)
        gpu = (
            timed(lambda f=function: f(gpu_batch), args.repeats, torch.cuda.synchronize)
            if cuda
            else None
        )
        rows.append((name, cpu, gpu))
    baseline = dict((name, cpu) for name, cpu, _ in rows)["grpo"]
    header = f"\n{'method alone':<22}{'CPU s':>9}{'Mturns/s':>10}{'x GRPO':>8}"
    header += f"{'CUDA s':>9}{'x CPU':>8}" if cuda else ""
    print(header)
    print("-" * (len(header) - 1))
    for name, cpu, gpu in rows:
        line = f"{name:<22}{cpu:>9.3f}{total_turns / cpu / 1e6:>10.2f}{cpu / baseline:>8.1f}"
        if cuda:
            line += f"{gpu:>9.4f}{cpu / gpu:>8.1f}"
        print(line)


if __name__ == "__main__":
    main()
