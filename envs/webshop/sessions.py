"""The web shop server's sessions: session id -> :class:`~.env.WebShopEnv`, bounded in number and
idle time, and never taken from a shopper to make room for someone else.

A session is *touched* when a request names it after the one that started it (a browser follows
the start's redirect at once). Room is made only by expiry: a session idle for ``ttl_s`` goes, and
so does one never touched within ``untouched_ttl_s`` of its start (a ``GET /`` whose redirect no
one followed: a crawler, a script, a flood). When no session can go, a new one is refused
(:class:`SessionsFull`, which the server answers with 503 and ``Retry-After``); a live session is
never evicted for a new one, whatever the number of anonymous requests.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from turngym.envs.webshop.env import WebShopEnv
from turngym.error import InvalidArgumentError, TurnGymError

__all__ = ["MAX_SESSIONS", "SESSION_TTL_S", "UNTOUCHED_TTL_S", "Sessions", "SessionsFull"]

MAX_SESSIONS = 256
#: Sessions idle this long are dropped (seconds).
SESSION_TTL_S = 2 * 3600.0
#: A session nobody came back to after its start is dropped this long after it (seconds).
UNTOUCHED_TTL_S = 30.0


class SessionsFull(TurnGymError):
    """Every session slot holds a live session; the server answers 503 (retry later)."""


@dataclass
class _Session:
    env: WebShopEnv
    feedback: str = ""
    used: float = field(default_factory=time.monotonic)
    touched: bool = False  # a request named it after its start
    lock: threading.Lock = field(default_factory=threading.Lock)  # one step at a time


class Sessions:
    """Session id -> env, least recently used first; bounded in number and idle time.

    Args:
        env_kwargs: arguments of every session's :class:`WebShopEnv`.
        max_sessions: sessions kept; a new one past this is refused (:class:`SessionsFull`)
            unless an idle or untouched one can expire.
        ttl_s: seconds of inactivity after which a session is dropped.
        untouched_ttl_s: seconds after its start at which a session nobody came back to goes.
        clock: the time source (tests pass a fake one).
    """

    def __init__(
        self,
        env_kwargs: dict[str, Any],
        max_sessions: int = MAX_SESSIONS,
        ttl_s: float = SESSION_TTL_S,
        clock: Any = time.monotonic,
        untouched_ttl_s: float = UNTOUCHED_TTL_S,
    ) -> None:
        if max_sessions < 1 or ttl_s <= 0 or untouched_ttl_s <= 0:
            raise InvalidArgumentError(
                f"max_sessions={max_sessions!r}, ttl_s={ttl_s!r} and "
                f"untouched_ttl_s={untouched_ttl_s!r} must be positive."
            )
        # People browse longer than agents: no turn limit unless asked for.
        self.env_kwargs = {"max_turns": 100_000, **env_kwargs}
        self.max_sessions, self.ttl_s, self.clock = max_sessions, ttl_s, clock
        self.untouched_ttl_s = untouched_ttl_s
        self._items: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, session: str) -> bool:
        return session in self._items

    def _room(self) -> bool:
        """Expires what may go; whether a new session fits (call with the lock held)."""
        self._expire()
        if len(self._items) < self.max_sessions:
            return True
        deadline = self.clock() - self.untouched_ttl_s
        for key in [k for k, e in self._items.items() if not e.touched and e.used <= deadline]:
            del self._items[key]
        return len(self._items) < self.max_sessions

    def _full(self) -> SessionsFull:
        return SessionsFull(
            f"all {self.max_sessions} sessions are in use; try again in a minute (a session "
            f"nobody returns to goes after {self.untouched_ttl_s:g} s, an idle one after "
            f"{self.ttl_s:g} s), or start the server with a larger --max-sessions"
        )

    def start(self, task: str | None, seed: int | None) -> str:
        """A new session on ``task`` (or one drawn with ``seed``); raises KeyError for an unknown
        task and :class:`SessionsFull` when no session can make room."""
        with self._lock:
            if not self._room():  # before building an env nobody could keep
                raise self._full()
        env = WebShopEnv(**self.env_kwargs)
        env.reset(seed=seed, options={"task": task} if task else None)
        session = secrets.token_hex(8)
        with self._lock:
            if not self._room():  # filled by concurrent starts meanwhile
                env.close()
                raise self._full()
            self._items[session] = _Session(env, used=self.clock())
        return session

    def get(self, session: str) -> _Session | None:
        """The live session (marked as just used), or None when unknown or expired."""
        with self._lock:
            self._expire()
            entry = self._items.get(session)
            if entry is not None:
                entry.used, entry.touched = self.clock(), True
                self._items.move_to_end(session)
            return entry

    def _expire(self) -> None:
        deadline = self.clock() - self.ttl_s
        while self._items:
            oldest = next(iter(self._items.values()))
            if oldest.used > deadline:
                break
            self._items.popitem(last=False)
