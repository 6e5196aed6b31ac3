"""``turngym serve webshop``: the web shop as HTML pages on localhost, for people to shop in.

The page is a view of the env: each browser session owns a :class:`~.env.WebShopEnv`; a form
posts the same ``search[...]`` / ``click[...]`` action an agent would send to ``env.step`` and the
page is drawn from the env's :class:`~.shop.Shop` elements. Nothing about shopping is implemented
here. HTTP is Starlette (routing, requests, responses) served by uvicorn (the ASGI stack OpenEnv
uses too); needs ``pip install 'turngym[webshop]'``.

Routes: ``GET /`` starts a session (``?task=<id>`` picks a task, else ``?seed=<n>`` or a random
one) and redirects to ``/s/<session>``; ``GET /s/<session>`` shows the page; ``POST
/s/<session>`` with ``action=<action>`` (or ``q=<keywords>`` from the search box) takes one turn.

Bad requests get a 4xx at once: a malformed ``Content-Length`` or request line (400, from
uvicorn's HTTP parser), a seed that is not an int in ``0..2**32-1`` or an unknown task (400), an
unknown session (404), a body over :data:`MAX_BODY_BYTES` (413) or one that does not arrive within
:data:`BODY_TIMEOUT_S` (408), a form without ``action`` or ``q`` (400). A connection that has not
sent a complete request head within :data:`HEAD_TIMEOUT_S` is closed (uvicorn alone waits forever
for the first request of a connection). Sessions (:mod:`~.sessions`): a session idle for
``session_ttl_s`` is dropped, one nobody came back to after its start goes after
``untouched_ttl_s``, and when ``max_sessions`` live ones remain a new one gets 503 with
``Retry-After``: a live session is never evicted for an anonymous request.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs

from turngym.envs.webshop.env import WebShopEnv
from turngym.envs.webshop.page import NO_SESSION, render_html
from turngym.envs.webshop.sessions import (
    MAX_SESSIONS,
    SESSION_TTL_S,
    UNTOUCHED_TTL_S,
    Sessions,
    SessionsFull,
    _Session,
)
from turngym.error import ResetNeeded, missing_dependency

__all__ = [
    "MAX_SESSIONS",
    "MAX_BODY_BYTES",
    "Sessions",
    "SessionsFull",
    "ShopServer",
    "create_app",
    "make_server",
    "serve",
    "main",
    "render_html",
]

#: Largest form body accepted (a search box never needs more).
MAX_BODY_BYTES = 200_000
#: Seconds a client has to send a request head, and then its body.
HEAD_TIMEOUT_S = 5.0
BODY_TIMEOUT_S = 5.0
#: Open connections beyond this get 503 from uvicorn instead of queueing without bound.
MAX_CONNECTIONS = 1_024
_SEED_MAX = 2**32 - 1
_LATE_HEAD = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 34\r\nConnection: close\r\n\r\nthe request head arrived too late\n"
)


def _parse_seed(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if len(raw) > 10 or not raw.isascii() or not raw.isdigit() or int(raw) > _SEED_MAX:
        raise ValueError(f"seed must be an integer in 0..{_SEED_MAX}, got {raw[:20]!r}")
    return int(raw)


async def _read_body(request: Any) -> bytes:
    """The request body, at most ``MAX_BODY_BYTES``; raises ``OverflowError`` beyond."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise OverflowError
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(sessions: Sessions, body_timeout_s: float = BODY_TIMEOUT_S) -> Any:
    """The Starlette app serving ``sessions`` (``app.state.sessions``)."""
    try:
        from starlette.applications import Starlette
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import ClientDisconnect, Request
        from starlette.responses import HTMLResponse, RedirectResponse, Response
        from starlette.routing import Route
    except ImportError as error:  # pragma: no cover - depends on the install
        raise missing_dependency("starlette", "webshop") from error

    def error(status: int, text: str) -> Response:
        return HTMLResponse(f"<p>{html.escape(text)}</p>", status_code=status)

    async def start(request: Request) -> Response:
        query = request.query_params
        try:
            seed = _parse_seed(query.get("seed"))
        except ValueError as bad:
            return error(400, str(bad))
        task = query.get("task") or None
        if task is not None and len(task) > 100:
            return error(400, "task ids are short strings such as 000003")
        try:
            session = await run_in_threadpool(sessions.start, task, seed)
        except SessionsFull as full:
            response = error(503, str(full))
            response.headers["Retry-After"] = str(max(1, round(sessions.untouched_ttl_s)))
            return response
        except (KeyError, ValueError) as bad:
            return error(400, f"cannot start this task: {str(bad)[:200]}")
        return RedirectResponse(f"/s/{session}", status_code=303)

    async def page(request: Request) -> Response:
        entry = sessions.get(request.path_params["session"])
        if entry is None:
            return HTMLResponse(NO_SESSION, status_code=404)
        return HTMLResponse(await run_in_threadpool(_render, entry))

    async def act(request: Request) -> Response:
        session = request.path_params["session"]
        entry = sessions.get(session)
        if entry is None:
            return HTMLResponse(NO_SESSION, status_code=404)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return error(413, f"the form is over {MAX_BODY_BYTES:,} bytes")
        try:
            body = await asyncio.wait_for(_read_body(request), body_timeout_s)
        except OverflowError:
            return error(413, f"the form is over {MAX_BODY_BYTES:,} bytes")
        except asyncio.TimeoutError:
            return error(408, f"the form did not arrive within {body_timeout_s:g} s")
        except ClientDisconnect:
            return error(400, "the client left before sending its form")
        try:
            form = parse_qs(
                body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=20
            )
        except ValueError:
            return error(400, "too many form fields: post action=... or q=...")
        if "action" in form:
            action = form["action"][0]
        elif "q" in form:
            action = f"search[{form['q'][0]}]"
        else:
            return error(400, "post a form with an action=... or q=... field")
        await run_in_threadpool(_step, entry, action)
        return RedirectResponse(f"/s/{session}", status_code=303)

    app = Starlette(
        routes=[
            Route("/", start, methods=["GET"]),
            Route("/s/{session}", page, methods=["GET"]),
            Route("/s/{session}", act, methods=["POST"]),
        ]
    )
    app.state.sessions = sessions
    return app


