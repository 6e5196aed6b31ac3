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

Grading is SWE-bench's: *resolved* iff every FAIL_TO_PASS and every PASS_TO_PASS test passes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turngym.core import stable_hash
from turngym.error import InvalidArgumentError

__all__ = ["Task", "load_tasks", "grade", "DATA_FILE", "test_files"]

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


def _id_list(value: Any) -> list[str]:
    # SWE-bench's HF datasets store the id lists as JSON strings.
    return list(json.loads(value)) if isinstance(value, str) else list(value)


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
                f"SWE-bench's fields {list(REQUIRED)} (plus 'image' for external instances)."
            )
        known = {name for name in cls.__dataclass_fields__ if name != "extra"}
        values = {key: record[key] for key in known if key in record}
        values["FAIL_TO_PASS"] = _id_list(record["FAIL_TO_PASS"])
        values["PASS_TO_PASS"] = _id_list(record["PASS_TO_PASS"])
        return cls(**values, extra={k: v for k, v in record.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        record = {
            name: getattr(self, name) for name in self.__dataclass_fields__ if name != "extra"
        }
        record.update(self.extra)
        return record

    @property
    def split(self) -> str:
        """Stable 80/20 train/test split by instance id."""
        return "test" if int(stable_hash(self.instance_id), 16) % 5 == 0 else "train"


def test_files(task: Task) -> list[str]:
    """The test files that hold the task's FAIL_TO_PASS and PASS_TO_PASS tests (run at grading)."""
    return sorted({node.split("::")[0] for node in task.FAIL_TO_PASS + task.PASS_TO_PASS})


def load_tasks(path: str | Path | None = None) -> list[Task]:
    """Tasks from a JSON Lines file (default: the bundled ``data/tasks.jsonl``)."""
    path = Path(path) if path is not None else DATA_FILE
    if not path.is_file():
        raise InvalidArgumentError(
            f"SWE task file {path} not found; pass tasks_path= a JSONL of SWE-bench instances or "
            "rebuild the bundled tasks with `python -m turngym.envs.swe.build tasks`."
        )
    tasks = [
        Task.from_dict(json.loads(line)) for line in path.read_text().splitlines() if line.strip()
    ]
    ids = [t.instance_id for t in tasks]
    if len(set(ids)) != len(ids):
        raise InvalidArgumentError(f"{path} repeats instance ids; every instance_id must be unique")
    return tasks


def grade(task: Task, statuses: dict[str, str]) -> dict[str, Any]:
    """SWE-bench's verdict from per-test statuses (``passed``/``failed``/``skipped``; missing = failed)."""
    f2p = [statuses.get(node) == "passed" for node in task.FAIL_TO_PASS]
    p2p = [statuses.get(node) == "passed" for node in task.PASS_TO_PASS]
    return {
        "resolved": all(f2p) and all(p2p),
        "f2p_fraction": sum(f2p) / max(1, len(f2p)),
        "p2p_broken_fraction": (len(p2p) - sum(p2p)) / max(1, len(p2p)),
    }
