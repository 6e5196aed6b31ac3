"""Every Python snippet of the README runs as written on the README's own install.

Each snippet is saved as its own file and run as a script, as a user would paste it (no guard,
import or name added by the test), with every module hidden that ``pip install '.[all]'`` (the
README's set-up line) would not install, plus the extra of a ``turngym.integrations.<name>``
adapter the snippet imports (each adapter's section names its extra). CI installs ``[test]``, a
superset, so without the fence a snippet needing, say, ``jsonschema`` passed CI and failed users.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from helpers.extras import extra_distributions, fenced_env, normalize

ROOT = Path(__file__).resolve().parents[1]
SNIPPETS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def snippet_extras(snippet: str) -> set[str]:
    """``[all]`` plus the extra of each integration adapter the snippet imports."""
    return {"all", *re.findall(r"turngym\.integrations\.(\w+)", snippet)}


def test_the_readme_has_its_examples() -> None:
    assert len(SNIPPETS) >= 3, "the quick start, the custom-policy and the orchestra examples"


def test_all_installs_what_the_orchestra_traces_need() -> None:
    # The bug the fence exists for: [all] lacked jsonschema, [test] brought it.
    installed = extra_distributions({"all"})
    assert "jsonschema" in installed
    assert "trl" not in installed, "[trl] stays out of [all]; then the fence must hide it"


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_imports_resolve_on_its_install(index: int) -> None:
    allowed = extra_distributions(snippet_extras(SNIPPETS[index]))
    providers = metadata.packages_distributions()
    missing = []
    for node in ast.walk(ast.parse(SNIPPETS[index])):
        names = (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module]
            if isinstance(node, ast.ImportFrom) and node.module and not node.level
            else []
        )
        for name in names:
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top == "turngym":
                continue
            if not any(normalize(d) in allowed for d in providers.get(top, [])):
                missing.append(top)
    assert not missing, (
        f"snippet {index} imports {missing}, which pip install '.[{','.join(sorted(snippet_extras(SNIPPETS[index])))}]'"
        " does not install: add the package to the right extra in pyproject.toml"
    )


def test_the_fence_hides_what_the_install_lacks(tmp_path: Path) -> None:
    pytest.importorskip("trl")  # installed by [test]; the fence must hide it from an [all] run
    script = "import importlib.util, jsonschema; assert importlib.util.find_spec('trl') is None\n"
    script += "import trl\n"
    result = subprocess.run(
        [sys.executable, "-c", script], env=fenced_env({"all"}), capture_output=True, text=True
    )
    assert "No module named 'trl'" in result.stderr or "import of trl halted" in result.stderr, (
        result.stderr[-2000:]
    )


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs_as_a_saved_file(index: int, tmp_path: Path) -> None:
    script = tmp_path / f"readme_snippet_{index}.py"
    script.write_text(SNIPPETS[index])
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=fenced_env(snippet_extras(SNIPPETS[index])),
    )
    assert result.returncode == 0, f"snippet {index}:\n{SNIPPETS[index]}\n{result.stderr[-3000:]}"
    if "save_trajectories" in SNIPPETS[index]:
        lines = (tmp_path / "trajs.jsonl").read_text().splitlines()
        assert len(lines) == 16  # the quick start's num_episodes
