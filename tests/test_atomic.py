"""Atomic writes (turngym.atomic): no temp file survives an error, a killed writer's temp file is
swept on the next write, and a full disk says so (a real small tmpfs when the test may mount one,
else a simulated ENOSPC)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import turngym
import turngym.atomic
from turngym.atomic import DiskFullError, atomic_write, sweep_temp_files, temp_owner
from turngym.cache import cached_dir
from turngym.trajectory import Trajectory, Turn


def _trajectories(count: int, size: int) -> list[Trajectory]:
    text = "x" * size
    return [
        Trajectory(turns=[Turn(observation=text, action="go")], task_id=str(i), group_id="g")
        for i in range(count)
    ]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 512 KiB tmpfs, or a skip saying why it cannot be mounted here."""
    mount = tmp_path / "small"
    mount.mkdir()
    if not shutil.which("mount") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the simulated-ENOSPC tests cover this case")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_save_on_a_full_tmpfs_leaves_no_temp_file_and_frees_the_space(small_tmpfs):
    target = small_tmpfs / "trajs.jsonl"
    turngym.save_trajectories(target, _trajectories(2, 1000))
    before = target.read_bytes()
    free = shutil.disk_usage(small_tmpfs).free
    with pytest.raises(DiskFullError, match=r"is full .*Free space there"):
        turngym.save_trajectories(target, _trajectories(100, 10_000))  # ~1 MB > 512 KiB
    assert _leftovers(small_tmpfs) == []
    assert target.read_bytes() == before  # the old file is intact
    assert shutil.disk_usage(small_tmpfs).free == free  # the partial write's space came back
    turngym.save_trajectories(target, _trajectories(3, 1000))  # and later writes work
    assert len(turngym.load_trajectories(target)) == 3


def test_cache_build_on_a_full_tmpfs_says_the_disk_is_full(small_tmpfs, monkeypatch):
    monkeypatch.setenv("TURNGYM_CACHE", str(small_tmpfs))

    def build(folder: Path) -> None:
        np.zeros(200_000).tofile(folder / "big.bin")  # 1.6 MB; numpy's error names no errno

    with pytest.raises(DiskFullError, match="is full"):
        cached_dir("space", "big", build)
    assert list((small_tmpfs / "space").iterdir()) == []


class _FullDisk:
    """A file whose writes fail with ENOSPC once ``room`` bytes were written (a simulated full disk)."""

    def __init__(self, handle, room: int) -> None:
        self.handle, self.room = handle, room

    def write(self, data):
        self.room -= len(data)
        if self.room < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


def test_simulated_enospc_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "trajs.jsonl"
    turngym.save_trajectories(target, _trajectories(1, 10))
    real_open = open
    monkeypatch.setattr(
        turngym.atomic, "open", lambda *a, **k: _FullDisk(real_open(*a, **k), 5000), raising=False
    )
    with pytest.raises(DiskFullError, match=f"the disk holding {tmp_path} is full"):
        turngym.save_trajectories(target, _trajectories(10, 1000))
    assert _leftovers(tmp_path) == []
    assert len(turngym.load_trajectories(target)) == 1


def test_short_write_on_a_nearly_full_disk_is_reported_as_full(tmp_path, monkeypatch):
    monkeypatch.setenv("TURNGYM_CACHE", str(tmp_path))
    monkeypatch.setattr(
        turngym.atomic.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10, 10, 0)
    )

    def build(folder: Path) -> None:
        (folder / "part").write_bytes(b"abc")
        raise OSError("47692 requested and 12256 written")  # numpy's tofile on a full disk

    with pytest.raises(DiskFullError, match=r"is full \(0.0 MiB free"):
        cached_dir("space", "short", build)
    assert list((tmp_path / "space").iterdir()) == []


def test_any_error_removes_the_temp_file_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "trajs.jsonl"
    turngym.save_trajectories(target, _trajectories(2, 10))
    with pytest.raises(TypeError, match="expects Trajectory objects"):
        turngym.save_trajectories(target, [*_trajectories(1, 10), "not a trajectory"])
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target) as handle:
            handle.write("half")
            raise KeyboardInterrupt
    assert _leftovers(tmp_path) == [] and len(turngym.load_trajectories(target)) == 2


