"""Agent benchmark: success, reward and turns of policies on turngym envs, plus LLM-policy speed.

    python benchmarks/agents_bench.py --quick                      # Corridor + TextWorld-Easy
    python benchmarks/agents_bench.py --env all --episodes 50 --hf /path/to/model

Part 1 runs ``turngym.agents.bench.run_bench`` (random, expert and optionally ``hf:PATH``) and
prints each policy's mean reward as a ratio of the random baseline measured in the same run.
Part 2 times ``HFPolicy.act`` on a tiny offline model at batch sizes 1..N (actions per second,
ratio vs batch size 1) and one learner iteration, which shows what batched generation buys.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def policy_table(env_ids: list[str], policies: list[str], episodes: int, out: str) -> None:
    from turngym.agents.bench import run_bench

    report = run_bench(env_ids, policies, episodes, out, progress=False)
    baseline = {r["env"]: r["mean_reward"] for r in report["results"] if r["policy"] == "random"}
    print(
        f"\n{'env':<30}{'policy':<12}{'success':>9}{'reward':>9}{'turns':>8}{'reward/random':>15}"
    )
    for r in report["results"]:
        base = baseline.get(r["env"])
        ratio = f"{r['mean_reward'] / base:.2f}x" if base not in (None, 0) else "-"
        print(
            f"{r['env']:<30}{r['policy'][:11]:<12}{r['success']:>9.2f}{r['mean_reward']:>9.3f}"
            f"{r['mean_turns']:>8.1f}{ratio:>15}"
        )


def generation_speed(batch_sizes: list[int], repeats: int) -> None:
    import torch

    from turngym.agents.hf import HFPolicy
    from turngym.agents.learner import Learner, LearnerConfig
    from turngym.agents.tiny import tiny_model_dir
    from turngym.policy import Conversation

    env_kwargs = {"lengths": (1, 2), "max_turns": 4}
    path = tiny_model_dir(env_kwargs=env_kwargs, expert_fraction=0.3, warmup_steps=100)
    policy = HFPolicy.from_pretrained(path, max_new_tokens=8, seed=0)
    conversation = Conversation(
        messages=[
            {"role": "system", "content": "You are in a corridor. The exit is to the east."},
            {"role": "user", "content": "You are in a corridor, 0 steps from the start."},
        ]
    )
    print(f"\nHFPolicy.act on a tiny model ({policy.device}, max_new_tokens=8)")
    print(f"{'batch':>6}{'actions/s':>12}{'vs batch 1':>12}")
    base = None
    for size in batch_sizes:
        policy.act([conversation] * size)  # warm-up
        started = time.perf_counter()
        for _ in range(repeats):
            policy.act([conversation] * size)
        rate = size * repeats / (time.perf_counter() - started)
        base = base or rate
        print(f"{size:>6}{rate:>12.1f}{rate / base:>11.1f}x")
    with tempfile.TemporaryDirectory() as out:
        config = LearnerConfig(
            model=str(path),
            env_kwargs=env_kwargs,
            output_dir=out,
            steps=3,
            groups_per_step=8,
            group_size=4,
            max_new_tokens=4,
            learning_rate=1e-3,
            micro_batch_size=64,
        )
        from collections import defaultdict

        def grpo(trajectories):  # local episode-level GRPO, so the timing needs no credit module
            returns = torch.tensor([t.total_reward for t in trajectories])
            groups = defaultdict(list)
            for index, trajectory in enumerate(trajectories):
                groups[trajectory.group_id].append(index)
            advantages = torch.zeros(len(trajectories), max(len(t.turns) for t in trajectories))
            for rows in groups.values():
                values = returns[rows]
                values = (values - values.mean()) / (values.std() + 1e-6)
                for row, value in zip(rows, values, strict=True):
                    advantages[row, : len(trajectories[row].turns)] = value
            return advantages

        learner = Learner(config, credit_fn=grpo)
        seconds = [learner.step()["seconds"] for _ in range(config.steps)]
        print(f"\nlearner iteration (32 episodes, rollout + update): {min(seconds):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="two envs, few episodes, small batches"
    )
    parser.add_argument("--env", default=None, help="ID[,ID] or all")
    parser.add_argument("--episodes", type=int, default=None)
    parser.add_argument("--hf", default=None, help="also benchmark hf:PATH")
    parser.add_argument("--out", default="bench-results/agents")
    args = parser.parse_args()
    import turngym

    if args.env == "all":
        env_ids = list(turngym.list_envs())
    elif args.env:
        env_ids = args.env.split(",")
    else:
        env_ids = ["turngym/Corridor-v0", "turngym/TextWorld-Easy-v1"]
    episodes = args.episodes or (10 if args.quick else 50)
    policies = ["random", "expert"] + ([f"hf:{args.hf}"] if args.hf else [])
    policy_table(env_ids, policies, episodes, args.out)
    generation_speed([1, 4, 16] if args.quick else [1, 4, 16, 64], 3 if args.quick else 10)


if __name__ == "__main__":
    main()
