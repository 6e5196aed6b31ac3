"""``OpenAIPolicy``: an OpenAI-compatible chat-completions endpoint as a turngym policy.

Works with vLLM, SGLang, llama.cpp servers and hosted APIs. Each conversation of a batch is one
``POST {base_url}/chat/completions`` request; at most ``max_concurrency`` run at once (a thread
pool). A request that times out, cannot connect or gets a 5xx/429 answer is retried with
exponential backoff (``backoff * 2**attempt`` seconds); after ``max_retries`` retries the policy
raises :class:`turngym.error.PolicyError` saying what failed, so a server that is down never hangs
a rollout. The reply text goes to the env as it is (empty or malformed replies included).

    >>> policy = OpenAIPolicy("Qwen/Qwen2.5-7B-Instruct", base_url="http://localhost:8000/v1")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from turngym.error import InvalidArgumentError, PolicyError
from turngym.policy import Conversation

__all__ = ["OpenAIPolicy"]

#: HTTP statuses worth retrying: rate limits and server-side failures.
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class OpenAIPolicy:
    """Chat-completions policy.

    Args:
        model: the model name the server expects.
        base_url: the API root, e.g. ``http://localhost:8000/v1`` (default: ``$OPENAI_BASE_URL``
            or ``https://api.openai.com/v1``).
        api_key_env: environment variable holding the API key (sent as a Bearer token when set).
        temperature, top_p, max_tokens: sampling parameters sent with each request.
        timeout: seconds per request (connect + read).
        max_retries: retries after the first attempt.
        backoff: seconds before the first retry; doubled each retry.
        max_concurrency: requests in flight at once.
        extra_body: more JSON fields for each request (e.g. ``{"stop": ["\\n"]}``).
    """

    privileged = False

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_tokens: int = 256,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_concurrency: int = 8,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise InvalidArgumentError(f"max_concurrency={max_concurrency} must be >= 1")
        if max_retries < 0 or timeout <= 0 or backoff < 0:
            raise InvalidArgumentError("max_retries and backoff must be >= 0 and timeout > 0")
        self.model = model
        self.base_url = (
            base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        ).rstrip("/")
        self.api_key_env = api_key_env
        self.temperature, self.top_p, self.max_tokens = temperature, top_p, max_tokens
        self.timeout, self.max_retries, self.backoff = timeout, max_retries, backoff
        self.max_concurrency = max_concurrency
        self.extra_body = dict(extra_body or {})
        self._client = httpx.Client(timeout=httpx.Timeout(timeout))

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def complete(self, messages: list[dict[str, str]]) -> str:
        """One chat completion with retries; returns the reply text ("" when the reply has none)."""
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            **self.extra_body,
        }
        url = f"{self.base_url}/chat/completions"
        failure = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._client.post(url, json=body, headers=self._headers())
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as error:
                failure = f"{type(error).__name__}: {error}"
                continue
            if response.status_code in RETRY_STATUSES:
                failure = f"HTTP {response.status_code}: {response.text[:200]}"
                continue
            if response.status_code >= 400:
                raise PolicyError(
                    f"{url} answered HTTP {response.status_code}: {response.text[:300]}; check the model "
                    f"name {self.model!r} and the API key in ${self.api_key_env}."
                )
            try:
                content = response.json()["choices"][0]["message"].get("content")
            except (ValueError, KeyError, IndexError, TypeError):
                raise PolicyError(
                    f"{url} did not answer in chat-completions format: {response.text[:300]}"
                ) from None
            return content or ""
        raise PolicyError(
            f"{url} failed {self.max_retries + 1} times (last: {failure}); is the server running at "
            f"{self.base_url}? Start it or pass base_url=..."
        )

    def act(self, batch: list[Conversation]) -> list[str]:
        """One reply per conversation, ``max_concurrency`` requests at a time, in batch order."""
        if not batch:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(batch))) as pool:
            return list(pool.map(lambda c: self.complete(c.messages), batch))

    def close(self) -> None:
        """Closes the HTTP connection pool."""
        self._client.close()
