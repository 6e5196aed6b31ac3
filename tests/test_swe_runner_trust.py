"""The grade runner's trust rule: which code may add hooks without the verdict turning `tampered`.

pytest-dev/pytest is a real SWE-bench repository whose tests run on the repository's own pytest:
the gold patch of pytest-dev__pytest-11143 edits ``src/_pytest/assertion/rewrite.py``, the module
whose ``AssertionRewritingHook`` pytest puts on ``sys.meta_path``. Before this rule the tripwire
called that hook tampering and the gold patch scored 0.
"""

import importlib.util
import os
import types
from pathlib import Path

import _pytest
import pluggy
import pytest

RUNNER = Path(__file__).parents[1] / "envs" / "swe" / "sandbox" / "turngym_grade_runner.py"


def _runner():
    spec = importlib.util.spec_from_file_location("turngym_grade_runner_under_test", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "testbed"
    for rel in ("src/_pytest/__init__.py", "src/_pytest/assertion/rewrite.py", "pkg/mod.py"):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("")
    return repo


def test_runner_installed_from_the_repository_trusts_its_own_changed_files(tmp_path):
    runner, repo = _runner(), _repo(tmp_path)
    rewrite, mod = repo / "src/_pytest/assertion/rewrite.py", repo / "pkg/mod.py"
    changed = {os.path.realpath(rewrite), os.path.realpath(mod)}
    own = types.SimpleNamespace(__file__=str(repo / "src/_pytest/__init__.py"))
    trusted = runner._trust_rule(str(repo), "", changed, (own,))
    assert trusted(str(rewrite))  # the runner's own hook, patched by the fix itself
    assert not trusted(str(mod))  # any other changed repository file stays untrusted
    assert trusted(str(repo / "src/_pytest/__init__.py"))
    assert trusted(pytest.__file__)


def test_runner_from_site_packages_keeps_changed_repository_files_untrusted(tmp_path):
    runner, repo = _runner(), _repo(tmp_path)
    rewrite = repo / "src/_pytest/assertion/rewrite.py"
    changed = {os.path.realpath(rewrite)}
    trusted = runner._trust_rule(str(repo), "", changed, (_pytest, pluggy, pytest))
    assert not trusted(str(rewrite))  # a repository that only looks like pytest gains nothing
    assert trusted(str(repo / "pkg/mod.py"))  # left alone by the patch
    assert trusted(_pytest.__file__)
