"""An install without a family's extra gets one error naming that extra, never a bare
``ModuleNotFoundError`` of a package the user has never heard of.

Each case runs in a fresh interpreter behind the import fence of ``tests/helpers/extras.py``
with only ``pip install 'turngym[bench]'`` visible (the core, pandas and matplotlib).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers.extras import fenced_env

MAKE = "import gymnasium, turngym; env = gymnasium.make({id!r}); env.reset(seed=0)"

CASES = [
    (MAKE.format(id="turngym/TextWorld-Easy-v1"), "textworld"),
    (MAKE.format(id="turngym/ALFWorld-Clean-v1"), "alfworld"),
    (MAKE.format(id="turngym/WebShop-Small-v0"), "webshop"),
    (MAKE.format(id="turngym/SearchQA-v0"), "search"),
    (
        "from turngym.envs import orchestra; orchestra.parallel_env('turngym/Orchestra-v0')",
        "multiagent",
    ),
    ("import turngym.credit", "credit"),
    (
        "import gymnasium, turngym; gymnasium.make('turngym/SWE-v0', backend='docker').reset()",
        "docker",
    ),
]


@pytest.mark.parametrize("code, extra", CASES, ids=[extra for _, extra in CASES])
def test_a_missing_extra_is_named(code: str, extra: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=fenced_env({"bench"}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    assert result.returncode != 0, "the fence let the family's dependency through"
    assert (
        last.startswith("turngym.error.DependencyNotInstalled") and f"turngym[{extra}]" in last
    ), result.stderr[-2000:]


def test_the_core_runs_behind_the_same_fence() -> None:
    # The fence hides the extras' packages, not the core: Corridor needs none of them.
    code = MAKE.format(id="turngym/Corridor-v0") + "; print(env.step('go east')[1])"
    result = subprocess.run(
        [sys.executable, "-c", code], env=fenced_env({"bench"}), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_bench_env_kwargs_check_leaves_a_family_without_its_extra_to_the_run(tmp_path) -> None:
    argv = ["--env", "turngym/Corridor-v0,turngym/WebShop-Small-v0", "--env-kwargs"]
    argv += ['{"max_turns": 2}', "--episodes", "1", "--no-progress", "--out", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "turngym.cli", "bench", *argv],
        env=fenced_env({"bench"}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "results.json").read_text())
    assert [r["env"] for r in report["results"]] == ["turngym/Corridor-v0"]
    assert "turngym[webshop]" in report["skipped"][0]["reason"]
