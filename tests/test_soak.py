"""A CI-sized soak (benchmarks/soak.py): a kept TextWorld pool's workers stay flat, and the same
measurement flags bd15375's engine that grew ~200 MiB per 1,000 episodes per worker."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("textworld", reason="the [textworld] extra is not installed")

from helpers.leaky_textworld import leaky_textworld  # noqa: E402

pytestmark = pytest.mark.slow  # ~40 s a soak on 2 cores; guards the bounded-memory promise

_SPEC = importlib.util.spec_from_file_location(
    "soak", Path(__file__).resolve().parent.parent / "benchmarks" / "soak.py"
)
soak_module = sys.modules["soak"] = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(soak_module)

#: MiB per 1,000 episodes per worker; bd15375 measured ~200, the fixed env ~0.2 (5,000 episodes).
LIMIT = 25.0
SIZE = {"episodes": 300, "warmup": 100, "chunk": 25, "num_envs": 4, "workers": 2}


def test_textworld_workers_stay_flat():
    result = soak_module.soak("turngym/TextWorld-Easy-v1", **SIZE)
    assert result.rss_slope_mib < LIMIT, result
    assert abs(result.fds_slope) < 5 and abs(result.threads_slope) < 5, result
    assert result.temp_files == 0 and result.restarts == 0


def test_the_soak_flags_the_bd15375_textworld_leak():
    result = soak_module.soak(leaky_textworld, **SIZE)
    assert result.rss_slope_mib > LIMIT, result  # the measurement can fail


def test_an_orchestra_process_stays_flat(tmp_path):
    """The multi-agent orchestra runs its member envs (WebShop, SearchQA) in the soak's process:
    a fresh one here (this test process's other tests would move its RSS, fds and threads)."""
    out = tmp_path / "soak.json"
    subprocess.run(
        [sys.executable, str(_SPEC.origin), "--env", "turngym/Orchestra-v0", "--episodes", "1500",
         "--chunk", "100", "--warmup", "700", "--json", str(out)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    result = soak_module.SoakResult(**json.loads(out.read_text())[0])
    assert result.rss_slope_mib < LIMIT, result
    assert abs(result.fds_slope) < 5 and abs(result.threads_slope) < 5, result
    assert result.temp_files == 0 and result.children_end == 0 and result.episodes == 1500


def test_a_stopped_soak_still_reports(tmp_path):
    """SIGTERM mid-soak (a long SWE soak is stopped this way): the result so far is printed and
    written, with the episodes up to the last sample and ``stopped``; later ids are skipped."""
    out = tmp_path / "soak.json"
    run = subprocess.Popen(
        [sys.executable, str(_SPEC.origin), "--env", "turngym/Corridor-v0", "--env",
         "turngym/SearchQA-v0", "--episodes", "10000000", "--chunk", "200", "--warmup", "0",
         "--workers", "1", "--mode", "async", "--json", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    for line in run.stderr:  # the first sample is logged
        if "episodes" in line:
            break
    run.send_signal(signal.SIGTERM)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr
    results = json.loads(out.read_text())
    assert len(results) == 1 and results[0]["stopped"], results
    assert results[0]["episodes"] % 200 == 0 and results[0]["episodes"] >= 200
    assert results[0]["episodes"] == results[0]["samples"][-1]["episodes"]
    assert "(stopped early)" in stdout and "Traceback" not in stderr, stderr


def test_swe_sandboxes_do_not_pile_up_on_the_host():
    """SWE episodes (local jails, graded at the turn limit) on a kept pool leave no process under
    the workers and no workspace, site folder or cgroup beyond what the first episodes made, and
    nothing once the pool closed them."""
    from test_swe_attacks import backend_reason

    from turngym.envs.swe.projects import PROJECTS

    reason = backend_reason("local", tuple(PROJECTS))
    if reason is not None:
        pytest.skip(reason)
    result = soak_module.soak(
        "turngym/SWE-v0", 16, env_kwargs={"backend": "local"}, num_envs=2, workers=2,
        max_turns=3, chunk=4, warmup=4,
    )  # fmt: skip
    assert result.host_end == result.host_start and result.host_start, result
    assert not any(result.host_closed.values()) and result.host_closed, result  # exit hooks ran
    assert result.children_end == 0 and result.temp_files == 0 and result.restarts == 0, result
