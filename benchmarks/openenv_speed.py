"""OpenEnv speed: env steps/s through a loopback OpenEnv server vs the same env in-process.

Rows per env id (single env, one episode after another, random admissible actions chosen with a
fixed seed, so every row plays the same actions):

* ``in-process``: ``gymnasium.make(id)`` stepped directly (the baseline, ratio 1.0x);
* ``OpenEnv GenericEnvClient``: OpenEnv's own WebSocket client against ``turngym serve env ID``
  (a separate server process on 127.0.0.1);
* ``OpenEnvGymEnv``: turngym's gymnasium wrapper over the same client.

Each row is the best of ``--repeats`` timings (the machine's other load only slows a run down).
The ratio column is calls/s relative to in-process, measured in the same run.
Usage: ``python benchmarks/openenv_speed.py [--steps N] [--env ID ...]`` or ``--quick``.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time

import gymnasium
import numpy as np


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(env_id: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "turngym.cli", "serve", "env", env_id, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"turngym serve env {env_id} did not start")


def _script(env_id: str, steps: int, seed: int) -> list[tuple[int | None, str]]:
    """(reset seed or None, action) pairs: the same for every row."""
    env, rng = gymnasium.make(env_id), np.random.default_rng(seed)
    script, episode = [], 0
    _, info = env.reset(seed=seed)
    script.append((seed, ""))
    while len(script) < steps:
        admissible = info.get("admissible_actions") or ["look"]
        action = admissible[int(rng.integers(len(admissible)))]
        script.append((None, action))
        *_, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            episode += 1
            _, info = env.reset(seed=seed + episode)
            script.append((seed + episode, ""))
    env.close()
    return script


def _time_gym(env: gymnasium.Env, script: list[tuple[int | None, str]]) -> float:
    start = time.perf_counter()
    for reset_seed, action in script:
        if reset_seed is not None:
            env.reset(seed=reset_seed)
        else:
            env.step(action)
    return time.perf_counter() - start


def _time_client(client, script: list[tuple[int | None, str]]) -> float:
    start = time.perf_counter()
    for reset_seed, action in script:
        if reset_seed is not None:
            client.reset(seed=reset_seed)
        else:
            client.step({"text": action})
    return time.perf_counter() - start


def _best(repeats: int, timer, *args) -> float:
    """The shortest of ``repeats`` timings."""
    return min(timer(*args) for _ in range(max(1, repeats)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--env", nargs="+", default=["turngym/Corridor-v0", "turngym/WebShop-Small-v0"]
    )
    parser.add_argument("--steps", type=int, default=2000, help="reset+step calls per row")
    parser.add_argument("--quick", action="store_true", help="200 calls per row")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timings")
    args = parser.parse_args(argv)
    steps = 200 if args.quick else args.steps
    from turngym.integrations.openenv import OpenEnvGymEnv, generic_client

    print(f"{'env':28s} {'path':26s} {'calls/s':>10s} {'ratio':>7s}")
    for env_id in args.env:
        script = _script(env_id, steps, seed=0)
        process, url = _start(env_id)
        try:
            n, r = len(script), args.repeats
            env = gymnasium.make(env_id)
            _time_gym(env, script[:20])  # warm caches
            base = n / _best(r, _time_gym, env, script)
            env.close()
            with generic_client(url) as client:
                _time_client(client, script[:20])
                raw = n / _best(r, _time_client, client, script)
            wrapper = OpenEnvGymEnv(url)
            _time_gym(wrapper, script[:20])
            wrapped = n / _best(r, _time_gym, wrapper, script)
            wrapper.close()
        finally:
            process.terminate()
            process.wait(timeout=30)
        for name, rate in (
            ("in-process", base),
            ("OpenEnv GenericEnvClient", raw),
            ("OpenEnvGymEnv", wrapped),
        ):
            print(f"{env_id:28s} {name:26s} {rate:10.0f} {rate / base:6.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
