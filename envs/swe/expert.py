"""The SWE expert: turns the gold patch into ``edit`` calls (one per hunk), then submits.

It uses only the agent's documented tools, so a resolved episode proves the task solvable
through the same interface an LLM gets.
"""

from __future__ import annotations

import json

from turngym.envs.swe.sandbox.swe_tool import hunk_sides, parse_diff
from turngym.policy import Conversation

__all__ = ["SWEExpert", "patch_to_calls"]

SUBMIT = json.dumps({"tool": "submit"})


def patch_to_calls(patch: str) -> list[str]:
    """The tool calls that apply ``patch``: an ``edit`` per hunk (``create`` for new files)."""
    calls = []
    for path, is_new, is_deleted, hunks in parse_diff(patch):
        if is_deleted:
            calls.append(json.dumps({"tool": "bash", "command": f"rm -f -- '{path}'"}))
            continue
        for _, hunk in hunks:
            old, new = hunk_sides(hunk)
            if is_new:
                calls.append(json.dumps({"tool": "create", "path": path, "content": new}))
            else:
                calls.append(json.dumps({"tool": "edit", "path": path, "old": old, "new": new}))
    return calls


class SWEExpert:
    """Applies ``info["privileged"]["patch"]`` hunk by hunk, then submits."""

    privileged = True

    def act(self, batch: list[Conversation]) -> list[str]:
        actions = []
        for conversation in batch:
            calls = patch_to_calls((conversation.privileged or {}).get("patch", "")) + [SUBMIT]
            actions.append(calls[min(len(conversation.actions), len(calls) - 1)])
        return actions
