"""A careless user at the command line: bad policies fail before any env runs, every listed id
plays, every subcommand has --help."""

from __future__ import annotations

import io
import time

import pytest

import turngym
from turngym import cli
from turngym.agents import bench
from turngym.envs.orchestra import list_orchestra_envs


@pytest.fixture
def no_env_may_run(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("an env ran although the policy name is bad")

    monkeypatch.setattr(turngym, "rollout", refuse)
    monkeypatch.setattr(bench, "_orchestra_rollout", refuse)
    monkeypatch.setattr(bench, "make_policy", refuse)


@pytest.mark.parametrize(
    "policy, says",
    [
        ("randon", "Did you mean 'random'"),
        ("random,smart", "unknown policy 'smart'"),
        ("hf:/no/such/dir", "/no/such/dir does not exist"),
        ("hf:", "hf: needs a model folder"),
        ("openai:", "openai: needs a model name"),
        (",", "--policy is empty"),
    ],
)
def test_bench_rejects_a_bad_policy_before_any_env_runs(
    policy: str, says: str, tmp_path, capsys, no_env_may_run
) -> None:
    start = time.monotonic()
    code = cli.main(
        [
            "bench",
            "--env",
            "all",
            "--policy",
            policy,
            "--episodes",
            "1",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and says in err, err
    assert time.monotonic() - start < 5 and not (tmp_path / "o").exists()


def test_bench_hf_path_that_is_a_file_is_rejected(tmp_path, capsys, no_env_may_run) -> None:
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"")
    assert bench.main(["--env", "turngym/Corridor-v0", "--policy", f"hf:{weights}"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_bench_accepts_the_policy_forms_it_documents(tmp_path) -> None:
    for name in ("random", "expert", f"hf:{tmp_path}", "hf:Qwen/Qwen2.5-0.5B", "openai:gpt-4o"):
        bench.check_policy_name(name)


def test_bench_that_writes_no_plots_does_not_say_it_did(tmp_path, capsys, monkeypatch) -> None:
    def broken(name, env_id, **kwargs):
        raise RuntimeError("the model server is down")

    monkeypatch.setattr(bench, "make_policy", broken)
    code = bench.main(
        ["--env", "turngym/Corridor-v0", "--episodes", "1", "--out", str(tmp_path), "--no-progress"]
    )
    out = capsys.readouterr()
    assert code == 1 and "plots" not in out.out and "every run failed" in out.out
    assert not (tmp_path / "rewards.png").exists()


@pytest.mark.parametrize("env_id", sorted(list_orchestra_envs()))
def test_play_accepts_the_orchestra_ids_turngym_list_prints(env_id: str, capsys) -> None:
    args = cli._parser().parse_args(["play", env_id, "--seed", "1"])
    assert cli._cmd_play(args, stdin=io.StringIO("wait\nnonsense\n:q\n")) == 0
    out = capsys.readouterr().out
    assert "you are the orchestrator" in out and "Invalid action" in out
    assert out.rstrip().endswith("bye")


def test_play_the_orchestra_to_the_end(capsys) -> None:
    args = cli._parser().parse_args(["play", "turngym/Orchestra-Toy-v0"])
    assert cli._cmd_play(args, stdin=io.StringIO("finish\n")) == 0
    assert "team episode over after 1 turns" in capsys.readouterr().out


def test_every_id_turngym_list_prints_is_known_to_play(capsys) -> None:
    """``play`` builds gymnasium ids through turngym.make (check_env_id) and orchestra ids as teams."""
    from turngym.envs.orchestra import ORCHESTRA_ENVS
    from turngym.registration import check_env_id

    assert cli.main(["list"]) == 0
    printed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert printed and any(env_id in ORCHESTRA_ENVS for env_id in printed)
    for env_id in printed:
        assert env_id in ORCHESTRA_ENVS or check_env_id(env_id) == env_id


@pytest.mark.parametrize(
    "argv",
    [[], ["list"], ["play"], ["check"], ["serve"]]
    + [[name] for name in cli._DELEGATED]
    + [["serve", family] for family in cli._SERVERS],
    ids=lambda argv: " ".join(argv) or "turngym",
)
def test_every_subcommand_has_help(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out
