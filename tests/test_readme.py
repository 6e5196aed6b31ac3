"""The README's Python examples run as written (in a script, as a user would paste them)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_examples_run(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) >= 2, "the quick start and the custom-policy example"
    body = "\n".join(blocks) + '\nprint("README OK", len(trajs))\n'
    # Under __main__ guard: turngym.rollout starts worker processes (forkserver).
    script = tmp_path / "readme_examples.py"
    script.write_text('if __name__ == "__main__":\n' + textwrap.indent(body, "    "))
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "README OK 4" in result.stdout
    assert (tmp_path / "trajs.jsonl").exists()
