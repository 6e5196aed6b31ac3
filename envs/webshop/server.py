"""``turngym serve webshop``: the web shop as HTML pages on localhost, for people to shop in.

The page is a view of the env: each browser session owns a :class:`~.env.WebShopEnv`; a form
posts the same ``search[...]`` / ``click[...]`` action an agent would send to ``env.step`` and the
page is drawn from the env's :class:`~.shop.Shop` elements. Nothing about shopping is implemented
here. Standard library only (``http.server``).

Routes: ``GET /`` starts a session (``?task=<id>`` picks a task, else ``?seed=<n>`` or a random
one) and redirects to ``/s/<session>``; ``GET /s/<session>`` shows the page; ``POST
/s/<session>`` with ``action=<action>`` (or ``q=<keywords>`` from the search box) takes one turn.
"""

from __future__ import annotations

import argparse
import html
import secrets
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from turngym.envs.webshop.env import WebShopEnv
from turngym.envs.webshop.shop import Element
from turngym.error import ResetNeeded

__all__ = ["make_server", "serve", "main", "render_html"]

MAX_SESSIONS = 256
_STYLE = """
body{font-family:Arial,sans-serif;background:#f3f3f3;margin:0}
header{background:#232f3e;color:#fff;padding:12px 24px;font-size:22px}
#instruction{background:#febd69;padding:10px 24px;font-size:16px}
main{background:#fff;margin:16px 24px;padding:16px;border-radius:6px}
button{margin:4px;padding:6px 12px;border:1px solid #a88734;border-radius:4px;background:#f0c14b;cursor:pointer}
button.option{background:#fff;border-color:#888}button.option.selected{background:#2a7ab0;color:#fff}
.product-link{background:#e7f4ff;border-color:#2a7ab0}.text{margin:6px 4px}.feedback{color:#b12704}
#score{font-size:28px;color:#067d62}
"""


def _button(element: Element) -> str:
    classes = {"button": "btn", "product": "btn product-link", "option": "btn option"}[element.kind]
    if element.selected:
        classes += " selected"
    value = html.escape(f"click[{element.target}]", quote=True)
    label = html.escape(element.text)
    disabled = " disabled" if element.target is None else ""
    return f'<form method="post" style="display:inline"><button class="{classes}" name="action" value="{value}"{disabled}>{label}</button></form>'


def render_html(env: WebShopEnv, feedback: str = "") -> str:
    """One page of the env's current state as HTML."""
    shop = env.shop
    parts = [
        f'<div id="instruction"><b>Instruction:</b> {html.escape(shop.instruction)}</div><main id="page-{shop.page}">'
    ]
    if feedback:
        parts.append(f'<p class="feedback">{html.escape(feedback)}</p>')
    if shop.page == "search":
        parts.append(
            '<form method="post"><input id="search_input" name="q" size="60" autofocus>'
            '<button class="btn" id="search_button">Search</button></form>'
        )
    for element in shop.elements():
        if shop.page == "search":
            break
        if element.kind == "text":
            parts.append(f'<div class="text">{html.escape(element.text)}</div>')
        else:
            parts.append(_button(element))
    if shop.page == "done":
        score = env.purchase_reward or 0.0
        parts.append(
            f'<div>Your score (min 0.0, max 1.0)</div><div id="score">{score:.4f}</div>'
            '<p><a href="/">Start a new task</a></p>'
        )
    parts.append("</main>")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>WebShop - turngym</title>"
        f"<style>{_STYLE}</style></head><body><header>WebShop</header>{''.join(parts)}</body></html>"
    )


class _Sessions:
    """Session id -> (env, last feedback); the oldest session is dropped past MAX_SESSIONS."""

    def __init__(self, env_kwargs: dict[str, Any]) -> None:
        # People browse longer than agents: no turn limit unless asked for.
        self.env_kwargs = {"max_turns": 100_000, **env_kwargs}
        self.items: dict[str, list[Any]] = {}
        self.lock = threading.Lock()

    def start(self, task: str | None, seed: int | None) -> str:
        env = WebShopEnv(**self.env_kwargs)
        env.reset(seed=seed, options={"task": task} if task else None)
        session = secrets.token_hex(8)
        with self.lock:
            if len(self.items) >= MAX_SESSIONS:
                self.items.pop(next(iter(self.items)))
            self.items[session] = [env, ""]
        return session


def _handler(sessions: _Sessions) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by default
            pass

        def _send(self, status: int, body: str = "", location: str | None = None) -> None:
            data = body.encode()
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _session(self) -> tuple[str, list[Any]] | None:
            parts = urlparse(self.path).path.strip("/").split("/")
            if len(parts) == 2 and parts[0] == "s" and parts[1] in sessions.items:
                return parts[1], sessions.items[parts[1]]
            return None

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            url = urlparse(self.path)
            if url.path == "/":
                query = parse_qs(url.query)
                seed = query.get("seed", [None])[0]
                try:
                    session = sessions.start(
                        query.get("task", [None])[0], int(seed) if seed else None
                    )
                except (ValueError, KeyError) as error:
                    self._send(HTTPStatus.BAD_REQUEST, html.escape(str(error)))
                    return
                self._send(HTTPStatus.SEE_OTHER, location=f"/s/{session}")
                return
            found = self._session()
            if found is None:
                self._send(
                    HTTPStatus.NOT_FOUND, '<p>No such session. <a href="/">Start shopping</a></p>'
                )
                return
            env, feedback = found[1]
            self._send(HTTPStatus.OK, render_html(env, feedback))

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            found = self._session()
            if found is None:
                self._send(
                    HTTPStatus.NOT_FOUND, '<p>No such session. <a href="/">Start shopping</a></p>'
                )
                return
            session, entry = found
            length = min(int(self.headers.get("Content-Length") or 0), 200_000)
            form = parse_qs(self.rfile.read(length).decode("utf-8", errors="replace"))
            action = form["action"][0] if "action" in form else f"search[{form.get('q', [''])[0]}]"
            env = entry[0]
            with sessions.lock:
                try:
                    *_, info = env.step(action)
                    entry[1] = "" if info["valid_action"] else f"Invalid action: {action[:80]}"
                except ResetNeeded:
                    entry[1] = "This episode is over; start a new task."
            self._send(HTTPStatus.SEE_OTHER, location=f"/s/{session}")

    return Handler


def make_server(
    host: str = "127.0.0.1", port: int = 3000, **env_kwargs: Any
) -> ThreadingHTTPServer:
    """The HTTP server (not yet serving); ``port=0`` picks a free port (``server.server_address``)."""
    sessions = _Sessions(env_kwargs)
    WebShopEnv(**sessions.env_kwargs)  # builds the catalog and index now, and checks the arguments
    server = ThreadingHTTPServer((host, port), _handler(sessions))
    server.daemon_threads = True
    return server


def serve(host: str = "127.0.0.1", port: int = 3000, **env_kwargs: Any) -> None:
    """Serves the shop until interrupted (Ctrl-C)."""
    server = make_server(host, port, **env_kwargs)
    print(
        f"WebShop at http://{server.server_address[0]}:{server.server_address[1]}/ (Ctrl-C stops)",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


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
    args = parser.parse_args(list(argv) if argv is not None else None)
    serve(
        args.host,
        args.port,
        num_products=args.num_products,
        catalog_seed=args.catalog_seed,
        data_dir=args.data_dir,
        split=args.split,
    )
    return 0
