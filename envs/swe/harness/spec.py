"""How a SWE-bench-style instance is tested: its test files, its repository's test command, its
log parser and its grading timeout, with SWE-bench's semantics; our own code.

=======================  ==========================================================================
test files               :func:`test_files_from_patch`: the ``b/`` paths of the ``diff --git``
                         headers of ``test_patch``, without SWE-bench's non-test extensions
                         (``.json .png csv .txt .md .jpg .jpeg .pkl .yml .yaml .toml``). With no
                         ``test_patch`` (SWE-smith): the files named by pytest ids
                         (``path::test``) and by Django ids (``test_x (app.tests.Class)`` ->
                         ``tests/app/tests.py``); docstring ids and sympy's bare names name no file.
commands (argv)          ``django/django``: ``./tests/runtests.py --verbosity 2
                         --settings=test_sqlite --parallel 1 <labels>`` (version 1.9: ``--verbosity
                         2`` only), labels = test files without ``tests/`` and ``.py``, ``/`` ->
                         ``.`` (``admin_views.tests``); ``sympy/sympy``: ``bin/test -C --verbose
                         <files>`` with ``PYTHONWARNINGS=ignore::UserWarning,ignore::SyntaxWarning``;
                         every other repository: ``pytest -rA --tb=no -p no:cacheprovider <files>``
parser                   the family SWE-bench maps the repository to
                         (:func:`.parsers.parser_for_repo`; ``pytest`` outside its map)
timeout (seconds)        :func:`grade_timeout`: a user override (a number, or a dict by instance id
                         or repository), else the record's ``timeout``, else
                         :data:`REPO_TIMEOUTS` for its repository, else 1800 s for an external
                         instance (SWE-bench's ``run_evaluation`` default) and 180 s for a bundled
                         task
=======================  ==========================================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from turngym.envs.swe.harness.parsers import parser_for_repo
from turngym.error import InvalidArgumentError

__all__ = [
    "TestSpec",
    "NON_TEST_EXTS",
    "REPO_TIMEOUTS",
    "BUNDLED_TIMEOUT",
    "EXTERNAL_TIMEOUT",
    "test_files_from_patch",
    "test_files_from_ids",
    "test_spec",
    "grade_timeout",
]

BUNDLED_TIMEOUT = 180.0
EXTERNAL_TIMEOUT = 1800.0
#: Per-repository grading timeouts (seconds) where :data:`EXTERNAL_TIMEOUT` does not fit; users
#: override any of them with ``grade_timeout=``.
REPO_TIMEOUTS: dict[str, float] = {}
NON_TEST_EXTS = (
    ".json",
    ".png",
    "csv",
    ".txt",
    ".md",
    ".jpg",
    ".jpeg",
    ".pkl",
    ".yml",
    ".yaml",
    ".toml",
)
PYTEST_COMMAND = ("pytest", "-rA", "--tb=no", "-p", "no:cacheprovider")
DJANGO_COMMAND = (
    "./tests/runtests.py",
    "--verbosity",
    "2",
    "--settings=test_sqlite",
    "--parallel",
    "1",
)
DJANGO_COMMAND_NO_PARALLEL = ("./tests/runtests.py", "--verbosity", "2")
SYMPY_COMMAND = (
    "env",
    "PYTHONWARNINGS=ignore::UserWarning,ignore::SyntaxWarning",
    "bin/test",
    "-C",
    "--verbose",
)
_DIFF_HEADER = re.compile(r"^diff --git a/.* b/(.*)$", re.MULTILINE)
_DJANGO_ID = re.compile(r"^\w+ \(([\w.]+)\)$")


@dataclass(frozen=True)
class TestSpec:
    """How to test one instance.

    Attributes:
        command: argv of the test command (run in the repository root).
        parser: the parser family for its log (:data:`.parsers.FAMILIES`).
        test_files: the test files (restored before grading).
        timeout: the grading timeout in seconds (:func:`grade_timeout`).
    """

    __test__ = False  # not a pytest test class

    command: list[str]
    parser: str
    test_files: list[str]
    timeout: float = EXTERNAL_TIMEOUT


def test_files_from_patch(test_patch: str) -> list[str]:
    """The test files a ``test_patch`` touches, as SWE-bench derives its test directives (in order)."""
    files = _DIFF_HEADER.findall(test_patch or "")
    kept = [f for f in files if not any(f.endswith(ext) for ext in NON_TEST_EXTS)]
    return list(dict.fromkeys(kept))


def _file_of(test_id: str) -> str | None:
    if "::" in test_id:
        return test_id.split("::", 1)[0]
    match = _DJANGO_ID.match(test_id.strip())
    if match:
        parts = match.group(1).split(".")
        module = []
        for part in parts:
            if part[:1].isupper():  # the TestCase class: the module ends before it
                break
            module.append(part)
        if module and len(module) < len(parts):
            return "tests/" + "/".join(module) + ".py"
    return None


def test_files_from_ids(test_ids: list[str]) -> list[str]:
    """The files named by pytest (``path::test``) and Django (``test_x (app.tests.Class)``) ids."""
    files = (_file_of(test_id) for test_id in test_ids)
    return sorted({f for f in files if f})


def _field(task: Any, name: str, default: Any = None) -> Any:
    if isinstance(task, Mapping):
        return task.get(name, default)
    return getattr(task, name, default)


def _seconds(value: Any, what: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not 0 < seconds <= 86_400:
        raise InvalidArgumentError(
            f"{what}={value!r} is not a grading timeout; give seconds in (0, 86400]."
        )
    return seconds


def grade_timeout(task: Any, override: Any = None) -> float:
    """The grading timeout of a task in seconds (see the module docstring).

    Args:
        task: a :class:`~.tasks.Task` or a record.
        override: None, seconds, or a dict by instance id or repository (others: the default).
    """
    instance_id, repo = str(_field(task, "instance_id", "")), str(_field(task, "repo", ""))
    if isinstance(override, Mapping):
        for key in (instance_id, repo):
            if key in override:
                return _seconds(override[key], f"grade_timeout[{key!r}]")
    elif override is not None:
        return _seconds(override, "grade_timeout")
    extra = _field(task, "extra", None) or {}
    recorded = _field(task, "timeout", None)
    if recorded is None and isinstance(extra, Mapping):
        recorded = extra.get("timeout")
    if recorded is not None:
        return _seconds(recorded, f"the 'timeout' of task {instance_id!r}")
    if _field(task, "project", None):
        return BUNDLED_TIMEOUT
    return REPO_TIMEOUTS.get(repo, EXTERNAL_TIMEOUT)


def test_spec(task: Any, timeout: Any = None) -> TestSpec:
    """The test command, parser, test files and grading timeout of a :class:`~.tasks.Task` or a
    SWE-bench record (``timeout``: a user override, see :func:`grade_timeout`)."""
    seconds = grade_timeout(task, timeout)
    repo = str(_field(task, "repo", ""))
    test_patch = _field(task, "test_patch", "") or ""
    ids = list(_field(task, "FAIL_TO_PASS", []) or []) + list(
        _field(task, "PASS_TO_PASS", []) or []
    )
    files = test_files_from_patch(test_patch) if test_patch else test_files_from_ids(ids)
    if repo == "django/django":
        labels = []
        for path in files:
            path = path[: -len(".py")] if path.endswith(".py") else path
            path = path[len("tests/") :] if path.startswith("tests/") else path
            labels.append(path.replace("/", "."))
        version = str(_field(task, "version", "") or "")
        base = DJANGO_COMMAND_NO_PARALLEL if version == "1.9" else DJANGO_COMMAND
        return TestSpec(list(base) + labels, "django", files, seconds)
    if repo == "sympy/sympy":
        return TestSpec(list(SYMPY_COMMAND) + files, "sympy", files, seconds)
    return TestSpec(list(PYTEST_COMMAND) + files, parser_for_repo(repo), files, seconds)


# Their names start with "test_": keep pytest from collecting them where tests import them.
for _function in (test_files_from_patch, test_files_from_ids, test_spec, grade_timeout):
    _function.__test__ = False  # type: ignore[attr-defined]
