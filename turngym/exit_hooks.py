"""Exit hooks that also run when a pool worker ends.

multiprocessing ends a worker process with ``os._exit``, which skips ``atexit``: a worker's
sandboxes, helper processes and temporary folders would outlive it. turngym's own clean-ups
register through :func:`at_exit` (``atexit`` as usual, and remembered here) and a pool worker
started by ``forkserver`` or ``spawn`` calls :func:`run_exit_hooks` when it ends. Only turngym's
hooks run there, never all of ``atexit``'s: a user's script imported by a ``spawn`` worker may
register its own (saving results, say), which must stay with the parent. A ``fork`` worker runs
none: the hooks it inherited are its parent's and would close the parent's sandboxes.
"""

from __future__ import annotations

import atexit
import sys
import traceback
from collections.abc import Callable
from typing import Any

__all__ = ["at_exit", "run_exit_hooks"]

_HOOKS: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []


def at_exit(func: Callable[..., Any], *args: Any) -> Callable[..., Any]:
    """``atexit.register(func, *args)`` that a pool worker also runs when it ends; returns
    ``func`` (so it works as a decorator)."""
    atexit.register(func, *args)
    _HOOKS.append((func, args))
    return func


def run_exit_hooks() -> int:
    """Runs the hooks registered through :func:`at_exit`, last first as ``atexit`` does, once
    each (they leave ``atexit``); an error is printed and the next hook runs. Returns how many
    ran."""
    ran = 0
    while _HOOKS:
        func, args = _HOOKS.pop()
        atexit.unregister(func)
        try:
            func(*args)
        except Exception:  # noqa: BLE001 - as atexit: report, go on
            print(f"turngym: exit hook {func.__qualname__} failed:", file=sys.stderr)
            traceback.print_exc()
        ran += 1
    return ran
