"""SWE grading pieces without a sandbox: the diff allow-list, the runner's record stream, the
``-rA`` log reading, the verdict (both sources must agree; tampering fails all), suspicious-patch
flags, and the harness hook for other test frameworks."""

from __future__ import annotations

import json

from turngym.envs.swe.grading import GradeSpec, grading_spec, verdict
from turngym.envs.swe.sandbox.swe_diff import filter_diff, make_diff_files
from turngym.envs.swe.sandbox.swe_grade import _log_statuses, _statuses
from turngym.envs.swe.tasks import Task

START = {
    "pkg/__init__.py": b"",
    "pkg/mod.py": b"x = 1\n",
    "setup.cfg": b"[metadata]\n",
    "tests/test_mod.py": b"def test_x():\n    assert True\n",
    "data.bin": b"\xff\xfe",
}


def _entries(new: dict[str, bytes]) -> tuple[str, list]:
    diff = make_diff_files(START, {**START, **new})
    tracked = {rel: rel != "data.bin" for rel in START}
    return filter_diff(diff, tracked, {"tests/test_mod.py"})


def test_allow_list_keeps_library_edits_and_new_package_modules() -> None:
    kept, dropped = _entries(
        {
            "pkg/mod.py": b"x = 2\n",
            "pkg/new.py": b"y = 1\n",
            "pkg/sub/__init__.py": b"",
            "pkg/sub/m.py": b"z\n",
        }
    )
    assert dropped == []
    for path in ("pkg/mod.py", "pkg/new.py", "pkg/sub/__init__.py", "pkg/sub/m.py"):
        assert f"b/{path}" in kept


def test_allow_list_drops_every_hijack() -> None:
    planted = {
        "conftest.py": b"x\n",
        "pkg/conftest.py": b"x\n",
        ".pytest.ini": b"[pytest]\n",
        "pytest.toml": b"[pytest]\n",
        ".pytest.toml": b"[pytest]\n",
        "setup.cfg": b"[tool:pytest]\naddopts = -p evil\n",
        "sitecustomize.py": b"x\n",
        "pkg/usercustomize.py": b"x\n",
        "evil.pth": b"import evil\n",
        "pytest.py": b"x\n",
        "iniconfig.py": b"x\n",
        "json.py": b"x\n",
        "pkg/__main__.py": b"x\n",
        "pkg/mod.cpython-311.pyc": b"\x00\xff",
        "tests/test_mod.py": b"def test_x():\n    pass\n",
        "tests/helper.py": b"x\n",
        "data.bin": b"\x00\x01",
        "notes.sh": b"echo\n",
        "pkg/blob.txt": b"\xff\xfe\x00",
    }
    kept, dropped = _entries(planted)
    assert kept == "", kept
    assert {path for path, _ in dropped} == set(planted)


def test_runner_stream_needs_the_nonce_and_stops_at_the_end() -> None:
    nonce = "n" * 64

    def line(record: dict, key: str = nonce) -> bytes:
        return f"{key} {json.dumps(record)}\n".encode()

    records = (
        line({"id": "t::a", "when": "call", "outcome": "passed"}, key="forged")
        + line({"id": "t::a", "when": "setup", "outcome": "passed"})
        + line({"id": "t::a", "when": "call", "outcome": "failed"})
        + line({"id": "t::b", "when": "call", "outcome": "passed"})
        + line({"id": "t::c", "when": "setup", "outcome": "skipped"})
        + line({"end": 1})
        + line({"id": "t::a", "when": "call", "outcome": "passed"})  # after the end: atexit code
    )
    statuses, tampered, session = _statuses(records, nonce)
    assert statuses == {"t::a": "failed", "t::b": "passed", "t::c": "skipped"} and tampered == []
    assert session == {"end": 1, "collect_errors": []}
    _, tampered, session = _statuses(
        line({"id": "t::b", "when": "call", "outcome": "passed", "tampered": ["x"]}), nonce
    )
    assert tampered == ["x"] and session["end"] is None  # no end record: the run did not finish


def test_log_reading_is_swe_bench_rA_and_keeps_failures() -> None:
    log = "PASSED t.py::a\nFAILED t.py::b - AssertionError: x - y\nPASSED t.py::b\nERROR t.py::c[p - q]\n"
    assert _log_statuses(log, ["t.py::a", "t.py::b", "t.py::c[p - q]", "t.py::d"]) == {
        "t.py::a": "passed",
        "t.py::b": "failed",
        "t.py::c[p - q]": "failed",
    }


def test_verdict_needs_stream_and_log_to_agree() -> None:
    task = Task("t", "r", "c", "p", "patch", ["t.py::a"], ["t.py::b"])
    spec = GradeSpec(["t.py"], ["t.py::a", "t.py::b"])
    both = {"t.py::a": "passed", "t.py::b": "passed"}
    assert verdict(task, spec, {"tests": both, "log_tests": both})["resolved"]
    forged_log = verdict(task, spec, {"tests": {"t.py::b": "passed"}, "log_tests": both})
    assert not forged_log["resolved"] and forged_log["mismatch"] == ["t.py::a"]
    tampered = verdict(task, spec, {"tests": both, "log_tests": both, "tampered": ["os.write"]})
    assert not tampered["resolved"] and tampered["tampered"] == ["os.write"]
    assert tampered["verdict"] == "tampered" and "os.write" in tampered["reason"]


def test_external_tasks_use_the_harness_command_and_parser() -> None:
    django = Task(
        "django__django-1", "django/django", "c", "p", "patch",
        ["test_a (app.tests.T)"], [], test_patch="diff --git a/tests/app/tests.py b/tests/app/tests.py\n",
    )  # fmt: skip
    spec = grading_spec(django)
    assert spec.command is not None and "runtests.py" in spec.command and spec.parser == "django"
    result = {"log": "test_a (app.tests.T) ... ok\n"}
    assert verdict(django, spec, result)["resolved"]
    assert not verdict(django, spec, {"log": "test_a (app.tests.T) ... FAIL\n"})["resolved"]
    bundled = Task("b", "r", "c", "p", "patch", ["t.py::a"], [], project="parse")
    assert grading_spec(bundled).command is None  # our runner, with its authenticated stream
