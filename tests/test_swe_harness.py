"""SWE-bench's test files, per-repository commands, timeouts and log parsers, on real SWE-bench
instances (../shared/data/realdata/swe; skipped when absent) and logs scripted in each framework's
real output format. The parsers are compared with SWE-bench's own in tests/test_swe_parsers.py."""

from __future__ import annotations

import json

import pytest

from helpers.realdata import real_folder
from turngym.envs.swe.harness import (
    TestSpec,
    grade_timeout,
    parse_log,
    test_files_from_ids,
    test_files_from_patch,
    test_spec,
)
from turngym.envs.swe.tasks import grade, load_tasks, test_files
from turngym.error import InvalidArgumentError

RECORDS = real_folder("swe")
TASKS = {t.instance_id: t for t in load_tasks(RECORDS / "swe-bench-lite-test.json")}


def test_test_files_from_real_test_patches() -> None:
    django = TASKS["django__django-16255"]
    assert test_files_from_patch(django.test_patch) == [
        "tests/sitemaps_tests/test_http.py",
        "tests/sitemaps_tests/urls/http.py",
    ]
    assert test_files(TASKS["sympy__sympy-13031"]) == ["sympy/matrices/tests/test_sparse.py"]
    # Django's docstring ids name no file; the test_patch does.
    docstring = TASKS["django__django-15781"]
    assert docstring.FAIL_TO_PASS == ["BaseCommand.create_parser() passes kwargs to CommandParser."]
    assert test_files(docstring) == ["tests/user_commands/tests.py"]
    # Non-test extensions are dropped, as SWE-bench drops them.
    patch = "diff --git a/tests/data/x.json b/tests/data/x.json\ndiff --git a/t/test_a.py b/t/test_a.py\n"
    assert test_files_from_patch(patch) == ["t/test_a.py"]
    assert test_files_from_patch("") == []


def test_test_files_from_ids_without_a_test_patch() -> None:
    assert test_files_from_ids(
        [
            "tests/a/test_x.py::TestC::test_y[1-2]",
            "test_render (admin_widgets.tests.ForeignKeyRawIdWidgetTest)",
            "test_clear_cache (apps.tests.AppsTests.test_clear_cache)",  # Django >= 4.1 ids
            "test_sparse_matrix",  # sympy: no file
            "A docstring line.",  # Django docstring id: no file
        ]
    ) == ["tests/a/test_x.py", "tests/admin_widgets/tests.py", "tests/apps/tests.py"]


def test_commands_per_repository() -> None:
    django = test_spec(TASKS["django__django-16255"])
    assert isinstance(django, TestSpec) and django.parser == "django"
    assert django.command == [
        "./tests/runtests.py",
        "--verbosity",
        "2",
        "--settings=test_sqlite",
        "--parallel",
        "1",
        "sitemaps_tests.test_http",
        "sitemaps_tests.urls.http",
    ]
    old = dict(TASKS["django__django-16255"].to_dict(), version="1.9")
    assert test_spec(old).command[:4] == [
        "./tests/runtests.py",
        "--verbosity",
        "2",
        "sitemaps_tests.test_http",
    ]
    sympy = test_spec(TASKS["sympy__sympy-13031"])
    assert sympy.parser == "sympy"
    assert sympy.command[2:] == [
        "bin/test",
        "-C",
        "--verbose",
        "sympy/matrices/tests/test_sparse.py",
    ]
    pytest_spec = test_spec(TASKS["pytest-dev__pytest-11143"])
    assert pytest_spec.parser == "pytest"
    assert pytest_spec.command == [
        "pytest",
        "-rA",
        "--tb=no",
        "-p",
        "no:cacheprovider",
        "testing/test_assertrewrite.py",
    ]


