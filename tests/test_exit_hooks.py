"""turngym.exit_hooks: clean-ups a pool worker runs when it ends (it skips atexit), once each."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from turngym.exit_hooks import at_exit, run_exit_hooks

def say(word):
    print(word, flush=True)

def broken():
    raise RuntimeError("this hook fails")

at_exit(say, "first")
at_exit(broken)
at_exit(say, "last")
print("ran", run_exit_hooks(), flush=True)
at_exit(say, "after")
"""


def test_hooks_run_last_first_once_and_past_a_failure():
    # in a fresh process: this one's turngym hooks close its sandboxes and pools
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    # "first"/"last" once each (unregistered from atexit), a hook added later runs at exit
    words = done.stdout.split()
    assert words[:3] == ["last", "first", "ran"] and words[4:] == ["after"], words
    assert int(words[3]) >= 3  # and turngym's own (importing it registered the pools' clean-up)
    assert "exit hook" in done.stderr and "this hook fails" in done.stderr