def test_a_killed_writers_temp_file_is_swept_on_the_next_write(tmp_path):
    target = tmp_path / "trajs.jsonl"
    script = textwrap.dedent(
        f"""
        import os, signal
        from turngym.atomic import atomic_write
        with atomic_write({str(target)!r}) as handle:
            handle.write("x" * 1_000_000)
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL
    (left,) = _leftovers(tmp_path)
    assert temp_owner(left) is not None and not target.exists()
    alive = tmp_path / f".other.tmp.{turngym.atomic.HOST}.{os.getpid()}.abcd"
    alive.write_text("a live writer's")
    turngym.save_trajectories(target, _trajectories(1, 10))  # the next start sweeps
    assert _leftovers(tmp_path) == [alive.name]
    assert sweep_temp_files(tmp_path, max_age_s=-1) == [alive]  # too old: anyone's is stale


def test_atomic_write_text_and_bytes(tmp_path):
    turngym.atomic.atomic_write_text(tmp_path / "a" / "m.json", json.dumps({"k": 1}))
    turngym.atomic.atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert json.loads((tmp_path / "a" / "m.json").read_text()) == {"k": 1}
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(ValueError, match="use 'w'"):
        with atomic_write(tmp_path / "c", "a"):
            pass


def test_an_appended_line_that_fills_the_disk_is_cut_back_and_says_so(small_tmpfs):
    """A metrics log on a full disk keeps its whole lines, never half of the failed one."""
    log = small_tmpfs / "metrics.jsonl"
    turngym.atomic.append_line(log, json.dumps({"iteration": 1}))
    (small_tmpfs / "filler").write_bytes(b"x" * (shutil.disk_usage(small_tmpfs).free - 1000))
    with pytest.raises(DiskFullError, match="is full"):
        turngym.atomic.append_line(log, json.dumps({"iteration": 2, "pad": "y" * 8000}))
    assert log.read_text() == '{"iteration": 1}\n'


def test_a_partial_append_is_cut_back(tmp_path, monkeypatch):
    log = tmp_path / "metrics.jsonl"
    turngym.atomic.append_line(log, '{"iteration": 1}')
    real_write = os.write

    def short_then_full(descriptor, data):
        if len(data) > 10:
            return real_write(descriptor, data[:10])  # the kernel took part of it
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(turngym.atomic.os, "write", short_then_full)
    with pytest.raises(DiskFullError):
        turngym.atomic.append_line(log, '{"iteration": 2, "loss": 0.5}')
    monkeypatch.undo()
    assert log.read_text() == '{"iteration": 1}\n'
    turngym.atomic.append_line(log, '{"iteration": 2}')
    assert log.read_text().splitlines() == ['{"iteration": 1}', '{"iteration": 2}']


def test_a_torn_last_metrics_line_is_skipped_by_plot_and_dropped_by_resume(tmp_path):
    """What a run killed mid-append leaves: readers go on; a torn line in the middle is an error."""
    from turngym.agents.train_report import read_metrics

    log = tmp_path / "metrics.jsonl"
    log.write_text('{"iteration": 1, "loss": 1.0}\n{"iteration": 2, "loss": 0.5}\n{"iterat')
    with pytest.warns(UserWarning, match="torn last line"):
        assert [r["iteration"] for r in read_metrics(tmp_path)] == [1, 2]
    log.write_text('{"iteration": 1}\n{"itera\n{"iteration": 3}\n')
    with pytest.raises(turngym.error.InvalidArgumentError, match="metrics.jsonl:2 is not a JSON"):
        read_metrics(tmp_path)
    from types import SimpleNamespace

    from turngym.agents.learner_io import MetricsLogger

    log.write_text('{"iteration": 1}\n{"iteration": 2}\n{"iteration": 3}\n{"iterat')
    logger = MetricsLogger(tmp_path, SimpleNamespace(tensorboard=False, wandb_project=None), 2)
    logger.log({"iteration": 3, "loss": 0.1})  # the resumed run's next iteration
    assert [json.loads(x)["iteration"] for x in log.read_text().splitlines()] == [1, 2, 3]
