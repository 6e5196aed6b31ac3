"""TextWorld as bd15375 played it: one engine reloaded with every game (textworld keeps ~430 KiB
per different game load), so the soak test can show it catches that leak (picklable factory)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from turngym.envs.textworld.env import TextWorldEnv, request_infos

__all__ = ["leaky_textworld"]


class _OneEngineTextWorld(TextWorldEnv):
    _single: Any = None

    def _load(self, path: Path) -> None:
        import textworld

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not fully supported.*")
            if self._single is None:
                self._single = textworld.start(str(path), request_infos=request_infos())
            else:
                self._single.load(str(path))
        self._engine = self._single


def leaky_textworld(**kwargs: Any) -> TextWorldEnv:
    return _OneEngineTextWorld(difficulty="easy", **kwargs)
