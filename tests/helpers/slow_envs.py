"""Corridors whose *build* misbehaves once a flag file exists, for the worker start-up tests
(picklable factories: worker processes import this module). The pool's first workers build
before the test creates the flag, so only replacements are slow or broken."""

from __future__ import annotations

import os
import time

from turngym.envs.toy.corridor import CorridorEnv

__all__ = ["flagged_build_corridor"]


def flagged_build_corridor(
    *, flag: str, build_s: float = 0.0, fail: bool = False, **kwargs
) -> CorridorEnv:
    """A corridor; while ``flag`` exists its build first sleeps ``build_s`` s, then raises if
    ``fail``."""
    if os.path.exists(flag):
        time.sleep(build_s)
        if fail:
            raise RuntimeError("this corridor cannot be built (flag set by the test)")
    return CorridorEnv(**kwargs)
