"""The ``turngym`` command line.

turngym list                               registered ids and what they are
turngym play ENV_ID [--seed S] [--task T]  play an env in the terminal
turngym check ENV_ID [ENV_ID ...]          run the conformance check
turngym bench --env ID[,ID]|all --policy NAME[,NAME] --episodes N [--out DIR]
turngym train --config FILE [--eval-every N]  train an LLM policy with the learner
turngym train --init-config FILE           write a commented example config
turngym plot RUN_DIR                       metrics.png of a training run
turngym trace export RUN.jsonl              orchestra episodes -> orchestration traces (schema)
turngym serve webshop [--port P]           the web shop as HTML pages on localhost
turngym serve env ID [--port P]            any env id as an OpenEnv server ([openenv] extra)
turngym swe reap [--all]                   remove SWE sandboxes whose driver died
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["json_argument", "main"]

#: Subcommands implemented elsewhere: name -> "module:function" taking argv.
_DELEGATED = {
    "bench": ("turngym.agents.bench:main", "run a policy over env suites: table, JSON/CSV, plots"),
    "train": ("turngym.agents.train:main", "train an LLM policy with the learner (--config FILE)"),
    "plot": ("turngym.agents.train_report:main", "metrics.png of a training run: plot RUN_DIR"),
    "lab": (
        "turngym.lab.cli:main",
        "compare credit methods with tabular/linear policies: table, PNG",
    ),
    "trace": (
        "turngym.envs.orchestra.trace_cli:main",
        "orchestration traces: export RUN.jsonl, validate FILE, replay FILE",
    ),
    "swe": (
        "turngym.envs.swe.cli:main",
        "SWE: `reap` leaked sandboxes, `build`/`pull` instance images of a record file",
    ),
}
_SERVERS = {
    "webshop": "turngym.envs.webshop.server:main",
    "env": "turngym.integrations.openenv_serve:main",  # any id as an OpenEnv server ([openenv])
}


def json_argument(text: str, flag: str) -> dict[str, Any]:
    """The JSON object a command-line ``flag`` holds, or an :class:`InvalidArgumentError` of one
    line that shows the flag, what is wrong and a form that works (the shell ate the quotes?)."""
    from turngym.error import InvalidArgumentError

    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidArgumentError(
            f"{flag} is not JSON: {text!r} ({error.msg} at column {error.colno}); write an "
            f"object with double-quoted keys in single quotes, e.g. {flag} "
            "'{\"max_turns\": 3}'"
        ) from None
    if not isinstance(value, dict):
        raise InvalidArgumentError(
            f"{flag} must be a JSON object of keyword arguments, not {text!r}; e.g. {flag} "
            "'{\"max_turns\": 3}'"
        )
    return value


#: The extra each delegated module needs, named when importing it fails.
_EXTRAS = {
    "turngym.integrations.openenv": "openenv",
    "turngym.integrations.openenv_serve": "openenv",
    "turngym.envs.webshop.server": "webshop",
    "turngym.agents.train": "train",
    "turngym.agents.train_report": "bench",
    "turngym.envs.orchestra.trace_cli": "multiagent",
    "turngym.envs.swe.cli": "docker",
}


def _call(path: str, argv: Sequence[str]) -> int:
    module, _, function = path.partition(":")
    try:
        loaded = importlib.import_module(module)
    except ImportError as error:  # a missing extra: one line naming it, not the import chain
        from turngym.error import DependencyNotInstalled

        message = str(error)
        if not isinstance(error, DependencyNotInstalled):
            extra = _EXTRAS.get(module, "all")
            message = f"{message}; this command needs pip install 'turngym[{extra}]'"
        print(f"turngym: error: {message}", file=sys.stderr)
        return 2
    return int(getattr(loaded, function)(list(argv)) or 0)


def _build(factory: Any, env_id: str, kwargs: dict[str, Any]) -> Any:
    """``factory(env_id, **kwargs)``; a keyword the env does not take is a one-line error."""
    from turngym.error import InvalidArgumentError

    try:
        return factory(env_id, **kwargs)
    except TypeError as error:
        raise InvalidArgumentError(
            f"--kwargs {kwargs} do not fit {env_id}: {str(error).splitlines()[0]}"
        ) from None


def _cmd_list(_: argparse.Namespace) -> int:
    import turngym
    from turngym.envs.orchestra import list_orchestra_envs

    envs = {**turngym.list_envs(), **list_orchestra_envs()}
    width = max(map(len, envs), default=0)
    for env_id, description in envs.items():
        print(f"{env_id:<{width}}  {description}")
    return 0


def _format_components(components: dict[str, float]) -> str:
    return ", ".join(f"{name}={value:+.3f}" for name, value in components.items()) or "-"


class _QuitPlay(Exception):
    """The player typed ':q' while a team rollout asked for the orchestrator's action."""


