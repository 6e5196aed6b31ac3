"""SWE sandbox speed: episode reset latency and per-command latency, docker vs local (medians).

    python benchmarks/swe_speed.py --quick
    python benchmarks/swe_speed.py --resets 20 --commands 50
    python benchmarks/swe_speed.py --quick --baseline-git 4fa8e0f   # old vs new, in one run

For each backend that works here it times ``env.reset`` of a new env (a new container or bwrap
workspace, bug applied), ``env.reset`` of an env whose last episode ended (docker reuses the
container of the same project: processes killed, workspace and scratch folders wiped), a trivial ``bash`` command (``true``: the fixed cost of one turn), a ``view``, an
``edit``, a short pytest run of one test file, and ``submit`` (grading). Ratios are against the
local backend measured in the same run. Docker needs an engine and the images of
``docker/ci_setup.sh``; local needs bubblewrap and ``python -m turngym.envs.swe.build fetch``.

``--baseline-git REV`` (or ``--baseline DIR``, a folder holding an installed-layout ``turngym``
package) measures that older code too, in a subprocess, with the same images and settings, and
adds old/new columns: e.g. ``submit (grade)`` before (in the agent's container) and after (a
fresh grading sandbox, out of band).

``--canaries N`` measures what the tamper-evident grade costs (issue 28): N pairs of grades of the
same gold diff in fresh grading sandboxes, with and without the canaries (and the tripwires,
which run either way), in alternating order (ABBA), reported as the same-run ratio of medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import gymnasium

import turngym  # noqa: F401 - registers the ids


def _median_ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


def measure(backend: str, resets: int, commands: int) -> dict[str, float]:
    env = gymnasium.make("turngym/SWE-v0", backend=backend, max_turns=10_000)
    tasks = [t for t in env.unwrapped.task_ids if t.startswith("parse__")]
    timings: dict[str, list[float]] = {
        "reset (new env)": [],
        "reset": [],
        "bash true": [],
        "view": [],
        "edit": [],
        "pytest file": [],
        "submit (grade)": [],
    }
    for index in range(resets):  # a new env each time: a new container / workspace from scratch
        fresh = gymnasium.make("turngym/SWE-v0", backend=backend)
        started = time.perf_counter()
        fresh.reset(options={"task": tasks[index % len(tasks)]})
        timings["reset (new env)"].append(time.perf_counter() - started)
        fresh.close()
    try:
        for index in range(resets):
            task = env.unwrapped.tasks[tasks[index % len(tasks)]]
            started = time.perf_counter()
            env.reset(options={"task": task.instance_id})
            timings["reset"].append(time.perf_counter() - started)
            if index == 0:
                path = task.extra["bug_file"]
                view = json.dumps({"tool": "view", "path": path, "start": 1, "end": 40})
                env.step(
                    json.dumps({"tool": "create", "path": "scratch.txt", "content": "alpha\n"})
                )
                for turn in range(commands):
                    for name, action in (
                        ("bash true", json.dumps({"tool": "bash", "command": "true"})),
                        ("view", view),
                    ):
                        started = time.perf_counter()
                        env.step(action)
                        timings[name].append(time.perf_counter() - started)
                    old, new = ("alpha", "beta") if turn % 2 == 0 else ("beta", "alpha")
                    started = time.perf_counter()
                    env.step(
                        json.dumps({"tool": "edit", "path": "scratch.txt", "old": old, "new": new})
                    )
                    timings["edit"].append(time.perf_counter() - started)
                test_file = task.FAIL_TO_PASS[0].split("::")[0]
                for _ in range(max(1, commands // 10)):
                    started = time.perf_counter()
                    env.step(
                        json.dumps({"tool": "bash", "command": f"python -m pytest -q {test_file}"})
                    )
                    timings["pytest file"].append(time.perf_counter() - started)
            started = time.perf_counter()
            env.step('{"tool": "submit"}')
            timings["submit (grade)"].append(time.perf_counter() - started)
    finally:
        env.close()
    return {name: _median_ms(values) for name, values in timings.items() if values}


def canary_overhead(backend: str, pairs: int) -> dict[str, float]:
    """Median grade seconds with and without canaries (same diff, same run) and their ratio."""
    from turngym.envs.swe.expert import patch_to_calls
    from turngym.envs.swe.grading import grading_spec

    env = gymnasium.make("turngym/SWE-v0", backend=backend, max_turns=10_000)
    task_id = sorted(t for t in env.unwrapped.task_ids if t.startswith("parse__"))[0]
    timings: dict[int, list[float]] = {0: [], 4: []}
    try:
        env.reset(options={"task": task_id})
        task = env.unwrapped.tasks[task_id]
        for call in patch_to_calls(task.patch):
            env.step(call)
        sandbox, spec = env.unwrapped._sandbox, grading_spec(task)
        diff = sandbox.agent_diff()
        for index in range(pairs):
            for canaries in (0, 4) if index % 2 == 0 else (4, 0):
                request = {"files": spec.files, "targets": spec.targets, "command": spec.command,
                           "test_patch": task.test_patch, "task": task_id, "canaries": canaries}  # fmt: skip
                started = time.perf_counter()
                result = sandbox.evaluate(diff, request, timeout=180)
                timings[canaries].append(time.perf_counter() - started)
                assert len(result.get("canaries") or {}) == canaries, result.get("canaries")
                assert not result.get("tampered"), result.get("tampered")
    finally:
        env.close()
    without, with_ = statistics.median(timings[0]), statistics.median(timings[4])
    return {"grade without canaries (s)": without, "grade with 4 canaries (s)": with_,
            "ratio": with_ / without, "pairs": pairs}  # fmt: skip


def baseline_from_git(rev: str) -> str:
    """A folder with ``rev``'s turngym laid out as installed (envs/agents/credit inside it)."""
    root = Path(__file__).resolve().parents[1]
    out = Path(tempfile.mkdtemp(prefix="turngym-baseline-"))
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", rev], capture_output=True, check=True
    )
    tree = out / "tree"
    tree.mkdir()
    with tarfile.open(fileobj=__import__("io").BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    (out / "pkg").mkdir()
    os.rename(tree / "turngym", out / "pkg" / "turngym")
    for sub in ("envs", "agents", "credit"):
        os.rename(tree / sub, out / "pkg" / "turngym" / sub)
    return str(out / "pkg")


def run_all(backends: list[str], resets: int, commands: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for backend in backends:
        try:
            results[backend] = measure(backend, resets, commands)
        except Exception as error:  # noqa: BLE001 - report an unavailable backend and go on
            print(
                f"{backend}: skipped ({type(error).__name__}: {str(error)[:200]})", file=sys.stderr
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resets", type=int, default=20, help="episodes (resets) per backend")
    parser.add_argument("--commands", type=int, default=50, help="commands timed per kind")
    parser.add_argument("--backends", default="docker,local")
    parser.add_argument("--quick", action="store_true", help="5 resets, 10 commands each")
    parser.add_argument("--baseline", default=None, help="folder holding an older turngym package")
    parser.add_argument(
        "--baseline-git", default=None, help="git revision to measure as the baseline"
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # child mode
    parser.add_argument(
        "--canaries", type=int, default=0, help="pairs of grades with/without canaries"
    )
    args = parser.parse_args()
    if args.canaries:
        for backend in args.backends.split(","):
            try:
                print(backend, json.dumps(canary_overhead(backend, args.canaries)))
            except Exception as error:  # noqa: BLE001 - report an unavailable backend and go on
                print(
                    f"{backend}: skipped ({type(error).__name__}: {str(error)[:200]})",
                    file=sys.stderr,
                )
        return
    if args.quick:
        args.resets, args.commands = 5, 10
    backends = args.backends.split(",")
    if args.json:
        print(json.dumps(run_all(backends, args.resets, args.commands)))
        return
    baseline_dir = args.baseline or (
        baseline_from_git(args.baseline_git) if args.baseline_git else None
    )
    old: dict[str, dict[str, float]] = {}
    if baseline_dir:
        command = [sys.executable, __file__, "--json", "--resets", str(args.resets),
                   "--commands", str(args.commands), "--backends", args.backends]  # fmt: skip
        env = dict(os.environ, PYTHONPATH=baseline_dir)
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir()
        )
        if done.returncode != 0:
            raise SystemExit(f"the baseline run failed:\n{done.stderr[-2000:]}")
        old = json.loads(done.stdout.strip().splitlines()[-1])
    results = run_all(backends, args.resets, args.commands)
    if not results:
        raise SystemExit("no backend could run; see the messages above")
    names = list(next(iter(results.values())))
    print(f"\nmedian latency in ms ({args.resets} resets, {args.commands} commands per kind)")
    header = f"{'operation':<18}"
    for backend in results:
        header += (f"{backend + ' old':>13}{backend + ' new':>13}{'new/old':>9}" if backend in old
                   else f"{backend:>13}")  # fmt: skip
    if "docker" in results and "local" in results:
        header += "  docker/local"
    print(header)
    for name in names:
        row = f"{name:<18}"
        for backend, values in results.items():
            if backend in old:
                before = old[backend].get(name, float("nan"))
                row += f"{before:>13.1f}{values[name]:>13.1f}{values[name] / before:>8.2f}x"
            else:
                row += f"{values[name]:>13.1f}"
        if "docker" in results and "local" in results:
            row += f"{results['docker'][name] / results['local'][name]:>13.2f}x"
        print(row)


if __name__ == "__main__":
    main()
