"""OpenAIPolicy against a real HTTP server on 127.0.0.1 (retries on 500 and timeouts, concurrency)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import turngym
from turngym.agents.openai_compat import OpenAIPolicy
from turngym.error import PolicyError
from turngym.policy import Conversation


class _Server:
    """Chat-completions server: answers 'go east' for east tasks, else 'go west'.

    ``failures`` is a list of scripted faults consumed one per request: ``"500"`` answers HTTP 500,
    ``"slow"`` sleeps longer than the client timeout before answering, ``"empty"``/``"huge"``
    answer an empty or a 400,000-character reply.
    """

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.requests: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(
                        {"body": body, "auth": self.headers.get("Authorization")}
                    )
                    fault = server.failures.pop(0) if server.failures else None
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                answered = False

                def answering() -> None:
                    # Out of flight before the first byte goes back: the client may send its next
                    # request as soon as it reads the reply, before this thread runs on.
                    nonlocal answered
                    with server.lock:
                        server.in_flight -= 1
                    answered = True

                try:
                    time.sleep(0.05)
                    if fault == "slow":
                        time.sleep(1.0)
                    if fault == "500":
                        answering()
                        self.send_response(500)
                        self.end_headers()
                        self.wfile.write(b"internal error")
                        return
                    system = body["messages"][0]["content"]
                    text = "go east" if "exit is to the east" in system else "go west"
                    if fault in ("empty", "huge"):
                        text = "" if fault == "empty" else "go east " * 50_000
                    payload = json.dumps(
                        {"choices": [{"message": {"role": "assistant", "content": text}}]}
                    ).encode()
                    answering()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    if not answered:
                        answering()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server():
    server = _Server()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def _conversation(side: str) -> Conversation:
    return Conversation(
        messages=[
            {"role": "system", "content": f"The exit is to the {side}."},
            {"role": "user", "content": "corridor"},
        ]
    )


def test_rollout_through_server_solves_corridor(server, monkeypatch):
    monkeypatch.setenv("TEST_TURNGYM_KEY", "sk-test")
    policy = OpenAIPolicy(
        "tiny", base_url=server.url, api_key_env="TEST_TURNGYM_KEY", max_concurrency=3
    )
    trajectories = turngym.rollout(
        "turngym/Corridor-v0", policy, num_episodes=6, num_envs=1, progress=False
    )
    assert all(t.success for t in trajectories)
    assert server.requests[0]["auth"] == "Bearer sk-test"
    assert server.requests[0]["body"]["model"] == "tiny"


def test_500_and_timeout_are_retried(server):
    server.failures = ["500", "slow"]
    policy = OpenAIPolicy(
        "tiny", base_url=server.url, timeout=0.5, max_retries=3, backoff=0.01, max_concurrency=1
    )
    assert policy.act([_conversation("east")]) == ["go east"]
    assert len(server.requests) == 3  # 500, timeout, success


def test_retries_exhausted_raise_policy_error(server):
    server.failures = ["500"] * 5
    policy = OpenAIPolicy("tiny", base_url=server.url, max_retries=2, backoff=0.01)
    with pytest.raises(PolicyError, match="failed 3 times"):
        policy.act([_conversation("west")])


def test_server_down_fails_fast_with_clear_error():
    policy = OpenAIPolicy(
        "tiny", base_url="http://127.0.0.1:9/v1", timeout=1.0, max_retries=2, backoff=0.01
    )
    started = time.perf_counter()
    with pytest.raises(PolicyError, match="is the server running"):
        policy.act([_conversation("east")])
    assert time.perf_counter() - started < 10


def test_concurrency_limit_and_order(server):
    policy = OpenAIPolicy("tiny", base_url=server.url, max_concurrency=2)
    sides = ["east", "west"] * 4
    assert policy.act([_conversation(side) for side in sides]) == [f"go {side}" for side in sides]
    assert server.max_in_flight == 2


def test_empty_and_huge_replies_reach_the_env_as_they_are(server):
    server.failures = ["empty", "huge"]
    policy = OpenAIPolicy("tiny", base_url=server.url, max_concurrency=1)
    trajectory = turngym.rollout("turngym/Corridor-v0", policy, num_episodes=1, progress=False)[0]
    assert trajectory.turns[0].action == "" and len(trajectory.turns[1].action) == 400_000
    assert not trajectory.turns[0].valid_action and not trajectory.turns[1].valid_action
    assert trajectory.success  # the episode went on and the later valid replies solved it
