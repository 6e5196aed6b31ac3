"""SWE sandbox speed: episode reset latency and per-command latency, docker vs local (medians).

    python benchmarks/swe_speed.py --quick
    python benchmarks/swe_speed.py --resets 20 --commands 50

For each backend that works here it times ``env.reset`` of a new env (a new container or bwrap
workspace, bug applied), ``env.reset`` of an env whose last episode ended (docker reuses the
container of the same project: processes killed, workspace and scratch folders wiped), a trivial ``bash`` command (``true``: the fixed cost of one turn), a ``view``, an
``edit``, a short pytest run of one test file, and ``submit`` (grading). Ratios are against the
local backend measured in the same run. Docker needs an engine and the images of
``docker/ci_setup.sh``; local needs bubblewrap and ``python -m turngym.envs.swe.build fetch``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resets", type=int, default=20, help="episodes (resets) per backend")
    parser.add_argument("--commands", type=int, default=50, help="commands timed per kind")
    parser.add_argument("--backends", default="docker,local")
    parser.add_argument("--quick", action="store_true", help="5 resets, 10 commands each")
    args = parser.parse_args()
    if args.quick:
        args.resets, args.commands = 5, 10
    results: dict[str, dict[str, float]] = {}
    for backend in args.backends.split(","):
        try:
            results[backend] = measure(backend, args.resets, args.commands)
        except Exception as error:  # noqa: BLE001 - report an unavailable backend and go on
            print(f"{backend}: skipped ({type(error).__name__}: {str(error)[:200]})")
    if not results:
        raise SystemExit("no backend could run; see the messages above")
    baseline = results.get("local")
    names = list(next(iter(results.values())))
    print(f"\nmedian latency in ms ({args.resets} resets, {args.commands} commands per kind)")
    print(
        f"{'operation':<18}"
        + "".join(f"{b:>12}" for b in results)
        + ("  docker/local" if baseline and "docker" in results else "")
    )
    for name in names:
        row = f"{name:<18}" + "".join(
            f"{results[b].get(name, float('nan')):>12.1f}" for b in results
        )
        if baseline and "docker" in results:
            row += f"{results['docker'][name] / baseline[name]:>13.2f}x"
        print(row)


if __name__ == "__main__":
    main()
