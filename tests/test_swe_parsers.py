"""Our fallback log parsers and verdict rules against SWE-bench's own (``swebench`` on PyPI, the
``swe-bench`` extra), on logs scripted in each framework's real output format: blanks and absolute
paths inside parameters, ``SKIPPED [N]`` summaries, XFAIL, colour codes, Django's interrupted
``... ok`` lines, sympy's failure headers. The comparisons skip when ``swebench`` is absent; the
rules themselves are asserted without it."""

from __future__ import annotations

import pytest

from turngym.envs.swe.harness import FAMILIES, REPO_PARSER, parse_log, parser_for_repo, test_key
from turngym.envs.swe.tasks import Task, grade

PYTEST = """\
============================= test session starts ==============================
collected 9 items

testing/test_assertrewrite.py ..F.sxE                                    [100%]

=========================== short test summary info ============================
PASSED testing/test_assertrewrite.py::TestAssertionPass::test_hook_call
PASSED testing/test_assertrewrite.py::test_get_assertion_exprs[assert 1 == 2]
PASSED testing/test_assertrewrite.py::test_get_assertion_exprs[assert  x  in y]
FAILED testing/test_assertrewrite.py::TestIssue11140::test_constant - TypeError: argument of type 'int'
FAILED testing/test_a.py::test_b[a - b] - AssertionError
SKIPPED [2] testing/test_assertrewrite.py:123: needs something
SKIPPED testing/test_x.py::test_skipped_by_name
XFAIL testing/test_assertrewrite.py::test_known_bug - reason: flaky
XPASS testing/test_assertrewrite.py::test_unexpected
ERROR testing/test_assertrewrite.py::test_setup - fixture 'x' not found
ERROR testing/test_broken.py
PASSED tests/test_dataset.py::test_read[/home/builder/src/pydicom/data/test_files/CT_small.dcm]
PASSED tests/test_dataset.py::test_read[//net/share/f.dcm]
PASSED tests/test_dataset.py::test_glob[/data/*.dcm]
PASSED tests/test_dataset.py::test_read[/a/b.dcm]-extra
PASSED
\x1b[32mPASSED\x1b[0m testing/test_assertrewrite.py::test_coloured
testing/test_a.py::test_verbose PASSED
testing/test_a.py::test_verbose_pct FAILED                                [ 50%]
test/rules/std_L060_test.py::test__rules__std_L060[select\tIFNULL(x)] PASSED
PASSED [100%]
=================== 3 failed, 9 passed, 1 skipped in 0.50s ====================
"""

DJANGO = """\
Testing against Django installed in '/testbed/django'
Importing application sitemaps_tests
Found 6 test(s).
System check identified no issues (0 silenced).
test_callable_sitemod_no_items (sitemaps_tests.test_http.HTTPSitemapTests) ... FAIL
test_cached_sitemap_index (sitemaps_tests.test_http.HTTPSitemapTests)
A cached sitemap index can be rendered (#2713). ... ok
test_alternate (sitemaps_tests.test_http.HTTPSitemapTests) ... Internal Server Error: /x/
ok
test_noisy (sitemaps_tests.test_http.HTTPSitemapTests) ... System check identified no issues (0 silenced)
ok
test_requestsite_sitemap (sitemaps_tests.test_http.HTTPSitemapTests) ... skipped 'Needs sites'
test_sitemap_item (sitemaps_tests.test_http.HTTPSitemapTests) ... ERROR
test_upper (x.tests.T) ...  OK
--version is equivalent to version
Applying sites.0002_alter_domain_unique...test_no_migrations (migrate.tests.T) ... ok

======================================================================
FAIL: test_callable_sitemod_no_items (sitemaps_tests.test_http.HTTPSitemapTests)
ERROR: test_sitemap_item (sitemaps_tests.test_http.HTTPSitemapTests)
----------------------------------------------------------------------
Ran 6 tests in 0.301s

FAILED (failures=1, errors=1, skipped=1)
"""