def _render(entry: _Session) -> str:
    with entry.lock:
        return render_html(entry.env, entry.feedback)


def _step(entry: _Session, action: str) -> None:
    with entry.lock:
        try:
            *_, info = entry.env.step(action)
            entry.feedback = "" if info["valid_action"] else f"Invalid action: {action[:80]}"
        except ResetNeeded:
            entry.feedback = "This episode is over; start a new task."


def _protocol_with_head_timeout(timeout_s: float) -> type:
    """uvicorn's h11 protocol that closes a connection whose request head is late.

    uvicorn times out idle keep-alive connections but waits forever for a connection's first
    request, so a client that opens sockets and sends half a request line would hold them.
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadTimeoutProtocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(timeout_s, self._head_late)

        def _head_late(self) -> None:
            waiting = self.cycle is None or self.cycle.response_complete
            if waiting and not self.transport.is_closing():
                self.transport.write(_LATE_HEAD)
                self.transport.close()

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

    return HeadTimeoutProtocol


class ShopServer:
    """A uvicorn server of the shop; :meth:`start` runs it in a background thread.

    ``server_address`` is ``(host, port)`` once started (``port=0`` picks a free port).
    Usable as a context manager: ``with make_server(port=0) as server: ...``.
    """

    def __init__(self, app: Any, host: str, port: int, head_timeout_s: float) -> None:
        import uvicorn

        self.sessions: Sessions = app.state.sessions
        self.config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http=_protocol_with_head_timeout(head_timeout_s),
            ws="none",
            lifespan="off",
            log_level="warning",
            access_log=False,
            limit_concurrency=MAX_CONNECTIONS,
            timeout_keep_alive=5,
            backlog=2048,
        )
        self.server = uvicorn.Server(self.config)
        self._thread: threading.Thread | None = None

    @property
    def server_address(self) -> tuple[str, int]:
        sockets = [s for server in self.server.servers for s in server.sockets]
        if not sockets:
            raise RuntimeError("the server is not started; call start() first")
        host, port = sockets[0].getsockname()[:2]
        return host, port

    @property
    def url(self) -> str:
        host, port = self.server_address
        return f"http://{host}:{port}"

    def start(self, timeout_s: float = 30.0) -> ShopServer:
        """Serves in a daemon thread; returns once the socket listens."""
        self._thread = threading.Thread(target=self.server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the web shop did not start on {self.config.host}:{self.config.port} "
                    "(is the port in use? pass another --port)"
                )
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stops serving and waits for the thread."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def run(self) -> None:
        """Serves in this thread until interrupted (Ctrl-C)."""
        self.server.run()

    def __enter__(self) -> ShopServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def make_server(
    host: str = "127.0.0.1",
    port: int = 3000,
    *,
    max_sessions: int = MAX_SESSIONS,
    session_ttl_s: float = SESSION_TTL_S,
    untouched_ttl_s: float = UNTOUCHED_TTL_S,
    head_timeout_s: float = HEAD_TIMEOUT_S,
    body_timeout_s: float = BODY_TIMEOUT_S,
    **env_kwargs: Any,
) -> ShopServer:
    """The shop server (not yet serving: call ``.start()`` or ``.run()``)."""
    try:
        import uvicorn  # noqa: F401
    except ImportError as error:  # pragma: no cover - depends on the install
        raise missing_dependency("uvicorn", "webshop") from error
    sessions = Sessions(
        env_kwargs,
        max_sessions=max_sessions,
        ttl_s=session_ttl_s,
        untouched_ttl_s=untouched_ttl_s,
    )
    WebShopEnv(**sessions.env_kwargs)  # builds the catalog and index now, and checks the arguments
    app = create_app(sessions, body_timeout_s)
    return ShopServer(app, host, port, head_timeout_s)


def serve(host: str = "127.0.0.1", port: int = 3000, **env_kwargs: Any) -> None:
    """Serves the shop until interrupted (Ctrl-C)."""
    server = make_server(host, port, **env_kwargs)
    print(f"WebShop at http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    server.run()


def main(argv: Sequence[str] | None = None) -> int:
    """``turngym serve webshop [--host H] [--port P] [--num-products N] [--data-dir D] [--split S]``."""
    parser = argparse.ArgumentParser(
        prog="turngym serve webshop", description="Serve the web shop as HTML pages."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument(
        "--num-products", type=int, default=None, help="generated catalog size (default 10,000)"
    )
    parser.add_argument("--catalog-seed", type=int, default=0)
    parser.add_argument(
        "--data-dir", default=None, help="folder with the original WebShop data files"
    )
    parser.add_argument("--split", choices=("train", "test"), default="test")
    parser.add_argument("--max-sessions", type=int, default=MAX_SESSIONS)
    args = parser.parse_args(list(argv) if argv is not None else None)
    serve(
        args.host,
        args.port,
        num_products=args.num_products,
        catalog_seed=args.catalog_seed,
        data_dir=args.data_dir,
        split=args.split,
        max_sessions=args.max_sessions,
    )
    return 0
