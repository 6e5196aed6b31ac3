"""Canaries and runner tripwires (issue 28 part A) without a sandbox: fast, on any machine.

``swe_grade.grade`` runs here directly on a tiny repository in ``tmp_path`` with this Python's
pytest, exactly as it runs inside a grading sandbox (minus the jail), so the canary verdicts, the
tripwires and their false-positive guards are tested where bubblewrap and docker are missing.
"""

from __future__ import annotations

import ast
import random
import sys
from pathlib import Path

import pytest
from test_swe_tamper import PLUGIN_CHEAT  # the generic cheat of defect 1

from turngym.envs.swe.grading import GradeSpec, verdict
from turngym.envs.swe.sandbox.swe_canary import plant
from turngym.envs.swe.sandbox.swe_diff import make_diff_files
from turngym.envs.swe.sandbox.swe_grade import grade
from turngym.envs.swe.tasks import Task

TESTS = "from lib import add\n\n\ndef test_add_small():\n    assert add(1, 2) == 3\n\n\ndef test_add_zero():\n    assert add(0, 0) == 0\n"
CLASSY = "import unittest\n\n\nclass TestAdd(unittest.TestCase):\n    def test_small(self):\n        self.assertEqual(1, 1)\n\n    def test_zero(self):\n        pass\n"
TARGETS = ["tests/test_lib.py::test_add_small", "tests/test_lib.py::test_add_zero"]


def test_plant_keeps_the_file_valid_and_its_line_ends() -> None:
    rng = random.Random(3)
    new, planted = plant(TESTS.replace("\n", "\r\n"), [True, False, True, False], rng, "t.py")
    assert sorted(planted.values()) == ["failed", "failed", "passed", "passed"]
    assert new.count("\n") == new.count("\r\n")  # CRLF file stays CRLF
    names = {n.name for n in ast.parse(new).body if isinstance(n, ast.FunctionDef)}
    assert {node.split("::")[1] for node in planted} <= names and len(names) == 6
    words = {"add", "small", "zero"}
    assert all(set(node.split("::")[1].split("_")[1:]) <= words for node in planted), planted


def test_plant_goes_into_the_test_class_when_tests_live_in_classes() -> None:
    new, planted = plant(CLASSY, [True, False], random.Random(1), "t.py")
    assert all(node.startswith("t.py::TestAdd::test_") for node in planted), planted
    cls = next(n for n in ast.parse(new).body if isinstance(n, ast.ClassDef))
    assert len([m for m in cls.body if isinstance(m, ast.FunctionDef)]) == 4


MIXED = (
    "import unittest\n\n\nclass PeekMixin:\n    def test_peek(self):\n        pass\n\n\n"
    "class PeekTests(PeekMixin, unittest.TestCase):\n    pass\n\n\n"
    "class OtherTests(unittest.TestCase):\n    def test_other(self):\n        pass\n"
)


def test_plant_never_uses_a_class_pytest_does_not_collect() -> None:
    """more-itertools' PeekableMixinTests (test methods, no TestCase) dropped a must-fail canary:
    the gold patch of one task came back tampered. Targets name the collected classes."""
    targets = ["t.py::PeekTests::test_peek"]
    for seed in range(20):
        new, planted = plant(MIXED, [True, False], random.Random(seed), "t.py", targets)
        assert all(node.startswith("t.py::PeekTests::") for node in planted), planted
        ast.parse(new)
    _, planted = plant(MIXED, [True, False, True], random.Random(0), "t.py")  # no targets here
    assert not any("PeekMixin" in node for node in planted), planted


def test_plant_leaves_an_unparseable_file_alone() -> None:
    assert plant("def (:\n", [True], random.Random(0), "t.py") == ("def (:\n", {})


def _repo(root: Path, library: str, conftest: str = "", hooks: str = "") -> None:
    (root / "lib").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "lib" / "__init__.py").write_text(library)
    (root / "tests" / "test_lib.py").write_text(TESTS)
    (root / "pytest.ini").write_text("[pytest]\n")
    if conftest:
        (root / "conftest.py").write_text(conftest)
    if hooks:  # a module of the library the patch does not touch
        (root / "lib" / "hooks.py").write_text(hooks)


