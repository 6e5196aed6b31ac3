"""Orchestra action parsing as a hostile agent meets it: linear time, bounded numbers, capped
echoes, the contract's error for non-text actions, and a board without tokenizer markers."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("pettingzoo")

from turngym.core import MAX_ACTION_CHARS  # noqa: E402
from turngym.envs import orchestra  # noqa: E402
from turngym.envs.orchestra import ORCHESTRATOR  # noqa: E402
from turngym.envs.orchestra.board import (  # noqa: E402
    ECHO_CHARS,
    parse_delegations,
    parse_subtask_number,
)
from turngym.error import InvalidArgumentError  # noqa: E402

TOY = "turngym/Orchestra-Toy-v0"
N = MAX_ACTION_CHARS  # 100k: the most text an env ever parses

# Each of these made the old regex (or int()) stall or crash; the first took 167 s at 410 chars.
ADVERSARIAL = {
    "whitespace-410": "delegate[" + " " * 200 + "," + " " * 200,
    "whitespace-100k": "delegate[" + " " * (N // 2) + "," + " " * (N // 2 - 20),
    "open-brackets": "delegate[a," * (N // 11),
    "keywords": "delegate" * (N // 8),
    "keyword-space": "delegate " * (N // 9),
    "nested": "delegate[" * (N // 9) + "]",
    "many-valid": "delegate[short_0, 1] " * (N // 21),
    "commas": "delegate[" + "," * (N - 10) + "]",
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_parser_is_fast_on_adversarial_text(name: str) -> None:
    action = ADVERSARIAL[name]
    started = time.perf_counter()
    parse_delegations(action)
    # A hang guard, not a speed claim: linear parsing takes ~4 ms here, the old regex 167 s.
    assert time.perf_counter() - started < 0.5, f"{name}: parsing took over 500 ms"


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_env_step_is_fast_and_bounded_on_adversarial_text(name: str) -> None:
    env = orchestra.parallel_env(TOY)
    env.reset(seed=0)
    started = time.perf_counter()
    observations, rewards, *_, infos = env.step({ORCHESTRATOR: ADVERSARIAL[name]})
    took = time.perf_counter() - started
    assert took < 0.5, f"{name}: a team step took {took * 1000:.0f} ms"
    # The feedback echoes at most a few capped fragments, never the 100k action.
    assert len(observations[ORCHESTRATOR]) < 3000
    if name != "many-valid":  # the only one with well-formed delegations (all but one invalid)
        assert infos[ORCHESTRATOR]["valid_action"] is False


def test_parse_delegations_semantics() -> None:
    assert parse_delegations("delegate[shop_0, 1]") == ([("shop_0", "1")], "")
    assert parse_delegations("Delegate [ shop_0 ,  2 ];delegate[search_1,3].") == (
        [("shop_0", "2"), ("search_1", "3")],
        "",
    )
    # Text around delegations is left over (the env rejects such an action).
    assert parse_delegations("please delegate[a, 1] now")[1] == "please now"
    assert parse_delegations("delegate[a 1]") == ([], "delegate[a 1]")
    assert parse_delegations("delegate[a, 1") == ([], "delegate[a, 1")
    assert parse_delegations("") == ([], "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        ("3", 3),
        ("0", None),
        ("4", None),
        ("²", None),
        ("١", None),
        ("", None),
        ("9" * 5000, None),
        ("01", 1),
        (" 1", None),
        ("-1", None),
    ],
)
def test_subtask_number_is_ascii_and_bounded(text: str, expected: int | None) -> None:
    assert parse_subtask_number(text, 3) == expected


@pytest.mark.parametrize("number", ["²", "٣", "9" * 5000, "1" * 7])
def test_strange_numbers_are_feedback_not_crashes(number: str) -> None:
    env = orchestra.parallel_env(TOY)
    env.reset(seed=0)
    observations, rewards, *_, infos = env.step({ORCHESTRATOR: f"delegate[short_0, {number}]"})
    assert infos[ORCHESTRATOR]["valid_action"] is False
    assert "is not a subtask number" in observations[ORCHESTRATOR]
    assert rewards[ORCHESTRATOR] == orchestra.FORMAT_PENALTY


def test_feedback_echo_is_capped() -> None:
    env = orchestra.parallel_env(TOY)
    env.reset(seed=0)
    worker = "x" * 90_000
    observations, *_ = env.step({ORCHESTRATOR: f"delegate[{worker}, 1]"})
    board = env.render() if env.render_mode else ""
    feedback = observations[ORCHESTRATOR].split("\n\n")[0]
    assert "is not a worker" in feedback
    assert len(feedback) < 200 + ECHO_CHARS, feedback[:300]
    assert board == ""


@pytest.mark.parametrize("actions", [None, "wait", ["wait"], 3])
def test_non_mapping_actions_raise_the_contract_error(actions) -> None:
    env = orchestra.parallel_env(TOY)
    env.reset(seed=0)
    with pytest.raises(InvalidArgumentError, match="dict agent -> action"):
        env.step(actions)


def test_non_text_action_raises_the_contract_error() -> None:
    env = orchestra.parallel_env(TOY)
    env.reset(seed=0)
    with pytest.raises(InvalidArgumentError, match="actions are text"):
        env.step({ORCHESTRATOR: None})


def test_board_shows_no_sep_markers() -> None:
    env = orchestra.parallel_env("turngym/Orchestra-v0")
    observations, _ = env.reset(seed=0)
    board = observations[ORCHESTRATOR]
    assert "[shop]" in board  # a WebShop subtask whose first observation has [SEP] separators
    assert "[SEP]" not in board
    env.close()
