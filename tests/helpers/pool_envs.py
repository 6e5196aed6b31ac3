"""Corridors that misbehave on purpose, for the EnvPool / rollout failure tests (picklable
factories: worker processes import this module)."""

from __future__ import annotations

import os
import signal
import time

from turngym.envs.toy.corridor import CorridorEnv

__all__ = ["FaultyCorridor", "faulty_corridor"]


class FaultyCorridor(CorridorEnv):
    """A corridor whose episode reset with seed ``bad_seed`` misbehaves on its second step:
    ``fault="kill"`` SIGKILLs its own process, ``"hang"`` sleeps ``hang_s`` seconds, ``"raise"``
    raises RuntimeError. Other seeds behave normally."""

    def __init__(self, *, bad_seed: int = 1, fault: str = "kill", hang_s: float = 60.0, **kwargs):
        super().__init__(**kwargs)
        self.bad_seed, self.fault, self.hang_s = bad_seed, fault, hang_s
        self._seed: int | None = None

    def reset(self, *, seed=None, options=None):
        self._seed = seed
        return super().reset(seed=seed, options=options)

    def _act(self, action):
        if self._seed == self.bad_seed and self._turn >= 1:
            if self.fault == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif self.fault == "hang":
                time.sleep(self.hang_s)
            elif self.fault == "raise":
                raise RuntimeError("the faulty corridor broke")
        return super()._act(action)


def faulty_corridor(**kwargs) -> FaultyCorridor:
    return FaultyCorridor(**kwargs)
