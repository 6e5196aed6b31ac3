"""``turngym serve webshop`` over real sockets: bad requests get a 4xx fast, 200 concurrent
clients are all served, sessions are kept least-recently-used with expiry."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("uvicorn", reason="the web shop server needs: pip install 'turngym[webshop]'")

from turngym.envs.webshop.server import (  # noqa: E402
    MAX_BODY_BYTES,
    Sessions,
    SessionsFull,
    make_server,
)

TIMEOUT_S = 0.4  # head and body timeouts of the test server


@pytest.fixture(scope="module")
def server() -> Iterator[object]:
    with make_server(
        "127.0.0.1",
        0,
        num_products=1_000,
        max_sessions=3,
        untouched_ttl_s=1.0,  # the sessions tests start and leave make room a second later
        head_timeout_s=TIMEOUT_S,
        body_timeout_s=TIMEOUT_S,
    ) as running:
        yield running


def _raw(server, data: bytes, wait: float = 3.0) -> tuple[int | None, float]:
    """Sends raw bytes; returns (status code or None, seconds until the status line came)."""
    with socket.create_connection(server.server_address, timeout=wait) as sock:
        start = time.monotonic()
        sock.sendall(data)
        received = b""
        try:
            while b"\r\n" not in received:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                received += chunk
        except TimeoutError:
            pass
        elapsed = time.monotonic() - start
    if not received.startswith(b"HTTP/1.1 "):
        return None, elapsed
    return int(received.split(b" ")[1]), elapsed


def _session(server) -> str:
    conn = http.client.HTTPConnection(*server.server_address, timeout=10)
    conn.request("GET", "/?seed=3")
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 303
    return response.getheader("Location")


def test_a_shopper_searches_clicks_and_sees_the_page(server) -> None:
    location = _session(server)
    conn = http.client.HTTPConnection(*server.server_address, timeout=10)
    conn.request("GET", location)
    page = conn.getresponse().read().decode()
    assert 'id="page-search"' in page and "Instruction:" in page
    conn.request(
        "POST",
        location,
        body="q=blue+shirt",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    response = conn.getresponse()
    response.read()
    assert response.status == 303
    conn.request("GET", location)
    assert 'id="page-results"' in conn.getresponse().read().decode()
    conn.close()


def test_every_malformed_request_gets_a_4xx_within_a_second(server) -> None:
    location = _session(server).encode()
    post = b"POST " + location + b" HTTP/1.1\r\nHost: x\r\n"
    chunked_over_cap = b"".join(
        b"%x\r\n%s\r\n" % (50_000, b"a" * 50_000) for _ in range(MAX_BODY_BYTES // 50_000 + 1)
    )
    cases = {
        "negative seed": b"GET /?seed=-1 HTTP/1.1\r\nHost: x\r\n\r\n",
        "seed not a number": b"GET /?seed=abc HTTP/1.1\r\nHost: x\r\n\r\n",
        "5,000-digit seed": b"GET /?seed=" + b"9" * 5_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        "superscript seed": "GET /?seed=\u00b2 HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        "unknown task": b"GET /?task=nope HTTP/1.1\r\nHost: x\r\n\r\n",
        "unknown session": b"GET /s/nope HTTP/1.1\r\nHost: x\r\n\r\n",
        "post to unknown session": b"POST /s/nope HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        "Content-Length: abc": post + b"Content-Length: abc\r\n\r\n",
        "Content-Length: -1": post + b"Content-Length: -1\r\n\r\n" + b"a" * 10_000,
        "declared body over the cap": post + b"Content-Length: 50000000\r\n\r\n",
        "chunked body over the cap": post
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + chunked_over_cap
        + b"0\r\n\r\n",
        "form without action or q": post + b"Content-Length: 5\r\n\r\nhello",
        "too many form fields": post
        + b"Content-Length: 99\r\n\r\n"
        + b"&".join([b"a=1"] * 25)[:99],
        "body never completes": post + b"Content-Length: 10\r\n\r\nabc",
        "head never completes": b"GET / HTTP/1.1\r\nHost: x",
        "nothing sent": b"",
        "not HTTP": b"GARBAGE\r\n\r\n",
        "method not allowed": b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n",
        "header over the size limit": b"GET / HTTP/1.1\r\nX: " + b"a" * 100_000 + b"\r\n\r\n",
    }
    answers = {name: _raw(server, data) for name, data in cases.items()}
    wrong = {
        name: answer
        for name, answer in answers.items()
        if not (answer[0] is not None and 400 <= answer[0] < 500 and answer[1] < 1.0)
    }
    assert not wrong, f"(status, seconds) of requests without a 4xx within 1 s: {wrong}"
    # A bad request never takes the server down: a good one still works.
    assert _raw(server, b"GET " + location + b" HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200


def test_200_concurrent_requests_are_all_served(server) -> None:
    location = _session(server)
    statuses: list[object] = []
    barrier = threading.Barrier(200)

    def client(index: int) -> None:
        try:
            conn = http.client.HTTPConnection(*server.server_address, timeout=30)
            conn.connect()
            barrier.wait(timeout=30)
            if index % 4 == 0:
                conn.request("POST", location, body="action=click[next >]")
            else:
                conn.request("GET", location)
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
            conn.close()
        except Exception as error:  # noqa: BLE001 - a reset is what this test looks for
            statuses.append(repr(error))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    failures = [s for s in statuses if s not in (200, 303)]
    assert len(statuses) == 200 and not failures, failures[:5]


def test_sessions_refuse_when_full_and_expire_idle_and_untouched_ones() -> None:
    now = [0.0]
    sessions = Sessions(
        {"num_products": 1_000}, max_sessions=3, ttl_s=100, untouched_ttl_s=5,
        clock=lambda: now[0],
    )  # fmt: skip
    first, second, third = (sessions.start(None, seed) for seed in (1, 2, 3))
    assert sessions.get(first) is not None and sessions.get(second) is not None  # touched
    with pytest.raises(SessionsFull, match="all 3 sessions are in use"):
        sessions.start(None, 4)  # third is untouched but only 0 s old
    now[0] = 10.0  # third was never touched and is 10 s old: it makes room
    fourth = sessions.start(None, 4)
    assert third not in sessions and {first, second, fourth} <= set(sessions._items)
    now[0] = 12.0
    assert sessions.get(fourth) is not None  # touched: stays
    with pytest.raises(SessionsFull):
        sessions.start(None, 5)
    now[0] = 105.0  # first and second (used at 0) expired; fourth (12) not yet
    assert sessions.get(first) is None and sessions.get(fourth) is not None
    now[0] = 500.0
    assert sessions.get(fourth) is None and len(sessions) == 0


def test_a_live_session_survives_300_anonymous_requests() -> None:
    with make_server("127.0.0.1", 0, num_products=1_000, max_sessions=4) as server:
        _flood(server)


def _flood(server) -> None:
    live = _session(server)
    conn = http.client.HTTPConnection(*server.server_address, timeout=10)
    conn.request("GET", live)  # the shopper follows the redirect: a live session
    conn.getresponse().read()
    statuses = []
    for index in range(300):
        anonymous = http.client.HTTPConnection(*server.server_address, timeout=10)
        anonymous.request("GET", "/")
        response = anonymous.getresponse()
        response.read()
        statuses.append(response.status)
        if response.status == 503:
            assert response.getheader("Retry-After")
        anonymous.close()
        if index % 50 == 0:
            conn.request("GET", live)
            page = conn.getresponse()
            page.read()
            assert page.status == 200
    conn.request("GET", live)
    page = conn.getresponse()
    assert page.status == 200 and b"Instruction" in page.read()
    conn.close()
    assert set(statuses) <= {303, 503} and statuses.count(503) >= 250, statuses[:10]
