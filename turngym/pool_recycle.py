"""When a process pool replaces a worker by a fresh process between episodes (recycling).

Recycling. With ``max_episodes_per_worker=N`` a worker that has started ``N`` episodes is replaced
by a fresh process at the next ``reset`` of one of its envs *when all its other envs are between
episodes* (never reset, ended, or lost) and it has no command in flight, so no episode is cut and
the reset goes to the fresh worker; a worker with an env mid-episode is recycled at a later reset.
With one env per worker (the default) that is every due reset; with several envs per worker the
episodes rarely all end together inside one rollout call, so recycling then happens mostly between
``turngym.rollout`` calls (a training iteration), when every env is between episodes.
Whatever an env or the engine under it leaks then goes with the process. Resets carry their seeds,
so recycled runs give the same trajectories as kept ones.

Memory ceiling. ``max_worker_growth_mib`` (default :data:`~turngym.pool.MAX_WORKER_GROWTH_MIB`)
makes a worker due the same way once its resident memory exceeds, by that many MiB, what it held
when its first episode ended (warm-up: catalogs, indexes and engines loaded by the first
episode count as its base): a safety net for a leak nobody has found yet, whatever the family
(Linux, where ``/proc`` gives a worker's RSS; elsewhere off). A worker that comes due by memory
within :data:`CHURN_EPISODES` episodes of starting is not a leak but an env that needs that much:
the pool warns once and stops recycling by memory, rather than restarting at every reset.

Freed memory. A worker (a process pool's, or a Ray actor) hands the memory its envs freed back
to the system when an episode ends (:func:`release_free_memory`, glibc's ``malloc_trim``; at most
every :data:`RELEASE_EVERY_S` seconds, ~0.1 ms when there is little to give back). Without it a
worker whose episodes allocate and free many megabyte-sized objects (a SWE task's files, a tar of
them) keeps the freed pages as holes in its heap and its RSS creeps up although nothing leaks:
a process building SWE start trees for random tasks, 3,000 builds, held 60.5 MiB, 55.5 after one
trim. Set ``TURNGYM_RELEASE_MEMORY=0`` in the environment that starts the pool to turn it off
(to measure without it); elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import time
import warnings
from typing import Any

__all__ = [
    "CHURN_EPISODES",
    "RELEASE_EVERY_S",
    "MemoryReleaser",
    "RecyclePolicy",
    "release_free_memory",
    "resident_bytes",
]

#: A worker due by memory this soon after it started needs the memory (see the module doc).
CHURN_EPISODES = 20
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
#: A worker gives freed memory back at most this often (see the module doc).
RELEASE_EVERY_S = 1.0
_TRIM: Any = False  # glibc's malloc_trim once looked up; None where there is none


def release_free_memory() -> bool:
    """Returns the heap's free pages to the system (glibc ``malloc_trim(0)``); True when it ran
    (glibc), False elsewhere. It frees nothing in use, so it is safe at any time."""
    global _TRIM
    if _TRIM is False:
        _TRIM = None
        name = ctypes.util.find_library("c")
        try:
            trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
        except OSError:
            trim = None
        if trim is not None:
            trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
            _TRIM = trim
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


class MemoryReleaser:
    """Calls :func:`release_free_memory` when an episode ended, at most every ``every`` seconds;
    off when ``TURNGYM_RELEASE_MEMORY`` is ``0`` in the environment."""

    def __init__(self, every: float = RELEASE_EVERY_S) -> None:
        self.every = every
        self.enabled = os.environ.get("TURNGYM_RELEASE_MEMORY", "1").strip() != "0"
        self.last = float("-inf")
        self.released = 0  # times it ran

    def episode_ended(self) -> None:
        now = time.monotonic()
        if self.enabled and now - self.last >= self.every:
            self.last = now
            self.released += release_free_memory()


def resident_bytes(pid: int) -> int | None:
    """The resident memory of process ``pid`` in bytes (Linux ``/proc``), or None."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


class RecyclePolicy:
    """Decides, at a worker's reset, whether it is due for recycling (see the module doc).

    A worker here is anything with ``pid``, ``episodes`` (resets sent to it), ``ready_at``
    (None until it serves) and a writable ``base_rss`` (None until its first episode ended).
    """

    def __init__(self, name: str, max_episodes: int | None, max_growth_mib: float | None) -> None:
        self.name, self.max_episodes = name, max_episodes
        self.max_growth = None if max_growth_mib is None else int(max_growth_mib * 2**20)

    def due(self, worker: Any) -> bool:
        if self.max_episodes is not None and worker.episodes >= self.max_episodes:
            return True
        if self.max_growth is None or worker.ready_at is None or worker.episodes < 1:
            return False
        rss = resident_bytes(worker.pid)
        if rss is None:
            return False
        if worker.base_rss is None:
            worker.base_rss = rss  # its first episode has just ended (this is its second reset)
            return False
        if rss - worker.base_rss <= self.max_growth:
            return False
        if worker.episodes < CHURN_EPISODES:
            warnings.warn(
                f"an env worker of {self.name} grew {(rss - worker.base_rss) / 2**20:.0f} MiB in "
                f"{worker.episodes} episodes, past max_worker_growth_mib="
                f"{self.max_growth / 2**20:.0f}: that is what the env needs, not a leak, so the "
                "pool stops recycling workers by memory; raise max_worker_growth_mib (or None) "
                "to silence this.",
                RuntimeWarning,
                stacklevel=4,
            )
            self.max_growth = None
            return False
        return True
