"""The HTTP/1.1 server (service/h1/server.py): framing, keep-alive, pipelining, errors, shutdown.

A small ASGI app runs on the server in a thread; the tests talk to it over raw sockets (to control
every byte and split) and through ``http.client`` (an independent HTTP/1.1 parser of the answers).
"""

from __future__ import annotations

import asyncio
import http.client
import itertools
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.h1.connection import MAX_HEAD
from service.h1.server import Server
from service.runner import bind
from tests.support.wait import wait_for


class App:
    """Echoes the request; a few paths behave differently. Notes what it saw."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.disconnected = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                self.events.append(msg["type"])
                if msg["type"] == "lifespan.startup":
                    if self.events.count("fail-startup"):
                        await send({"type": "lifespan.startup.failed", "message": "no database"})
                        return
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        path = scope["path"]
        if path == "/boom":
            raise RuntimeError("secret internals")
        if path == "/wait-for-hangup":
            msg = await receive()
            self.events.append(msg["type"])
            self.disconnected.set()
            return
        if path == "/slow":
            await asyncio.sleep(0.3)
        answer = json.dumps({"method": scope["method"], "path": path, "query": scope["query_string"].decode(),
                             "body": body.decode("latin-1"), "version": scope["http_version"],
                             "headers": {k.decode(): v.decode() for k, v in scope["headers"]}}).encode()
        headers = [(b"content-type", b"application/json")]
        if path == "/chunked":
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            for piece in (answer[:10], answer[10:]):
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        headers.append((b"content-length", str(len(answer)).encode()))
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": answer, "more_body": False})


@contextmanager
def serving(app: App | None = None, *, grace_s: float = 5.0) -> Iterator[tuple[Server, int, App]]:
    app = app or App()
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = Server(app, grace_s=grace_s)
    thread = threading.Thread(target=server.run, args=([sock],), daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout_s=10, what="the server to start")
        yield server, port, app
    finally:
        server.stop()
        thread.join(10)
        sock.close()


def raw(port: int, *parts: bytes, read_until_close: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for part in parts:
            s.sendall(part)
        if not read_until_close:
            return b""
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n%s\r\n%s" % (path.encode(), len(body), extra, body)


def echo(resp: http.client.HTTPResponse) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(resp.read())
    return result


# -- framing ---------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 5000), max_size=6), chunked=st.booleans())
def test_a_request_body_arrives_whole_under_any_split(body: bytes, cuts: list[int], chunked: bool,
                                                        server_port: int) -> None:
    if chunked:
        wire = (b"POST /x?a=1 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                + (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n")
    else:
        wire = post("/x?a=1", body, b"Connection: close\r\n")
    points = sorted({c % (len(wire) + 1) for c in cuts} | {0, len(wire)})
    out = raw(server_port, *(wire[a:b] for a, b in itertools.pairwise(points) if b > a))
    head, _, payload = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 201 Created\r\n")
    assert b"connection: close" in head
    got = json.loads(payload)
    assert (got["body"].encode("latin-1"), got["path"], got["query"]) == (body, "/x", "a=1")


@pytest.fixture(scope="module")
def server_port() -> Iterator[int]:
    with serving() as (_, port, _app):
        yield port


def test_keep_alive_serves_requests_in_turn_on_one_connection(server_port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server_port, timeout=5)
    for i in range(3):
        conn.request("POST", f"/n/{i}", body=b"x" * i, headers={"Content-Type": "text/plain"})
        resp = conn.getresponse()
        assert resp.status == 201 and resp.getheader("date")
        got = echo(resp)
        assert (got["path"], got["body"], got["headers"]["content-type"]) == (f"/n/{i}", "x" * i, "text/plain")
    assert conn.sock is not None  # still the same, open connection
    conn.close()


def test_a_response_without_length_is_chunked(server_port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server_port, timeout=5)
    conn.request("GET", "/chunked?q=%20x")
    resp = conn.getresponse()
    assert resp.getheader("transfer-encoding") == "chunked"
    assert echo(resp)["query"] == "q=%20x"
    conn.request("GET", "/again")  # the chunked answer ended cleanly: the connection is reusable
    assert echo(conn.getresponse())["path"] == "/again"
    conn.close()


def test_pipelined_requests_are_answered_in_order(server_port: int) -> None:
    out = raw(server_port, post("/slow", b"first") + post("/fast", b"second", b"Connection: close\r\n"))
    answers = []
    while out:  # content-length framed answers, one after the other
        head, _, rest = out.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        answers.append(json.loads(rest[:length]))
        out = rest[length:]
    assert [(a["path"], a["body"]) for a in answers] == [("/slow", "first"), ("/fast", "second")]


def test_http_1_0_gets_a_closed_delimited_answer(server_port: int) -> None:
    out = raw(server_port, b"GET /chunked HTTP/1.0\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower() and b"connection: close" in head
    assert json.loads(body)["version"] == "1.0"


def test_head_gets_headers_and_no_body(server_port: int) -> None:
    out = raw(server_port, b"HEAD /h HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"content-length: " in head and body == b""


def test_expect_100_continue_is_answered_before_the_body(server_port: int) -> None:
    with socket.create_connection(("127.0.0.1", server_port), timeout=5) as s:
        s.sendall(b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
                  b"Connection: close\r\n\r\n")
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"hello")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    assert json.loads(out.partition(b"\r\n\r\n")[2])["body"] == "hello"


# -- errors ----------------------------------------------------------------------------------------

def test_garbage_gets_a_400_in_openai_shape_and_the_connection_closes(server_port: int) -> None:
    out = raw(server_port, b"\x16\x03\x01 this is not http\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert "not valid HTTP/1.1" in json.loads(body)["error"]["message"]


def test_an_oversized_head_gets_a_431(server_port: int) -> None:
    out = raw(server_port, b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (MAX_HEAD + 10) + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 431 ")
    assert "send fewer or shorter headers" in json.loads(out.partition(b"\r\n\r\n")[2])["error"]["message"]


def test_an_app_error_is_a_500_without_internals(server_port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server_port, timeout=5)
    conn.request("GET", "/boom")
    resp = conn.getresponse()
    body = resp.read()
    assert resp.status == 500
    assert json.loads(body)["error"]["type"] == "server_error"
    assert b"secret internals" not in body and b"Traceback" not in body


def test_the_app_hears_the_client_hang_up() -> None:
    with serving() as (_, port, app):
        raw(port, b"GET /wait-for-hangup HTTP/1.1\r\nHost: t\r\n\r\n", read_until_close=False)
        assert app.disconnected.wait(5)
        assert app.events[-1] == "http.disconnect"


# -- life cycle ------------------------------------------------------------------------------------

def test_stop_lets_the_request_in_flight_finish_then_runs_the_lifespan_shutdown() -> None:
    with serving() as (server, port, app):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/slow")
        wait_for(lambda: any(c.active is not None for c in list(server.connections)), timeout_s=5,
                 what="the request to be in flight")
        server.stop()
        resp = conn.getresponse()
        assert resp.status == 201 and resp.getheader("connection") == "close"
        assert echo(resp)["path"] == "/slow"
        wait_for(lambda: "lifespan.shutdown" in app.events, timeout_s=5, what="the lifespan shutdown")
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert app.events[0] == "lifespan.startup"


def test_a_failed_startup_exits_with_status_3() -> None:
    app = App()
    app.events.append("fail-startup")
    sock = bind("127.0.0.1", 0)
    try:
        with pytest.raises(SystemExit) as exc:
            Server(app).run([sock])
        assert exc.value.code == 3
    finally:
        sock.close()
