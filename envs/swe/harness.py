"""How a SWE-bench-style instance is tested: its test files, its repository's test command, its log
parser, and its Docker image, with SWE-bench's semantics (``swebench/harness``: ``test_spec``,
``constants``, ``log_parsers``, ``image_spec``); our own code.

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
parsers (``parse_log``)  ``pytest``: lines ``STATUS id`` (``-rA`` summary; ``FAILED``, ``ERROR``,
                         ``XFAIL`` cut at `` - ``; ``SKIPPED [N] file:line`` summaries ignored) and
                         ``id STATUS``
                         (older/verbose output); ``XFAIL`` -> PASSED (SWE-bench grades it passing).
                         ``django``: ``id ... ok|OK|skipped|FAIL|ERROR``, ``FAIL: id`` / ``ERROR:
                         id`` headers (the whole id, where SWE-bench keeps its first word), a bare
                         ``ok`` line after an interrupted ``id ...`` line, docstring ids as printed.
                         ``sympy``: ``test_x ok|F|E|s`` and ``___ path.py:test_x ___`` failure
                         headers (as ``path.py:test_x``). Statuses: PASSED, FAILED, ERROR, SKIPPED;
                         a test absent from the log has no entry (grading counts it as not passed).
images (``image_for``)   a user ``mapping`` (dict by instance id, callable, ``"swebench"``,
                         ``"swe-gym"`` or a ``{instance_id}`` template) first; then the record's
                         ``image`` or ``image_name`` (SWE-smith); then, for an id of SWE-bench's
                         form (``owner__repo-123``) in one of SWE-bench's repositories, SWE-bench's
                         published name ``swebench/sweb.eval.x86_64.<id>:latest`` lowercased with
                         ``__`` -> ``_1776_`` (Docker Hub forbids ``__``); else an error saying how to
                         name one. SWE-Gym's images (``xingyaoww/sweb.eval.x86_64.<id>`` with ``__``
                         -> ``_s_``) need ``mapping="swe-gym"``.
=======================  ==========================================================================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from turngym.error import InvalidArgumentError

__all__ = [
    "TestSpec",
    "PARSERS",
    "NON_TEST_EXTS",
    "SWEBENCH_REPOS",
    "test_files_from_patch",
    "test_files_from_ids",
    "test_spec",
    "parse_log",
    "image_for",
    "validate_image_map",
    "swebench_image",
    "swegym_image",
]

PARSERS = ("pytest", "django", "sympy")
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
#: The repositories of SWE-bench (test and dev splits), whose images follow its naming.
SWEBENCH_REPOS = frozenset(
    """astropy/astropy django/django marshmallow-code/marshmallow matplotlib/matplotlib
    mwaskom/seaborn pallets/flask psf/requests pvlib/pvlib-python pydata/xarray pydicom/pydicom
    pylint-dev/astroid pylint-dev/pylint pytest-dev/pytest pyvista/pyvista
    scikit-learn/scikit-learn sqlfluff/sqlfluff sphinx-doc/sphinx sympy/sympy""".split()
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
_SWEBENCH_ID = re.compile(r"^[\w.-]+__[\w.-]+-\d+$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STATUSES = ("PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL")


@dataclass(frozen=True)
class TestSpec:
    """How to test one instance: argv of the test command (run in the repository root), the
    :data:`PARSERS` name for its log, and the test files (restored before grading)."""

    __test__ = False  # not a pytest test class

    command: list[str]
    parser: str
    test_files: list[str]


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


def test_spec(task: Any) -> TestSpec:
    """The test command, parser and test files of a :class:`~.tasks.Task` or a SWE-bench record."""
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
        return TestSpec(list(base) + labels, "django", files)
    if repo == "sympy/sympy":
        return TestSpec(list(SYMPY_COMMAND) + files, "sympy", files)
    return TestSpec(list(PYTEST_COMMAND) + files, "pytest", files)


def _parse_pytest(log: str) -> dict[str, str]:
    statuses: dict[str, str] = {}
    for raw in log.splitlines():
        line = _ANSI.sub("", raw).rstrip()
        head, _, rest = line.partition(" ")
        if head in _STATUSES and rest:
            if head in ("FAILED", "ERROR", "XFAIL"):
                rest = rest.split(" - ", 1)[0]
            rest = rest.strip()
            if head == "SKIPPED" and re.match(r"^\[\d+\]", rest):
                continue  # "SKIPPED [2] file.py:12: reason" counts skips, names no test
            statuses[rest] = "PASSED" if head == "XFAIL" else head
            continue
        match = re.match(
            r"^(\S+(?: \S+)*?) (PASSED|FAILED|ERROR|SKIPPED|XFAIL)(?:\s+\[\s*\d+%\])?$", line
        )
        if match and ("::" in match.group(1) or ".py" in match.group(1)):
            status = match.group(2)
            statuses[match.group(1)] = "PASSED" if status == "XFAIL" else status
    return statuses


def _parse_django(log: str) -> dict[str, str]:
    statuses: dict[str, str] = {}
    previous: str | None = None
    for raw in log.splitlines():
        line = raw.strip()
        if " ... " in line:
            previous = line.split(" ... ", 1)[0]
        for suffix, status in (
            (" ... ok", "PASSED"),
            (" ... OK", "PASSED"),
            (" ...  OK", "PASSED"),
            (" ... FAIL", "FAILED"),
            (" ... ERROR", "ERROR"),
        ):
            if line.endswith(suffix):
                statuses[line[: -len(suffix)]] = status
                break
        else:
            if " ... skipped" in line:
                statuses[line.split(" ... skipped", 1)[0]] = "SKIPPED"
            elif line.startswith(("FAIL: ", "ERROR: ")):
                head, _, test_id = line.partition(": ")
                statuses[test_id.strip()] = "FAILED" if head == "FAIL" else "ERROR"
            elif line == "ok" and previous is not None:
                statuses[previous] = "PASSED"  # output came between "... " and "ok"
    return statuses


def _parse_sympy(log: str) -> dict[str, str]:
    statuses: dict[str, str] = {}
    for match in re.finditer(r"_+ (\S+\.py):(\S+) _+", log):
        statuses[f"{match.group(1)}:{match.group(2)}"] = "FAILED"
    for raw in log.splitlines():
        line = raw.strip()
        if not line.startswith("test_"):
            continue
        parts = line.split()
        status = {"ok": "PASSED", "F": "FAILED", "E": "ERROR", "s": "SKIPPED"}.get(parts[-1])
        if status and len(parts) >= 2:
            statuses[parts[0]] = status
    return statuses


_PARSE: dict[str, Callable[[str], dict[str, str]]] = {
    "pytest": _parse_pytest,
    "django": _parse_django,
    "sympy": _parse_sympy,
}


def parse_log(parser: str, log: str) -> dict[str, str]:
    """Test id -> ``PASSED``/``FAILED``/``ERROR``/``SKIPPED`` from a test log (see the module doc)."""
    if parser not in _PARSE:
        raise InvalidArgumentError(f"parser={parser!r} is not known; use one of {list(PARSERS)}.")
    return _PARSE[parser](log or "")


def swebench_image(instance_id: str) -> str:
    """SWE-bench's published image of an instance (``__`` -> ``_1776_``, lowercased)."""
    return f"swebench/sweb.eval.x86_64.{instance_id}:latest".replace("__", "_1776_").lower()


