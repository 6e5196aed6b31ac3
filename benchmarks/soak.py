"""Soak: many episodes on one kept :class:`turngym.EnvPool` per family, watching the workers grow.

A training run keeps one pool for hundreds of thousands of episodes, so what matters is not a
worker's size but its growth. This plays ``--episodes`` random-policy episodes per env id on one
kept pool (repeated ``turngym.rollout`` calls of ``--chunk`` episodes), and after each chunk samples
every worker's RSS, open file descriptors and threads, and the temporary files turngym left in its
cache (``.*.tmp.*``). After ``--warmup`` episodes (caches filled, every task seen) it fits a line to
each worker's samples and prints the slope per 1,000 episodes:

    python benchmarks/soak.py --env turngym/TextWorld-Easy-v1 --episodes 20000
    python benchmarks/soak.py --quick            # every family, a few hundred episodes each
    python benchmarks/soak.py --episodes 5000 --json soak.json
    python benchmarks/soak.py --env turngym/Orchestra-v0 --episodes 100000   # in this process

Ctrl-C (or SIGTERM) stops a soak between chunks' samples and still reports it: the result counts
the episodes played up to the last sample and says ``stopped``; the ids after it are skipped.

An orchestra preset (multi-agent, PettingZoo) runs in the soak's own process: one kept team env,
random team policies, and the samples are of that process.

A worker replaced by the pool (crash, ``max_episodes_per_worker``) starts a new series; the slope is
the mean over the series that have enough samples after warm-up. Random play is what an untrained
policy does: many invalid actions, every task of the split visited.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import psutil

import turngym
from turngym.agents import RandomPolicy
from turngym.atomic import temp_owner
from turngym.cache import cache_root

__all__ = ["FAMILIES", "SoakResult", "slope_per_1k", "soak", "soak_orchestra", "temp_files"]

#: One id per family, with the kwargs the soak uses (small splits: steady state comes quickly).
FAMILIES: dict[str, dict[str, Any]] = {
    "turngym/TextWorld-Easy-v1": {},
    "turngym/ALFWorld-v1": {"num_tasks": (2, 1)},
    "turngym/WebShop-Small-v0": {},
    "turngym/SearchQA-v0": {},
    "turngym/Corridor-v0": {},
}
_MIB = 2**20


@dataclass
class SoakResult:
    """What one soak measured; slopes are per 1,000 episodes per worker, after warm-up."""

    env_id: str
    episodes: int
    seconds: float
    rss_mib_start: float  # mean worker RSS at the first sample after warm-up
    rss_mib_end: float
    rss_slope_mib: float
    fds_slope: float
    threads_slope: float
    temp_files: int  # temp files the run's processes left in turngym's cache
    restarts: int
    children_end: int = 0  # processes under the workers at the last sample (between chunks)
    #: SWE only: sandboxes on the host (local workspaces/site folders, cgroups, containers) at the
    #: first sample after warm-up and at the last (steady state: equal).
    host_start: dict[str, int] = field(default_factory=dict)
    host_end: dict[str, int] = field(default_factory=dict)
    #: SWE only: what the workers left on the host once the pool closed them (all 0).
    host_closed: dict[str, int] = field(default_factory=dict)
    stopped: bool = False  # by Ctrl-C or SIGTERM, after ``episodes`` (the last sample)
    samples: list[dict[str, Any]] = field(default_factory=list, repr=False)


def temp_files(pids: set[int] | None = None) -> list[str]:
    """turngym's temporary files and build folders in its cache (``.<name>.tmp.<host>.<pid>.*``),
    only those written by ``pids`` when given (other processes may share the cache)."""
    found = []
    for path in cache_root().rglob(".*.tmp.*"):
        owner = temp_owner(path.name)
        if pids is None or (owner is not None and owner[1] in pids):
            found.append(str(path))
    return sorted(found)


def _worker_sample(pid: int) -> dict[str, float] | None:
    try:
        process = psutil.Process(pid)
        return {
            "rss_mib": process.memory_info().rss / _MIB,
            "fds": process.num_fds(),
            "threads": process.num_threads(),
            "children": len(process.children(recursive=True)),
        }
    except psutil.Error:
        return None


def swe_host_state(pids: set[int]) -> dict[str, int]:
    """What the SWE sandboxes of processes ``pids`` hold on this host now: the local backend's
    entries under its root (workspaces, site folders, locks; named by their owner's pid), its
    cgroups, and the docker backend's containers (labelled with it; when an engine answers)."""
    from turngym.envs.swe import docker_engine, local_state

    def owned(name: str) -> bool:
        return local_state.owner_pid(name) in pids

    root = local_state.LOCAL_ROOT
    entries = [e for e in root.iterdir() if owned(e.name)] if root.is_dir() else []
    prefix = local_state.CGROUP_PREFIX
    cgroups = [
        group
        for base in local_state._cgroup_roots()
        if base.is_dir()
        for group in base.glob(f"{prefix}*")
        if owned(group.name[len(prefix) :])
    ]
    state = {"local_entries": len(entries), "cgroups": len(cgroups)}
    if docker_engine.engine_available() is None:
        found = docker_engine.connect().containers.list(
            all=True, sparse=True, filters={"label": docker_engine.LABEL}
        )
        state["containers"] = sum(
            owned((c.attrs.get("Labels") or {}).get("turngym.pid", "")) for c in found
        )
    return state


def slope_per_1k(samples: list[dict[str, Any]], key: str, warmup: int) -> float:
    """The mean over workers (pids) of the least-squares slope of ``key`` per 1,000 episodes,
    using the samples taken after ``warmup`` episodes; 0.0 when no worker has 3 such samples."""
    series: dict[int, list[tuple[float, float]]] = {}
    for sample in samples:
        if sample["episodes"] >= warmup:
            series.setdefault(sample["pid"], []).append((sample["episodes"], sample[key]))
    slopes = []
    for points in series.values():
        if len(points) >= 3:
            x, y = np.array(points, dtype=float).T
            slopes.append(float(np.polyfit(x, y, 1)[0]) * 1000)
    return float(np.mean(slopes)) if slopes else 0.0


def soak(
    env_id: Any,
    episodes: int,
    *,
    env_kwargs: dict[str, Any] | None = None,
    num_envs: int = 4,
    workers: int = 2,
    max_turns: int = 6,
    chunk: int = 100,
    warmup: int | None = None,
    max_episodes_per_worker: int | None = None,
    log: Any = None,
    mode: str = "lockstep",
) -> SoakResult:
    """Plays ``episodes`` episodes of ``env_id`` (an id or a picklable env factory) on one kept
    pool, sampling every worker after each chunk of ``chunk`` episodes; ``mode`` is
    ``turngym.rollout``'s (``"async"``: an env that waits on a slow step, a SWE grade say, does not
    hold the others)."""
    warmup = episodes // 5 if warmup is None else warmup
    kwargs = {"max_turns": max_turns, **(env_kwargs or {})}
    pool_kwargs: dict[str, Any] = {"workers": workers}
    if max_episodes_per_worker is not None:
        pool_kwargs["max_episodes_per_worker"] = max_episodes_per_worker
    samples: list[dict[str, Any]] = []
    hosts: list[dict[str, int]] = []
    swe = isinstance(env_id, str) and env_id.startswith("turngym/SWE")
    started = time.monotonic()
    played, stopped = 0, False
    with turngym.EnvPool(env_id, num_envs=num_envs, env_kwargs=kwargs, **pool_kwargs) as pool:
        while played < episodes:
            count = min(chunk, episodes - played)
            try:
                turngym.rollout(
                    env_id, RandomPolicy(seed=played), num_episodes=count, seed=played,
                    pool=pool, progress=False, mode=mode,
                )  # fmt: skip
            except KeyboardInterrupt:  # the chunk in flight is dropped; the samples stand
                stopped = True
                break
            played += count
            for pid in pool.pids:
                sample = _worker_sample(pid)
                if sample is not None:
                    samples.append({"episodes": played, "pid": pid, **sample})
            if swe:
                hosts.append({"episodes": played, **swe_host_state(set(pool.pids))})
            if log is not None:
                rss = [s["rss_mib"] for s in samples if s["episodes"] == played]
                print(
                    f"  {env_id} {played:>7} episodes  worker RSS "
                    + " ".join(f"{r:.1f}" for r in rss)
                    + f" MiB  {time.monotonic() - started:.0f} s",
                    file=log,
                    flush=True,
                )
        restarts = pool.restarts
    name = env_id if isinstance(env_id, str) else getattr(env_id, "__name__", "custom")
    result = _result(name, played, started, samples, warmup, restarts, hosts, stopped)
    if swe:
        result.host_closed = swe_host_state({s["pid"] for s in samples})
    return result


def _result(
    name: str,
    episodes: int,
    started: float,
    samples: list[dict[str, Any]],
    warmup: int,
    restarts: int,
    hosts: list[dict[str, int]] | None = None,
    stopped: bool = False,
) -> SoakResult:
    after = [s for s in samples if s["episodes"] >= warmup]
    hosts_after = [
        {k: v for k, v in h.items() if k != "episodes"}
        for h in hosts or []
        if h["episodes"] >= warmup
    ]
    first, last = (after[0]["episodes"], after[-1]["episodes"]) if after else (0, 0)
    return SoakResult(
        env_id=name,
        episodes=episodes,
        seconds=time.monotonic() - started,
        rss_mib_start=float(np.mean([s["rss_mib"] for s in after if s["episodes"] == first]))
        if after
        else 0.0,
        rss_mib_end=float(np.mean([s["rss_mib"] for s in after if s["episodes"] == last]))
        if after
        else 0.0,
        rss_slope_mib=slope_per_1k(samples, "rss_mib", warmup),
        fds_slope=slope_per_1k(samples, "fds", warmup),
        threads_slope=slope_per_1k(samples, "threads", warmup),
        temp_files=len(temp_files({os.getpid(), *(s["pid"] for s in samples)})),
        restarts=restarts,
        children_end=sum(s.get("children", 0) for s in after if s["episodes"] == last),
        host_start=hosts_after[0] if hosts_after else {},
        host_end=hosts_after[-1] if hosts_after else {},
        stopped=stopped,
        samples=samples,
    )


def soak_orchestra(
    env_id: str, episodes: int, *, chunk: int = 100, warmup: int | None = None, log: Any = None
) -> SoakResult:
    """The same measurement for a multi-agent orchestra preset: one kept team env in this process
    (the orchestra runs its member envs in-process), random team policies, sampling this
    process after each chunk of team episodes (recorded traces are dropped with each chunk)."""
    from turngym.envs import orchestra

    warmup = episodes // 5 if warmup is None else warmup
    env = orchestra.parallel_env(env_id)
    samples: list[dict[str, Any]] = []
    started, played, pid, stopped = time.monotonic(), 0, os.getpid(), False
    try:
        while played < episodes:
            count = min(chunk, episodes - played)
            try:
                orchestra.rollout(
                    env, orchestra.random_policies(env, played), num_episodes=count, seed=played
                )
            except KeyboardInterrupt:  # as in soak(): the chunk in flight is dropped
                stopped = True
                break
            played += count
            samples.append({"episodes": played, "pid": pid, **_worker_sample(pid)})
            if log is not None:
                print(
                    f"  {env_id} {played:>7} episodes  process RSS {samples[-1]['rss_mib']:.1f} "
                    f"MiB  {time.monotonic() - started:.0f} s",
                    file=log,
                    flush=True,
                )
    finally:
        env.close()
    return _result(env_id, played, started, samples, warmup, restarts=0, stopped=stopped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", action="append", help="env id (repeatable); default: one a family")
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=None, help="default: a fifth of --episodes")
    parser.add_argument("--num-envs", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-turns", type=int, default=6)
    parser.add_argument("--chunk", type=int, default=100, help="episodes between samples")
    parser.add_argument("--max-episodes-per-worker", type=int, default=None)
    parser.add_argument("--mode", choices=("lockstep", "async"), default="lockstep",
                        help="turngym.rollout's mode (async: no env waits on another's slow step)")  # fmt: skip
    parser.add_argument(
        "--env-kwargs",
        type=json.loads,
        default=None,
        help="JSON keyword arguments for every --env (default: FAMILIES' own), e.g. '{\"num_tasks\": [40, 1]}'",
    )
    parser.add_argument("--quick", action="store_true", help="300 episodes per family")
    parser.add_argument("--json", help="write every result (samples included) here")
    args = parser.parse_args()
    if args.episodes < 1 or args.chunk < 1:
        parser.error("--episodes and --chunk must be >= 1")
    if args.quick:
        args.episodes, args.chunk = 300, 50
    from turngym.envs.orchestra import ORCHESTRA_ENVS

    env_ids = args.env or [*FAMILIES, "turngym/Orchestra-v0"]
    known = {*turngym.list_envs(), *FAMILIES, *ORCHESTRA_ENVS}
    unknown = [e for e in env_ids if e not in known]
    if unknown:
        parser.error(f"unknown env id {unknown[0]!r}; see `turngym list`")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop as Ctrl-C does: reported
    results = []
    for env_id in env_ids:
        if results and results[-1].stopped:
            break
        if env_id in ORCHESTRA_ENVS:
            results.append(
                soak_orchestra(
                    env_id, args.episodes, chunk=args.chunk, warmup=args.warmup, log=sys.stderr
                )
            )
            continue
        results.append(
            soak(
                env_id,
                args.episodes,
                env_kwargs=FAMILIES.get(env_id, {}) if args.env_kwargs is None else args.env_kwargs,
                num_envs=args.num_envs,
                workers=args.workers,
                max_turns=args.max_turns,
                chunk=args.chunk,
                warmup=args.warmup,
                max_episodes_per_worker=args.max_episodes_per_worker,
                log=sys.stderr,
                mode=args.mode,
            )
        )
    print(
        f"\n{'env id':<28} {'episodes':>8} {'RSS MiB':>15} {'MiB/1k/worker':>13} "
        f"{'fds/1k':>7} {'thr/1k':>7} {'tmp':>4} {'kids':>4} {'restarts':>8} {'s':>6}"
    )
    for r in results:
        print(
            f"{r.env_id:<28} {r.episodes:>8} {r.rss_mib_start:>7.1f}->{r.rss_mib_end:<7.1f} "
            f"{r.rss_slope_mib:>13.2f} {r.fds_slope:>7.2f} {r.threads_slope:>7.2f} "
            f"{r.temp_files:>4} {r.children_end:>4} {r.restarts:>8} {r.seconds:>6.0f}"
            + (f"  sandboxes {r.host_start} -> {r.host_end}" if r.host_end else "")
            + ("  (stopped early)" if r.stopped else "")
        )
    if args.json:
        from turngym.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps([asdict(r) for r in results], indent=1))


if __name__ == "__main__":
    main()
