"""ALFWorld games are generated in a helper process, so what generation keeps never stays in the
env's process.

Generating a game (drawing the problem, translating it with Fast Downward, replaying its
walkthrough) leaves ~7 MiB behind in the process that did it (measured: 30 new games grew a process
from 144 to 334 MiB), which made a pool worker grow with every task it met for the first time (the
default split holds 3,000 train tasks). Each build therefore runs in one long-lived helper
(``python -m turngym.envs.alfworld.builder``), replaced after :data:`BUILDS_PER_HELPER` builds so it
stays small too. The helper writes the game into the temporary folder the cache gives it; the
verified folder is published by :func:`turngym.cache.cached_dir` in the env's process as before.
Already generated games (the steady state) never start a helper.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from turngym.exit_hooks import at_exit

__all__ = ["BUILDS_PER_HELPER", "build_in_helper", "main"]

#: Builds one helper process serves before a fresh one replaces it (bounds its memory).
BUILDS_PER_HELPER = 20


class _Helper:
    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.builds = 0
        self.lock = threading.Lock()

    def stop(self) -> None:
        if self.process is not None:
            try:
                self.process.stdin.close()  # type: ignore[union-attr]
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
        self.process = None

    def request(self, arguments: list[Any]) -> dict[str, Any]:
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                self.process, self.builds = None, 0
            if self.builds >= BUILDS_PER_HELPER:
                self.stop()
                self.builds = 0
            if self.process is None:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "turngym.envs.alfworld.builder"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            self.builds += 1
            try:
                self.process.stdin.write(json.dumps(arguments) + "\n")  # type: ignore[union-attr]
                self.process.stdin.flush()  # type: ignore[union-attr]
                line = self.process.stdout.readline()  # type: ignore[union-attr]
            except OSError:
                line = ""
            if not line:
                code = self.process.poll()
                self.process = None
                raise RuntimeError(
                    f"the ALFWorld game builder process exited (status {code}) while building "
                    f"{arguments[-1]}; its error is on stderr above"
                )
        return json.loads(line)


_HELPER = _Helper()
at_exit(_HELPER.stop)


def build_in_helper(folder: Path, task_type: str, seed: int, rooms: str, task_id: str) -> None:
    """Builds game ``task_id`` into ``folder`` in the helper process; raises its error here."""
    reply = _HELPER.request([str(folder), task_type, int(seed), rooms, task_id])
    if reply.get("error"):
        raise RuntimeError(reply["error"])


def main(requests: IO[str] | None = None) -> None:
    """The helper: one JSON request a line on stdin, one JSON reply a line on the original stdout
    (anything the generator prints goes to stderr)."""
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    from turngym.envs.alfworld.games import _build

    for line in requests or sys.stdin:
        folder, task_type, seed, rooms, task_id = json.loads(line)
        try:
            _build(Path(folder), task_type, seed, rooms, task_id)
            reply: dict[str, Any] = {"error": None}
        except Exception as error:  # noqa: BLE001 - reported to the env's process, which raises
            reply = {"error": f"{type(error).__name__}: {error}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