SYMPY = """\
============================= test process starts ==============================
executable:         /opt/miniconda3/envs/testbed/bin/python  (3.9.19-final-0) [CPython]

sympy/matrices/tests/test_sparse.py[5]
test_sparse_matrix F
test_transpose ok
test_trace ok
test_errors E
test_skipped s
test_slow w

________________________________________________________________________________
_____________ sympy/matrices/tests/test_sparse.py:test_sparse_matrix ______________
Traceback (most recent call last):
AssertionError
============= tests finished: 2 passed, 1 failed, 1 exceptions, in 0.38 seconds ==
"""

SEABORN = """\
tests/test_core.py::TestA::test_one PASSED                                [ 10%]
tests/test_core.py::TestA::test_two FAILED                                [ 20%]
PASSED tests/test_core.py::TestA::test_three
FAILED tests/test_core.py::TestA::test_four - ValueError
"""

MATPLOTLIB = """\
PASSED lib/matplotlib/tests/test_backend_bases.py::test_interactive_zoom[MouseButton.LEFT]
FAILED lib/matplotlib/tests/test_backend_bases.py::test_pan[MouseButton.RIGHT-x] - Error
SKIPPED [3] lib/matplotlib/testing/compare.py:285: needs inkscape
"""

LOGS = {
    "pytest": PYTEST,
    "pytest_options": PYTEST,
    "pytest_v2": PYTEST,
    "django": DJANGO,
    "sympy": SYMPY,
    "seaborn": SEABORN,
    "matplotlib": MATPLOTLIB,
}


def test_every_family_has_a_scripted_log() -> None:
    assert set(LOGS) == set(FAMILIES)
    assert set(REPO_PARSER.values()) == set(FAMILIES)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("log", sorted(set(LOGS.values())), ids=lambda log: log.split()[0][:12])
def test_own_parser_equals_swebench(family: str, log: str) -> None:
    """Each family's own parser, on every scripted log (also other frameworks' logs: what one
    parser makes of another's output must agree too)."""
    pytest.importorskip("swebench", reason="SWE-bench's parsers: pip install 'turngym[swe-bench]'")
    assert parse_log(family, log, engine="own") == parse_log(family, log, engine="swebench")


def test_repository_map_equals_swebench() -> None:
    pytest.importorskip("swebench", reason="SWE-bench's parsers: pip install 'turngym[swe-bench]'")
    from swebench.harness.log_parsers.python import MAP_REPO_TO_PARSER_PY

    assert set(MAP_REPO_TO_PARSER_PY) == set(REPO_PARSER)
    for repo, theirs in MAP_REPO_TO_PARSER_PY.items():
        ours = parse_log(parser_for_repo(repo), PYTEST + DJANGO + SYMPY + SEABORN, engine="own")
        assert ours == theirs(PYTEST + DJANGO + SYMPY + SEABORN, None), repo


def test_pytest_keys_are_the_first_token_and_paths_are_cut() -> None:
    """The rules, asserted without SWE-bench (the fallback must hold them on its own)."""
    own = parse_log("pytest", PYTEST, engine="own")
    assert own["testing/test_assertrewrite.py::test_get_assertion_exprs[assert"] == "PASSED"
    assert own["testing/test_a.py::test_b[a"] == "FAILED"  # " - " inside the id became a blank
    assert own["testing/test_x.py::test_skipped_by_name"] == "SKIPPED"
    assert "[2]" not in own  # a skip summary names no test
    assert own["testing/test_broken.py"] == "ERROR"
    assert "[100%]" in own  # a wrapped progress line: SWE-bench keeps it (two P2P lists need it)
    options = parse_log("pytest_options", PYTEST, engine="own")
    assert options["tests/test_dataset.py::test_read[/CT_small.dcm]"] == "PASSED"
    assert "tests/test_dataset.py::test_read[//net/share/f.dcm]" in options  # // kept
    assert "tests/test_dataset.py::test_glob[/data/*.dcm]" in options  # globs kept
    assert "tests/test_dataset.py::test_read[/b.dcm]" in options  # text after "]" dropped
    v2 = parse_log("pytest_v2", PYTEST, engine="own")
    assert v2["testing/test_assertrewrite.py::test_get_assertion_exprs[assert x in y]"] == "PASSED"
    assert v2["testing/test_a.py::test_verbose"] == "PASSED"
    assert v2["testing/test_assertrewrite.py::test_coloured"] == "PASSED"  # colour codes removed
    assert test_key("pytest", "t.py::f[assert x == 1]", engine="own") == "t.py::f[assert"
    assert test_key("pytest_options", "t.py::f[/a/b/c.txt]", engine="own") == "t.py::f[/c.txt]"
    assert test_key("pytest_v2", "t.py::f[a  b]", engine="own") == "t.py::f[a b]"
    assert test_key("django", "whatever", engine="own") == "whatever"  # names no pytest key


