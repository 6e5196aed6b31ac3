"""A bound on textworld's process-wide proposition memo.

``textworld.logic`` builds its ``Proposition`` and ``Signature`` objects through ``mementos``
metaclasses: every distinct one ever built is kept in one module-level dict
(``mementos.core._memento_cache``) for the life of the process, never evicted. A game adds its
propositions the first time a process plays it: ~700 entries and ~1 MiB per ALFWorld task
(measured: 120 tasks played once each in one process, 78 -> 196 MiB, 84k entries), so a kept pool
worker playing ALFWorld's 3,000 train tasks would grow ~3 GiB before it flattens.

The memo only interns: both classes compare and hash by value (name, argument names and types),
and neither textworld nor ALFWorld compares them by identity, so dropping it changes no output
(``tests/test_textworld_memo.py`` plays the same episodes with and without clearing it before
every reset and compares every observation, reward and fact). :func:`bound_textworld_memo` clears
it when it holds more than ``limit`` entries; both families call it before each reset. Same
120 tasks with the default limit: 78 -> 121-129 MiB, flat.
"""

from __future__ import annotations

import sys

__all__ = ["MEMO_LIMIT", "bound_textworld_memo", "memo_size"]

#: Entries kept before the memo is dropped (~30 ALFWorld tasks, ~25 MiB).
MEMO_LIMIT = 20_000


def _cache() -> dict | None:
    core = sys.modules.get("mementos.core")  # imported by textworld.logic; absent -> nothing kept
    cache = getattr(core, "_memento_cache", None)
    return cache if isinstance(cache, dict) else None


def memo_size() -> int:
    """Entries textworld's proposition memo holds now in this process (0 before textworld loads)."""
    cache = _cache()
    return 0 if cache is None else len(cache)


def bound_textworld_memo(limit: int | None = None) -> bool:
    """Drops textworld's proposition memo when it holds more than ``limit`` entries (default
    :data:`MEMO_LIMIT`, read at call time); True if it did."""
    cache = _cache()
    if cache is None or len(cache) <= (MEMO_LIMIT if limit is None else limit):
        return False
    cache.clear()
    return True
