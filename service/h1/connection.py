"""One client connection of the HTTP/1.1 server: requests parsed by httptools, each run as an ASGI
request cycle, in order (see ``service/h1/server.py`` for what the server promises).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote

import httptools

from service.h1.asgi import ASGI_VERSION, Scope
from service.h1.cycle import Cycle, error_response

if TYPE_CHECKING:
    from service.h1.server import Server

__all__ = ["HIGH_WATER", "MAX_HEAD", "Connection"]

log = logging.getLogger("service.h1.server")

#: unread request body bytes that pause reading from the client's socket
HIGH_WATER: Final = 256 * 1024
#: request line plus headers; more is refused with 431
MAX_HEAD: Final = 64 * 1024
#: pipelined requests parsed ahead of the one being served before reading pauses
MAX_PIPELINE: Final = 16


class Connection(asyncio.Protocol):
    """One client connection: parses requests, runs the app on each, in order."""

    __slots__ = ("_drain", "_expect", "_head_size", "_headers", "_parsing", "_read_paused", "_url", "active",
                 "client", "closing", "idle_since", "loop", "parser", "pipeline", "server", "server_addr",
                 "transport", "write_paused")

    def __init__(self, server: Server) -> None:
        self.server = server
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.active: Cycle | None = None
        self.pipeline: deque[Cycle] = deque()
        self._parsing: Cycle | None = None
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
            "asgi": ASGI_VERSION,
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
        cycle = self._parsing = Cycle(self, scope, parser.should_keep_alive(), self._expect)
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

    def _run(self, cycle: Cycle) -> None:
        self.active = cycle
        self.loop.create_task(self._serve(cycle))

    async def _serve(self, cycle: Cycle) -> None:
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

    def _failed(self, cycle: Cycle) -> None:
        if cycle.response_complete:
            return
        if cycle.started or cycle.disconnected:
            self.abort()  # half an answer is worse than none: the client sees the connection drop
            return
        cycle.response_complete = True
        self.write(error_response(500, "tunewatch failed to handle this request; the error is in its log.",
                                   "server_error"))
        self.close()

    def cycle_done(self, cycle: Cycle) -> None:
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
        self.write(error_response(status, message, "invalid_request_error"))
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