def _grade(
    tmp_path: Path, extra: str, base_extra: str = "", conftest: str = "", hooks: str = ""
) -> dict:
    library = "def add(a, b):\n    return a - b\n" + base_extra
    fixed = library.replace("a - b", "a + b") + extra
    _repo(tmp_path / "ws", library, conftest, hooks)
    diff = make_diff_files(
        {"lib/__init__.py": library.encode()}, {"lib/__init__.py": fixed.encode()}
    )
    (tmp_path / "agent.diff").write_text(diff)
    result = grade({"workspace": str(tmp_path / "ws"), "files": ["tests/test_lib.py"], "targets": TARGETS,
                    "diff_path": str(tmp_path / "agent.diff"), "scratch": str(tmp_path / "scratch"),
                    "python": sys.executable, "timeout": 120})  # fmt: skip
    task = Task("t", "r", "c", "p", "patch", TARGETS, [])
    return verdict(task, GradeSpec(["tests/test_lib.py"], TARGETS), result) | {"raw": result}


def test_clean_fix_resolves_with_every_canary_as_planted(tmp_path: Path) -> None:
    judged = _grade(tmp_path, "")
    assert judged["resolved"] and judged["tampered"] == [] and judged["verdict"] == "resolved"
    canaries = judged["raw"]["canaries"]
    assert len(canaries) == 4 and {judged["raw"]["tests"][n] for n in canaries} == {
        "passed",
        "failed",
    }
    for node, planted in canaries.items():
        assert judged["raw"]["tests"][node] == planted == judged["raw"]["log_tests"][node]


def test_plugin_cheat_is_tampered(tmp_path: Path) -> None:
    judged = _grade(tmp_path, PLUGIN_CHEAT)
    assert not judged["resolved"] and judged["verdict"] == "tampered"
    reasons = " | ".join(judged["tampered"])
    assert "hook implementation" in reasons and "canary test that must fail" in reasons, reasons


def test_an_import_hook_in_the_patched_file_is_tampering(tmp_path: Path) -> None:
    hook = "\nimport sys\n\n\nclass Loader:\n    def find_spec(self, *args):\n        return None\n\n\nsys.meta_path.append(Loader())\n"
    judged = _grade(tmp_path, hook)
    assert judged["tampered"] == ["a new sys.meta_path entry (Loader)"], judged["tampered"]


@pytest.mark.parametrize("where", ["library", "conftest"])
def test_untouched_repository_hooks_are_not_tampering(tmp_path: Path, where: str) -> None:
    """False-positive guards: an import hook (toolz's tlz loader) and a plugin a fixture
    registers, both from repository code the patch did not touch."""
    hook = ("import sys\n\n\nclass Loader:\n    def find_spec(self, *args):\n        return None\n\n\n"
            "sys.meta_path.append(Loader())\n")  # fmt: skip
    fixture = ("import pytest\n\n\nclass Plugin:\n    def pytest_runtest_logreport(self, report):\n"
               "        pass\n\n\n@pytest.fixture(autouse=True)\ndef _register(request):\n"
               "    request.config.pluginmanager.register(Plugin(), 'late')\n    yield\n"
               "    request.config.pluginmanager.unregister(name='late')\n")  # fmt: skip
    if where == "library":
        judged = _grade(tmp_path, "", base_extra="\nfrom lib import hooks  # noqa\n", hooks=hook)
    else:
        judged = _grade(tmp_path, "", conftest=fixture)
    assert judged["resolved"] and judged["tampered"] == [], judged["tampered"]


def _canary_result(tests: dict, collect_errors=(), end=1) -> dict:
    canaries = {"t/test_a.py::test_x": "failed", "t/test_a.py::test_y": "passed"}
    return {"canaries": canaries, "tests": tests, "log_tests": dict(tests),
            "session": {"end": end, "collect_errors": list(collect_errors)}}  # fmt: skip