class _HumanOrchestrator:
    """The orchestrator's seat in ``turngym play ORCHESTRA_ID``: shows the board, reads a line."""

    privileged = False

    def __init__(self, stdin: Any) -> None:
        self.stdin = stdin

    def act(self, batch: list[Any]) -> list[str]:
        actions = []
        for conversation in batch:
            print(f"\n[turn {conversation.turn}]\n{conversation.messages[-1]['content']}")
            if conversation.admissible_actions:
                print("actions: " + " | ".join(conversation.admissible_actions[:30]))
            print("> ", end="", flush=True)
            line = self.stdin.readline()
            if not line or line.strip() == ":q":
                raise _QuitPlay
            actions.append(line.rstrip("\n"))
        return actions


def _play_orchestra(args: argparse.Namespace, stdin: Any) -> int:
    """You are the orchestrator; each worker is played by its member family's expert."""
    from turngym.envs import orchestra
    from turngym.error import InvalidArgumentError

    if args.task:
        raise InvalidArgumentError(
            "orchestra presets draw their subtasks with --seed; drop --task (pick another seed)."
        )
    env = _build(orchestra.parallel_env, args.env_id, json_argument(args.kwargs, "--kwargs"))
    _, infos = env.reset(seed=args.seed)
    print(f"== {args.env_id}: you are the orchestrator; the workers are experts ==")
    print(f"{infos[orchestra.ORCHESTRATOR]['instructions']}\n(type an action; ':q' quits)")
    policies = {**orchestra.expert_policies(env), orchestra.ORCHESTRATOR: _HumanOrchestrator(stdin)}
    try:
        (episode,) = orchestra.rollout(env, policies, num_episodes=1, seed=args.seed)
    except _QuitPlay:
        print("bye")
        return 0
    finally:
        env.close()
    print(
        f"== team episode over after {episode.turns} turns: outcome {episode.outcome:.3f}, "
        f"success {episode.success} =="
    )
    return 0


def _readable(observation: str) -> str:
    """WebShop's text pages join their elements with `` [SEP] `` (what agents read, as in the
    original); the terminal shows one element a line instead."""
    return observation.replace(" [SEP] ", "\n")


def _numbered_action(line: str, admissible: list[str]) -> str:
    """``3`` plays the third listed action, unless ``3`` is itself one of them."""
    text = line.strip()
    if text.isdigit() and text not in admissible and 1 <= int(text) <= len(admissible):
        return admissible[int(text) - 1]
    return line


