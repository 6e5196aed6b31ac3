"""The turngym command line: list, play, check, and argument errors."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from turngym import cli


def test_list_prints_every_id(capsys) -> None:
    import turngym

    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(env_id in out for env_id in turngym.list_envs())
    assert "turngym/Orchestra-v0" in out and "Multi-agent" in out


def test_play_a_winning_game(capsys) -> None:
    args = cli._parser().parse_args(["play", "turngym/Corridor-v0", "--task", "L2-east"])
    code = cli._cmd_play(args, stdin=io.StringIO("go east\nfly\ngo east\n"))
    out = capsys.readouterr().out
    assert code == 0
    assert "actions: 1) go east | 2) go west | 3) wait" in out
    assert "[invalid action]" in out and "format=-0.100" in out
    assert "outcome 1.0, success True" in out


def test_play_quit_and_restart(capsys) -> None:
    args = cli._parser().parse_args(["play", "turngym/Corridor-v0", "--seed", "3"])
    assert cli._cmd_play(args, stdin=io.StringIO("go east\n:r\n:a\n:q\n")) == 0
    out = capsys.readouterr().out
    assert out.count("steps from the start") >= 3 and out.rstrip().endswith("bye")


def test_check_command(capsys) -> None:
    assert cli.main(["check", "turngym/Corridor-v0", "turngym/Orchestra-Toy-v0"]) == 0
    out = capsys.readouterr().out
    assert "PASS turngym/Corridor-v0" in out and "PASS turngym/Orchestra-Toy-v0" in out


def test_unknown_env_is_a_clean_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "turngym.cli", "play", "turngym/Nope-v0"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Registered turngym ids" in result.stderr and "Traceback" not in result.stderr


def test_bad_subcommand_exits_with_usage() -> None:
    with pytest.raises(SystemExit):
        cli.main(["dance"])
