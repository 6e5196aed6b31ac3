"""A regular (non-editable) install must hold the same packages and data files as the checkout.

The repo root keeps ``envs/``, ``agents/`` and ``credit/`` beside ``turngym/``; setup.py maps them
onto ``turngym.envs`` etc. An editable install hides mistakes in that mapping (it imports from the
checkout), so this test builds the wheel and checks its contents against the tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAPPING = {
    "envs": "turngym/envs",
    "agents": "turngym/agents",
    "credit": "turngym/credit",
    "turngym": "turngym",
}
DATA_SUFFIXES = (".jsonl", ".json", ".pddl", ".twl2", ".html", ".css")


def _checkout_files() -> list[str]:
    """Tracked files plus untracked ones git does not ignore: what a clean checkout would hold."""
    return subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()


def _expected_files(files: list[str]) -> set[str]:
    expected = set()
    for path in files:
        top, _, rest = path.partition("/")
        if top in MAPPING and (path.endswith(".py") or path.endswith(DATA_SUFFIXES)):
            expected.add(f"{MAPPING[top]}/{rest}")
    return expected


@pytest.mark.slow
def test_wheel_holds_every_module_and_data_file(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to list the tracked files")
    # Build from a copy holding only the checkout's files: stale build/ or *.egg-info folders left
    # by an editable install would otherwise hide packaging mistakes.
    files = [f for f in _checkout_files() if (ROOT / f).is_file()]
    source = tmp_path / "src"
    for rel in files:
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, source / rel)
    out = tmp_path / "dist"
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-v",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    # setuptools' deprecation and packaging warnings (license table, undeclared data packages).
    warned = [
        line.strip()
        for line in (built.stdout + built.stderr).splitlines()
        if "Warning:" in line and "byte-compiling" not in line
    ]
    assert not warned, f"the build warns (fix pyproject.toml / setup.py): {warned}"
    (wheel,) = out.glob("turngym-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(_expected_files(files) - names)
    assert not missing, (
        f"files missing from the wheel (fix setup.py / package-data): {missing[:20]}"
    )
    # The data every family loads at run time.
    assert "turngym/envs/swe/data/tasks.jsonl" in names
    assert not any(name.startswith(("tests/", "benchmarks/", "envs/")) for name in names)