def _cmd_play(args: argparse.Namespace, stdin: Any = None) -> int:
    import turngym
    from turngym.envs.orchestra import ORCHESTRA_ENVS

    stdin = stdin or sys.stdin
    if args.env_id in ORCHESTRA_ENVS:
        return _play_orchestra(args, stdin)
    env = _build(turngym.make, args.env_id, json_argument(args.kwargs, "--kwargs"))
    options = {"task": args.task} if args.task else None
    observation, info = env.reset(seed=args.seed, options=options)
    print(f"== {args.env_id} task {info.get('task_id')} ==\n{info['instructions']}\n")
    print(
        "(type an action, or the number of a listed one; ':q' quits, ':r' restarts, "
        "':a' lists admissible actions)\n"
    )
    total = 0.0
    while True:
        print(_readable(observation))
        admissible = info.get("admissible_actions") or []
        if admissible:
            shown = [f"{i}) {action}" for i, action in enumerate(admissible[:30], start=1)]
            more = len(admissible) - len(shown)
            print("actions: " + " | ".join(shown) + (f" | ... (+{more})" if more > 0 else ""))
        print("> ", end="", flush=True)
        line = stdin.readline()
        if not line or line.strip() == ":q":
            print("bye")
            return 0
        if line.strip() == ":r":
            observation, info = env.reset(seed=args.seed, options=options)
            total = 0.0
            continue
        if line.strip() == ":a":
            listed = info.get("admissible_actions") or []
            print("\n".join(f"{i}) {a}" for i, a in enumerate(listed, start=1)) or "(none listed)")
            continue
        action = _numbered_action(line.rstrip("\n"), info.get("admissible_actions") or [])
        if action != line.rstrip("\n"):
            print(f"> {action}")
        observation, reward, terminated, truncated, info = env.step(action)
        total += reward
        print(
            f"[turn {info['turn']}] reward {reward:+.3f} ({_format_components(info['reward_components'])})"
            f" total {total:+.3f} progress {info['progress']:.2f}"
            + ("" if info["valid_action"] else "  [invalid action]")
        )
        if terminated or truncated:
            print(_readable(observation))
            end = "terminated" if terminated else "truncated (turn limit)"
            print(
                f"== episode {end}: outcome {info['outcome']}, success {info['success']}, return {total:+.3f} =="
            )
            return 0


def _cmd_check(args: argparse.Namespace) -> int:
    import turngym
    from turngym.envs import orchestra
    from turngym.testing import check_env, check_parallel_env

    failed = 0
    for env_id in args.env_ids:
        try:
            if env_id in orchestra.ORCHESTRA_ENVS:  # multi-agent: PettingZoo's tests + contract
                with contextlib.redirect_stdout(io.StringIO()):  # PettingZoo prints "Passed ..."
                    check_parallel_env(lambda env_id=env_id: orchestra.parallel_env(env_id))
            else:
                env = turngym.make(env_id)
                try:  # gymnasium's render check prints the observation of a "human" env
                    with contextlib.redirect_stdout(io.StringIO()):
                        check_env(env)
                finally:
                    env.close()
            print(f"PASS {env_id}")
        except AssertionError as error:
            failed += 1
            print(f"FAIL {env_id}: {error}")
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="turngym", description="turngym: text envs for multi-turn agentic RL"
    )
    parser.add_argument("--version", action="version", version=f"turngym {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list registered env ids").set_defaults(run=_cmd_list)
    play = sub.add_parser("play", help="play an env in the terminal (any id `turngym list` prints)")
    play.add_argument("env_id")
    play.add_argument("--seed", type=int, default=0)
    play.add_argument("--task", default=None, help="a task id (default: drawn with the seed)")
    play.add_argument(
        "--kwargs", default="{}", help='env kwargs as JSON, e.g. \'{"split": "test"}\''
    )
    play.set_defaults(run=_cmd_play)
    check = sub.add_parser("check", help="run turngym.testing.check_env on env ids")
    check.add_argument("env_ids", nargs="+")
    check.set_defaults(run=_cmd_check)
    for name, (_, text) in _DELEGATED.items():
        sub.add_parser(name, help=text, add_help=False)
    serve = sub.add_parser(
        "serve",
        help=f"serve an env over HTTP ({', '.join(sorted(_SERVERS))})",
        description="Serve an env over HTTP; `turngym serve FAMILY --help` lists its options.",
    )
    serve.add_argument("family", choices=sorted(_SERVERS))
    return parser


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("turngym")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        import turngym

        return turngym.__version__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``turngym`` script."""
    try:
        return _main(argv)
    except BrokenPipeError:  # `turngym list | head -3`: the reader left; that is not an error
        # Python would report the pipe again when it flushes stdout at exit: point it at devnull.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _DELEGATED:
        return _call(_DELEGATED[argv[0]][0], argv[1:])
    if len(argv) >= 2 and argv[0] == "serve" and argv[1] in _SERVERS:
        return _call(_SERVERS[argv[1]], argv[2:])
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except Exception as error:  # noqa: BLE001 - the CLI prints our errors, not tracebacks
        from turngym.error import TurnGymError

        if isinstance(error, TurnGymError):
            print(f"turngym: error: {error}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
