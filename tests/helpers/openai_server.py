"""A local chat-completions server (Starlette + uvicorn) for the OpenAI-policy tests.

It answers Corridor conversations ("go east" when the system text says the exit is to the east,
else "go west") and can reply in vLLM's exact response shape: with ``logprobs: true`` each
``choices[0].logprobs.content[j]`` is ``{"token", "logprob", "bytes", "top_logprobs"}``, the token
spelled ``"token_id:N"`` under ``return_tokens_as_token_ids``; ``return_token_ids`` adds
``choices[0].token_ids`` and the top-level ``prompt_token_ids`` (vLLM >= 0.10.2,
vllm/entrypoints/openai/protocol.py: ChatCompletionResponseChoice / ChatCompletionResponse).
``mode="ignore"`` drops those fields like a server without logprobs support; ``mode="reject"``
answers 422 naming them, as ``transformers serve`` does.

``mode="sglang"`` answers in SGLang's shape (python/sglang/srt/entrypoints/openai/protocol.py):
``logprobs.content[j].token`` is the token's text, ``return_token_ids`` adds
``choices[0].token_ids``, ``return_prompt_token_ids`` adds ``choices[0].prompt_token_ids`` (per
choice, not top level) and ``return_meta_info`` adds ``choices[0].meta_info`` with
``output_token_logprobs`` entries ``[logprob, token_id, text]``; fields it does not know
(``return_tokens_as_token_ids``) are ignored, as SGLang's pydantic request model ignores extras.
``reject=("field", ...)`` answers HTTP 400 naming the first of those fields a request carries
(a server that knows all but one field). ``generate(messages) -> (text, ids, logprobs, prompt)``
replaces the scripted answer with a real model's (e.g. the tiny model's own logprobs);
``routes`` adds more Starlette routes (e.g. SGLang's ``/update_weights_from_disk``).

``replies`` replaces that answer with a scripted cycle. ``failures`` scripts faults consumed one per request: ``"500"``, ``"slow"`` (sleeps past a 0.5 s
client timeout), ``"empty"``, ``"huge"`` (400,000 characters).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

__all__ = ["ChatServer"]


class ChatServer:
    """Start with ``with ChatServer() as server:``; ``server.url`` is the ``/v1`` root."""

    def __init__(
        self,
        mode: str = "vllm",
        tokenizer: Any = None,
        latency: float = 0.05,
        replies: list[str] | None = None,
        reject: tuple[str, ...] = (),
        generate: Any = None,
        routes: list[Route] | None = None,
    ) -> None:
        self.mode, self.tokenizer, self.latency, self.replies = mode, tokenizer, latency, replies
        self.reject, self.generate = reject, generate
        self.failures: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.in_flight = self.max_in_flight = 0
        chat = Route("/v1/chat/completions", self._chat, methods=["POST"])
        app = Starlette(routes=[chat, *(routes or [])])
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}/v1"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> ChatServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()

    def _tokens(self, text: str) -> list[int]:
        if self.tokenizer is None:  # stable made-up ids: one per character
            return [ord(c) % 50 + 1 for c in text]
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return ids + [self.tokenizer.convert_tokens_to_ids("<|end|>")]

    def _prompt(self, messages: list[dict[str, str]]) -> list[int]:
        if self.tokenizer is None:
            return [ord(c) % 50 + 1 for m in messages for c in m["content"]]
        from turngym.agents.hf import render_prompt

        return render_prompt(self.tokenizer, messages)

    async def _chat(self, request: Request) -> Any:
        body = await request.json()
        self.requests.append({"body": body, "auth": request.headers.get("authorization")})
        fault = self.failures.pop(0) if self.failures else None
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.latency + (1.0 if fault == "slow" else 0.0))
        finally:
            self.in_flight -= 1
        if fault == "500":
            return PlainTextResponse("internal error", status_code=500)
        token_fields = {"logprobs", "return_tokens_as_token_ids", "return_token_ids"} & set(body)
        if self.mode == "reject" and token_fields:
            return JSONResponse(
                {"detail": f"Unexpected fields in the request: {token_fields}"}, status_code=422
            )
        named = [field for field in self.reject if field in body]
        if named:
            return JSONResponse(
                {"object": "error", "message": f"unknown request field: {named[0]}", "code": 400},
                status_code=400,
            )
        system = body["messages"][0]["content"]
        text = "go east" if "exit is to the east" in system else "go west"
        if self.replies:  # scripted answers, in request order
            text = self.replies[(len(self.requests) - 1) % len(self.replies)]
        if fault in ("empty", "huge"):
            text = "" if fault == "empty" else "go east " * 50_000
        completion, prompt = self._tokens(text), self._prompt(body["messages"])
        values = [-0.25 * (j + 1) for j in range(len(completion))]
        if self.generate is not None:
            text, completion, values, prompt = self.generate(body["messages"])
        choice: dict[str, Any] = {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": text,
                "refusal": None,
                "annotations": None,
                "audio": None,
                "function_call": None,
                "tool_calls": [],
                "reasoning_content": None,
            },
            "logprobs": None,
            "finish_reason": "stop",
            "stop_reason": None,
        }
        reply: dict[str, Any] = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": body["model"],
            "choices": [choice],
            "service_tier": None,
            "system_fingerprint": None,
            "usage": {
                "prompt_tokens": len(prompt),
                "total_tokens": len(prompt) + len(completion),
                "completion_tokens": len(completion),
                "prompt_tokens_details": None,
            },
            "prompt_logprobs": None,
            "kv_transfer_params": None,
        }
        if self.mode in ("vllm", "sglang") and body.get("logprobs"):
            as_ids = self.mode == "vllm" and body.get("return_tokens_as_token_ids")
            choice["logprobs"] = {
                "content": [
                    {
                        "token": f"token_id:{t}" if as_ids else chr(t % 26 + 97),
                        "logprob": value,
                        "bytes": [t % 256],
                        "top_logprobs": [],
                    }
                    for t, value in zip(completion, values, strict=True)
                ]
            }
        if self.mode == "sglang":
            choice["matched_stop"] = None
            if body.get("return_token_ids"):
                choice["token_ids"] = completion
            if body.get("return_prompt_token_ids"):
                choice["prompt_token_ids"] = prompt
            if body.get("return_meta_info"):
                choice["meta_info"] = {
                    "output_token_logprobs": [
                        [v, t, None] for t, v in zip(completion, values, strict=True)
                    ]
                }
            for field in ("service_tier", "system_fingerprint", "prompt_logprobs"):
                reply.pop(field)
            reply.pop("kv_transfer_params")
        if self.mode == "vllm" and body.get("return_token_ids"):
            choice["token_ids"] = completion
            reply["prompt_token_ids"] = prompt
        return JSONResponse(reply)
