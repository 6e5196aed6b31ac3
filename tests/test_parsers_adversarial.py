"""No action an agent can write stalls or crashes a parser: every non-orchestra family handles
each adversarial ~100k-character action in under 50 ms (best of 3, after warm-up) and rejects a
non-text action with the contract's InvalidArgumentError. Each family runs in a subprocess with a
timeout, so a parser that hangs fails the test instead of hanging the suite."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.adversarial_actions import ACTIONS

TESTS = Path(__file__).resolve().parent
LIMIT_MS = 50.0


def _measure(family: str, timeout_s: float) -> dict[str, object]:
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "helpers.adversarial_actions", family],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
            cwd=TESTS,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{family}: adversarial actions took over {timeout_s:.0f} s (a parser hangs)")
    assert done.returncode == 0, (
        f"{family} crashed on an adversarial action:\n{done.stderr[-3000:]}"
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _needs(family: str, module: str | None) -> object:
    missing = module is not None and importlib.util.find_spec(module) is None
    return pytest.param(family, marks=pytest.mark.skipif(missing, reason=f"needs {module}"))


FAMILIES = [
    _needs("search", "bm25s"),
    _needs("webshop", "bm25s"),
    _needs("textworld", "textworld"),
    _needs("alfworld", "alfworld"),
    _needs("corridor", None),
]


@pytest.mark.parametrize("family", FAMILIES)
def test_env_steps_stay_fast_on_adversarial_actions(family: str) -> None:
    results = _measure(family, timeout_s=180)
    assert results.pop("step(None)") == "InvalidArgumentError"
    assert set(results) == set(ACTIONS)
    slow = {name: ms for name, (ms, _) in results.items() if ms >= LIMIT_MS}
    assert not slow, f"{family}: actions over {LIMIT_MS} ms: {slow}"
    assert not any(valid for _, valid in results.values()), f"{family} accepted garbage: {results}"


def test_swe_tool_call_parser_stays_fast_on_adversarial_actions() -> None:
    results = _measure("swe", timeout_s=15)
    slow = {name: ms for name, (ms, _) in results.items() if ms >= LIMIT_MS}
    assert not slow, f"swe: actions over {LIMIT_MS} ms: {slow}"
    assert not any(valid for _, valid in results.values())
