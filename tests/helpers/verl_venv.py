"""verl's tests run in their own venv (verl 0.9.1 pins transformers 5.10.x, which conflicts with
the main test env): ``.venv-verl``, built by ``tests/run.sh``; ``TURNGYM_VERL_PYTHON`` overrides
the interpreter. A test file that needs verl calls :func:`run_in_verl_venv` on itself from the
main env and asserts on the result."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

__all__ = ["HAS_VERL", "ROOT", "VERL_PYTHON", "needs_verl", "run_in_verl_venv"]

ROOT = Path(__file__).resolve().parents[2]
VERL_PYTHON = Path(os.environ.get("TURNGYM_VERL_PYTHON", ROOT / ".venv-verl" / "bin" / "python"))
HAS_VERL = importlib.util.find_spec("verl") is not None
needs_verl = pytest.mark.skipif(not HAS_VERL, reason="verl not installed here (runs in .venv-verl)")


def run_in_verl_venv(test_file: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Runs pytest on ``test_file`` with the verl venv's interpreter (skips when it is absent)."""
    if not VERL_PYTHON.exists():
        pytest.skip(
            f"no verl venv at {VERL_PYTHON}: verl 0.9.1 needs transformers 5.10.x, which conflicts "
            "with the main test env; `bash tests/run.sh` builds .venv-verl"
        )
    command = [str(VERL_PYTHON), "-m", "pytest", test_file, "-q", "-p", "no:randomly"]
    command += ["-p", "no:cacheprovider", "-W", "ignore::UserWarning"]
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
