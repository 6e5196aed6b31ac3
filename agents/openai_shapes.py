"""Where vLLM and SGLang put token ids, prompt ids and logprobs in a chat-completions exchange.

**Request fields** :class:`~turngym.agents.openai_compat.OpenAIPolicy` sends for ``logprobs=True``
(:data:`TOKEN_FIELDS`), each dropped on its own when a server rejects it by name:

============================== ====================================================== ========
field                          meaning                                                server
============================== ====================================================== ========
``logprobs: true``             per-token logprobs in ``choices[i].logprobs.content``  both
``return_tokens_as_token_ids`` ``content[j].token`` spelled ``"token_id:N"``          vLLM
``return_token_ids``           ``choices[i].token_ids`` (vLLM also top-level prompt)  both
``return_prompt_token_ids``    ``choices[i].prompt_token_ids``                        SGLang
============================== ====================================================== ========

**Response places**, read by :func:`parse_choice` in this order (the first present wins):

- action token ids: ``choices[0].token_ids`` (vLLM >= 0.10.2 and SGLang, ``return_token_ids``);
  then SGLang's ``choices[0].meta_info.output_token_logprobs`` (``return_meta_info``; entries
  ``[logprob, token_id, text]`` or ``{"logprob", "token_id"}``); then vLLM's ``"token_id:N"``
  token strings;
- logprobs: ``choices[0].logprobs.content[j].logprob``, else SGLang's ``meta_info``;
- prompt token ids: ``choices[0].prompt_token_ids`` (SGLang, ``return_prompt_token_ids``), then
  the top-level ``prompt_token_ids`` (vLLM, ``return_token_ids``).

Checked against vLLM's ``ChatCompletionResponse``/``ChatCompletionResponseChoice`` (vllm
``entrypoints/openai/protocol.py``, >= 0.10.2) and SGLang's ``ChatCompletionRequest`` /
``ChatCompletionResponseChoice`` (``python/sglang/srt/entrypoints/openai/protocol.py``: request
flags ``return_prompt_token_ids``, ``return_token_ids``, ``return_meta_info``; choice fields
``prompt_token_ids``, ``token_ids``, ``meta_info``). Nothing is guessed or re-tokenised here: a
piece the server did not return stays None, and :func:`missing_pieces` names it.
"""

from __future__ import annotations

import re
from typing import Any

from turngym.policy import GeneratedAction

__all__ = ["TOKEN_FIELDS", "missing_pieces", "parse_choice", "rejected_fields"]

#: Request fields sent for ``logprobs=True``; a server that rejects one by name loses only it.
TOKEN_FIELDS = (
    "logprobs",
    "return_tokens_as_token_ids",
    "return_token_ids",
    "return_prompt_token_ids",
)
_TOKEN_ID_PREFIX = "token_id:"


def rejected_fields(detail: str, sent: set[str]) -> list[str]:
    """The fields of ``sent`` that an error text names as whole words (``logprobs`` is not
    named by ``top_logprobs``)."""
    return [
        name
        for name in TOKEN_FIELDS
        if name in sent and re.search(rf"(?<![A-Za-z0-9_]){name}(?![A-Za-z0-9_])", detail)
    ]


def _meta_tokens(choice: dict[str, Any]) -> tuple[list[int], list[float]] | None:
    """SGLang's ``meta_info.output_token_logprobs`` as (token ids, logprobs), if present."""
    entries = (choice.get("meta_info") or {}).get("output_token_logprobs")
    if not entries:
        return None
    ids, logprobs = [], []
    for entry in entries:
        if isinstance(entry, dict):
            token, logprob = entry.get("token_id", entry.get("id")), entry.get("logprob")
        else:  # [logprob, token_id, text?]
            logprob, token = entry[0], entry[1]
        if token is None or logprob is None:
            raise TypeError(f"malformed meta_info.output_token_logprobs entry {entry!r}")
        ids.append(int(token))
        logprobs.append(float(logprob))
    return ids, logprobs


def parse_choice(data: dict[str, Any]) -> GeneratedAction:
    """The :class:`GeneratedAction` of a chat-completions response body (its first choice).

    Reads vLLM's and SGLang's places (see the module docstring); ``usage`` as sent. A field the
    server did not return stays None. Raises KeyError/TypeError/IndexError on a body that is not
    chat-completions JSON, and TypeError when token ids and logprobs differ in length.
    """
    choice = data["choices"][0]
    text = choice["message"].get("content") or ""
    content = (choice.get("logprobs") or {}).get("content") or None
    logprobs = [float(entry["logprob"]) for entry in content] if content else None
    meta = _meta_tokens(choice)
    token_ids = choice.get("token_ids")
    if token_ids is None and meta is not None:
        token_ids = meta[0]
    if token_ids is None and content:
        tokens = [str(entry.get("token", "")) for entry in content]
        if all(token.startswith(_TOKEN_ID_PREFIX) for token in tokens):
            token_ids = [int(token[len(_TOKEN_ID_PREFIX) :]) for token in tokens]
    if logprobs is None and meta is not None:
        logprobs = meta[1]
    if token_ids is not None:
        token_ids = [int(token) for token in token_ids]
    if logprobs is not None and token_ids is not None and len(logprobs) != len(token_ids):
        raise TypeError(
            f"the server returned {len(token_ids)} token ids but {len(logprobs)} logprobs"
        )
    prompt = choice.get("prompt_token_ids")
    if prompt is None:
        prompt = data.get("prompt_token_ids")
    usage = data.get("usage")
    return GeneratedAction(
        text=text,
        token_ids=token_ids,
        logprobs=logprobs,
        prompt_token_ids=[int(t) for t in prompt] if prompt is not None else None,
        usage={k: int(v) for k, v in usage.items() if isinstance(v, (int, float))}
        if usage
        else None,
    )


def missing_pieces(action: GeneratedAction) -> list[str]:
    """What a learner needs that ``action`` lacks, each with the request field that asks for it."""
    missing = []
    if action.logprobs is None:
        missing.append("logprobs (request field logprobs: true)")
    if action.token_ids is None:
        missing.append(
            "action token ids (return_token_ids: choices[0].token_ids on vLLM >= 0.10.2 and "
            "SGLang; vLLM's return_tokens_as_token_ids; SGLang's return_meta_info)"
        )
    if action.prompt_token_ids is None:
        missing.append(
            "prompt token ids (SGLang: return_prompt_token_ids -> choices[0].prompt_token_ids; "
            "vLLM >= 0.10.2: return_token_ids -> top-level prompt_token_ids)"
        )
    return missing
