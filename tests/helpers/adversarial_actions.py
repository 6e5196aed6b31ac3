"""Times one env family's handling of adversarial 100k-character actions (run as a subprocess).

``python -m helpers.adversarial_actions FAMILY`` prints one JSON object: action name ->
[best milliseconds of 3, valid_action]; a hang shows up as the parent's subprocess timeout.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

__all__ = ["ACTIONS", "main"]

N = 100_000


def _cut(text: str) -> str:
    return text[:N]


#: Inputs that make backtracking parsers, number parsers or echoes blow up, each ~100k characters.
ACTIONS = {
    # The SearchQA pattern of issue 18 (quadratic in the old full-match regex).
    "think_search_runs": _cut("<think>" + "</think><search>a</search>x" * (N // 27)),
    "open_tag_then_spaces": "<" + " " * (N - 1),
    "search_of_open_brackets": _cut("<search>" + "<" * N) + "</search>",
    "closed_thinks_then_search": _cut("<think>" + "</think> " * (N // 9)) + "<search>a</search>",
    "think_tab_runs_in_search": _cut("<search>" + "</think>\t" * (N // 9)) + "</search>",
    "brackets": "search[" + "]" * (N - 7),
    "bracket_space_runs": _cut("search[" + "] " * (N // 2)) + "x",
    "click_long_target": "click[" + "a" * (N - 7) + "]",
    "spaces_then_text": " " * (N - 1) + "x",
    "whitespace_mix": " \t\n" * (N // 3),
    "repeated_command": _cut("go north " * (N // 9)),
    "delegate_spaces": "delegate[" + " " * 200 + "," + " " * (N - 210),
    "digits": "9" * N,
    "superscript_digits": "\u00b2" * N,
    "fence_newlines": "```" + "\n" * (N - 4) + "x",
    "deep_json": '{"tool": ' + "[" * (N - 10) + "}",
    "huge_number_json": '{"tool": "view", "path": "a", "start": ' + "9" * (N - 50) + "}",
    "null_bytes": "\x00" * N,
}


def _env(family: str) -> Any:
    import turngym

    small = {
        "search": ("turngym/SearchQA-1hop-v0", {"num_passages": 1_000, "questions_per_hop": 40}),
        "webshop": ("turngym/WebShop-Small-v0", {}),
        "textworld": ("turngym/TextWorld-Easy-v1", {}),
        "alfworld": ("turngym/ALFWorld-v1", {}),
        "corridor": ("turngym/Corridor-v0", {}),
    }
    env_id, kwargs = small[family]
    return turngym.make(env_id, **kwargs)


def _time_env(family: str) -> dict[str, Any]:
    from turngym.error import InvalidArgumentError

    env = _env(family)
    env.reset(seed=0)
    results: dict[str, Any] = {}
    for name, action in ACTIONS.items():
        best, valid = float("inf"), None
        for _ in range(3):
            start = time.perf_counter()
            observation, _, terminated, truncated, info = env.step(action)
            best = min(best, time.perf_counter() - start)
            valid = info["valid_action"]
            assert len(observation) < 5_000, f"{name}: a {len(observation)}-character echo"
            if terminated or truncated:
                env.reset(seed=0)
        results[name] = [round(best * 1000, 3), valid]
    try:
        env.step(None)
        results["step(None)"] = "no error"
    except InvalidArgumentError:
        results["step(None)"] = "InvalidArgumentError"
    env.close()
    return results


def _time_swe() -> dict[str, Any]:
    from turngym.envs.swe.actions import parse_action

    results: dict[str, Any] = {}
    for name, action in ACTIONS.items():
        best, call = float("inf"), None
        for _ in range(3):
            start = time.perf_counter()
            call, _ = parse_action(action)
            best = min(best, time.perf_counter() - start)
        results[name] = [round(best * 1000, 3), call is not None]
    return results


def main(family: str) -> None:
    results = _time_swe() if family == "swe" else _time_env(family)
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1])
