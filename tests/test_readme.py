"""Every Python snippet of the README runs as written, each saved as its own file and run as a
script, as a user would paste it (no guard, import or name added by the test)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNIPPETS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_the_readme_has_its_examples() -> None:
    assert len(SNIPPETS) >= 3, "the quick start, the custom-policy and the orchestra examples"


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs_as_a_saved_file(index: int, tmp_path: Path) -> None:
    script = tmp_path / f"readme_snippet_{index}.py"
    script.write_text(SNIPPETS[index])
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"snippet {index}:\n{SNIPPETS[index]}\n{result.stderr[-3000:]}"
    if "save_trajectories" in SNIPPETS[index]:
        lines = (tmp_path / "trajs.jsonl").read_text().splitlines()
        assert len(lines) == 16  # the quick start's num_episodes
