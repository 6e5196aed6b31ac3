"""``turngym swe build`` / ``pull`` and the image contract: specs, suites, clones, offline install
commands, the summary, the CLI's one-line errors; and, on a real engine, the builder end to end on
a bundled project's sdist from the package registry (PyPI): its image is built offline from a
clone at ``base_commit``, reused on the next build, and the env grades the gold patch resolved and
the untouched code unresolved through the image's venv contract."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from turngym.envs.swe import instances
from turngym.envs.swe.cli import main as swe_main
from turngym.envs.swe.harness import contract_for, image_command, image_for, turngym_image
from turngym.error import InvalidArgumentError

RECORD = {
    "instance_id": "Owner__Repo-7",
    "repo": "owner/repo",
    "version": "1.2",
    "base_commit": "0" * 40,
}


def test_specs_come_from_the_user_file_or_say_how_to_give_one(tmp_path: Path) -> None:
    specs = tmp_path / "specs.json"
    specs.write_text(json.dumps({"owner/repo": {"1.2": {"python": "3.9", "pip_packages": ["pytest==7.4.4"], "packages": "requirements.txt"}}}))  # fmt: skip
    spec = instances.spec_for(RECORD, instances.read_specs(specs))
    assert spec.python == "3.9" and spec.pip_packages == ("pytest==7.4.4",)
    assert spec.packages == "requirements.txt" and spec.install == "python -m pip install -e ."
    with pytest.raises(InvalidArgumentError, match="--specs FILE"):
        instances.spec_for(dict(RECORD, version="9.9"), instances.read_specs(specs))
    with pytest.raises(InvalidArgumentError, match="not found"):
        instances.read_specs(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(InvalidArgumentError, match="repo -> version -> spec"):
        instances.read_specs(tmp_path / "bad.json")


@pytest.mark.parametrize(
    ("python", "suite", "real"),
    [("3.9", "bullseye", "3.9"), ("3.8", "bullseye", "3.9"), ("3.6", "bullseye", "3.9"),
     ("3.10", "bookworm", "3.11"), ("3.11", "bookworm", "3.11"), ("3.12", "trixie", "3.13")],
)  # fmt: skip
def test_each_python_gets_the_debian_suite_that_ships_it_or_the_next(python, suite, real) -> None:
    spec = instances.InstanceSpec(python=python)
    assert (spec.suite, spec.real_python) == (suite, real)


def test_clones_are_found_in_the_usual_layouts(tmp_path: Path) -> None:
    (tmp_path / "owner__repo").mkdir()
    assert instances.find_repository(tmp_path, "owner/repo") == tmp_path / "owner__repo"
    (tmp_path / "pylint-dev+astroid" / "repo").mkdir(parents=True)  # the fetch tool's mirrors
    found = instances.find_repository(tmp_path, "pylint-dev/astroid")
    assert found == tmp_path / "pylint-dev+astroid" / "repo"
    with pytest.raises(InvalidArgumentError, match="git clone --mirror https://github.com/a/b"):
        instances.find_repository(tmp_path, "a/b")


def test_a_repository_missing_from_the_clones_is_cloned_from_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--repo-url: a mirror in the cache, cloned once and fetched again for a newer commit (a
    file:// URL here stands for https://github.com/{repo}.git)."""
    monkeypatch.setenv("TURNGYM_CACHE", str(tmp_path / "cache"))
    origin = tmp_path / "upstream" / "owner" / "repo"
    git = ["git", "-C", str(origin), "-c", "user.name=t", "-c", "user.email=t@t"]
    origin.mkdir(parents=True)
    subprocess.run([*git, "init", "-q"], check=True)
    (origin / "a.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    first = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    url = f"file://{tmp_path}/upstream/{{repo}}"
    mirror = instances.clone_repository("owner/repo", url, first)
    assert mirror == tmp_path / "cache" / "swe-repos" / "owner__repo"
    (origin / "a.py").write_text("x = 2\n")
    subprocess.run([*git, "commit", "-qam", "two"], check=True)
    second = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert instances.clone_repository("owner/repo", url, second) == mirror  # fetched again
    assert (
        b"x = 2"
        in subprocess.run(
            ["git", f"--git-dir={mirror}", "show", f"{second}:a.py"], capture_output=True
        ).stdout
    )
    with pytest.raises(InvalidArgumentError, match="pass it with --repos"):
        instances.clone_repository("owner/gone", url, first)
    records = tmp_path / "r.json"
    records.write_text(json.dumps([RECORD]))
    assert swe_main(["build", str(records), "--repo-url", "https://example.org/x.git"]) == 2


def test_install_commands_run_offline_without_build_isolation(tmp_path: Path) -> None:
    spec = instances.InstanceSpec(python="3.9", install="python -m pip install -e .[test]")
    assert instances.install_command(spec) == (
        "python -m pip install -q --no-build-isolation --use-pep517 -e .[test]"
    )
    assert (
        instances.install_command(instances.InstanceSpec("3.9", install="make dev")) == "make dev"
    )
    (tmp_path / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools_scm>=6"]\n')
    build, packages, requirements = instances.wanted(
        instances.InstanceSpec("3.9", pip_packages=("numpy",), packages="requirements.txt"),
        tmp_path,
    )
    assert build == ["pip", "setuptools", "wheel", "setuptools_scm>=6"]
    assert packages == ["numpy", "pytest"] and requirements == "requirements.txt"
    (tmp_path / "src" / "_pytest").mkdir(parents=True)  # pytest's own repository: no PyPI pytest
    assert "pytest" not in instances.wanted(instances.InstanceSpec("3.9"), tmp_path)[1]


def test_image_names_contracts_and_the_command_that_gets_a_missing_image() -> None:
    assert turngym_image("Owner__Repo-7") == "turngym/sweb.eval.owner__repo-7:latest"
    assert image_for(RECORD, "turngym") == "turngym/sweb.eval.owner__repo-7:latest"
    assert image_for(RECORD, "Reg/{instance_id}:V1") == "reg/owner__repo-7:v1"  # lowercased
    venv = contract_for(RECORD, turngym_image("Owner__Repo-7"))
    assert venv.family == "turngym-venv" and venv.python == "/opt/venv/bin/python"
    assert venv.environment()["PATH"].startswith("/opt/venv/bin:")
    conda = contract_for(RECORD, "swebench/sweb.eval.x86_64.owner_1776_repo-7:latest")
    assert conda.python == "/opt/miniconda3/envs/testbed/bin/python"
    assert conda.shell("pytest -x") == "source /opt/miniconda3/bin/activate testbed && pytest -x"
    assert contract_for(RECORD, "xingyaoww/sweb.eval.x86_64.a").family == "swe-gym"
    assert contract_for(dict(RECORD, image_name="swesmith.x86_64.a")).family == "swe-smith"
    assert contract_for(RECORD, "somebody/else").path is None  # an unknown image keeps its PATH
    custom = contract_for(dict(RECORD, image_contract={"python": "/py/bin/python"}), "x/y")
    assert custom.python == "/py/bin/python" and custom.family == "image+custom"
    with pytest.raises(InvalidArgumentError, match="image_contract"):
        contract_for(dict(RECORD, image_contract={"pyhton": "x"}))
    with pytest.raises(InvalidArgumentError, match="image_family"):
        contract_for(dict(RECORD, image_family="r2e"))
    built = image_command(RECORD, turngym_image("Owner__Repo-7"), "tasks.json")
    assert built == "turngym swe build tasks.json --only Owner__Repo-7 --repos CLONES_DIR"
    assert image_command(RECORD, "swebench/x:latest", "t.json").startswith("docker pull swebench/x")


class _Registry:
    """A stand-in for docker's image API: pulls succeed except for names it was told to refuse."""

    def __init__(self, refuse: str) -> None:
        self.pulled: list[tuple[str, str]] = []
        self.images = self
        self.refuse = refuse

    def pull(self, repository: str, tag: str):
        if repository == self.refuse:
            raise RuntimeError("manifest unknown")
        self.pulled.append((repository, tag))
        return type("Image", (), {"attrs": {"Size": 2_000_000}})()


def test_pull_takes_each_tasks_published_image_and_reports_failures() -> None:
    from turngym.envs.swe.tasks import Task

    tasks = [
        Task("a__b-1", "a/b", "c", "p", "x", [], [], image="swebench/sweb.eval.x86_64.a_1776_b-1:latest"),
        Task("a__b-2", "a/b", "c", "p", "x", [], [], image="reg/refused"),
        Task("a__b-3", "a/b", "c", "p", "x", [], [], image=None),
    ]  # fmt: skip
    registry = _Registry(refuse="reg/refused")
    results = instances.pull_instances(tasks, client=registry)
    assert registry.pulled == [("swebench/sweb.eval.x86_64.a_1776_b-1", "latest")]
    assert [r.status for r in results] == ["pulled", "failed", "failed"]
    assert "manifest unknown" in results[1].reason and "--image-map" in results[2].reason
    table = instances.summary_table(results)
    assert table.splitlines()[0].split()[:2] == ["instance", "status"] and "a__b-3" in table


def test_cli_errors_are_one_line_with_exit_2(tmp_path: Path, capsys) -> None:
    assert swe_main(["build", str(tmp_path / "missing.json")]) == 2
    assert "not found" in capsys.readouterr().err
    records = tmp_path / "r.json"
    records.write_text(json.dumps([RECORD]))
    assert swe_main(["build", str(records), "--only", "nope"]) == 2
    assert "--only names ids" in capsys.readouterr().err
    assert swe_main(["build", str(records), "--jobs", "0"]) == 2
    assert swe_main(["build", str(records), "--repos", str(tmp_path / "none")]) == 2
    # no spec anywhere: the build runs, fails this instance with the reason, and exits 1
    assert swe_main(["build", str(records), "--repos", str(tmp_path)]) == 1
    assert "--specs FILE" in capsys.readouterr().out


def test_select_tasks_serves_a_list_in_order_and_sets_the_users_timeout() -> None:
    from turngym.envs.swe.tasks import load_tasks, select_tasks

    tasks = load_tasks()
    ids = [tasks[3].instance_id, tasks[0].instance_id]
    chosen = select_tasks(tasks, ids, {tasks[0].instance_id: 5})
    assert [t.instance_id for t in chosen] == ids
    assert [t.extra["timeout"] for t in chosen] == [180.0, 5.0]
    with pytest.raises(InvalidArgumentError, match="ids the task file lacks"):
        select_tasks(tasks, ["nope"])
    with pytest.raises(InvalidArgumentError, match="list of instance ids"):
        select_tasks(tasks, "abc")  # type: ignore[arg-type]


def test_split_all_and_task_ids_reach_every_task() -> None:
    """The 80/20 hash split leaves a fifth of a file's tasks out of "train"; "all" serves each."""
    import gymnasium

    from turngym.envs.swe.local_backend import local_available
    from turngym.envs.swe.tasks import load_tasks

    reason = local_available(["toolz"])
    if reason:
        pytest.skip(f"no local SWE backend: {reason}")
    tasks = load_tasks()
    env = gymnasium.make("turngym/SWE-v0", backend="local", split="all")
    try:
        assert sorted(env.unwrapped.task_ids) == sorted(t.instance_id for t in tasks)
        assert len(env.unwrapped._task_ids("train")) < len(tasks)
    finally:
        env.close()
    picked = [tasks[1].instance_id, tasks[2].instance_id]
    env = gymnasium.make("turngym/SWE-v0", backend="local", split="all", task_ids=picked)
    try:
        assert env.unwrapped.task_ids == picked
    finally:
        env.close()


def _engine_reason() -> str | None:
    from turngym.envs.swe.docker_backend import connect, engine_available

    reason = engine_available()
    if reason:
        return reason
    if not connect().images.list(name="turngym/swe-rootfs:bookworm"):
        return "turngym/swe-rootfs:bookworm is not imported; run `source docker/ci_setup.sh`"
    return None


def test_a_missing_image_is_found_at_reset_and_named_with_its_command(tmp_path: Path) -> None:
    reason = _engine_reason()
    if reason:
        pytest.skip(f"no Docker engine: {reason}")
    import gymnasium

    from turngym.error import DependencyNotInstalled

    record = dict(
        RECORD, problem_statement="p", patch="", FAIL_TO_PASS=["t.py::a"], PASS_TO_PASS=[]
    )
    path = tmp_path / "records.json"
    path.write_text(json.dumps([record]))
    # the env is made although the image is absent: images are checked per task, at reset
    env = gymnasium.make("turngym/SWE-v0", backend="docker", tasks_path=str(path),
                         image_map="turngym", split="all")  # fmt: skip
    try:
        with pytest.raises(
            DependencyNotInstalled, match="turngym swe build .*--only Owner__Repo-7"
        ):
            env.reset(options={"task": "Owner__Repo-7"})
    finally:
        env.close()


def test_the_contracts_workdir_is_where_commands_and_grading_run(tmp_path: Path) -> None:
    """An external task on a bundled project's image whose repository sits at /opt/src: with
    ``image_contract={"workdir": "/opt/src"}`` the agent's shell starts there and the clean code's
    tests grade resolved (with a comment added: an empty patch is not run, as in SWE-bench)."""
    reason = _engine_reason()
    if reason:
        pytest.skip(f"no Docker engine: {reason}")
    import gymnasium

    from turngym.envs.swe.projects import image_name, project
    from turngym.envs.swe.tasks import load_tasks

    bundled = next(t for t in load_tasks() if t.project == "toolz")
    record = {
        "instance_id": "pytoolz__toolz-2", "repo": "pytoolz/toolz", "base_commit": "0" * 40,
        "problem_statement": "p", "patch": "", "FAIL_TO_PASS": bundled.PASS_TO_PASS[:1],
        "PASS_TO_PASS": bundled.PASS_TO_PASS[1:3], "image": image_name(project("toolz")),
        "image_contract": {"workdir": "/opt/src"},
    }  # fmt: skip
    path = tmp_path / "records.json"
    path.write_text(json.dumps([record]))
    env = gymnasium.make("turngym/SWE-v0", backend="docker", tasks_path=str(path), split="all")
    try:
        env.reset(options={"task": "pytoolz__toolz-2"})
        observation = env.step('{"tool": "bash", "command": "pwd; ls"}')[0]
        assert observation.startswith("/opt/src") and "toolz" in observation
        edit = json.dumps({"tool": "bash", "command": "echo '# graded' >> toolz/utils.py"})
        env.step(edit)  # a relative path: the shell is in the contract's workdir
        _, _, terminated, _, info = env.step('{"tool": "submit"}')
        assert terminated and info["grading"]["verdict"] == "resolved", info["grading"]
        assert info["reward_components"]["patch"] > 0  # the comment was in the graded patch
    finally:
        env.close()


@pytest.mark.slow
def test_builder_end_to_end_on_a_bundled_projects_sdist(tmp_path: Path) -> None:
    """toolz's sdist (PyPI, through the bundled projects' cache) as a clone with one of our
    injected bugs committed; built, reused, then graded: gold resolved, untouched not."""
    reason = _engine_reason()
    if reason:
        pytest.skip(f"no Docker engine for the builder: {reason}")
    import gymnasium

    from helpers.episodes import play
    from turngym.agents import expert
    from turngym.envs.swe.projects import project, project_source
    from turngym.envs.swe.sandbox.swe_diff import apply_diff
    from turngym.envs.swe.tasks import load_tasks

    bundled = next(t for t in load_tasks() if t.project == "toolz")
    clone = tmp_path / "repos" / "pytoolz__toolz"
    clone.parent.mkdir()
    subprocess.run(["cp", "-r", str(project_source(project("toolz"), download=True)), str(clone)], check=True)  # fmt: skip
    apply_diff(str(clone), bundled.setup_patch)  # the bug, as a commit of the clone
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "bug"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    record = {
        "instance_id": "pytoolz__toolz-1", "repo": "pytoolz/toolz", "version": "1.0",
        "base_commit": commit, "problem_statement": bundled.problem_statement,
        "patch": bundled.patch, "test_patch": "", "FAIL_TO_PASS": bundled.FAIL_TO_PASS,
        "PASS_TO_PASS": bundled.PASS_TO_PASS,
    }  # fmt: skip
    records = tmp_path / "records.json"
    records.write_text(json.dumps([record]))
    specs = {"pytoolz/toolz": {"1.0": {"python": "3.11", "pip_packages": ["pytest"]}}}
    (tmp_path / "specs.json").write_text(json.dumps(specs))
    argv = ["build", str(records), "--repos", str(tmp_path / "repos"), "--specs", str(tmp_path / "specs.json")]  # fmt: skip
    assert swe_main([*argv, "--rebuild"]) == 0
    again = instances.build_instances([record], tmp_path / "repos", specs, progress=False)
    assert again[0].status == "reused" and again[0].size_mb > 0
    env = gymnasium.make(
        "turngym/SWE-v0", backend="docker", tasks_path=str(records), image_map="turngym",
        split="all", max_turns=len(bundled.patch.splitlines()) + 5,
    )  # fmt: skip
    try:
        assert env.unwrapped.task_ids == ["pytoolz__toolz-1"]
        resolved, infos = play(env, expert("turngym/SWE-v0"), "pytoolz__toolz-1")
        assert resolved and infos[-1]["grading"]["verdict"] == "resolved"
        env.reset(options={"task": "pytoolz__toolz-1"})
        _, _, terminated, _, info = env.step('{"tool": "submit"}')
        assert terminated and info["grading"]["verdict"] == "unresolved"
    finally:
        env.close()
