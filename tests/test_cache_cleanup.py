"""A killed cache build leaves no temporary folder behind for good; rebuilding an ALFWorld game
leaves no file open."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from turngym.cache import _HOST, cached_dir, remove_stale_builds

KILLED_BUILD = """
import os, signal, sys
from turngym.cache import cached_dir

def build(tmp):
    (tmp / "half.txt").write_text("half of an artefact")
    os.kill(os.getpid(), signal.SIGKILL)  # killed midway: no finally, no cleanup

cached_dir("ns", sys.argv[1], build)
"""


def test_a_killed_build_leaves_a_temp_folder_that_the_next_build_removes(tmp_path, monkeypatch):
    monkeypatch.setenv("TURNGYM_CACHE", str(tmp_path))
    env = {**os.environ, "TURNGYM_CACHE": str(tmp_path)}
    killed = subprocess.run([sys.executable, "-c", KILLED_BUILD, "key"], env=env, check=False)
    assert killed.returncode != 0
    leftovers = [p for p in (tmp_path / "ns").iterdir() if p.name.startswith(".")]
    assert len(leftovers) == 1 and (leftovers[0] / "half.txt").is_file()

    folder = cached_dir("ns", "other", lambda tmp: (tmp / "a.txt").write_text("a"))
    assert sorted(p.name for p in (tmp_path / "ns").iterdir()) == ["other"]
    assert (folder / "a.txt").read_text() == "a"


def test_live_builds_and_other_folders_are_kept(tmp_path):
    live = tmp_path / f".key.tmp.{_HOST}.{os.getpid()}.abcd"
    foreign = tmp_path / ".key.tmp.otherhost.1.abcd"  # another machine sharing the cache
    legacy = tmp_path / ".key.abc12_yz"
    locks = tmp_path / ".locks"
    published = tmp_path / "key"
    for folder in (live, foreign, legacy, locks, published):
        folder.mkdir()
    assert remove_stale_builds(tmp_path) == []
    day_old = time.time() - 2 * 24 * 3600
    for folder in (foreign, legacy, locks, published):
        os.utime(folder, (day_old, day_old))
    assert sorted(p.name for p in remove_stale_builds(tmp_path)) == sorted(
        [foreign.name, legacy.name]
    )
    assert live.is_dir() and locks.is_dir() and published.is_dir()


def test_rebuilding_an_alfworld_game_leaves_no_file_open(tmp_path, monkeypatch) -> None:
    pytest.importorskip("alfworld", reason="needs pip install 'turngym[alfworld]'")
    monkeypatch.setenv("TURNGYM_CACHE", str(tmp_path))
    from turngym.envs.alfworld.games import generated_game

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = generated_game("pick_and_place_simple", 3, "seen")
        gc.collect()
    assert Path(path).is_file()
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not unclosed, unclosed
