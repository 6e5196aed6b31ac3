"""SWE tasks in SWE-bench's instance schema, and their grading.

A task is a dict-like record with SWE-bench's fields (so SWE-bench / SWE-Gym / SWE-smith instances
plug in with their images) plus two optional fields our bundled tasks use:

==================  ============================================================================
field               meaning
==================  ============================================================================
instance_id         unique id, e.g. ``toolz__1.0.0-itertoolz-sliding_window-off_by_one-470``
repo                upstream ``owner/name``
base_commit         the code's exact identity (for bundled tasks: the sdist's SHA-256)
problem_statement   the issue text the agent sees
patch               the gold fix (unified diff); never shown to the agent
test_patch          diff applied to the tests before grading ("" when the tests are unchanged)
FAIL_TO_PASS        pytest node ids that fail before the fix and must pass after it
PASS_TO_PASS        pytest node ids that pass before and must still pass after it
image               Docker image holding the repository and its environment
setup_patch         (bundled) the bug, applied on top of the image's clean code at reset
project, version    (bundled) the PyPI project of :mod:`turngym.envs.swe.projects`
==================  ============================================================================

Files (:func:`load_tasks`): a JSON array of records, JSON Lines, one JSON object, or a Parquet
file (HF datasets' published form; needs pandas and pyarrow). ``FAIL_TO_PASS``/``PASS_TO_PASS`` may
be lists, JSON strings (HF datasets) or Python list literals (some SWE-smith dumps). SWE-bench,
SWE-bench Lite/Verified, SWE-Gym and SWE-smith records load as published; fields we do not know go
to ``Task.extra``. A repeated ``instance_id`` keeps its first record and warns (``UserWarning``
naming the id and how often it appears). ``image`` comes from :func:`.harness.image_for` (the
user's ``image_map``, the record's ``image``/``image_name``, SWE-bench's naming convention);
records with none keep ``image=None`` and run only where no image is needed (the local backend,
bundled tasks); the docker backend then raises :func:`missing_image_message`.

Grading is SWE-bench's (:func:`grade`): *resolved* iff every FAIL_TO_PASS test passes and every
PASS_TO_PASS test passes or is skipped.
"""

from __future__ import annotations

import ast
import json
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turngym.core import stable_hash
from turngym.envs.swe.harness import (
    ImageMapping,
    grade_timeout,
    image_for,
    test_spec,
    validate_image_map,
)
from turngym.error import DependencyNotInstalled, InvalidArgumentError

__all__ = [
    "Task",
    "load_tasks",
    "read_records",
    "grade",
    "DATA_FILE",
    "test_files",
    "missing_image_message",
    "select_tasks",
]

DATA_FILE = Path(__file__).parent / "data" / "tasks.jsonl"
REQUIRED = (
    "instance_id",
    "repo",
    "base_commit",
    "problem_statement",
    "patch",
    "FAIL_TO_PASS",
    "PASS_TO_PASS",
)


