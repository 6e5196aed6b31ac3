"""Real SWE-bench / SWE-smith records load as published (../shared/data/realdata/swe, see SOURCES.md),
their images are named, and a record with no image source gets an error that says how to name one."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from helpers.realdata import real_folder
from turngym.envs.swe.harness import image_for, swebench_image, swegym_image
from turngym.envs.swe.tasks import load_tasks, missing_image_message, read_records
from turngym.error import InvalidArgumentError

RECORDS = real_folder("swe")
LITE = RECORDS / "swe-bench-lite-test.json"  # a JSON array of 5 SWE-bench Lite instances
DEV = RECORDS / "swe-bench-dev-easy.json"  # 5 SWE-bench dev instances, one id twice
SMITH = RECORDS / "swesmith-pandas-dev__pandas.95280573.pr_53652.json"  # one JSON object


def _lite() -> list[dict]:
    return json.loads(LITE.read_text())


def test_json_array_loads() -> None:
    tasks = load_tasks(LITE)
    assert [t.instance_id for t in tasks] == [r["instance_id"] for r in _lite()]
    django = tasks[0]
    assert django.FAIL_TO_PASS == [
        "test_callable_sitemod_no_items (sitemaps_tests.test_http.HTTPSitemapTests)"
    ]
    assert django.version == "4.2" and django.extra["environment_setup_commit"]
    assert django.image == "swebench/sweb.eval.x86_64.django_1776_django-16255:latest"


@pytest.mark.parametrize("shape", ["jsonl", "hf_json_strings", "single_object", "rows"])
def test_published_shapes_load_the_same(tmp_path: Path, shape: str) -> None:
    records = _lite()
    path = tmp_path / "tasks.json"
    if shape == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    elif shape == "hf_json_strings":
        # HF datasets' SWE-bench files hold the id lists as JSON strings.
        hf = [
            dict(
                r,
                FAIL_TO_PASS=json.dumps(r["FAIL_TO_PASS"]),
                PASS_TO_PASS=json.dumps(r["PASS_TO_PASS"]),
            )
            for r in records
        ]
        path.write_text("\n".join(json.dumps(r) for r in hf))
    elif shape == "single_object":
        records = records[:1]
        path.write_text(json.dumps(records[0], indent=2))
    else:  # the dataset viewer's {"rows": [{"row": {...}}]}
        path.write_text(json.dumps({"rows": [{"row": r} for r in records]}))
    tasks = load_tasks(path)
    assert [(t.instance_id, t.FAIL_TO_PASS, t.PASS_TO_PASS) for t in tasks] == [
        (r["instance_id"], r["FAIL_TO_PASS"], r["PASS_TO_PASS"]) for r in records
    ]


def test_parquet_loads(tmp_path: Path) -> None:
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    path = tmp_path / "test-00000-of-00001.parquet"
    pandas.DataFrame(_lite()).to_parquet(path)
    tasks = load_tasks(path)
    assert [t.FAIL_TO_PASS for t in tasks] == [r["FAIL_TO_PASS"] for r in _lite()]


def test_swe_smith_record_with_python_literal_lists() -> None:
    # SWE-smith's own test log: one JSON object, id lists written as Python list literals, the
    # image in "image_name".
    task = load_tasks(SMITH)[0]
    assert task.image == "swesmith.x86_64.pandas-dev__pandas.95280573"
    assert task.FAIL_TO_PASS[0].startswith("pandas/tests/indexing/test_datetime.py::")
    assert all(isinstance(test_id, str) for test_id in task.FAIL_TO_PASS + task.PASS_TO_PASS)
    assert task.test_patch == ""


def test_duplicate_ids_warn_and_keep_the_first() -> None:
    records = json.loads(DEV.read_text())
    with pytest.warns(UserWarning, match="'pylint-dev__astroid-1268' x2"):
        tasks = load_tasks(DEV)
    assert len(tasks) == len(records) - 1
    first = next(r for r in records if r["instance_id"] == "pylint-dev__astroid-1268")
    kept = next(t for t in tasks if t.instance_id == "pylint-dev__astroid-1268")
    assert kept.patch == first["patch"]


def test_bad_files_say_what_a_task_file_is(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_lite()[0]) + "\n{not json\n")
    with pytest.raises(InvalidArgumentError, match="line 2 is not JSON"):
        load_tasks(bad)
    numbers = tmp_path / "numbers.json"
    numbers.write_text("[1, 2]")
    with pytest.raises(InvalidArgumentError, match="record 0 is a int"):
        read_records(numbers)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps([dict(_lite()[0], FAIL_TO_PASS="test_a, test_b")]))
    with pytest.raises(InvalidArgumentError, match="FAIL_TO_PASS"):
        load_tasks(broken)
    with pytest.raises(InvalidArgumentError, match="not found"):
        load_tasks(tmp_path / "missing.jsonl")


def test_image_names() -> None:
    record = {"instance_id": "django__django-16255", "repo": "django/django"}
    assert image_for(record) == swebench_image("django__django-16255")
    assert swebench_image("Project-MONAI__MONAI-3715").startswith(
        "swebench/sweb.eval.x86_64.project-monai_1776_"
    )
    assert (
        image_for(record, "swe-gym")
        == swegym_image("django__django-16255")
        == ("xingyaoww/sweb.eval.x86_64.django_s_django-16255:latest")
    )
    assert image_for(record, {"django__django-16255": "mine:1"}) == "mine:1"
    assert image_for(record, {"other": "x"}) == swebench_image("django__django-16255")
    assert image_for(record, "reg/{instance_id}") == "reg/django__django-16255"
    assert image_for(record, lambda r: f"cb/{r['repo']}") == "cb/django/django"
    # A user mapping wins over the record's own name.
    smith = read_records(SMITH)[0]
    assert image_for(smith) == smith["image_name"]
    assert image_for(smith, {smith["instance_id"]: "mirror/x"}) == "mirror/x"
    with pytest.raises(InvalidArgumentError, match="image_map='swegym'"):
        load_tasks(LITE, image_map="swegym")
    tasks = load_tasks(LITE, image_map="swe-gym")
    assert tasks[1].image == "xingyaoww/sweb.eval.x86_64.sympy_s_sympy-13031:latest"


def test_record_without_image_source_on_docker_says_how_to_name_one(tmp_path: Path) -> None:
    from turngym.envs.swe.env import SWEEnv

    # A SWE-Gym-shaped record (not one of SWE-bench's repositories) names no image.
    record = dict(_lite()[2], instance_id="getmoto__moto-7365", repo="getmoto/moto")
    path = tmp_path / "gym.jsonl"
    path.write_text(json.dumps(record))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        task = load_tasks(path)[0]
    assert task.image is None
    message = missing_image_message(task)
    assert "image_map=" in message and "'swe-gym'" in message and "image_name" in message
    env = SWEEnv(backend="docker", tasks_path=str(path))
    with pytest.raises(InvalidArgumentError, match="image_map="):
        env.reset(options={"task": "getmoto__moto-7365"})
    env.close()
