"""Action parsing (strict, Search-R1 tags) and answer scoring (SQuAD exact match and F1, from
:mod:`turngym.answers`, shared with the orchestra).

An action is exactly one ``<search>query</search>`` or ``<answer>text</answer>`` block, optionally
preceded by one ``<think>...</think>`` block, with nothing but whitespace around them.

>>> parse_action("<think>who wrote it?</think> <search>The Zeldom Harbor</search>").kind
'search'
>>> parse_action("Sure! <answer>Paris</answer>").error
'text outside the tags: write only <search>...</search> or <answer>...</answer> (optionally after <think>...</think>)'
>>> round(f1_score("the Zeldom Harbor", ["Zeldom harbor!"]), 2), exact_match("The  Zeldom", ["zeldom"])
(1.0, 1.0)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from turngym.answers import exact_match, f1_score, normalize_answer

__all__ = [
    "Action",
    "parse_action",
    "normalize_answer",
    "exact_match",
    "f1_score",
    "MAX_QUERY_CHARS",
]

#: Longest query or answer accepted (longer ones are invalid with feedback).
MAX_QUERY_CHARS = 1_000
_TAGS = ("think", "search", "answer", "information")
_ANY_TAG = re.compile(r"</?\s*(?:" + "|".join(_TAGS) + r")\s*>", re.IGNORECASE)
_KINDS = ("search", "answer")
_OPEN = ("<search>", "<answer>")
#: ``</think>`` then spaces then an opening tag: literal anchors around one ``\s*``, so linear.
_THINK_THEN = {kind: re.compile(rf"</think>\s*<{kind}>") for kind in _KINDS}


@dataclass(frozen=True)
class Action:
    """A parsed action: ``kind`` is ``"search"`` or ``"answer"``; ``error`` is set when invalid."""

    kind: str | None
    body: str = ""
    error: str | None = None


def _blank(text: str) -> bool:
    return not text.strip()


def parse_action(text: str) -> Action:
    """Parses one action strictly; anything but exactly one tag block is an :class:`Action` with an error.

    Linear in the length of ``text``: one pass of a regex that cannot backtrack (a tag is ``<``,
    an optional ``/``, spaces, a tag name, spaces, ``>``) finds every tag; the rest is list and
    slice work over those tags. (The earlier ``<think>(.*?)</think>...`` full-match regex took
    seconds on a 100k-character run of tags.)
    """
    if _blank(text):
        return Action(None, error="empty action")
    # One pass of the tag regex. Only the tag names are kept (str objects, which the garbage
    # collector does not track: 10^4 kept tuples would wake it over a big env heap).
    tags: list[tuple[int, int, str]] = []
    all_names: list[str] = []
    for match in _ANY_TAG.finditer(text):
        all_names.append(match.group())
        if len(tags) < 4:
            tags.append((match.start(), match.end(), match.group()))
    count = len(all_names)
    if not count:
        return Action(None, error="no <search> or <answer> tag")
    names = [name for _, _, name in tags]
    if count == 4 and names[:2] == ["<think>", "</think>"]:
        think_ok = _blank(text[: tags[0][0]]) and _blank(text[tags[1][1] : tags[2][0]])
        block = tags[2:]
    else:
        think_ok = _blank(text[: tags[0][0]])
        block = tags if count == 2 else []
    if block and think_ok and _blank(text[block[1][1] :]):
        kind = block[0][2][1:-1]
        if kind in _KINDS and block[1][2] == f"</{kind}>":
            body = text[block[0][1] : block[1][0]].strip()
            if not body:
                return Action(
                    None,
                    error=f"empty {kind}: put a {'query' if kind == 'search' else 'text'} between the tags",
                )
            if len(body) > MAX_QUERY_CHARS:
                return Action(
                    None, error=f"{kind} of {len(body)} characters; the limit is {MAX_QUERY_CHARS}"
                )
            return Action(kind, body)
    if _clean_blocks(all_names) > 1:
        return Action(
            None, error="more than one action: give one <search> or one <answer> per turn"
        )
    if _nested_shape(text.strip()):
        return Action(None, error="tags nested inside another tag")
    if sum(text.count(tag) for tag in _OPEN) != sum(text.count("</" + tag[1:]) for tag in _OPEN):
        return Action(
            None, error="unbalanced tags: every <search> or <answer> needs its closing tag"
        )
    return Action(
        None,
        error="text outside the tags: write only <search>...</search> or "
        "<answer>...</answer> (optionally after <think>...</think>)",
    )


def _clean_blocks(names: list[str]) -> int:
    """How many ``<k>body</k>`` blocks without a tag in ``body`` a left-to-right scan finds.

    As ``re.findall(r"<(search|answer)>(.*?)</\\1>")`` over the text would, on the tag names: an
    opening tag pairs with the next closing tag of its kind and the scan resumes after that;
    the block is clean when no tag lies between them. Linear: each name is passed once, plus at
    most one fruitless scan to the end per kind.
    """
    clean, index, unclosed = 0, 0, set()
    while index < len(names):
        name = names[index]
        if name in _OPEN and name not in unclosed:
            try:
                end = names.index("</" + name[1:], index + 1)
            except ValueError:
                unclosed.add(name)
            else:
                clean += end == index + 1
                index = end
        index += 1
    return clean


def _nested_shape(text: str) -> bool:
    """Whether stripped ``text`` has the outer shape of an action (``[<think>..</think>]<k>..</k>``).

    Called once the strict parse failed, so such a shape means tags inside the bodies.
    """
    for kind in _KINDS:
        opening, closing = f"<{kind}>", f"</{kind}>"
        if not text.endswith(closing) or len(text) < len(opening) + len(closing):
            continue
        if text.startswith(opening):
            return True
        if text.startswith("<think>") and _THINK_THEN[kind].search(text, 7) is not None:
            return True
    return False
