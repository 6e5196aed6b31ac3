"""The learner's benchmarks run end to end at a tiny size (their numbers come from real runs).

``credit_learning.py --quick`` trains two credit methods for two iterations and must write its
table, JSON and curve; ``learner_cuda_check.py`` must refuse clearly without CUDA and run its
whole logic on CPU with ``--device cpu --tiny``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=900
    )


def test_credit_learning_quick_writes_table_json_and_curves(tmp_path):
    result = run([str(BENCHMARKS / "credit_learning.py"), "--quick", "--out", "out"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "out"
    assert re.search(
        r"corridor\s+grpo\s+seed 0: success [0-9.]+ -> [0-9.]+ per class", result.stdout
    )
    assert re.search(r"\| corridor \| gigpo \| 1 \| [0-9.]+ \| [0-9.]+ \+- 0\.00 \|", result.stdout)
    data = json.loads((out / "results.json").read_text())
    assert {r["method"] for r in data["runs"]} == {"grpo", "gigpo"}
    for run_ in data["runs"]:
        assert [p["iteration"] for p in run_["curve"]] == [0, 1, 2]
        assert {"success/east", "success/west"} <= set(run_["curve"][-1])
    assert (out / "curves_corridor.png").stat().st_size > 1000
    assert "--quick" in (out / "results.md").read_text()
    # A second call reuses the cached runs (no training): same summary.
    again = run([str(BENCHMARKS / "credit_learning.py"), "--quick", "--out", "out"], tmp_path)
    assert (
        again.returncode == 0
        and json.loads((out / "results.json").read_text())["summary"] == (data["summary"])
    )


def test_cuda_check_refuses_clearly_without_cuda(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run([str(BENCHMARKS / "learner_cuda_check.py")], tmp_path)
    assert result.returncode == 2
    assert "no CUDA device is visible" in result.stderr and "--device cpu --tiny" in result.stderr


def test_cuda_check_logic_runs_on_cpu(tmp_path):
    result = run(
        [
            str(BENCHMARKS / "learner_cuda_check.py"),
            "--device",
            "cpu",
            "--tiny",
            "--iterations",
            "1",
            "--groups",
            "2",
            "--group-size",
            "2",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "weight dtypes ['torch.float32']" in result.stdout
    assert re.search(r"weights changed (9\d|100)\.\d% at lr 1e-06", result.stdout), result.stdout
    assert re.search(r"recorded vs training logp \(fp32\): max \|diff\| [0-9.e+-]+", result.stdout)
    assert "AdamW state dtypes: ['torch.float32']" in result.stdout
    assert result.stdout.rstrip().endswith("OK")
