"""``turngym trace``: export, validate and replay orchestration traces.

turngym trace export RUN.jsonl [--out TRACES.jsonl]   recorded team episodes -> schema traces
turngym trace validate TRACES.jsonl                    schema + structural rules, per document
turngym trace replay TRACES.jsonl                      replay each trace; report whether it matched
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from turngym.envs.orchestra.trace import (
    TraceError,
    load_episodes,
    load_traces,
    replay,
    save_traces,
    to_trace,
)
from turngym.error import InvalidArgumentError, PolicyError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="turngym trace", description="Orchestration traces in the survey's schema."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="recorded team episodes (JSONL) -> schema traces")
    export.add_argument("run", help="episodes written by orchestra.save_episodes or bench --out")
    export.add_argument("--out", default=None, help="output JSONL (default: RUN.traces.jsonl)")
    validate = sub.add_parser("validate", help="validate a trace file (JSON or JSONL)")
    validate.add_argument("traces")
    again = sub.add_parser("replay", help="replay each trace and check it reproduces")
    again.add_argument("traces")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "export":
            episodes = load_episodes(args.run)
            out = Path(args.out or Path(args.run).with_suffix(".traces.jsonl"))
            save_traces(out, [to_trace(episode) for episode in episodes])
            print(f"wrote {len(episodes)} traces to {out}")
        elif args.command == "validate":
            traces = load_traces(args.traces)
            print(f"{len(traces)} traces valid")
        else:
            failed = 0
            for trace in load_traces(args.traces):
                try:
                    episode = replay(trace)
                except (TraceError, PolicyError) as error:  # e.g. it asks for more actions
                    failed += 1
                    print(f"{trace['trace_id']}: DIFFERS ({error})")
                    continue
                # Everything but the timestamps: actions, decisions, rewards, outcomes, edges.
                same = [dict(e, t=0) for e in to_trace(episode)["events"]] == [
                    dict(e, t=0) for e in trace["events"]
                ] and episode.outcome == trace["rewards"]["team"]
                failed += not same
                print(f"{trace['trace_id']}: {'reproduced' if same else 'DIFFERS'}")
            return 1 if failed else 0
    except InvalidArgumentError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
