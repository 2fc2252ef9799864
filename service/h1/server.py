"""A lean ASGI 3 server for HTTP/1.1: asyncio Protocols + httptools, run on uvloop.

uvicorn's per-request machinery (its request cycle, header validation and framing, flow control
objects) was about a quarter of the proxy's CPU under the benchmark; this server does what the
service needs and no more, per request: one scope dict, one task, the response head built once and
written together with the first body bytes.

What it implements:

* **HTTP/1.1 framing**: request bodies by content-length or chunked (httptools decodes them);
  responses by the app's ``content-length`` or, without one, chunked (HTTP/1.0: closed to end).
  ``HEAD`` answers carry no body. ``Expect: 100-continue`` is answered when the app first reads.
* **Keep-alive and pipelining**: requests on one connection are served in order, one at a time;
  an idle connection is closed after ``keep_alive_s``. A response sent before its request body was
  read to the end closes the connection (its unread rest would otherwise be parsed as a request).
* **Backpressure**: the app's ``send`` waits while the socket's write buffer is full; reading from
  the socket pauses while more than ``HIGH_WATER`` bytes of request body are unread.
* **Disconnects**: once the client is gone (or the response is complete), ``receive()`` returns
  ``http.disconnect`` and further sends are dropped.
* **Bad requests**: an unparsable request or one whose head exceeds ``MAX_HEAD`` gets a 400/431
  with an OpenAI-style error body and the connection is closed; an app that raises before it
  started its response gets a 500 in the same shape (the exception is logged, never sent).
* **Lifespan and shutdown**: the ASGI lifespan runs around serving; on :meth:`Server.stop` (SIGTERM
  or Ctrl-C in the main thread) it stops accepting, closes idle connections, lets requests in flight
  finish for up to ``grace_s`` seconds, then runs the lifespan shutdown (which flushes the records).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import unquote

import httptools
import orjson
import uvloop

__all__ = ["ASGIApp", "Server"]

log = logging.getLogger(__name__)

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: unread request body bytes that pause reading from the client's socket
HIGH_WATER: Final = 256 * 1024
#: request line plus headers; more is refused with 431
MAX_HEAD: Final = 64 * 1024
#: pipelined requests parsed ahead of the one being served before reading pauses
MAX_PIPELINE: Final = 16

_ASGI: Final = {"version": "3.0", "spec_version": "2.3"}
_STATUS_LINES: Final = {
    s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode("latin-1")) for s in HTTPStatus
}
_DISCONNECT: Final = {"type": "http.disconnect"}
_LAST_CHUNK: Final = b"0\r\n\r\n"
_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status


def _error_response(status: int, message: str, kind: str) -> bytes:
    body = orjson.dumps({"error": {"message": message, "type": kind, "param": None, "code": None}})
    return (_status_line(status) + b"content-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (len(body), body))


class _Cycle:
    """One request and its response."""

    __slots__ = ("body", "body_complete", "body_delivered", "body_size", "chunked", "conn", "continue_sent",
                 "disconnected", "expect_continue", "head", "head_only", "keep_alive", "response_complete", "scope",
                 "started", "waiter")

    def __init__(self, conn: _Connection, scope: Scope, keep_alive: bool, expect_continue: bool) -> None:
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


class _Connection(asyncio.Protocol):
    """One client connection: parses requests, runs the app on each, in order."""

    __slots__ = ("_drain", "_expect", "_head_size", "_headers", "_parsing", "_read_paused", "_url", "active",
                 "client", "closing", "idle_since", "loop", "parser", "pipeline", "server", "server_addr",
                 "transport", "write_paused")

    def __init__(self, server: Server) -> None:
        self.server = server
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.active: _Cycle | None = None
        self.pipeline: deque[_Cycle] = deque()
        self._parsing: _Cycle | None = None
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0
        self._expect = False
        self._read_paused = False
        self._drain: asyncio.Future[None] | None = None
        self.write_paused = False
        self.closing = False
        self.idle_since = time.monotonic()
        self.client: tuple[str, int] | None = None
        self.server_addr: tuple[str, int] | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self.client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
        self.server_addr = (str(sock[0]), int(sock[1])) if isinstance(sock, tuple) else None
        self.server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400, "Protocol upgrades are not supported; send plain HTTP/1.1 requests.")
        except httptools.HttpParserError as exc:
            if self._head_size > MAX_HEAD:
                self._refuse(431, f"The request head is over {MAX_HEAD} bytes; send fewer or shorter headers.")
            else:
                self._refuse(400, f"The request is not valid HTTP/1.1 ({exc}); check the client.")

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.forget(self)
        self.closing = True
        for cycle in (self.active, *self.pipeline):
            if cycle is not None:
                cycle.disconnected = True
                cycle.wake()
        self.pipeline.clear()
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        drain = self._drain
        if drain is not None:
            self._drain = None
            if not drain.done():
                drain.set_result(None)

    # -- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._head_size = 0
        self._expect = False
        self.idle_since = 0.0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)
        if self._head_size > MAX_HEAD:
            raise httptools.HttpParserError("head too large")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value)
        if self._head_size > MAX_HEAD:
            raise httptools.HttpParserError("head too large")
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self._expect = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        url = httptools.parse_url(self._url)
        raw_path: bytes = url.path
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = unquote(path)
        server = self.server
        scope: Scope = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": parser.get_http_version(),
            "server": self.server_addr,
            "client": self.client,
            "scheme": "http",
            "method": parser.get_method().decode("ascii"),
            "root_path": "",
            "path": path,
            "raw_path": raw_path,
            "query_string": url.query or b"",
            "headers": self._headers,
            "state": server.state.copy(),
        }
        cycle = self._parsing = _Cycle(self, scope, parser.should_keep_alive(), self._expect)
        if self.active is None:
            self._run(cycle)
        else:
            self.pipeline.append(cycle)
            if len(self.pipeline) >= MAX_PIPELINE:
                self.pause_reading()

    def on_body(self, body: bytes) -> None:
        cycle = self._parsing
        if cycle is None or cycle.response_complete:
            return  # the rest of a body the app did not read: dropped (the connection closes)
        cycle.body.append(body)
        cycle.body_size += len(body)
        if cycle.body_size > HIGH_WATER:
            self.pause_reading()
        cycle.wake()

    def on_message_complete(self) -> None:
        cycle = self._parsing
        if cycle is not None:
            cycle.body_complete = True
            cycle.wake()
        self._parsing = None

    # -- serving --------------------------------------------------------------------------------

    def _run(self, cycle: _Cycle) -> None:
        self.active = cycle
        self.loop.create_task(self._serve(cycle))

    async def _serve(self, cycle: _Cycle) -> None:
        try:
            await self.server.app(cycle.scope, cycle.receive, cycle.send)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                self.abort()
                if not isinstance(exc, asyncio.CancelledError):
                    raise
                return
            log.exception("server.app_error", extra={"path": cycle.scope["path"]})
            self._failed(cycle)
        else:
            if not cycle.response_complete:
                log.error("server.incomplete_response", extra={"path": cycle.scope["path"]})
                self._failed(cycle)

    def _failed(self, cycle: _Cycle) -> None:
        if cycle.response_complete:
            return
        if cycle.started or cycle.disconnected:
            self.abort()  # half an answer is worse than none: the client sees the connection drop
            return
        cycle.response_complete = True
        self.write(_error_response(500, "tunewatch failed to handle this request; the error is in its log.",
                                   "server_error"))
        self.close()

    def cycle_done(self, cycle: _Cycle) -> None:
        """The response is complete: close, or serve the next pipelined request, or wait idle."""
        if self.active is cycle:
            self.active = None
        if not cycle.keep_alive or not cycle.body_complete or self.closing:
            self.close()
            return
        if self.pipeline:
            nxt = self.pipeline.popleft()
            self.resume_reading()
            self._run(nxt)
        else:
            self.idle_since = time.monotonic()

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    async def drained(self) -> None:
        drain = self._drain
        if drain is None:
            drain = self._drain = self.loop.create_future()
        await drain

    def pause_reading(self) -> None:
        if not self._read_paused and self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._read_paused and self.transport is not None and not self.transport.is_closing():
            self._read_paused = False
            self.transport.resume_reading()

    def _refuse(self, status: int, message: str) -> None:
        cycle = self.active
        if cycle is not None and cycle.started:
            self.abort()
            return
        if cycle is not None:
            cycle.disconnected = True  # the app's answer, if it comes, goes nowhere
            cycle.wake()
        self.write(_error_response(status, message, "invalid_request_error"))
        self.close()

    def shutdown(self) -> None:
        """Stop after the response in flight (at once when idle)."""
        self.closing = True
        if self.active is None:
            self.close()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()


class _Lifespan:
    """The ASGI lifespan protocol, run as one task for the server's life."""

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self._app = app
        self._state = state
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._events: dict[str, asyncio.Future[str | None]] = {}
        self._task: asyncio.Task[None] | None = None

    async def _receive(self) -> Message:
        return await self._inbox.get()

    async def _send(self, message: Message) -> None:
        kind: str = message["type"]  # lifespan.startup.complete / .failed, lifespan.shutdown.…
        phase, _, outcome = kind.removeprefix("lifespan.").partition(".")
        fut = self._events.get(phase)
        if fut is not None and not fut.done():
            fut.set_result(None if outcome == "complete" else str(message.get("message", "")))

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": _ASGI, "state": self._state}
        try:
            await self._app(scope, self._receive, self._send)
        except BaseException as exc:
            for fut in self._events.values():
                if not fut.done():
                    fut.set_result(f"{type(exc).__name__}: {exc}")
            if not isinstance(exc, Exception):
                raise
            log.exception("server.lifespan_error")

    async def _phase(self, phase: str) -> str | None:
        fut: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._events[phase] = fut
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        elif self._task.done():
            return f"the lifespan ended before {phase}"
        await self._inbox.put({"type": f"lifespan.{phase}"})
        return await fut

    async def startup(self) -> str | None:
        """None when the app started; else why not."""
        return await self._phase("startup")

    async def shutdown(self) -> str | None:
        return await self._phase("shutdown")


