"""Rollout engine speed, each result a ratio against a baseline measured in the same run.

1. **Throughput**: ``turngym.rollout`` in-process vs worker processes vs gymnasium's
   ``AsyncVectorEnv`` on a corridor with ``--work-ms`` of CPU work per step (a TextWorld/ALFWorld
   engine step costs ~1-5 ms).
2. **Kept pool vs fresh workers**: ``--calls`` consecutive ``rollout()`` calls of 8 episodes (all
   12 turns long, so that calls split the work evenly), each
   building its own workers (fresh) or all on one ``EnvPool`` (kept). The kept pool's per-call
   overhead is ``(T(calls x 8 episodes on the pool) - T(one call of calls x 8 episodes)) / calls``
   (what splitting the work into calls costs); the fresh start-up is what a fresh call costs
   more than a kept one. Target: overhead <= 5 % of the start-up.
3. **Async vs lock-step**: envs whose step sleeps 5-200 ms (drawn per step, the same draws in
   both modes: SWE commands, web pages) and an async policy that simulates a batching LLM server
   (answers take 0.5-1.5 x ``--llm-ms``, a batch returns with its slowest answer, + 2 ms per
   conversation). Target: async >= 1.5x episodes/s.
4. **Ray vs local pool** on the same work, with ``--work-ms`` per step and with none (the
   transport's own per-step cost); report only; skipped with ``--quick`` or without ``[ray]``.

    python benchmarks/rollout_speed.py [--quick] [--work-ms 2] [--envs 2]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import zlib

import gymnasium
import numpy as np

import turngym
from turngym.envs.toy.corridor import CorridorEnv


class BusyCorridor(CorridorEnv):
    """The corridor plus ``work_ms`` of pure-Python CPU work per step."""

    def __init__(self, *, work_ms: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.work_ms = work_ms

    def _act(self, action):
        deadline = time.perf_counter() + self.work_ms / 1000
        while time.perf_counter() < deadline:
            pass
        return super()._act(action)


class SlowCorridor(CorridorEnv):
    """The corridor whose every step sleeps 5-200 ms, drawn from (reset seed, turn)."""

    def reset(self, *, seed=None, options=None):
        self._draws = random.Random(seed)
        return super().reset(seed=seed, options=options)

    def _act(self, action):
        time.sleep(self._draws.uniform(0.005, 0.200))
        return super()._act(action)


def busy_factory(work_ms: float = 2.0, max_turns: int = 12):
    return BusyCorridor(work_ms=work_ms, max_turns=max_turns)


def slow_factory(max_turns: int = 6):
    return SlowCorridor(lengths=(20,), max_turns=max_turns)


class SimulatedServer:
    """An async policy standing in for a batching LLM server: conversation i of a call needs
    ``latency * (0.5 + u_i)`` seconds (u_i in [0, 1) drawn from the conversation: answers differ in
    length), the call returns when its longest answer is done, plus 2 ms per conversation. It
    always waits (the corridor is long: every episode hits the 6-turn limit in both modes)."""

    def __init__(self, latency_ms: float) -> None:
        self.latency = latency_ms / 1000
        self.batches: list[int] = []

    async def act(self, batch):
        self.batches.append(len(batch))
        draws = [
            zlib.crc32(f"{c.task_id}{c.turn}{c.info.get('progress')}".encode()) / 2**32
            for c in batch
        ]
        await asyncio.sleep(self.latency * (0.5 + max(draws)) + 0.002 * len(batch))
        return ["wait"] * len(batch)


def bench_rollout(num_envs: int, episodes: int, work_ms: float) -> tuple[float, int]:
    start = time.perf_counter()
    trajectories = turngym.rollout(
        busy_factory,
        turngym.agents.RandomPolicy(seed=0),
        num_episodes=episodes,
        num_envs=num_envs,
        env_kwargs={"work_ms": work_ms},
        progress=False,
    )
    steps = sum(len(t.turns) for t in trajectories)
    return steps / (time.perf_counter() - start), steps


def bench_async_vector(num_envs: int, steps: int, work_ms: float) -> float:
    vector = gymnasium.vector.AsyncVectorEnv([lambda: busy_factory(work_ms)] * num_envs)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    vector.reset(seed=0)
    done = 0
    while done < steps:
        actions = tuple(["go east", "go west", "wait"][i] for i in rng.integers(3, size=num_envs))
        vector.step(actions)
        done += num_envs
    rate = done / (time.perf_counter() - start)
    vector.close()
    return rate


def wait_policy(batch):
    """Always waits: every episode runs to the 12-turn limit, so the calls split the work evenly
    and the kept-pool overhead is not confused with an idle worker at the end of a call."""
    return ["wait"] * len(batch)


def kept_vs_fresh(calls: int, num_envs: int, work_ms: float) -> dict[str, float]:
    """Seconds per call: fresh workers, kept pool, and one big call split per call."""
    policy = wait_policy
    kw = {"env_kwargs": {"work_ms": work_ms}, "progress": False}
    start = time.perf_counter()
    for call in range(calls):
        turngym.rollout(busy_factory, policy, num_episodes=8, seed=call, num_envs=num_envs, **kw)
    fresh = (time.perf_counter() - start) / calls
    kept, one_call = [], []
    with turngym.EnvPool(busy_factory, num_envs, {"work_ms": work_ms}) as pool:
        turngym.rollout(busy_factory, policy, num_episodes=num_envs, pool=pool, **kw)  # warm
        for _ in range(2):  # the minimum of two rounds: this machine's load comes in bursts
            start = time.perf_counter()
            for call in range(calls):
                turngym.rollout(busy_factory, policy, num_episodes=8, seed=call, pool=pool, **kw)
            kept.append((time.perf_counter() - start) / calls)
            start = time.perf_counter()
            turngym.rollout(busy_factory, policy, num_episodes=8 * calls, pool=pool, **kw)
            one_call.append((time.perf_counter() - start) / calls)
    kept, one_call = min(kept), min(one_call)
    return {"fresh": fresh, "kept": kept, "one_call": one_call}


def async_vs_lockstep(episodes: int, num_envs: int, llm_ms: float) -> dict[str, float]:
    rates = {}
    with turngym.EnvPool(slow_factory, num_envs) as pool:
        for mode in ("lockstep", "async"):
            server = SimulatedServer(llm_ms)
            start = time.perf_counter()
            trajectories = turngym.rollout(
                slow_factory, server, num_episodes=episodes, pool=pool, mode=mode,
                batch_wait=0.005, progress=False,
            )  # fmt: skip
            rates[mode] = episodes / (time.perf_counter() - start)
            rates[f"{mode}_batch"] = float(np.mean(server.batches))
            assert all(len(t.turns) == 6 for t in trajectories)
    return rates


def ray_vs_local(episodes: int, num_envs: int, work_ms: float) -> dict[str, float] | None:
    """Steps/s of a local and a Ray pool with ``work_ms`` and with no env work (the per-step
    cost of the transport alone)."""
    try:
        import ray
    except ImportError:
        return None
    started = time.perf_counter()
    ray.init(num_cpus=num_envs, include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - started
    rates = {"ray_init_s": ray_start}
    policy = turngym.agents.RandomPolicy(seed=0)
    try:
        for executor in ("process", "ray"):
            for work in (work_ms, 0.0):
                with turngym.EnvPool(
                    busy_factory, num_envs, {"work_ms": work}, executor=executor
                ) as pool:
                    kw = {"pool": pool, "progress": False}
                    turngym.rollout(busy_factory, policy, num_episodes=num_envs, **kw)  # warm
                    start = time.perf_counter()
                    trajectories = turngym.rollout(
                        busy_factory, policy, num_episodes=episodes, **kw
                    )
                    steps = sum(len(t.turns) for t in trajectories)
                    rates[f"{executor}@{work}"] = steps / (time.perf_counter() - start)
    finally:
        ray.shutdown()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (no Ray)")
    parser.add_argument("--work-ms", type=float, default=2.0, help="CPU work per env step")
    parser.add_argument("--envs", type=int, default=2, help="parallel envs (this machine: 2 cores)")
    parser.add_argument("--calls", type=int, default=20, help="rollout() calls, kept vs fresh")
    parser.add_argument("--llm-ms", type=float, default=50.0, help="simulated server latency")
    args = parser.parse_args()
    episodes = 40 if args.quick else 200
    base, steps = bench_rollout(1, episodes, args.work_ms)
    rows = [("turngym.rollout, in-process (baseline)", base)]
    rows.append(
        (
            f"turngym.rollout, {args.envs} worker processes",
            bench_rollout(args.envs, episodes, args.work_ms)[0],
        )
    )
    rows.append(
        (
            f"gymnasium AsyncVectorEnv, {args.envs} envs (no policy batching, auto-reset)",
            bench_async_vector(args.envs, steps, args.work_ms),
        )
    )
    print(f"1. env steps with {args.work_ms} ms CPU work each, {steps} steps per runner")
    print(f"{'runner':<72} {'steps/s':>9} {'vs baseline':>11}")
    for name, rate in rows:
        print(f"{name:<72} {rate:>9.1f} {rate / base:>10.2f}x")

    calls = 3 if args.quick else args.calls
    timing = kept_vs_fresh(calls, args.envs, args.work_ms)
    startup = timing["fresh"] - timing["kept"]
    overhead = timing["kept"] - timing["one_call"]
    print(f"\n2. {calls} rollout() calls of 8 episodes, {args.envs} workers (seconds per call)")
    print(f"fresh workers per call: {timing['fresh']:.3f} s; kept pool: {timing['kept']:.3f} s; "
          f"one call of {8 * calls} episodes, per 8: {timing['one_call']:.3f} s")  # fmt: skip
    print(f"fresh start-up per call: {startup:.3f} s; kept-pool overhead per call: "
          f"{overhead * 1000:.1f} ms = {overhead / startup:.1%} of the start-up (target <= 5%)")  # fmt: skip

    envs, slow_episodes = (4, 4) if args.quick else (8, 32)
    rates = async_vs_lockstep(slow_episodes, envs, args.llm_ms)
    print(f"\n3. {slow_episodes} episodes x 6 turns, {envs} envs sleeping 5-200 ms per step, "
          f"simulated LLM server (0.5-1.5 x {args.llm_ms:.0f} ms per answer)")  # fmt: skip
    print(f"lock-step: {rates['lockstep']:.2f} episodes/s (mean batch "
          f"{rates['lockstep_batch']:.1f}); async: {rates['async']:.2f} episodes/s (mean batch "
          f"{rates['async_batch']:.1f}); async/lock-step: {rates['async'] / rates['lockstep']:.2f}x "
          "(target >= 1.5x)")  # fmt: skip

    if args.quick:
        print("\n4. Ray vs local pool: skipped with --quick")
        return
    result = ray_vs_local(episodes, args.envs, args.work_ms)
    if result is None:
        print("\n4. Ray vs local pool: skipped (pip install 'turngym[ray]')")
        return
    print(f"\n4. Ray actors vs local worker processes, {args.envs} workers, {episodes} episodes "
          f"(ray.init took {result['ray_init_s']:.1f} s, not counted)")  # fmt: skip
    for work in (args.work_ms, 0.0):
        local, remote = result[f"process@{work}"], result[f"ray@{work}"]
        print(f"{work} ms work per step: local pool {local:.1f} steps/s; Ray pool {remote:.1f} "
              f"steps/s; Ray/local: {remote / local:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
