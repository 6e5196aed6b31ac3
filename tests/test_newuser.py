"""What a new user meets in the first hour (issue 26): each papercut, as a test that fails if it
comes back."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import gymnasium
import pytest

import turngym
from turngym import cli
from turngym.error import UnknownEnvError, UnknownTaskError

TURNGYM = [sys.executable, "-m", "turngym.cli"]


def test_a_failed_first_reset_leaves_the_env_usable() -> None:
    env = gymnasium.make("turngym/Corridor-v0")  # with gymnasium's passive checker, as documented
    with pytest.raises(UnknownTaskError):
        env.reset(options={"task": 10**9})
    observation, info = env.reset(seed=0)
    assert "corridor" in observation
    observation, reward, terminated, truncated, info = env.step("look")
    assert info["valid_action"] is False and not terminated
    with pytest.raises(turngym.error.InvalidArgumentError, match="only option is 'task'"):
        env.reset(options={"tsak": "L2-east"})
    env.step("go east")  # still stepping the episode reset(seed=0) began


def test_the_reset_check_is_on_the_outside_of_what_gymnasium_make_builds() -> None:
    env = gymnasium.make("turngym/Corridor-v0")
    assert type(env).__name__ == "CheckResetOptions"
    assert type(env.env.env).__name__ == "PassiveEnvChecker"
    again = gymnasium.make(env.spec)  # the wrapper is recorded in the spec and rebuilt from it
    assert type(again).__name__ == "CheckResetOptions"


def test_list_into_head_ends_without_a_traceback() -> None:
    command = " ".join(TURNGYM) + " list | head -3"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
    assert len(result.stdout.splitlines()) == 3
    assert "BrokenPipeError" not in result.stderr and "Traceback" not in result.stderr, (
        result.stderr
    )


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"turngym {turngym.__version__}"


def test_check_prints_only_its_verdict(capsys) -> None:
    pytest.importorskip("pettingzoo")
    assert cli.main(["check", "turngym/Corridor-v0", "turngym/Orchestra-Toy-v0"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "PASS turngym/Corridor-v0",
        "PASS turngym/Orchestra-Toy-v0",
    ]


def test_play_numbers_the_actions_and_takes_a_number(capsys) -> None:
    args = cli._parser().parse_args(["play", "turngym/Corridor-v0", "--task", "L2-west"])
    assert cli._cmd_play(args, stdin=io.StringIO("2\n2\n")) == 0
    out = capsys.readouterr().out
    assert "actions: 1) go east | 2) go west | 3) wait" in out
    assert "> go west" in out and "outcome 1.0, success True" in out  # "2" twice walked west


def test_a_number_that_is_itself_an_action_is_sent_as_typed() -> None:
    assert cli._numbered_action("2", ["1", "2", "go"]) == "2"
    assert cli._numbered_action("3", ["1", "2", "go"]) == "go"
    assert cli._numbered_action("4", ["a", "b"]) == "4"  # out of range: the env says invalid


def test_play_shows_webshop_pages_without_raw_separators(capsys) -> None:
    pytest.importorskip("rapidfuzz")
    pytest.importorskip("bm25s")
    args = cli._parser().parse_args(["play", "turngym/WebShop-Small-v0"])
    assert cli._cmd_play(args, stdin=io.StringIO(":q\n")) == 0
    out = capsys.readouterr().out
    assert "[SEP]" not in out and "\nInstruction:" in out


def test_make_of_an_orchestra_id_points_to_parallel_env() -> None:
    pytest.importorskip("pettingzoo")
    with pytest.raises(UnknownEnvError, match=r"orchestra\.parallel_env\('turngym/Orchestra-v0'\)"):
        turngym.make("turngym/Orchestra-v0")


@pytest.mark.parametrize("env_id", ["turngym/Corridor-v0", "turngym/TextWorld-Easy-v1"])
def test_bytes_actions_are_decoded_as_utf8_like_the_same_text(env_id: str) -> None:
    if "TextWorld" in env_id:
        pytest.importorskip("textworld")
    results = []
    for as_bytes in (False, True):
        env = turngym.make(env_id)
        observation, info = env.reset(seed=0)
        action = info["admissible_actions"][0]
        results.append(env.step(action.encode() if as_bytes else action)[:4])
        env.close()
    assert results[0] == results[1]
    env = turngym.make(env_id)
    env.reset(seed=0)
    with pytest.raises(turngym.error.InvalidArgumentError, match="actions are text: got int"):
        env.step(3)


@pytest.mark.parametrize(
    "argv, says",
    [
        (
            ["play", "turngym/Corridor-v0", "--kwargs", "{max_turns: 3}"],
            "--kwargs is not JSON: '{max_turns: 3}'",
        ),
        (["play", "turngym/Corridor-v0", "--kwargs", '{"max_turn": 3}'], "max_turn"),
        (["play", "turngym/Orchestra-Toy-v0", "--kwargs", '{"colour": 1}'], "colour"),
        (["bench", "--env", "turngym/Corridor-v0", "--env-kwargs", "{max_turns: 3}"], "JSON"),
        (["bench", "--env", "turngym/Corridor-v0", "--env-kwargs", '{"max_turn": 3}'], "max_turn"),
    ],
)
def test_malformed_cli_input_is_one_line(argv: list[str], says: str) -> None:
    result = subprocess.run(
        [*TURNGYM, *argv], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and says in lines[0], result.stderr[-2000:]


def test_serve_env_without_openenv_names_the_extra() -> None:
    from helpers.extras import fenced_env

    result = subprocess.run(
        [*TURNGYM, "serve", "env", "turngym/Corridor-v0"],
        env=fenced_env({"all"}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert "pip install 'turngym[openenv]'" in lines[0]


def test_save_traces_leaves_no_file_when_a_trace_is_invalid(tmp_path: Path) -> None:
    pytest.importorskip("jsonschema")
    from turngym.envs import orchestra

    path = tmp_path / "traces.jsonl"
    with pytest.raises(Exception, match="trace"):
        orchestra.save_traces(path, [{"not": "a trace"}])
    assert not path.exists()
    path.write_text(json.dumps({"earlier": 1}) + "\n")
    with pytest.raises(Exception, match="trace"):
        orchestra.save_traces(path, [{"not": "a trace"}])
    assert path.read_text() == json.dumps({"earlier": 1}) + "\n"  # an earlier file stays whole


def test_the_docker_engine_is_found_under_turngym_docker_state(monkeypatch, tmp_path) -> None:
    docker = pytest.importorskip("docker")
    from turngym.envs.swe import docker_engine

    monkeypatch.setenv("TURNGYM_DOCKER_STATE", str(tmp_path / "state"))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(docker_engine, "_CLIENT", None)
    tried = []

    def client(base_url, timeout):
        tried.append(base_url)
        raise ConnectionError("no engine in this test")

    monkeypatch.setattr(docker, "DockerClient", client)
    with pytest.raises(turngym.error.DependencyNotInstalled, match="no Docker engine answers"):
        docker_engine.connect()
    assert f"unix://{tmp_path}/state/docker.sock" in tried  # what ci_setup.sh used for STATE_DIR
