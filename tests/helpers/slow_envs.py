"""Corridors that misbehave, for the pool tests (picklable factories: worker processes import
this module): one whose *build* is slow or fails once a flag file exists (the pool's first
workers build before the test creates the flag, so only replacements are), one that leaks, one
that frees most of what it allocates but leaves holes in its heap."""

from __future__ import annotations

import os
import time

from turngym.envs.toy.corridor import CorridorEnv
from turngym.exit_hooks import at_exit

__all__ = [
    "flagged_build_corridor",
    "fragmenting_corridor",
    "exit_hook_corridor",
    "leaky_corridor",
    "sleepy_corridor",
]

_KEPT: list[bytes] = []  # what leaky corridors never give back (per worker process)


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


class _LeakyCorridor(CorridorEnv):
    def __init__(self, leak_mib: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self._leak = int(leak_mib * 2**20)

    def reset(self, *, seed=None, options=None):
        _KEPT.append(b"x" * self._leak)  # written, so resident: the leak an engine might have
        return super().reset(seed=seed, options=options)


def leaky_corridor(*, leak_mib: float = 1.0, **kwargs) -> CorridorEnv:
    """A corridor that keeps ``leak_mib`` MiB more of its process's memory at every reset."""
    return _LeakyCorridor(leak_mib, **kwargs)


class _FragmentingCorridor(CorridorEnv):
    def __init__(self, garbage_mib: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self._blobs = garbage_mib * 16  # 64 KiB each: under glibc's mmap threshold, so in the heap

    def reset(self, *, seed=None, options=None):
        blobs = [b"y" * (64 << 10) for _ in range(self._blobs)]
        _KEPT[:] = blobs[31::32]  # every 32nd kept (the last one too): the freed rest are holes
        del blobs
        return super().reset(seed=seed, options=options)


def fragmenting_corridor(*, garbage_mib: int = 64, **kwargs) -> CorridorEnv:
    """A corridor whose reset allocates ``garbage_mib`` MiB in 64 KiB pieces and keeps 1 in 32:
    the process's heap holds the freed rest until it is trimmed."""
    return _FragmentingCorridor(garbage_mib, **kwargs)


class _SleepyCorridor(CorridorEnv):
    def __init__(self, step_s: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self._step_s = step_s

    def step(self, action):
        time.sleep(self._step_s)
        return super().step(action)


def sleepy_corridor(*, step_s: float = 1.0, **kwargs) -> CorridorEnv:
    """A corridor whose every step first sleeps ``step_s`` seconds."""
    return _SleepyCorridor(step_s, **kwargs)


def _touch(path: str) -> None:
    with open(path, "w") as handle:
        handle.write(str(os.getpid()))


def exit_hook_corridor(*, flag: str, **kwargs) -> CorridorEnv:
    """A corridor whose build registers an exit hook (``turngym.exit_hooks.at_exit``, as SWE's
    sandboxes do) that writes ``flag``."""
    at_exit(_touch, flag)
    return CorridorEnv(**kwargs)