def _task(f2p: list[str], p2p: list[str]) -> Task:
    return Task(
        instance_id="o__r-1",
        repo="o/r",
        base_commit="0" * 40,
        problem_statement="",
        patch="",
        FAIL_TO_PASS=f2p,
        PASS_TO_PASS=p2p,
    )


CASES = [
    ({"a": "PASSED", "b": "PASSED"}, ["a"], ["b"]),
    ({"a": "PASSED", "b": "SKIPPED"}, ["a"], ["b"]),  # a skipped P2P test is maintained
    ({"a": "SKIPPED", "b": "PASSED"}, ["a"], ["b"]),  # a skipped F2P test is not resolved
    ({"a": "XFAIL", "b": "XFAIL"}, ["a"], ["b"]),  # XFAIL grades as passing
    ({"a": "PASSED"}, ["a"], ["b"]),  # a missing P2P test breaks it
    ({"b": "PASSED"}, ["a"], ["b"]),  # a missing F2P test is not resolved
    ({"a": "ERROR", "b": "PASSED"}, ["a"], ["b"]),
    ({"a": "PASSED", "b": "FAILED"}, ["a"], ["b"]),
    ({"t[x y]": "PASSED", "t[x z]": "PASSED", "b": "PASSED"}, ["t[x"], ["b"]),  # truncated id
    ({"t[x y]": "PASSED", "t[x z]": "FAILED", "b": "PASSED"}, ["t[x"], ["b"]),  # ambiguous
    ({"a": "PASSED", "t[x y]": "SKIPPED", "t[x z]": "FAILED"}, ["a"], ["t[x"]),
    ({}, [], []),
]


@pytest.mark.parametrize(("statuses", "f2p", "p2p"), CASES)
def test_grade_equals_swebench(statuses: dict, f2p: list, p2p: list) -> None:
    pytest.importorskip("swebench", reason="SWE-bench's grading: pip install 'turngym[swe-bench]'")
    from swebench.harness.grading import get_eval_tests_report, get_resolution_status

    report = get_eval_tests_report(statuses, {"FAIL_TO_PASS": f2p, "PASS_TO_PASS": p2p})
    theirs = get_resolution_status(report) == "RESOLVED_FULL"
    ours = grade(_task(f2p, p2p), statuses)
    assert ours["resolved"] == theirs
    assert ours["f2p_failed"] == report["FAIL_TO_PASS"]["failure"]
    assert ours["p2p_failed"] == report["PASS_TO_PASS"]["failure"]


def test_grade_rules_without_swebench() -> None:
    assert grade(_task(["a"], ["b"]), {"a": "passed", "b": "skipped"})["resolved"]
    assert not grade(_task(["a"], ["b"]), {"a": "skipped", "b": "passed"})["resolved"]
    assert grade(_task(["t[x"], []), {"t[x y]": "PASSED", "t[x z]": "XFAIL"})["resolved"]
    assert not grade(_task(["t[x"], []), {"t[x y]": "PASSED", "t[x z]": "FAILED"})["resolved"]
    # an unknown status never resolves (SWE-bench would count it in neither list)
    assert not grade(_task(["a"], []), {"a": "PASSEDX"})["resolved"]
