"""Real SWE-bench instances end to end, when their repositories are given: set
``TURNGYM_SWE_MIRRORS`` (a folder of clones or mirrors, see ``turngym swe build --repos``) and
``TURNGYM_SWE_SPECS`` (an install spec file, see ``--specs``); ``TURNGYM_SWE_RECORDS`` picks the
record file (default: the six SWE-bench dev/Lite instances of ../shared/data/realdata/swe) and
``TURNGYM_SWE_IDS`` a comma-separated subset. Each instance's image is built (or reused) by
``turngym swe build``; the gold patch must be resolved and the untouched code not, and on each
grading log our verdict must equal SWE-bench's own (its parser and ``get_eval_tests_report``).
``TURNGYM_SWE_LOG_DIR`` keeps every grading log and a results.json there."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from helpers.realdata import REALDATA as ALL_REALDATA

REALDATA = ALL_REALDATA / "swe"
SIX = (
    "pylint-dev__astroid-1268 sympy__sympy-13031 pydicom__pydicom-1194 pydicom__pydicom-1458 "
    "pytest-dev__pytest-11143 sqlfluff__sqlfluff-2386"
).split()
MIRRORS, SPECS = os.environ.get("TURNGYM_SWE_MIRRORS"), os.environ.get("TURNGYM_SWE_SPECS")
pytestmark = pytest.mark.skipif(
    not (MIRRORS and SPECS),
    reason="real instances run only when TURNGYM_SWE_MIRRORS and TURNGYM_SWE_SPECS are set",
)


def _records() -> list[dict]:
    from turngym.envs.swe.tasks import read_records

    paths = [Path(os.environ["TURNGYM_SWE_RECORDS"])] if os.environ.get("TURNGYM_SWE_RECORDS") else [
        REALDATA / "swe-bench-dev-easy.json", REALDATA / "swe-bench-lite-test.json"]  # fmt: skip
    wanted = os.environ.get("TURNGYM_SWE_IDS", "")
    ids = [i for i in wanted.split(",") if i] or (
        SIX if not os.environ.get("TURNGYM_SWE_RECORDS") else None
    )
    records = {}
    for path in paths:
        for record in read_records(path):
            records.setdefault(str(record["instance_id"]), record)
    return [records[i] for i in ids] if ids else list(records.values())


def _swebench_resolved(record: dict, log: str) -> bool | None:
    """SWE-bench's own verdict on the same log (None when swebench is not installed)."""
    try:
        from swebench.harness.grading import get_eval_tests_report, get_resolution_status
        from swebench.harness.log_parsers.python import MAP_REPO_TO_PARSER_PY
    except ImportError:
        return None
    from turngym.envs.swe.harness import parse_log, parser_for_repo

    parser = MAP_REPO_TO_PARSER_PY.get(record["repo"])
    statuses = parser(log, None) if parser else parse_log(parser_for_repo(record["repo"]), log)
    gold = {"FAIL_TO_PASS": record["FAIL_TO_PASS"], "PASS_TO_PASS": record["PASS_TO_PASS"]}
    return get_resolution_status(get_eval_tests_report(statuses, gold)) == "RESOLVED_FULL"


def _grade(sandbox, task, diff: str) -> tuple[dict, dict]:
    from turngym.envs.swe.grading import grading_spec, verdict

    spec = grading_spec(task)
    request = {"files": spec.files, "targets": spec.targets, "command": spec.command,
               "test_patch": task.test_patch, "task": task.instance_id}  # fmt: skip
    result = sandbox.evaluate(diff, request, timeout=spec.timeout)
    return verdict(task, spec, result), result


@pytest.mark.slow
def test_real_instances_gold_resolved_base_not_and_verdicts_equal_swebench(tmp_path: Path) -> None:
    from turngym.envs.swe import instances
    from turngym.envs.swe.docker_backend import DockerSandbox
    from turngym.envs.swe.harness import contract_for
    from turngym.envs.swe.sandbox_base import Limits
    from turngym.envs.swe.tasks import load_tasks

    records = _records()
    specs = instances.read_specs(SPECS)
    built = {r.instance_id: r for r in instances.build_instances(records, Path(MIRRORS), specs)}
    path = tmp_path / "records.json"
    path.write_text(json.dumps(records))
    tasks = {t.instance_id: t for t in load_tasks(path, image_map="turngym")}
    log_dir = (
        Path(os.environ["TURNGYM_SWE_LOG_DIR"]) if os.environ.get("TURNGYM_SWE_LOG_DIR") else None
    )
    rows, problems = [], []
    for record in records:
        task, build = tasks[record["instance_id"]], built[record["instance_id"]]
        row = {"instance": task.instance_id, "build": build.status, "build_s": round(build.seconds),
               "size_mb": round(build.size_mb), "python": build.python, "reason": build.reason}  # fmt: skip
        if build.status == "failed":
            rows.append(row)
            problems.append(f"{task.instance_id}: build failed: {build.reason}")
            continue
        limits = Limits(command_timeout=60.0, max_output=10_000, memory_mb=4096, pids=1024)
        sandbox = DockerSandbox(task.image, limits, task=task.instance_id,
                                contract=contract_for(task.to_dict(), task.image))  # fmt: skip
        try:
            for name, diff in (("gold", task.patch), ("base", "")):
                started = time.perf_counter()
                judged, result = _grade(sandbox, task, diff)
                theirs = _swebench_resolved(record, result.get("log", ""))
                row.update({f"{name}_verdict": judged["verdict"], f"{name}_swebench": theirs,
                            f"{name}_s": round(time.perf_counter() - started),
                            f"{name}_reason": judged.get("reason", "")})  # fmt: skip
                if log_dir is not None:
                    log_dir.mkdir(parents=True, exist_ok=True)
                    (log_dir / f"{task.instance_id}.{name}.log").write_text(result.get("log", ""))
                if theirs is not None and theirs != judged["resolved"]:
                    problems.append(
                        f"{task.instance_id} {name}: ours {judged['verdict']}, SWE-bench {theirs}"
                    )
            # gold must resolve unless SWE-bench's own verdict on the same log says it does not
            # either (pydicom-1458: its ids hold the original build machine's paths)
            gold_expected = row["gold_swebench"] is not False
            if (row["gold_verdict"] == "resolved") != gold_expected or row[
                "base_verdict"
            ] == "resolved":
                problems.append(
                    f"{task.instance_id}: gold {row['gold_verdict']} ({row['gold_reason'][:200]}), base {row['base_verdict']}"
                )
        finally:
            sandbox.close()
        rows.append(row)
    if log_dir is not None:
        (log_dir / "results.json").write_text(json.dumps(rows, indent=1))
    assert not problems, "\n".join(problems)
