"""The project's real data folder, ``../shared/data/realdata`` next to the repository (its sources
are in ``SOURCES.md`` there): tests read it and skip, saying where it should be, when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

__all__ = ["REALDATA", "real_folder"]

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "realdata"


def real_folder(name: str) -> Path:
    """``REALDATA / name``; skips the calling test module when that folder is absent."""
    folder = REALDATA / name
    if not folder.is_dir():
        pytest.skip(
            f"the real data folder {folder} is absent (the project's shared data, "
            "../shared/data/realdata/ next to the repository; see its SOURCES.md)",
            allow_module_level=True,
        )
    return folder