def _id_list(value: Any, name: str, instance_id: str) -> list[str]:
    """A list of test ids from a list, a JSON string (HF datasets) or a Python list literal."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError) as error:
                raise InvalidArgumentError(
                    f"SWE task {instance_id!r}: {name} is a string that is neither a JSON list nor "
                    f"a Python list literal ({text[:60]!r}); give a list of test ids."
                ) from error
    if hasattr(value, "tolist"):  # numpy arrays from Parquet
        value = value.tolist()
    if not isinstance(value, list | tuple):
        raise InvalidArgumentError(
            f"SWE task {instance_id!r}: {name} must be a list of test ids, got {type(value).__name__}."
        )
    return [str(item) for item in value]


@dataclass
class Task:
    """One SWE instance (SWE-bench schema)."""

    instance_id: str
    repo: str
    base_commit: str
    problem_statement: str
    patch: str
    FAIL_TO_PASS: list[str]
    PASS_TO_PASS: list[str]
    test_patch: str = ""
    image: str | None = None
    setup_patch: str = ""
    project: str | None = None
    version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Task:
        """Builds a task from a SWE-bench-style record; unknown fields go to ``extra``."""
        missing = [key for key in REQUIRED if key not in record]
        if missing:
            raise InvalidArgumentError(
                f"SWE task {record.get('instance_id', '?')!r} lacks the fields {missing}; a task needs "
                f"SWE-bench's fields {list(REQUIRED)}."
            )
        known = {name for name in cls.__dataclass_fields__ if name != "extra"}
        values = {key: record[key] for key in known if key in record}
        instance_id = str(record["instance_id"])
        values["instance_id"] = instance_id
        values["FAIL_TO_PASS"] = _id_list(record["FAIL_TO_PASS"], "FAIL_TO_PASS", instance_id)
        values["PASS_TO_PASS"] = _id_list(record["PASS_TO_PASS"], "PASS_TO_PASS", instance_id)
        if values.get("version") is not None:
            values["version"] = str(values["version"])
        for text in ("test_patch", "setup_patch"):
            if values.get(text) is None:
                values.pop(text, None)
        return cls(**values, extra={k: v for k, v in record.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        record = {
            name: getattr(self, name) for name in self.__dataclass_fields__ if name != "extra"
        }
        record.update(self.extra)
        return record

    @property
    def split(self) -> str:
        """Stable 80/20 train/test split by instance id (``split="all"`` on the env takes every
        task of the file)."""
        return "test" if int(stable_hash(self.instance_id), 16) % 5 == 0 else "train"


def test_files(task: Task) -> list[str]:
    """The task's test files (run and restored at grading): from ``test_patch`` as SWE-bench
    derives them, else from pytest/Django test ids (see :func:`.harness.test_spec`)."""
    return test_spec(task).test_files


test_files.__test__ = False  # type: ignore[attr-defined]  # not a pytest test where imported


def missing_image_message(task: Task) -> str:
    """Why ``task`` has no Docker image and how to name one (empty when it has one)."""
    if task.image:
        return ""
    try:
        image_for(task.to_dict())
    except InvalidArgumentError as error:
        return str(error)
    return f"SWE task {task.instance_id!r} has no image; pass image_map= to name one."


def _records(text: str, path: Path) -> list[Any]:
    stripped = text.strip()
    if not stripped:
        return []
    if stripped[0] == "[":
        try:
            return list(json.loads(stripped))
        except json.JSONDecodeError as error:
            raise InvalidArgumentError(f"{path} is not a valid JSON array: {error}") from error
    if stripped[0] == "{":
        try:
            whole = json.loads(stripped)
        except json.JSONDecodeError:
            whole = None  # JSON Lines
        if isinstance(whole, dict):
            for key in ("instances", "data", "rows"):
                if isinstance(whole.get(key), list) and "instance_id" not in whole:
                    return [r.get("row", r) if isinstance(r, dict) else r for r in whole[key]]
            return [whole]
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise InvalidArgumentError(
                f"{path} line {number} is not JSON ({error}); a task file is a JSON array, JSON "
                "Lines (one record a line), one JSON object, or Parquet."
            ) from error
    return records


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The raw records of a task file (JSON array, JSON Lines, one object, or ``.parquet``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InvalidArgumentError(
            f"SWE task file {path} not found; pass tasks_path= a JSON/JSONL/Parquet file of "
            "SWE-bench-style instances, or rebuild the bundled tasks with "
            "`python -m turngym.envs.swe.build tasks`."
        )
    if path.suffix == ".parquet":
        try:
            import pandas
        except ImportError as error:
            raise DependencyNotInstalled(
                f"reading {path} needs pandas and pyarrow: pip install pandas pyarrow "
                "(or save the dataset as JSON Lines: dataset.to_json(path))."
            ) from error
        try:
            frame = pandas.read_parquet(path)
        except ImportError as error:
            raise DependencyNotInstalled(
                f"reading {path} needs pyarrow: pip install pyarrow"
            ) from error
        records: list[Any] = frame.to_dict(orient="records")
    else:
        records = _records(path.read_text(), path)
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidArgumentError(
                f"{path}: record {index} is a {type(record).__name__}, not an object with "
                "SWE-bench's fields (instance_id, repo, base_commit, problem_statement, patch, "
                "FAIL_TO_PASS, PASS_TO_PASS)."
            )
    return records


def load_tasks(path: str | Path | None = None, image_map: ImageMapping | None = None) -> list[Task]:
    """Tasks from a file (default: the bundled ``data/tasks.jsonl``); see the module doc.

    ``image_map`` names images (see :func:`.harness.image_for`): a dict ``{instance_id: image}``,
    a callable ``record -> image``, ``"swebench"``, ``"swe-gym"``, or a ``{instance_id}`` template.
    """
    validate_image_map(image_map)
    path = Path(path) if path is not None else DATA_FILE
    records = read_records(path)
    counts = Counter(str(record.get("instance_id")) for record in records)
    repeated = {key: n for key, n in counts.items() if n > 1}
    if repeated:
        shown = ", ".join(f"{key!r} x{n}" for key, n in list(repeated.items())[:5])
        warnings.warn(
            f"{path} repeats instance ids ({shown}{', ...' if len(repeated) > 5 else ''}); "
            "keeping the first record of each.",
            UserWarning,
            stacklevel=2,
        )
    tasks, seen = [], set()
    for record in records:
        instance_id = str(record.get("instance_id"))
        if instance_id in seen:
            continue
        seen.add(instance_id)
        task = Task.from_dict(record)
        if image_map is not None or not task.image:
            try:
                task.image = image_for(record, image_map)
            except InvalidArgumentError:
                task.image = None  # named by nothing: the docker backend says how to name one
        tasks.append(task)
    return tasks


def select_tasks(
    tasks: list[Task], task_ids: list[str] | None = None, timeout: Any = None
) -> list[Task]:
    """The tasks an env serves: ``task_ids`` (in that order) or all of them, each with the user's
    grading ``timeout`` override (seconds or a dict by instance id or repository) applied.

    Raises:
        InvalidArgumentError: an id that is not in the file, or a bad timeout.
    """
    if task_ids is not None:
        if isinstance(task_ids, str) or not all(isinstance(i, str) for i in task_ids):
            raise InvalidArgumentError(
                f"task_ids={task_ids!r} must be a list of instance ids, e.g. ['astropy__astropy-1']."
            )
        by_id = {task.instance_id: task for task in tasks}
        unknown = [i for i in task_ids if i not in by_id]
        if unknown:
            raise InvalidArgumentError(
                f"task_ids names {len(unknown)} ids the task file lacks ({unknown[:5]}); its ids "
                f"begin {sorted(by_id)[:5]}."
            )
        tasks = [by_id[i] for i in dict.fromkeys(task_ids)]
    if timeout is not None:
        for task in tasks:
            task.extra["timeout"] = grade_timeout(task, timeout)
    return tasks


_PASSING = ("passed", "xfail")


def _resolve(case: str, statuses: dict[str, str]) -> str | None:
    """The key of ``case`` in ``statuses``: itself, or, for an id cut inside its parameters (more
    ``[`` than ``]``, as 676 of SWE-bench Verified's are), the first key it begins when all such
    keys agree on passing or not (SWE-bench's rule)."""
    if case in statuses:
        return case
    if case.count("[") > case.count("]"):
        matches = [key for key in statuses if key.startswith(case)]
        if matches and len({statuses[key].lower() in _PASSING for key in matches}) == 1:
            return matches[0]
    return None


def grade(task: Task, statuses: dict[str, str]) -> dict[str, Any]:
    """SWE-bench's verdict from per-test statuses (any case; keys as the repository's parser
    makes them, see :func:`.harness.test_key`).

    A FAIL_TO_PASS test counts when it ``passed`` (or ``xfail``: SWE-bench grades it passing); a
    PASS_TO_PASS test is maintained when it passed or was ``skipped`` (SWE-bench >= 5: a skipped
    test is no regression). A missing test, or one with any other status, counts against the
    task (SWE-bench leaves a status it does not know out of both counts; we count it failed, so an
    unknown status can never make a task resolved).
    """
    lowered = {key: str(value).lower() for key, value in statuses.items()}

    def status(case: str) -> str:
        key = _resolve(case, lowered)
        return lowered[key] if key is not None else "missing"

    f2p = [status(case) in _PASSING for case in task.FAIL_TO_PASS]
    p2p = [status(case) in (*_PASSING, "skipped") for case in task.PASS_TO_PASS]
    return {
        "resolved": all(f2p) and all(p2p),
        "f2p_fraction": sum(f2p) / max(1, len(f2p)),
        "p2p_broken_fraction": (len(p2p) - sum(p2p)) / max(1, len(p2p)),
        "f2p_failed": [case for case, ok in zip(task.FAIL_TO_PASS, f2p, strict=True) if not ok],
        "p2p_failed": [case for case, ok in zip(task.PASS_TO_PASS, p2p, strict=True) if not ok],
    }
