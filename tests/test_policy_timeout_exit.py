"""A policy call that hangs past ``policy_timeout`` never holds the interpreter's exit (issue 24)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import turngym
    from turngym.error import PolicyError

    def hangs(batch):
        time.sleep(600)  # a model server that never answers
        return ["go east"] * len(batch)

    if __name__ == "__main__":
        started = time.monotonic()
        try:
            turngym.rollout("turngym/Corridor-v0", hangs, num_episodes=2, num_envs=1,
                            mode=sys.argv[1], policy_timeout=0.5, progress=False)
        except PolicyError as error:
            print("raised after", round(time.monotonic() - started, 2), error, flush=True)
            sys.exit(3)
        sys.exit(0)
    """
)


@pytest.mark.parametrize("mode", ["lockstep", "async"])
def test_a_hung_policy_does_not_delay_exit(tmp_path, mode):
    script = tmp_path / "hang.py"
    script.write_text(_SCRIPT)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script), mode], capture_output=True, text=True, timeout=120
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 3, done.stdout + done.stderr
    assert "did not answer within policy_timeout=0.5" in done.stdout
    raised_after = float(done.stdout.split("raised after ")[1].split()[0])
    assert raised_after < 5, done.stdout
    # Before the fix the ThreadPoolExecutor's thread was joined at exit: 600 s (the timeout above).
    assert elapsed < raised_after + 30, f"exit took {elapsed - raised_after:.1f} s after raising"
