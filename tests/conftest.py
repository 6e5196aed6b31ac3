"""Shared pytest setup: a session cache dir so tests never touch the user's cache."""

from __future__ import annotations

import os
from pathlib import Path

# Generated games/catalogs/indexes are cached across test runs in one folder (CI sets
# TURNGYM_CACHE itself); generation is deterministic, so a warm cache changes no result.
os.environ.setdefault("TURNGYM_CACHE", str(Path.home() / ".cache" / "turngym-tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
