"""``turngym serve env ID``: one turngym id as an OpenEnv server, hardened for long runs.

What the server adds to OpenEnv's own app (:func:`turngym.integrations.openenv.make_app`):

- **Sessions live on the WebSocket route ``/ws``** (one env per connection; OpenEnv's clients and
  :class:`~turngym.integrations.openenv.OpenEnvGymEnv` use it). OpenEnv's plain-HTTP ``/step``
  builds a fresh env per request, so every step failed with a 500 (``ResetNeeded``); here
  ``POST /step`` answers **409** with a message naming ``/ws``. ``POST /reset`` still answers a
  one-off reset over HTTP.
- **Request bodies are capped** (``--max-body-bytes``, default 1 MiB): a larger declared
  ``Content-Length``, or a streamed body that grows past the cap, gets **413** at once (a body
  declaring 10 MB used to be awaited forever); WebSocket messages have the same cap.
- **Only what serving needs is imported**: the process blocks ``gradio`` before importing OpenEnv,
  whose optional web UI then stays off (OpenEnv's own fallback when gradio is not installed),
  and nothing here imports torch: ~100 MB less memory and seconds less start-up than before.
- **Client timeout**: a session's first reset builds the env (TextWorld generates its games,
  ALFWorld translates PDDL: tens of seconds on a loaded machine). ``OpenEnvGymEnv`` waits
  ``message_timeout_s`` (default 300 s) and then raises a :class:`~turngym.error.TurnGymError`
  that says so; pass a larger value for slower envs.

    turngym serve env turngym/TextWorld-Easy-v1 --port 8000 --max-sessions 16
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["BodyLimit", "DEFAULT_MAX_BODY_BYTES", "block_web_ui", "main", "session_routes"]

#: Largest request body (and WebSocket message) the server reads by default.
DEFAULT_MAX_BODY_BYTES = 1 << 20
#: What ``POST /step`` answers: sessions live on the WebSocket route.
STEP_WITHOUT_SESSION = (
    "HTTP /step has no session: each HTTP request would get a fresh env that was never reset. "
    "Open a session on the WebSocket route /ws (OpenEnv's EnvClient, or "
    "turngym.integrations.openenv.OpenEnvGymEnv(base_url)) and send reset and step there."
)


def block_web_ui() -> None:
    """Makes ``import gradio`` fail in this process (before OpenEnv is imported), so OpenEnv skips
    its optional web UI as it does when gradio is not installed. A no-op once gradio is loaded."""
    sys.modules.setdefault("gradio", None)  # type: ignore[arg-type]


class BodyLimit:
    """ASGI middleware: 413 for an HTTP request whose body is (or grows) over ``max_bytes``."""

    def __init__(self, app: Any, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def _refuse(self, send: Any) -> None:
        body = json.dumps(
            {"detail": f"request body over {self.max_bytes} bytes (the server's --max-body-bytes)"}
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.max_bytes + 1
                if declared > self.max_bytes:
                    await self._refuse(send)
                    return
        received, started, refused = 0, False, False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and not started:
                    refused = True  # answer now; the app sees the client go away
                    await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            if refused:
                return  # the 413 was the answer
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, tracked_send)


def session_routes(app: Any, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Any:
    """``app`` (OpenEnv's FastAPI app) with ``POST /step`` answering 409 naming ``/ws`` and
    request bodies capped at ``max_body_bytes`` (413)."""
    from fastapi.responses import JSONResponse

    app.router.routes = [
        route
        for route in app.router.routes
        if not (getattr(route, "path", None) == "/step" and "POST" in getattr(route, "methods", ()))
    ]

    @app.post("/step", status_code=409)
    async def step_without_session() -> JSONResponse:
        return JSONResponse({"detail": STEP_WITHOUT_SESSION}, status_code=409)

    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """``turngym serve env ID [--host H] [--port P] [--env-kwargs JSON] [--max-sessions N]
    [--max-body-bytes B]``."""
    parser = argparse.ArgumentParser(
        prog="turngym serve env", description="Serve a turngym env as an OpenEnv environment."
    )
    parser.add_argument("env_id")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--env-kwargs", default="{}", help="JSON keyword arguments of make")
    parser.add_argument("--max-sessions", type=int, default=64)
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="largest request body / WebSocket message (413 beyond it)",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        env_kwargs = json.loads(args.env_kwargs)
    except json.JSONDecodeError as error:
        print(
            f"turngym: error: --env-kwargs is not JSON ({error}); pass e.g. '{{\"max_turns\": 5}}'",
            file=sys.stderr,
        )
        return 2
    if args.max_body_bytes < 1024:
        print("turngym: error: --max-body-bytes must be >= 1024", file=sys.stderr)
        return 2
    block_web_ui()
    from turngym.error import DependencyNotInstalled, TurnGymError

    try:
        import uvicorn

        from turngym.integrations.openenv import TurngymEnvironment, make_app
    except ImportError as error:
        message = str(error).splitlines()[0]
        if not isinstance(error, DependencyNotInstalled):
            message += "; this command needs pip install 'turngym[openenv]'"
        print(f"turngym: error: {message}", file=sys.stderr)
        return 2
    try:
        app = make_app(
            args.env_id,
            env_kwargs=env_kwargs,
            max_concurrent_envs=args.max_sessions,
            max_body_bytes=args.max_body_bytes,
        )
        TurngymEnvironment(args.env_id, env_kwargs).close()  # fail now, not at the first session
    except TurnGymError as error:
        print(f"turngym: error: {error}", file=sys.stderr)
        return 2
    uvicorn.run(
        app, host=args.host, port=args.port, log_level="warning", ws_max_size=args.max_body_bytes
    )
    return 0
