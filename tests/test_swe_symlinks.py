"""Real trees hold symlinks, even one to itself (sqlfluff's checkout does): the start tree and the
sandbox tool's ``setup`` copy keep them as links instead of failing or following them."""

from __future__ import annotations

import os
from pathlib import Path

from turngym.envs.swe.sandbox import swe_tool
from turngym.envs.swe.sandbox_base import StartTree


def _tree(root: Path) -> Path:
    repo = root / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "mod.py").write_text("VALUE = 1\n")
    os.symlink("loop", repo / "loop")  # a link to itself: following it never ends
    os.symlink("pkg/mod.py", repo / "alias.py")
    return repo


def _links(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): os.readlink(path)
        for path in sorted(folder.rglob("*"))
        if path.is_symlink()
    }


def test_start_tree_keeps_a_symlink_to_itself(tmp_path: Path) -> None:
    repo = _tree(tmp_path)
    tree = StartTree.build(repo)
    out = tmp_path / "out"
    tree.materialize(out)
    assert _links(out) == {"alias.py": "pkg/mod.py", "loop": "loop"}
    assert (out / "pkg" / "mod.py").read_text() == "VALUE = 1\n"


def test_sandbox_setup_copies_a_symlink_to_itself(tmp_path: Path) -> None:
    repo = _tree(tmp_path)
    workspace, base = tmp_path / "workspace", tmp_path / "base"
    swe_tool._setup({"workspace": str(workspace), "base": str(base), "src": str(repo)})
    for folder in (workspace, base):
        assert _links(folder) == {"alias.py": "pkg/mod.py", "loop": "loop"}
        assert (folder / "pkg" / "mod.py").read_text() == "VALUE = 1\n"
