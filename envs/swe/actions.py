"""The SWE tool-call format: one JSON object per turn, parsed strictly.

An action is exactly one JSON object (optionally inside one ```json fence, nothing else around it):

=====================================================================  ===============================
call                                                                   effect
=====================================================================  ===============================
``{"tool": "bash", "command": "pytest -q tests/test_x.py"}``          run a shell command in the repo
``{"tool": "view", "path": "pkg/mod.py", "start": 10, "end": 60}``    numbered lines (start/end optional)
``{"tool": "edit", "path": "pkg/mod.py", "old": "a < b", "new": "a <= b"}``  replace the one occurrence
``{"tool": "create", "path": "notes.txt", "content": "..."}``          write a file
``{"tool": "submit"}``                                                 end the episode; the tests grade it
=====================================================================  ===============================

Unknown tools, missing or extra fields, wrong types, and any text around the object make the call
invalid; the observation then says what was wrong and shows this table's syntax.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ToolCall", "parse_action", "SYNTAX", "TOOLS"]

#: tool -> (required fields and types, optional fields and types)
TOOLS: dict[str, tuple[dict[str, type], dict[str, type]]] = {
    "bash": ({"command": str}, {}),
    "view": ({"path": str}, {"start": int, "end": int}),
    "edit": ({"path": str, "old": str, "new": str}, {}),
    "create": ({"path": str, "content": str}, {}),
    "submit": ({}, {}),
}
SYNTAX = """Answer each turn with exactly one tool call: a single JSON object and nothing else.
  {"tool": "bash", "command": "<shell command, run in the repository root>"}
  {"tool": "view", "path": "<file>", "start": <first line>, "end": <last line>}   (start/end optional)
  {"tool": "edit", "path": "<file>", "old": "<exact text occurring once>", "new": "<replacement>"}
  {"tool": "create", "path": "<file>", "content": "<full file text>"}
  {"tool": "submit"}   (when you are done: the tests then grade your changes)"""


def _unfence(text: str) -> str:
    """The body of one ```json fence around the whole of ``text``, else ``text`` itself.

    Found with ``find``/``rfind`` (linear): a regex for the fence backtracked cubically on runs
    of newlines (4,000 newlines after a fence took 72 s).
    """
    if len(text) < 6 or not (text.startswith("```") and text.endswith("```")):
        return text
    opened = text.find("\n")
    if opened < 0 or text[3:opened].strip() not in ("", "json"):
        return text
    closed = text.rfind("\n", opened, len(text) - 3)
    if closed < opened or text[closed + 1 : -3].strip():
        return text
    return text[opened + 1 : closed]


@dataclass(frozen=True)
class ToolCall:
    """A parsed tool call."""

    tool: str
    args: dict[str, Any] = field(default_factory=dict)


def parse_action(action: str) -> tuple[ToolCall | None, str]:
    """``(call, "")`` for a valid call, else ``(None, what was wrong)``."""
    text = _unfence(action.strip()).strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None, "the action is not a single JSON object (no text may come before or after it)"
    try:
        value = json.loads(text)
    except ValueError as error:
        return None, f"the action is not valid JSON ({str(error)[:200]})"
    except RecursionError:  # e.g. 100,000 nested brackets
        return None, "the action is not valid JSON (nested too deeply)"
    if not isinstance(value, dict):
        return None, "the action must be a JSON object"
    tool = value.get("tool")
    if tool not in TOOLS:
        return None, f"unknown tool {str(tool)[:40]!r}; the tools are {', '.join(TOOLS)}"
    required, optional = TOOLS[tool]
    args = {k: v for k, v in value.items() if k != "tool"}
    missing = [name for name in required if name not in args]
    extra = [name for name in args if name not in required and name not in optional]
    if missing or extra:
        return (
            None,
            f"{tool} takes fields {list(required)} (optional {list(optional)}); missing {missing}, unknown {[e[:40] for e in extra]}",
        )
    for name, value_type in {**required, **optional}.items():
        if name in args and (
            not isinstance(args[name], value_type) or isinstance(args[name], bool)
        ):
            return None, f"field {name!r} of {tool} must be a {value_type.__name__}"
    if tool in ("bash",) and not args["command"].strip():
        return None, "bash needs a non-empty command"
    if "path" in args and (not args["path"].strip() or "\x00" in args["path"]):
        return None, "path must be a non-empty file path"
    return ToolCall(tool, args), ""
