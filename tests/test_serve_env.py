"""``turngym serve env`` under hostile or careless clients (issue 24): plain-HTTP ``/step`` gets a
4xx naming the WebSocket route (never a 500), oversized bodies get 413 at once, the server
imports neither torch nor gradio, and a client timeout says what timed out."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request

import pytest

pytest.importorskip("openenv", reason="needs the [openenv] extra (pip install 'turngym[openenv]')")

from turngym.error import TurnGymError  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "turngym.cli", "serve", "env", "turngym/Corridor-v0", "--port",
         str(port), "--max-body-bytes", "4096"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, process.stdout.read()[-3000:]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            assert time.monotonic() < deadline, "the server did not listen within 120 s"
            time.sleep(0.3)
    yield port
    process.terminate()
    output = process.communicate(timeout=30)[0]
    assert "Traceback" not in output, output[-3000:]


def _post(port: int, path: str, body: bytes, timeout: float = 30) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_http_step_without_a_session_is_a_4xx_naming_the_websocket_route(server):
    for _ in range(20):
        status, body = _post(server, "/step", json.dumps({"action": {"text": "go east"}}).encode())
        assert status == 409 and "/ws" in body["detail"], (status, body)
    status, body = _post(server, "/reset", b"{}")  # a one-off reset still works over HTTP
    assert status == 200 and "observation" in body


def test_a_declared_oversized_body_gets_413_at_once(server):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server), timeout=10) as connection:
        connection.sendall(
            b"POST /reset HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000000\r\n\r\n{"
        )  # 10 MB declared, 1 byte sent: the server must not wait for the rest
        reply = connection.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 413") and time.monotonic() - started < 10, reply


def test_a_streamed_body_over_the_cap_gets_413(server):
    with socket.create_connection(("127.0.0.1", server), timeout=10) as connection:
        connection.sendall(
            b"POST /reset HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = f"{2048:x}\r\n".encode() + b"x" * 2048 + b"\r\n"
        connection.sendall(chunk * 3)  # 6 KiB in chunks, over the 4 KiB cap
        # The server answers as soon as the body passes the cap and closes: sending more after
        # that breaks the pipe (and a reset can discard its reply), so wait for the answer first.
        if not select.select([connection], [], [], 10)[0]:
            connection.sendall(chunk + b"0\r\n\r\n")  # a server that reads to the end first
        reply = connection.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 413"), reply


def test_the_server_imports_neither_torch_nor_gradio():
    script = textwrap.dedent(
        """
        import sys, uvicorn
        def report(app, **kwargs):
            heavy = {"torch", "gradio", "transformers", "pandas"}
            loaded = sorted(m for m in sys.modules if m in heavy and sys.modules[m] is not None)
            print("HEAVY", loaded, "WS", kwargs.get("ws_max_size"))
        uvicorn.run = report
        from turngym.cli import main
        sys.exit(main(["serve", "env", "turngym/Corridor-v0"]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"HEAVY [] WS {1 << 20}" in done.stdout, done.stdout + done.stderr[-2000:]


def test_a_client_timeout_names_the_message_and_the_knob():
    from turngym.integrations.openenv import OpenEnvGymEnv

    class SlowClient:
        def reset(self, **_):
            raise TimeoutError

    env = OpenEnvGymEnv.__new__(OpenEnvGymEnv)
    env.base_url, env.message_timeout_s, env.client = "http://x", 300.0, SlowClient()
    with pytest.raises(TurnGymError, match=r"did not answer reset within message_timeout_s=300"):
        env.reset(seed=0)
