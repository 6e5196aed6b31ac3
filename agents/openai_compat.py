"""``OpenAIPolicy``: an OpenAI-compatible chat-completions endpoint as a turngym policy.

Works with vLLM, SGLang, ``transformers serve``, llama.cpp servers and hosted APIs. Each
conversation of a batch is one ``POST {base_url}/chat/completions`` request (httpx), at most
``max_concurrency`` in flight: a thread pool for the sync ``act``, an asyncio semaphore for
``act_async``, which :func:`turngym.rollout` awaits in ``mode="async"``.

**Request body**: ``model``, ``messages``, ``temperature``, ``top_p``, ``max_tokens``, and when set
``stop`` and ``seed``, then ``extra_body`` merged last (any server-specific field, e.g. vLLM's
``top_k``/``min_p``/``repetition_penalty``, or ``transformers serve``'s ``generation_config``).
``seed=s`` sends ``s + k`` with the k-th request of this policy (k = 0, 1, ...), so a run is
reproducible while group members still draw different samples; ``n`` is not sent (one action per
conversation). Note: ``transformers serve`` samples only when its generation config says
``do_sample`` (``extra_body={"generation_config": json.dumps({"do_sample": True})}``); with the
model's default config it decodes greedily whatever the temperature.

**Log-probabilities and token ids** (``logprobs=True``, opt-in): the request adds ``logprobs: true``,
``return_tokens_as_token_ids`` (vLLM), ``return_token_ids`` (vLLM and SGLang) and
``return_prompt_token_ids`` (SGLang); the response is read in vLLM's and SGLang's shapes (the
table is in :mod:`turngym.agents.openai_shapes`). The action is a
:class:`~turngym.GeneratedAction` with ``token_ids``, ``logprobs`` and ``prompt_token_ids``;
that is what the learner trains on. A server that rejects one of these fields (HTTP 400/422
naming it, as ``transformers serve`` does) gets only the fields it named dropped for the rest of
the run (``logprobs`` stays unless it is named); a server that ignores them returns less. Either
way the policy warns ONCE per missing piece, naming it and the field that asks for it:
logprobs and token ids are never guessed or re-tokenised on the client.

**Usage**: the response's ``usage`` (prompt/completion/total tokens) goes to
``GeneratedAction.usage``; the rollout runner records it as ``Turn.info["usage"]``.

**Failures**: a request that times out, cannot connect or gets HTTP 408/409/425/429/5xx is retried
with exponential backoff (``backoff * 2**(attempt-1)`` s, by ``tenacity``); after ``max_retries``
retries the policy raises :class:`turngym.error.PolicyError` saying what failed, so a server that
is down never hangs a rollout. The reply text goes to the env as it is (empty or huge included).

    >>> policy = OpenAIPolicy("Qwen/Qwen2.5-7B-Instruct", base_url="http://localhost:8000/v1",
    ...                       temperature=0.7, logprobs=True)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import tenacity

from turngym.agents.openai_shapes import (
    TOKEN_FIELDS,
    missing_pieces,
    parse_choice,
    rejected_fields,
)
from turngym.error import InvalidArgumentError, PolicyError
from turngym.policy import Conversation, GeneratedAction

__all__ = ["TOKEN_FIELDS", "OpenAIPolicy", "parse_choice"]

#: HTTP statuses worth retrying: rate limits and server-side failures.
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class _Retryable(Exception):
    """A transient failure (network, timeout, retryable status): tenacity tries again."""


class _Rejected(Exception):
    """The server rejected some token fields by name (400/422): resend without those."""

    def __init__(self, fields: list[str], detail: str) -> None:
        super().__init__(detail)
        self.fields = fields


class OpenAIPolicy:
    """Chat-completions policy.

    Args:
        model: the model name the server expects.
        base_url: the API root, e.g. ``http://localhost:8000/v1`` (default: ``$OPENAI_BASE_URL``
            or ``https://api.openai.com/v1``).
        api_key_env: environment variable holding the API key (sent as a Bearer token when set).
        temperature, top_p, max_tokens: sampling parameters sent with each request.
        stop: stop string(s), sent when set.
        seed: base seed; request k of this policy sends ``seed + k`` (None: not sent).
        logprobs: ask for per-token log-probabilities and token ids (see the module docstring).
        timeout: seconds per request (connect + read).
        max_retries: retries after the first attempt.
        backoff: seconds before the first retry; doubled each retry.
        max_concurrency: requests in flight at once.
        extra_body: more JSON fields for each request, merged last (they win).
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
        stop: str | list[str] | None = None,
        seed: int | None = None,
        logprobs: bool = False,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_concurrency: int = 8,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise InvalidArgumentError(f"max_concurrency={max_concurrency} must be an int >= 1")
        if max_retries < 0 or timeout <= 0 or backoff < 0:
            raise InvalidArgumentError("max_retries and backoff must be >= 0 and timeout > 0")
        if temperature < 0 or not 0 < top_p <= 1 or max_tokens < 1:
            raise InvalidArgumentError(
                f"temperature={temperature} must be >= 0, top_p={top_p} in (0, 1] and "
                f"max_tokens={max_tokens} >= 1"
            )
        if extra_body is not None and not isinstance(extra_body, dict):
            raise InvalidArgumentError("extra_body must be a dict of JSON fields")
        self.model = model
        self.base_url = (
            base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        ).rstrip("/")
        self.api_key_env = api_key_env
        self.temperature, self.top_p, self.max_tokens = temperature, top_p, max_tokens
        self.stop, self.seed, self.logprobs = stop, seed, bool(logprobs)
        self.timeout, self.max_retries, self.backoff = timeout, max_retries, backoff
        self.max_concurrency = max_concurrency
        self.extra_body = dict(extra_body or {})
        self._client = httpx.Client(timeout=httpx.Timeout(timeout))
        self._requests = itertools.count()
        self._lock = threading.Lock()
        #: Token fields this policy sends (a rejected one is removed for the rest of the run).
        self.token_fields = list(TOKEN_FIELDS) if self.logprobs else []
        self._warned: set[str] = set()
        self._async: tuple[Any, httpx.AsyncClient, asyncio.Semaphore] | None = None

    @classmethod
    def from_learner_config(cls, config: Any, **overrides: Any) -> OpenAIPolicy:
        """A policy sampling like ``config`` (a :class:`~turngym.agents.learner_config.LearnerConfig`):
        ``temperature``, ``top_p``, ``max_new_tokens`` -> ``max_tokens``, ``seed``, and, when not
        neutral, the other sampling fields (``top_k``, ``min_p``, ``repetition_penalty``: vLLM's
        and SGLang's names; ``frequency_penalty``, ``presence_penalty``: OpenAI's) in
        ``extra_body``, with ``logprobs=True``; ``overrides`` (e.g. ``base_url``, ``model``) win.

        For a server that serves the model being trained (e.g. vLLM with the same weights)."""
        from turngym.agents.learner_config import SAMPLING_FIELDS
        from turngym.agents.sampling import SamplingConfig

        neutral = SamplingConfig()
        extra = {
            name: getattr(config, name)
            for name in SAMPLING_FIELDS
            if name not in ("temperature", "top_p")
            and getattr(config, name, getattr(neutral, name)) != getattr(neutral, name)
        }
        kwargs: dict[str, Any] = {
            "temperature": config.temperature,
            "top_p": config.top_p,
            "max_tokens": config.max_new_tokens,
            "seed": config.seed,
            "logprobs": True,
            "extra_body": extra,
        }
        kwargs.update(overrides)
        return cls(kwargs.pop("model", config.model), **kwargs)

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def next_seed(self) -> int | None:
        """The seed of the next request: ``seed + k`` for the k-th request (None without seed)."""
        return None if self.seed is None else self.seed + next(self._requests)

    def request_body(
        self, messages: list[dict[str, str]], seed: int | None = None
    ) -> dict[str, Any]:
        """The JSON body of one request with request seed ``seed`` (see :meth:`next_seed`)."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
        }
        if self.stop is not None:
            body["stop"] = self.stop
        if seed is not None:
            body["seed"] = seed
        body.update(dict.fromkeys(self.token_fields, True))
        body.update(self.extra_body)
        return body

    # ------------------------------------------------------------------ one request
    def _retrying(self, kind: type) -> Any:
        return kind(
            retry=tenacity.retry_if_exception_type(_Retryable),
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=tenacity.wait_exponential(multiplier=self.backoff, exp_base=2, min=0),
            reraise=True,
        )

    def _read(self, response: httpx.Response, token_fields: list[str]) -> GeneratedAction:
        status = response.status_code
        if status in RETRY_STATUSES:
            raise _Retryable(f"HTTP {status}: {response.text[:200]}")
        named = rejected_fields(response.text, set(token_fields)) if status in (400, 422) else []
        if named:
            raise _Rejected(named, response.text[:300])
        if status >= 400:
            raise PolicyError(
                f"{self.url} answered HTTP {status}: {response.text[:300]}; check the model "
                f"name {self.model!r}, the request fields and the API key in ${self.api_key_env}."
            )
        try:
            action = parse_choice(response.json())
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as error:
            raise PolicyError(
                f"{self.url} did not answer in chat-completions format ({error}): "
                f"{response.text[:300]}"
            ) from None
        missing = missing_pieces(action) if self.logprobs else []
        if missing:
            self._warn_once(
                f"missing {missing}",
                f"{self.base_url} returned no {'; no '.join(missing)}, although logprobs=True "
                "asked for them: these actions are plain text to a learner "
                "(turngym.agents.learner needs prompt token ids, action token ids and logprobs).",
            )
        return action

    def _warn_once(self, key: str, message: str) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)

    def _rejected(self, rejected: _Rejected) -> None:
        with self._lock:
            self.token_fields = [f for f in self.token_fields if f not in rejected.fields]
        self._warn_once(
            f"rejected {rejected.fields}",
            f"{self.base_url} rejected the request field(s) {rejected.fields} "
            f"({str(rejected)[:200]}); sending the others ({self.token_fields or 'none'}) "
            "from now on.",
        )

    def _exhausted(self, error: Exception) -> PolicyError:
        return PolicyError(
            f"{self.url} failed {self.max_retries + 1} times (last: {error}); is the server "
            f"running at {self.base_url}? Start it or pass base_url=..."
        )

    def _post(self, messages: list[dict[str, str]], seed: int | None) -> GeneratedAction:
        token_fields = list(self.token_fields)
        body = self.request_body(messages, seed)
        try:
            response = self._client.post(self.url, json=body, headers=self._headers())
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as error:
            raise _Retryable(f"{type(error).__name__}: {error}") from None
        return self._read(response, token_fields)

    def complete(self, messages: list[dict[str, str]], seed: int | None = None) -> GeneratedAction:
        """One chat completion with retries (sync); ``seed`` defaults to :meth:`next_seed`."""
        seed = self.next_seed() if seed is None else seed
        for _ in range(len(TOKEN_FIELDS) + 1):  # each further pass follows a rejected field
            try:
                return self._retrying(tenacity.Retrying)(self._post, messages, seed)
            except _Rejected as rejected:
                self._rejected(rejected)
            except _Retryable as error:
                raise self._exhausted(error) from None
        raise PolicyError(f"{self.url} kept rejecting the request's fields; check extra_body")

    async def _post_async(
        self, messages: list[dict[str, str]], seed: int | None
    ) -> GeneratedAction:
        client, semaphore = self._async_state()
        token_fields = list(self.token_fields)
        body = self.request_body(messages, seed)
        async with semaphore:
            try:
                response = await client.post(self.url, json=body, headers=self._headers())
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as error:
                raise _Retryable(f"{type(error).__name__}: {error}") from None
        return self._read(response, token_fields)

    async def complete_async(
        self, messages: list[dict[str, str]], seed: int | None = None
    ) -> GeneratedAction:
        """One chat completion with retries (async; ``max_concurrency`` requests at once)."""
        seed = self.next_seed() if seed is None else seed
        for _ in range(len(TOKEN_FIELDS) + 1):
            try:
                return await self._retrying(tenacity.AsyncRetrying)(
                    self._post_async, messages, seed
                )
            except _Rejected as rejected:
                self._rejected(rejected)
            except _Retryable as error:
                raise self._exhausted(error) from None
        raise PolicyError(f"{self.url} kept rejecting the request's fields; check extra_body")

    def _async_state(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        # An AsyncClient's connections belong to one event loop; each rollout runs its own loop.
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            self._async = (
                loop,
                httpx.AsyncClient(timeout=httpx.Timeout(self.timeout)),
                asyncio.Semaphore(self.max_concurrency),
            )
        return self._async[1], self._async[2]

    # ------------------------------------------------------------------ policy protocol
    def act(self, batch: list[Conversation]) -> list[GeneratedAction]:
        """One reply per conversation, ``max_concurrency`` requests at a time, in batch order."""
        if not batch:
            return []
        seeds = [self.next_seed() for _ in batch]  # in batch order, whatever thread runs first
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(batch))) as pool:
            return list(pool.map(lambda c, s: self.complete(c.messages, s), batch, seeds))

    async def act_async(self, batch: list[Conversation]) -> list[GeneratedAction]:
        """The async twin of :meth:`act` (awaited by ``turngym.rollout(mode="async")``)."""
        seeds = [self.next_seed() for _ in batch]
        return list(
            await asyncio.gather(
                *(self.complete_async(c.messages, s) for c, s in zip(batch, seeds, strict=True))
            )
        )

    def close(self) -> None:
        """Closes the HTTP connection pools."""
        self._client.close()
        self._async = None
