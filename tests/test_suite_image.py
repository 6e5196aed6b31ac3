"""The suite image (docker/suite/Dockerfile) builds with no registry and runs the benchmark offline.

Needs the engine and the debootstrap base that ``docker/ci_setup.sh`` provides (CI runs it
first); without them it skips and says why.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TAG = "turngym/suite:test"


def _reason() -> str | None:
    try:
        from turngym.envs.swe.docker_backend import connect, engine_available
    except ImportError as error:  # pragma: no cover - the docker extra is missing
        return str(error)
    reason = engine_available()
    if reason:
        return reason
    if not connect().images.list(name="turngym/swe-rootfs"):
        return (
            "the debootstrap base turngym/swe-rootfs is not built; run `source docker/ci_setup.sh`"
        )
    return None


REASON = _reason()
pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(
        REASON is not None, reason=f"no Docker engine for the suite image: {REASON}"
    ),
]


def test_suite_image_builds_offline_and_runs_the_benchmark() -> None:
    from turngym.envs.swe.docker_backend import connect

    build = subprocess.run(
        ["bash", str(ROOT / "docker" / "build_suite.sh"), TAG],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    client = connect()
    try:
        listing = client.containers.run(TAG, ["list"], network_mode="none", remove=True).decode()
        assert "turngym/WebShop-v0" in listing and "turngym/ALFWorld-v1" in listing
        table = client.containers.run(
            TAG,
            [
                "bench",
                "--env",
                "turngym/Corridor-v0,turngym/WebShop-Small-v0,turngym/SearchQA-1hop-v0",
                "--policy",
                "expert",
                "--episodes",
                "2",
                "--out",
                "/tmp/out",
                "--no-progress",
            ],
            network_mode="none",  # everything the image needs is inside it
            remove=True,
        ).decode()
        rows = [line.split() for line in table.splitlines() if line.startswith("turngym/")]
        assert len(rows) == 3, table
        assert all(row[1] == "expert" and float(row[4]) == 1.0 for row in rows), table
    finally:
        client.images.remove(TAG, force=True)