DJANGO_LOG = """\
Testing against Django installed in '/testbed/django'
Importing application sitemaps_tests
Found 4 test(s).
System check identified no issues (0 silenced).
test_callable_sitemod_no_items (sitemaps_tests.test_http.HTTPSitemapTests) ... FAIL
test_cached_sitemap_index (sitemaps_tests.test_http.HTTPSitemapTests)
A cached sitemap index can be rendered (#2713). ... ok
test_alternate_i18n_sitemap_limited (sitemaps_tests.test_http.HTTPSitemapTests)
A i18n sitemap index with limited languages can be rendered. ... Internal Server Error: /x/
ok
test_requestsite_sitemap (sitemaps_tests.test_http.HTTPSitemapTests) ... skipped 'Needs sites'
test_sitemap_item (sitemaps_tests.test_http.HTTPSitemapTests) ... ERROR

======================================================================
FAIL: test_callable_sitemod_no_items (sitemaps_tests.test_http.HTTPSitemapTests)
----------------------------------------------------------------------
Traceback (most recent call last):
ValueError: max() arg is an empty sequence
----------------------------------------------------------------------
Ran 5 tests in 0.301s

FAILED (failures=1, errors=1, skipped=1)
"""


def test_django_log() -> None:
    statuses = parse_log("django", DJANGO_LOG, engine="own")
    assert statuses == {
        "test_callable_sitemod_no_items (sitemaps_tests.test_http.HTTPSitemapTests)": "FAILED",
        # SWE-bench keys a "FAIL: x (y)" header by its first word only
        "test_callable_sitemod_no_items": "FAILED",
        "A cached sitemap index can be rendered (#2713).": "PASSED",
        "A i18n sitemap index with limited languages can be rendered.": "PASSED",
        "test_requestsite_sitemap (sitemaps_tests.test_http.HTTPSitemapTests)": "SKIPPED",
        "test_sitemap_item (sitemaps_tests.test_http.HTTPSitemapTests)": "ERROR",
    }
    task = TASKS["django__django-16255"]
    verdict = grade(task, statuses)
    assert not verdict["resolved"] and verdict["f2p_fraction"] == 0.0
    # After a fix: the test's line says ok and the run has no FAIL: section.
    fixed = DJANGO_LOG.split("\n=====")[0].replace(
        "HTTPSitemapTests) ... FAIL", "HTTPSitemapTests) ... ok"
    )
    assert grade(task, parse_log("django", fixed, engine="own"))["f2p_fraction"] == 1.0


SYMPY_LOG = """\
============================= test process starts ==============================
executable:         /opt/miniconda3/envs/testbed/bin/python  (3.9.19-final-0) [CPython]
architecture:       64-bit
random seed:        71349042

sympy/matrices/tests/test_sparse.py[4]
test_sparse_matrix F
test_transpose ok
test_trace ok
test_errors E

________________________________________________________________________________
_____________ sympy/matrices/tests/test_sparse.py:test_sparse_matrix ______________
Traceback (most recent call last):
AssertionError

============= tests finished: 2 passed, 1 failed, 1 exceptions, in 0.38 seconds ==
"""


def test_sympy_log() -> None:
    statuses = parse_log("sympy", SYMPY_LOG, engine="own")
    assert statuses["test_sparse_matrix"] == "FAILED"
    assert statuses["test_transpose"] == statuses["test_trace"] == "PASSED"
    assert statuses["test_errors"] == "ERROR"
    assert statuses["sympy/matrices/tests/test_sparse.py:test_sparse_matrix"] == "FAILED"
    task = TASKS["sympy__sympy-13031"]
    passing = SYMPY_LOG.replace("test_sparse_matrix F", "test_sparse_matrix ok").replace(
        "test_errors E", "test_errors ok"
    )
    passing = passing.split("________")[0]
    everything = {name: "ok" for name in task.PASS_TO_PASS}
    lines = "\n".join(f"{name} {status}" for name, status in everything.items())
    verdict = grade(task, parse_log("sympy", passing + lines, engine="own"))
    assert verdict["resolved"]
    # sympy's parser has no skipped status (SWE-bench's): a skipped P2P test is missing, not kept
    skipped = passing + lines.replace(f"{task.PASS_TO_PASS[0]} ok", f"{task.PASS_TO_PASS[0]} s")
    assert not grade(task, parse_log("sympy", skipped, engine="own"))["resolved"]


