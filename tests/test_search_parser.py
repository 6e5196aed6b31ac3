"""SearchQA's linear-time parser against the earlier backtracking-regex parser (the reference) on
generated short actions: the same verdict and the same message on every input."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from turngym.envs.search.answer import MAX_QUERY_CHARS, parse_action

_ANY_TAG = re.compile(r"</?\s*(?:think|search|answer|information)\s*>", re.IGNORECASE)
_ACTION = re.compile(
    r"\s*(?:<think>(?P<think>.*?)</think>\s*)?<(?P<kind>search|answer)>(?P<body>.*?)</(?P=kind)>\s*",
    re.DOTALL,
)
_BLOCK = re.compile(r"<(search|answer)>(.*?)</\1>", re.DOTALL)


def reference(text: str) -> tuple[str | None, str, str | None]:
    """turngym 0.1's parser (quadratic on long tag runs; fine on these short inputs)."""
    if not text.strip():
        return None, "", "empty action"
    match = _ACTION.fullmatch(text)
    if match is not None and not _ANY_TAG.search(match["body"] + (match["think"] or "")):
        kind, body = match["kind"], match["body"].strip()
        if not body:
            return None, "", f"empty {kind}"
        if len(body) > MAX_QUERY_CHARS:
            return None, "", "limit"
        return kind, body, None
    if not _ANY_TAG.search(text):
        return None, "", "no <search> or <answer> tag"
    blocks = [b for b in _BLOCK.findall(text) if not _ANY_TAG.search(b[1])]
    if len(blocks) > 1:
        return None, "", "more than one action"
    if match is not None:
        return None, "", "nested"
    if len(re.findall(r"<(?:search|answer)>", text)) != len(
        re.findall(r"</(?:search|answer)>", text)
    ):
        return None, "", "unbalanced"
    return None, "", "text outside the tags"


PIECES = st.sampled_from(
    [
        "<think>",
        "</think>",
        "<search>",
        "</search>",
        "<answer>",
        "</answer>",
        "< Search >",
        "</information>",
        " ",
        "\n",
        "a",
        "Paris",
        "x y",
        "<",
        ">",
        "/",
    ]
)


@settings(max_examples=3_000, deadline=None)
@given(st.lists(PIECES, max_size=9).map("".join))
def test_same_verdict_as_the_reference_parser(text: str) -> None:
    kind, body, error = reference(text)
    parsed = parse_action(text)
    assert (parsed.kind, parsed.body if parsed.kind else "") == (kind, body), text
    if error is None:
        assert parsed.error is None
    else:
        assert parsed.error is not None and error in parsed.error, (text, error, parsed.error)
