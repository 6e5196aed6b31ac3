"""Every speed benchmark runs end to end at a tiny size and prints its rows.

No timing is asserted (speed is measured by running the benchmarks, not in tests); these catch a
benchmark broken by a change to what it measures, so its published figures can be taken again.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from turngym.envs.swe.local_backend import bwrap_available
from turngym.envs.swe.projects import PROJECTS, project_source
from turngym.error import DependencyNotInstalled

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
NUMBER = r"[0-9][0-9.,e+]*"

CASES = {
    "agents": (
        ["agents_bench.py", "--env", "turngym/Corridor-v0", "--episodes", "2", "--out", "out"],
        [
            r"turngym/Corridor-v0\s+expert\s+1\.00",
            rf"^\s+16\s+{NUMBER}\s+{NUMBER}x",
            r"learner iteration",
        ],
    ),
    "webshop": (
        ["webshop_speed.py", "--products", "1000", "--steps", "100"],
        [rf"search step, turngym SearchEngine\s+{NUMBER} st/s\s+{NUMBER}x", r"catalog \+ index"],
    ),
    "search": (
        ["search_speed.py", "--sizes", "2000", "--queries", "50"],
        [rf"^2,000 \| {NUMBER} \|", r"ratio = BM25 queries/s"],
    ),
    "credit": (
        ["credit_speed.py", "--trajectories", "128", "--turns", "8", "--repeats", "1"],
        [rf"^gigpo\s+{NUMBER}", rf"^salt\s+{NUMBER}"],
    ),
    "orchestra": (
        ["orchestra_speed.py", "--quick"],
        [
            rf"turngym/Orchestra-v0\s+expert\s+1\.00\s+1\.000\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}x"
        ],
    ),
    "rollout": (["rollout_speed.py", "--quick"], [rf"2 worker processes\s+{NUMBER}\s+{NUMBER}x"]),
    "textworld": (
        ["textworld_speed.py", "--quick"],
        [rf"turngym overhead vs textworld with the same infos: {NUMBER}x"],
    ),
    "alfworld": (
        [
            "alfworld_speed.py",
            "--quick",
            "--games-per-type",
            "1",
            "--steps",
            "10",
            "--repeats",
            "1",
        ],
        [r"pick_two_obj_and_place\s+\d+%"],
    ),
    "swe-local": (
        ["swe_speed.py", "--quick", "--backends", "local"],
        [rf"^submit \(grade\)\s+{NUMBER}"],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_benchmark_runs_and_prints_its_rows(name: str, tmp_path: Path) -> None:
    if name == "swe-local":
        try:
            project_source(PROJECTS["parse"])
        except DependencyNotInstalled as error:
            pytest.skip(str(error))
        if (reason := bwrap_available()) is not None:
            pytest.skip(reason)
    argv, patterns = CASES[name]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    for pattern in patterns:
        assert re.search(pattern, result.stdout, re.MULTILINE), (pattern, result.stdout[-3000:])