PYTEST_LOG = """\
============================= test session starts ==============================
collected 6 items

testing/test_assertrewrite.py ..F.sx                                      [100%]

=========================== short test summary info ============================
PASSED testing/test_assertrewrite.py::TestAssertionPass::test_hook_call
PASSED testing/test_assertrewrite.py::test_param[a b]
FAILED testing/test_assertrewrite.py::TestIssue11140::test_constant_not_picked_as_module_docstring - TypeError: argument of type 'int' is not iterable
SKIPPED [1] testing/test_assertrewrite.py:123: needs something
XFAIL testing/test_assertrewrite.py::test_known_bug - reason: flaky
ERROR testing/test_assertrewrite.py::test_setup - fixture 'x' not found
\x1b[32mPASSED\x1b[0m testing/test_assertrewrite.py::test_coloured
"""


def test_pytest_log() -> None:
    statuses = parse_log("pytest", PYTEST_LOG, engine="own")
    assert statuses == {
        "testing/test_assertrewrite.py::TestAssertionPass::test_hook_call": "PASSED",
        # SWE-bench's key: the first blank-separated token after the status
        "testing/test_assertrewrite.py::test_param[a": "PASSED",
        "testing/test_assertrewrite.py::TestIssue11140::test_constant_not_picked_as_module_docstring": "FAILED",
        "testing/test_assertrewrite.py::test_known_bug": "XFAIL",
        "testing/test_assertrewrite.py::test_setup": "ERROR",
    }  # the coloured line does not start with a status word: SWE-bench's pytest parser skips it
    verbose = "testing/test_a.py::test_b PASSED                                  [ 50%]\n"
    assert parse_log("pytest", verbose, engine="own") == {}  # only pytest_v2 reads "id STATUS"
    # pytest_v2 reads "id STATUS" lines, but not with pytest's progress column after the status
    assert parse_log("pytest_v2", verbose, engine="own") == {}
    assert parse_log("pytest_v2", "testing/test_a.py::test_b[a  b] PASSED\n", engine="own") == {
        "testing/test_a.py::test_b[a b]": "PASSED"  # the whole id, blanks collapsed
    }


def test_parse_log_rejects_unknown_parsers_and_engines() -> None:
    with pytest.raises(InvalidArgumentError, match="'pytest', 'pytest_options'"):
        parse_log("nose", "")
    with pytest.raises(InvalidArgumentError, match="'auto', 'swebench', 'own'"):
        parse_log("pytest", "", engine="mine")
    assert parse_log("django", "", engine="own") == {}


def test_grading_timeouts_come_from_the_user_the_record_or_the_repository() -> None:
    task = TASKS["pytest-dev__pytest-11143"]
    assert grade_timeout(task) == 1800.0  # SWE-bench's run_evaluation default
    assert test_spec(task).timeout == 1800.0
    assert grade_timeout(dict(task.to_dict(), timeout=42)) == 42.0  # the record's own
    assert grade_timeout(task, 60) == 60.0  # the user's, over the record's
    assert grade_timeout(task, {"pytest-dev/pytest": 90}) == 90.0  # by repository
    assert grade_timeout(task, {task.instance_id: 30, "pytest-dev/pytest": 90}) == 30.0
    assert grade_timeout(task, {"other/repo": 5}) == 1800.0
    assert grade_timeout({"instance_id": "x", "repo": "r", "project": "toolz"}) == 180.0
    for bad in (0, -1, "soon", float("nan"), 10**6):
        with pytest.raises(InvalidArgumentError, match="grading timeout; give seconds"):
            grade_timeout(task, bad)
    with pytest.raises(InvalidArgumentError, match="'timeout' of task"):
        grade_timeout(dict(task.to_dict(), timeout="later"))


def test_every_real_record_gets_files_and_a_command() -> None:
    tasks = load_tasks(RECORDS / "swe-bench-lite-test.json")
    with pytest.warns(UserWarning):
        tasks += load_tasks(RECORDS / "swe-bench-dev-easy.json")
    for task in tasks:
        spec = test_spec(task)
        assert spec.test_files and all(path.endswith(".py") for path in spec.test_files), (
            task.instance_id
        )
        assert spec.command[-len(spec.test_files) :] == spec.test_files or spec.parser == "django"
    raw = json.loads((RECORDS / "swe-bench-lite-test.json").read_text())
    assert test_spec(raw[1]).parser == "sympy"  # a plain record dict works too