def swegym_image(instance_id: str) -> str:
    """SWE-Gym's published image of an instance (OpenHands' naming: ``__`` -> ``_s_``, lowercased)."""
    return f"xingyaoww/sweb.eval.x86_64.{instance_id.replace('__', '_s_')}:latest".lower()


_CONVENTIONS: dict[str, Callable[[str], str]] = {
    "swebench": swebench_image,
    "swe-gym": swegym_image,
}
ImageMapping = Mapping[str, str] | Callable[[Mapping[str, Any]], str | None] | str


def _from_mapping(record: Mapping[str, Any], mapping: ImageMapping) -> str | None:
    instance_id = str(record["instance_id"])
    if isinstance(mapping, str):
        if mapping in _CONVENTIONS:
            return _CONVENTIONS[mapping](instance_id)
        if "{" in mapping:
            try:
                return mapping.format(instance_id=instance_id, repo=record.get("repo", ""))
            except (KeyError, IndexError) as error:
                raise InvalidArgumentError(
                    f"image_map={mapping!r}: a template may use only {{instance_id}} and {{repo}}."
                ) from error
        raise InvalidArgumentError(
            f"image_map={mapping!r} is not valid; use {list(_CONVENTIONS)}, a template such as "
            "'myregistry/{instance_id}:latest', a dict {instance_id: image} or a callable."
        )
    if isinstance(mapping, Mapping):
        value = mapping.get(instance_id)
        return str(value) if value else None
    if callable(mapping):
        value = mapping(record)
        return str(value) if value else None
    raise InvalidArgumentError(
        f"image_map of type {type(mapping).__name__} is not valid; use a dict, a callable, "
        f"{list(_CONVENTIONS)} or a '{{instance_id}}' template."
    )


def validate_image_map(mapping: Any) -> None:
    """Raises when ``mapping`` is not a valid ``image_map`` (see :func:`image_for`)."""
    if mapping is None or isinstance(mapping, Mapping) or callable(mapping):
        return
    _from_mapping({"instance_id": "owner__repo-1", "repo": "owner/repo"}, mapping)


def image_for(record: Mapping[str, Any], mapping: ImageMapping | None = None) -> str:
    """The Docker image of a SWE record (see the module doc); raises when it names none."""
    instance_id = str(record.get("instance_id", "?"))
    if mapping is not None:
        image = _from_mapping(record, mapping)
        if image:
            return image
    for key in ("image", "image_name"):
        if record.get(key):
            return str(record[key])
    if _SWEBENCH_ID.match(instance_id) and record.get("repo") in SWEBENCH_REPOS:
        return swebench_image(instance_id)
    raise InvalidArgumentError(
        f"SWE task {instance_id!r} names no Docker image, and its id/repo ({record.get('repo')!r}) "
        "is not SWE-bench's, whose image name could be derived. Name one: add 'image' (or "
        "SWE-smith's 'image_name') to the record, or pass image_map= to SWEEnv/load_tasks: a dict "
        "{instance_id: image}, a callable(record) -> image, a template such as "
        "'myregistry/sweb.eval.x86_64.{instance_id}:latest', 'swebench' (swebench/sweb.eval."
        "x86_64.<id>, '__' -> '_1776_') or 'swe-gym' (xingyaoww/sweb.eval.x86_64.<id>, '__' -> '_s_')."
    )


# Their names start with "test_": keep pytest from collecting them where tests import them.
for _function in (test_files_from_patch, test_files_from_ids, test_spec):
    _function.__test__ = False  # type: ignore[attr-defined]
