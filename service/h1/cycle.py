"""One request and its response on a connection of the HTTP/1.1 server: the ASGI ``receive`` and
``send`` of a request cycle, and the response's framing (content-length, chunked, HEAD, close).
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

import orjson

from service.h1.asgi import Message, Scope

if TYPE_CHECKING:
    from service.h1.connection import Connection

__all__ = ["Cycle", "error_response"]

_STATUS_LINES: Final = {
    s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode("latin-1")) for s in HTTPStatus
}
_DISCONNECT: Final = {"type": "http.disconnect"}
_LAST_CHUNK: Final = b"0\r\n\r\n"
_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status


def error_response(status: int, message: str, kind: str) -> bytes:
    body = orjson.dumps({"error": {"message": message, "type": kind, "param": None, "code": None}})
    return (_status_line(status) + b"content-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (len(body), body))


class Cycle:
    """One request and its response."""

    __slots__ = ("body", "body_complete", "body_delivered", "body_size", "chunked", "conn", "continue_sent",
                 "disconnected", "expect_continue", "head", "head_only", "keep_alive", "response_complete", "scope",
                 "started", "waiter")

    def __init__(self, conn: Connection, scope: Scope, keep_alive: bool, expect_continue: bool) -> None:
        self.conn = conn
        self.scope = scope
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.continue_sent = False
        self.head_only = scope["method"] == "HEAD"
        self.body: list[bytes] = []
        self.body_size = 0
        self.body_complete = False
        self.body_delivered = False
        self.disconnected = False
        self.started = False
        self.response_complete = False
        self.chunked = False
        self.head: bytes | None = None
        self.waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def receive(self) -> Message:
        while True:
            if self.body or (self.body_complete and not self.body_delivered):
                body = self.body
                data = body[0] if len(body) == 1 else b"".join(body)
                body.clear()
                self.body_size = 0
                if self.body_complete:
                    self.body_delivered = True
                else:
                    self.conn.resume_reading()
                return {"type": "http.request", "body": data, "more_body": not self.body_complete}
            if self.disconnected or self.response_complete:
                return _DISCONNECT
            if self.expect_continue and not self.continue_sent:
                self.continue_sent = True
                self.conn.write(_CONTINUE)
            waiter = self.waiter = self.conn.loop.create_future()
            await waiter

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if not self.started:
            if kind != "http.response.start":
                raise RuntimeError(f"expected http.response.start, got {kind!r}")
            self.started = True
            self._start(message["status"], message.get("headers", ()))
            return
        if kind != "http.response.body":
            raise RuntimeError(f"expected http.response.body, got {kind!r}")
        if self.response_complete:
            raise RuntimeError("the response is already complete")
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        if self.head_only:
            body = b""
        if self.chunked:
            data = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
            if not more:
                data += _LAST_CHUNK
        else:
            data = body
        head = self.head
        if head is not None:
            self.head = None
            data = head + data
        conn = self.conn
        if not self.disconnected and data:
            conn.write(data)
        if more:
            if conn.write_paused and not self.disconnected:
                await conn.drained()
            return
        self.response_complete = True
        self.wake()
        conn.cycle_done(self)

    def _start(self, status: int, headers: Any) -> None:
        parts = [_status_line(status), self.conn.server.date_header]
        has_length = False
        for name, value in headers:
            if b"\r" in value or b"\n" in value or b"\r" in name or b"\n" in name:
                raise RuntimeError(f"invalid response header {name!r}")
            low = name.lower()
            if low == b"content-length":
                has_length = True
            elif low == b"connection" and value.lower() == b"close":
                self.keep_alive = False
                continue
            elif low == b"transfer-encoding":
                has_length = True  # the app frames its own body
            parts.append(b"%s: %s\r\n" % (name, value))
        if not has_length and not self.head_only:
            if self.scope["http_version"] == "1.1":
                self.chunked = True
                parts.append(b"transfer-encoding: chunked\r\n")
            else:
                self.keep_alive = False  # an HTTP/1.0 body without a length ends with the connection
        if self.conn.closing:
            self.keep_alive = False
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        elif self.scope["http_version"] == "1.0":
            parts.append(b"connection: keep-alive\r\n")
        parts.append(b"\r\n")
        self.head = b"".join(parts)