class Server:
    """Serves an ASGI app on sockets bound by the caller until :meth:`stop` (or SIGTERM/SIGINT)."""

    def __init__(self, app: ASGIApp, *, grace_s: float = 10.0, keep_alive_s: float = 30.0) -> None:
        self.app = app
        self.grace_s = grace_s
        self.keep_alive_s = keep_alive_s
        self.state: dict[str, Any] = {}
        self.connections: set[_Connection] = set()
        self.started = False
        self.date_header = b""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit: asyncio.Event | None = None
        self._exit_requested = False
        self._all_closed: asyncio.Event | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "the server is not running"
        return self._loop

    # -- stopping from anywhere: tests set should_exit from another thread -------------------------

    @property
    def should_exit(self) -> bool:
        return self._exit_requested

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self.stop()

    def stop(self) -> None:
        """Begin the graceful shutdown; safe from any thread and from signal handlers."""
        self._exit_requested = True
        loop, event = self._loop, self._exit
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(event.set)

    # -- running --------------------------------------------------------------------------------

    def run(self, sockets: list[socket.socket]) -> None:
        """Serve until stopped (blocking). Exits with status 3 when the app fails to start."""
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self.serve(sockets))

    async def serve(self, sockets: list[socket.socket]) -> None:
        self._loop = asyncio.get_running_loop()
        self._exit = asyncio.Event()
        if self._exit_requested:
            self._exit.set()
        lifespan = _Lifespan(self.app, self.state)
        failure = await lifespan.startup()
        if failure is not None:
            log.error("server.startup_failed", extra={"reason": failure})
            raise SystemExit(3)
        signals = self._install_signals()
        self._tick()
        servers = [await self._loop.create_server(lambda: _Connection(self), sock=sock, backlog=2048)
                   for sock in sockets]
        sweeper = self._loop.create_task(self._sweep())
        self.started = True
        try:
            await self._exit.wait()
        finally:
            sweeper.cancel()
            for srv in servers:
                srv.close()
            await self._drain_connections()
            for sig in signals:
                self._loop.remove_signal_handler(sig)
            failure = await lifespan.shutdown()
            if failure is not None:
                log.error("server.shutdown_failed", extra={"reason": failure})

    def _install_signals(self) -> list[int]:
        if threading.current_thread() is not threading.main_thread():
            return []
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.loop.add_signal_handler(sig, self.stop)
        return [signal.SIGINT, signal.SIGTERM]

    def forget(self, conn: _Connection) -> None:
        self.connections.discard(conn)
        if not self.connections and self._all_closed is not None:
            self._all_closed.set()

    async def _drain_connections(self) -> None:
        self._all_closed = asyncio.Event()
        for conn in list(self.connections):
            conn.shutdown()
        if self.connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_closed.wait(), self.grace_s)
        for conn in list(self.connections):
            log.warning("server.request_cut_at_shutdown")
            conn.abort()

    def _tick(self) -> None:
        self.date_header = b"date: %s\r\n" % formatdate(usegmt=True).encode("ascii")

    async def _sweep(self) -> None:
        """Once a second: refresh the Date header, close connections idle past ``keep_alive_s``."""
        while True:
            await asyncio.sleep(1.0)
            self._tick()
            limit = time.monotonic() - self.keep_alive_s
            for conn in list(self.connections):
                if conn.active is None and 0.0 < conn.idle_since < limit:
                    conn.close()
