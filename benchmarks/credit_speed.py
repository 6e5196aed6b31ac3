"""Speed of every ``turngym.credit`` method on a large synthetic batch (1M turns by default).

    python benchmarks/credit_speed.py            # 16384 trajectories x 64 turns
    python benchmarks/credit_speed.py --quick    # 2048 x 32

Trajectories come in task groups of ``--group-size`` and walk a small random state graph, so
states and (state, action) edges repeat across a group as in real rollouts (GiGPO anchors and
SALT edges are non-trivial). Prints one row per method: median seconds over ``--repeats`` runs
on CPU (and on CUDA when present), turns per second, and the ratio to GRPO measured in the same
run. ``TurnBatch.from_trajectories`` (Python, once per batch) is timed on its own row.
On a machine shared with other jobs, ``--threads 1`` avoids torch's thread-pool oversubscription
(the load average is printed so runs can be compared).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable

import torch

from turngym import Trajectory, Turn
from turngym.credit import (
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

GOAL_SECONDS = 1.0  # CPU goal for grpo / gigpo / salt on 1M turns


def synthetic_trajectories(
    num_traj: int,
    turns: int,
    group_size: int,
    num_states: int = 12,
    seed: int = 0,
    ragged: bool = False,
) -> list[Trajectory]:
    """Random walks over ``num_states`` states with 4 actions (``ragged``: turns/2..turns long)."""
    rng = random.Random(seed)
    actions = ["go north", "go south", "take key", "open door"]
    trajectories = []
    for i in range(num_traj):
        group = i // group_size
        length = rng.randint(max(1, turns // 2), turns) if ragged else turns
        state, turn_list = 0, []
        for t in range(length):
            action = rng.randrange(4)
            last = t == length - 1
            outcome = float(rng.random() < 0.5) if last else 0.0
            components = {"progress": 0.01 * action, "format": -0.1 if action == 3 else 0.0}
            if last:
                components["outcome"] = outcome
            turn_list.append(
                Turn(
                    action=actions[action],
                    reward=sum(components.values()),
                    reward_components=components,
                    state_key=f"g{group}-s{state}",
                    info={"valid_action": action != 3, "progress": min(1.0, t / turns)},
                )
            )
            state = (state * 3 + action + 1) % num_states
        trajectories.append(
            Trajectory(turns=turn_list, group_id=f"g{group}", outcome=outcome, traj_id=str(i))
        )
    return trajectories


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
    parser.add_argument("--repeats", type=int, default=5)
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

    started = time.perf_counter()
    trajectories = synthetic_trajectories(
        args.trajectories, args.turns, args.group_size, ragged=args.ragged
    )
    generated = time.perf_counter() - started
    started = time.perf_counter()
    batch = TurnBatch.from_trajectories(trajectories)
    built = time.perf_counter() - started
    del trajectories
    total_turns = int(batch.mask.sum())
    cuda = torch.cuda.is_available()
    gpu_batch = batch.to("cuda") if cuda else None
    print(
        f"{args.trajectories} trajectories x {'<= ' if args.ragged else ''}{args.turns} turns = {total_turns} turns "
        f"(groups of {args.group_size}); torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
        f"{', ' + torch.cuda.get_device_name() if cuda else ''}"
    )
    print(f"generating the Trajectory objects took {generated:.2f} s (not a credit cost)")
    print(f"load average {os.getloadavg()[0]:.1f} (other processes slow every row alike)\n")

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
    header = f"{'method':<22}{'CPU s':>9}{'Mturns/s':>10}{'x GRPO':>8}"
    header += f"{'CUDA s':>9}{'x CPU':>8}" if cuda else ""
    print(header + "  goal")
    print("-" * (len(header) + 6))
    print(
        f"{'TurnBatch (python)':<22}{built:>9.3f}{total_turns / built / 1e6:>10.2f}{built / baseline:>8.1f}"
    )
    for name, cpu, gpu in rows:
        line = f"{name:<22}{cpu:>9.3f}{total_turns / cpu / 1e6:>10.2f}{cpu / baseline:>8.1f}"
        if cuda:
            line += f"{gpu:>9.4f}{cpu / gpu:>8.1f}"
        if name in ("grpo", "gigpo", "salt"):
            line += "  " + ("ok" if cpu <= GOAL_SECONDS else f"MISSED (> {GOAL_SECONDS} s)")
        print(line)


if __name__ == "__main__":
    main()
