"""ALFWorld's official data with a split folder missing: a clear error, not 0 tasks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from turngym.envs.alfworld.env import ALFWorldEnv
from turngym.error import InvalidArgumentError

OFFICIAL = Path(__file__).parent / "fixtures" / "alfworld" / "json_2.1.1"


def test_missing_valid_seen_names_the_folder_and_the_fix(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    for folder in ("train", "valid_unseen"):
        shutil.copytree(OFFICIAL / folder, tmp_path / "json_2.1.1" / folder)
    # Folders that are there load (these trials carry no game.tw-pddl, so ALFWorld's own filter
    # keeps none of them: an empty list, not an error).
    assert ALFWorldEnv(data_dir=tmp_path).task_ids == []
    assert ALFWorldEnv(data_dir=tmp_path, split="test", rooms="unseen").task_ids == []
    with pytest.raises(InvalidArgumentError) as error:
        ALFWorldEnv(data_dir=tmp_path, split="test", rooms="seen").reset(seed=0)
    message = str(error.value)
    assert "valid_seen does not exist" in message and "alfworld-download" in message
    assert "['train', 'valid_unseen']" in message
    (tmp_path / "json_2.1.1" / "valid_seen").mkdir()
    with pytest.raises(InvalidArgumentError, match="holds no"):
        ALFWorldEnv(data_dir=tmp_path, split="test", rooms="seen").reset(seed=0)
