"""``turngym swe reap``: removes SWE sandboxes whose owning process died (both backends).

A driver killed with SIGKILL runs no ``atexit`` hook or finalizer. Its Docker containers (labelled
with the owner's pid and host), its local workspaces and site folders (named after the owner,
who held a lock on ``<pid>.lock``) and its cgroups (``turngym-swe-<pid>-*``) stay behind until
the next run of either backend reaps them, or until this command (or :func:`reap_all`) does.

    turngym swe reap            # sandboxes of dead owners, on this host
    turngym swe reap --all      # every turngym SWE container of the engine (other hosts' too)
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["reap_all", "main"]


def reap_all(everything: bool = False) -> dict[str, int | str]:
    """Reaps both backends; returns what each removed (or why it could not look)."""
    from turngym.envs.swe import local_backend
    from turngym.envs.swe.docker_backend import engine_available, reap

    counts: dict[str, int | str] = {"local": local_backend.reap()}
    reason = engine_available()
    counts["docker"] = reap(everything=everything) if reason is None else f"skipped: {reason}"
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``turngym swe``."""
    parser = argparse.ArgumentParser(prog="turngym swe", description="SWE sandbox maintenance")
    sub = parser.add_subparsers(dest="command", required=True)
    reap = sub.add_parser(
        "reap", help="remove sandboxes (containers, workspaces, cgroups) of dead owners"
    )
    reap.add_argument(
        "--all", action="store_true", help="every turngym SWE container, not only dead owners'"
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    counts = reap_all(everything=args.all)
    for backend, count in counts.items():
        print(f"{backend}: {count if isinstance(count, str) else f'{count} removed'}")
    return 0
