"""Grading logs recorded from real SWE-bench instances (``tests/fixtures/swe_logs``: the grader's
output for the gold patch and for the untouched code, recorded by tests/test_swe_real_instances.py
on images ``turngym swe build`` made), read by our parsers and verdict rules on the real records of
../shared/data/realdata/swe: equal to SWE-bench's own parser and grading where ``swebench`` is
installed, and equal to the verdicts SWE-bench gave on the same logs when they were recorded
(``expected.json``)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from helpers.realdata import real_folder
from turngym.envs.swe.harness import parse_log, parser_for_repo
from turngym.envs.swe.tasks import Task, grade, read_records

LOGS = Path(__file__).parent / "fixtures" / "swe_logs"
RECORDS = real_folder("swe")
EXPECTED = json.loads((LOGS / "expected.json").read_text())
BY_ID = {
    str(r["instance_id"]): r
    for name in ("swe-bench-dev-easy.json", "swe-bench-lite-test.json")
    for r in read_records(RECORDS / name)
}
CASES = sorted(EXPECTED)


def _log(case: str) -> str:
    return gzip.decompress((LOGS / f"{case}.log.gz").read_bytes()).decode()


@pytest.mark.parametrize("case", CASES)
def test_our_verdict_on_the_recorded_log_is_swebenchs(case: str) -> None:
    instance_id, _ = case.rsplit(".", 1)
    record = BY_ID[instance_id]
    statuses = parse_log(parser_for_repo(record["repo"]), _log(case), engine="own")
    assert statuses, "the recorded log names tests"
    ours = grade(Task.from_dict(record), statuses)["resolved"]
    assert ours == EXPECTED[case]


@pytest.mark.parametrize("case", CASES)
def test_recorded_logs_parse_and_grade_as_swebench_does(case: str) -> None:
    pytest.importorskip("swebench", reason="SWE-bench's parsers: pip install 'turngym[swe-bench]'")
    from swebench.harness.grading import get_eval_tests_report, get_resolution_status
    from swebench.harness.log_parsers.python import MAP_REPO_TO_PARSER_PY

    instance_id, _ = case.rsplit(".", 1)
    record, log = BY_ID[instance_id], _log(case)
    theirs = MAP_REPO_TO_PARSER_PY[record["repo"]](log, None)
    assert parse_log(parser_for_repo(record["repo"]), log, engine="own") == theirs
    report = get_eval_tests_report(theirs, record)
    assert (get_resolution_status(report) == "RESOLVED_FULL") == EXPECTED[case]


def test_gold_resolves_and_base_does_not_where_swebench_says_so() -> None:
    """The six instances' headline: every gold log resolved except pydicom-1458 (its ids embed the
    original build machine's paths, which SWE-bench's own parser normalises away), no base log."""
    gold = {c.rsplit(".", 1)[0] for c in CASES if c.endswith(".gold") and EXPECTED[c]}
    assert not any(EXPECTED[c] for c in CASES if c.endswith(".base"))
    assert len(gold) >= 5 and "pydicom__pydicom-1458" not in gold
