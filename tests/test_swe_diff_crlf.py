"""Issue 28 defect 8: diffs and their application keep every line ending byte for byte.

``swe_diff.apply_diff`` read targets with newline translation, so a correct one-line fix to a
CRLF file failed with ``apply_error`` (outcome 0), and a CRLF file touched by a task's test patch
made every grading of that task raise. These round trips (diff old -> new, apply to old, compare
bytes) cover CRLF, mixed, no-final-newline and lines with form feeds / Unicode separators, which
``str.splitlines`` used to split.
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium
import pytest
from test_swe_attacks import BACKENDS, TASK

from turngym.envs.swe.expert import patch_to_calls
from turngym.envs.swe.sandbox.swe_diff import apply_diff, make_diff_files, parse_diff

BODY = ["import os", "", "def area(w, h):", "    return w + h", "", "", "def other():", "    pass"]
CASES = {
    "crlf": ("\r\n".join(BODY) + "\r\n", "\r\n".join(BODY).replace("w + h", "w * h") + "\r\n"),
    "mixed": (
        "a = 1\r\nb = 2\nc = 3\r\n\r\nd = 4\n",
        "a = 1\r\nb = 20\nc = 3\r\n\r\nd = 4\n",
    ),
    "crlf_no_final_newline": ("x = 1\r\ny = 2", "x = 1\r\ny = 3"),
    "lf_no_final_newline": ("x = 1\ny = 2", "x = 1\ny = 2\nz = 3"),
    "gains_final_newline": ("x = 1\r\ny = 2", "x = 1\r\ny = 2\r\n"),
    "to_crlf": ("x = 1\ny = 2\n", "x = 1\r\ny = 2\r\n"),
    "form_feed_and_separators": (
        "a = 1\n\x0c\nb = '\u2028'\nc = 3\n",
        "a = 1\n\x0c\nb = '\u2028'\nc = 4\n",
    ),
    "trailing_cr_only": ("x = 1\r\ny = 2\r", "x = 1\r\ny = 5\r"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_diff_then_apply_is_byte_exact(tmp_path: Path, case: str) -> None:
    old, new = (text.encode() for text in CASES[case])
    (tmp_path / "m.py").write_bytes(old)
    diff = make_diff_files({"m.py": old}, {"m.py": new})
    assert diff, "the change must show in the diff"
    assert apply_diff(str(tmp_path), diff) == ["m.py"]
    assert (tmp_path / "m.py").read_bytes() == new


def test_one_line_fix_to_a_crlf_file_is_one_line_of_diff(tmp_path: Path) -> None:
    old, new = (text.encode() for text in CASES["crlf"])
    diff = make_diff_files({"m.py": old}, {"m.py": new})
    changed = [
        line
        for line in diff.split("\n")
        if line.startswith(("+", "-")) and line[:3] not in ("+++", "---")
    ]
    assert changed == ["-    return w + h\r", "+    return w * h\r"], changed
    ((path, _, _, hunks),) = parse_diff(diff)
    assert path == "m.py" and len(hunks) == 1


def test_a_git_style_test_patch_to_a_crlf_file_applies(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_m.py").write_bytes(b"def test_a():\r\n    assert 1\r\n")
    patch = (
        "diff --git a/tests/test_m.py b/tests/test_m.py\n--- a/tests/test_m.py\n+++ b/tests/test_m.py\n"
        "@@ -1,2 +1,5 @@\n def test_a():\r\n     assert 1\r\n+\r\n+def test_b():\r\n+    assert 2\r\n"
    )
    apply_diff(str(tmp_path), patch)
    expected = b"def test_a():\r\n    assert 1\r\n\r\ndef test_b():\r\n    assert 2\r\n"
    assert (tmp_path / "tests" / "test_m.py").read_bytes() == expected


def test_lf_edit_does_not_apply_to_a_crlf_file(tmp_path: Path) -> None:
    """Exact means exact: a hunk written for LF text is refused on the CRLF file, never half-applied."""
    (tmp_path / "m.py").write_bytes(b"x = 1\r\ny = 2\r\n")
    diff = make_diff_files({"m.py": b"x = 1\ny = 2\n"}, {"m.py": b"x = 1\ny = 3\n"})
    with pytest.raises(ValueError, match="does not apply"):
        apply_diff(str(tmp_path), diff)
    assert (tmp_path / "m.py").read_bytes() == b"x = 1\r\ny = 2\r\n"


# ---------------------------------------------------------------- end to end, both backends
def _crlf_task(tmp_path: Path) -> Path:
    """A tasks file holding one parse task whose buggy file has CRLF line endings."""
    from turngym.envs.swe.projects import PROJECTS, project_source
    from turngym.envs.swe.tasks import load_tasks

    task = next(t for t in load_tasks() if t.instance_id == TASK)
    path = task.extra["bug_file"]
    clean = (project_source(PROJECTS["parse"]) / path).read_bytes()
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / path).write_bytes(clean)
    apply_diff(str(tmp_path / "work"), task.setup_patch)
    buggy = (tmp_path / "work" / path).read_bytes()
    crlf = {path: buggy.replace(b"\n", b"\r\n")}
    record = dict(task.to_dict(), instance_id=TASK + "-crlf",
                  setup_patch=make_diff_files({path: clean}, crlf),
                  patch=make_diff_files(crlf, {path: clean.replace(b"\n", b"\r\n")}))  # fmt: skip
    out = tmp_path / "tasks.jsonl"
    out.write_text(json.dumps(record) + "\n")
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_fix_to_a_crlf_file_resolves(tmp_path: Path, backend: str) -> None:
    env = gymnasium.make("turngym/SWE-v0", backend=backend, tasks_path=str(_crlf_task(tmp_path)))
    try:
        env.reset(options={"task": TASK + "-crlf"})
        obs, _, _, _, _ = env.step(
            json.dumps({"tool": "bash", "command": "grep -c $'\\r' parse.py"})
        )
        assert int(obs.split()[0]) > 100, obs  # the workspace file really is CRLF
        for call in patch_to_calls(env.unwrapped.tasks[TASK + "-crlf"].patch):
            env.step(call)
        _, _, terminated, _, info = env.step('{"tool": "submit"}')
        assert terminated and info["success"], info["grading"]  # bd15375: apply_error, outcome 0
        assert not info["grading"]["apply_error"]
    finally:
        env.close()
