"""``turngym swe``: sandbox maintenance and instance images.

    turngym swe reap [--all]                      remove sandboxes of dead owners
    turngym swe build RECORDS [--repos DIR] [--repo-url URL] [--specs FILE] [--only ID ...]
                      [--jobs N] [--rebuild]
    turngym swe pull RECORDS [--image-map NAME|TEMPLATE] [--only ID ...]

``build`` and ``pull`` print a summary table and exit 1 when an instance failed, 2 on a wrong
argument (one line saying how to fix it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from turngym.error import InvalidArgumentError, TurnGymError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="turngym swe", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    reap = sub.add_parser(
        "reap", help="remove sandboxes (containers, workspaces, cgroups) of dead owners"
    )
    reap.add_argument(
        "--all", action="store_true", help="every turngym SWE container, not only dead owners'"
    )
    build = sub.add_parser("build", help="build each instance's image offline-capable and cached")
    pull = sub.add_parser("pull", help="pull each instance's published image")
    for command in (build, pull):
        command.add_argument("records", type=Path, help="a SWE-bench/SWE-Gym/SWE-smith record file")
        command.add_argument("--only", nargs="+", metavar="ID", help="these instance ids only")
    build.add_argument(
        "--repos", type=Path, help="folder of clones/mirrors (owner__name, owner+name)"
    )
    build.add_argument(
        "--repo-url",
        help="clone a repository missing from --repos: 'https://github.com/{repo}.git'",
    )
    build.add_argument("--specs", type=Path, help="JSON/YAML {repo: {version: spec}} install specs")
    build.add_argument("--jobs", type=int, default=2, help="builds at a time (default 2)")
    build.add_argument("--rebuild", action="store_true", help="build even when an image is current")
    pull.add_argument("--image-map", default=None, help="'swebench', 'swe-gym' or a template")  # fmt: skip
    return parser


def _records(args: argparse.Namespace) -> list[dict]:
    from turngym.envs.swe.tasks import read_records

    records = read_records(args.records)
    if args.only:
        known = {str(r.get("instance_id")) for r in records}
        unknown = sorted(set(args.only) - known)
        if unknown:
            raise InvalidArgumentError(f"--only names ids not in {args.records}: {unknown[:5]}")
        records = [r for r in records if str(r.get("instance_id")) in set(args.only)]
    unique = {str(r.get("instance_id")): r for r in reversed(records)}
    return [unique[i] for i in dict.fromkeys(str(r.get("instance_id")) for r in records)]


def _run(args: argparse.Namespace) -> int:
    if args.command == "reap":
        from turngym.envs.swe.reap import reap_all

        for backend, count in reap_all(everything=args.all).items():
            print(f"{backend}: {count if isinstance(count, str) else f'{count} removed'}")
        return 0
    from turngym.envs.swe import instances

    records = _records(args)
    if args.command == "build":
        if args.jobs < 1:
            raise InvalidArgumentError(
                f"--jobs {args.jobs}: give a positive number of parallel builds"
            )
        if args.repos is not None and not args.repos.is_dir():
            raise InvalidArgumentError(f"--repos {args.repos} is not a folder of clones")
        specs = instances.read_specs(args.specs)
        if args.repo_url is not None and "{repo}" not in args.repo_url:
            raise InvalidArgumentError(f"--repo-url {args.repo_url!r} must contain {{repo}}")
        results = instances.build_instances(
            records, args.repos, specs, args.jobs, args.rebuild, repo_url=args.repo_url
        )
    else:
        from turngym.envs.swe.tasks import load_tasks

        wanted = {str(r.get("instance_id")) for r in records}
        tasks = [
            t for t in load_tasks(args.records, image_map=args.image_map) if t.instance_id in wanted
        ]
        results = instances.pull_instances(tasks)
    print(instances.summary_table(results))
    return 1 if any(r.status == "failed" for r in results) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``turngym swe``."""
    args = _parser().parse_args(list(argv) if argv is not None else None)
    try:
        return _run(args)
    except TurnGymError as error:
        print(f"turngym swe {args.command}: {error}", file=sys.stderr)
        return 2
