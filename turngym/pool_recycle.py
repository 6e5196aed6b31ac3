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
"""

from __future__ import annotations

import os
import warnings
from typing import Any

__all__ = ["RecyclePolicy", "resident_bytes", "CHURN_EPISODES"]

#: A worker due by memory this soon after it started needs the memory (see the module doc).
CHURN_EPISODES = 20
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


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