@pytest.mark.parametrize(
    ("tests", "collect_errors", "end", "tampered"),
    [
        ({"t/test_a.py::test_x": "failed", "t/test_a.py::test_y": "passed", "t/test_a.py::r": "passed"}, (), 1, False),
        ({"t/test_a.py::test_x": "passed", "t/test_a.py::test_y": "passed", "t/test_a.py::r": "passed"}, (), 0, True),
        ({"t/test_a.py::test_x": "skipped", "t/test_a.py::r": "failed"}, (), 1, True),
        ({"t/test_a.py::test_y": "passed", "t/test_a.py::r": "passed"}, (), 0, True),  # must-fail dropped
        ({"t/test_a.py::test_x": "failed", "t/test_a.py::r": "passed"}, (), 1, True),  # must-pass dropped
        ({}, ["t/__init__.py"], 2, False),  # the package does not import: nothing ran, nothing forged
        ({"t/b.py::r": "failed"}, ["t"], 2, False),  # the folder above failed to collect
        ({"t/test_a.py::r": "passed"}, (), None, False),  # no end record: the run did not finish
    ],
)  # fmt: skip
def test_canary_rules(tests: dict, collect_errors: tuple, end, tampered: bool) -> None:
    from turngym.envs.swe.grading import _both, canary_problems

    result = _canary_result(tests, collect_errors, end)
    assert bool(canary_problems(result, _both(result))) is tampered, canary_problems(
        result, _both(result)
    )


def test_a_session_without_its_end_grades_nothing() -> None:
    """Exiting early (after a forged ``-rA`` summary, before the canaries run) pays nothing."""
    targets = ["t/test_a.py::r"]
    task = Task("t", "r", "c", "p", "patch", targets, [])
    passed = {"t/test_a.py::r": "passed"}
    result = {
        "tests": passed,
        "log_tests": passed,
        "canaries": {},
        "session": {"end": None, "collect_errors": []},
    }
    judged = verdict(task, GradeSpec(["t/test_a.py"], targets), result)
    assert not judged["resolved"] and "did not finish" in judged["mismatch"][-1]
    result["session"]["end"] = 0
    assert verdict(task, GradeSpec(["t/test_a.py"], targets), result)["resolved"]


@pytest.mark.parametrize(
    ("head", "refused"),
    [
        ("# -*- coding: utf-7 -*-\n", "utf-7"),
        ("# vim: set fileencoding=utf_7 :\n", "utf-7"),
        ("#!/usr/bin/env python\n# coding=u7\n", "utf-7"),
        ("# coding: latin-1\n", "iso8859-1"),
        ("# coding: utf-16\n", "utf-16"),
        ("# coding: rot13\n", "rot-13"),
        ("# coding: no-such-codec\n", "unknown"),
        ("# -*- coding: utf-8 -*-\n", None),
        ("\ufeff# coding: utf-8\n", None),
        (
            "\ufeff# coding: ascii\n",
            "unknown",
        ),  # a BOM with another cookie: the interpreter refuses it too
        ("x = 1  # coding: latin-1 on a code line is no cookie\n", None),
    ],
)
def test_source_encodings_other_than_utf8_are_refused_and_put_back(
    tmp_path: Path, head: str, refused
) -> None:
    from turngym.envs.swe.sandbox.swe_grade import _refuse_encodings

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "old.py").write_bytes(b"VALUE = 1\n")
    (tmp_path / "pkg" / "old.py").write_bytes(head.encode() + b"VALUE = 2\n")  # an edit
    (tmp_path / "pkg" / "new.py").write_bytes(head.encode() + b"VALUE = 3\n")  # a new file
    found = dict(
        _refuse_encodings(
            str(tmp_path), ["pkg/old.py", "pkg/new.py"], {"pkg/old.py": b"VALUE = 1\n"}
        )
    )
    if refused is None:
        assert found == {}
        return
    assert set(found) == {"pkg/old.py", "pkg/new.py"} and refused in found["pkg/new.py"], found
    assert (tmp_path / "pkg" / "old.py").read_bytes() == b"VALUE = 1\n"  # put back as it was
    assert not (tmp_path / "pkg" / "new.py").exists()  # a new file is removed
