"""A keep-alive HTTP/1.1 client pool for one upstream origin: asyncio Protocols + httptools.

The proxy's upstream calls are all alike (a POST of a JSON body to a fixed URL, a response read as
it arrives), so a general client's per-request machinery (aiohttp: request/response objects,
tracing, cookies, timers, about a third of the proxy's CPU here) buys nothing. A :class:`Pool`
keeps up to ``max_connections`` connections to one ``scheme://host:port``; a request is the bytes
the caller built once plus its body, written in one call; the response is parsed by httptools as
it arrives and read with :meth:`Response.read`, chunk by chunk, or :meth:`Response.read_all`.

What it promises:

* **Framing**: content-length, chunked and close-delimited bodies (httptools decodes them);
  the connection goes back to the pool only when its response was read to the end and both sides
  keep it alive.
* **Timeouts**: connect (``connect_s``), waiting for a free connection (``pool_s``), and the gap
  between two reads of the response (``read_s``): :class:`UpstreamTimeoutError`.
* **Failures**: refused → :class:`UpstreamUnavailableError`; closed or garbled mid-response →
  :class:`UpstreamProtocolError`. A kept-alive connection the server closed while it sat idle
  is retried once on a new one, only when not a byte of the response had arrived.
* **Cancellation**: a cancelled reader (the client hung up) closes the connection.
* **Backpressure**: more than ``HIGH_WATER`` unread bytes pause reading from the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from typing import Final
from urllib.parse import urlsplit

import httptools

from service.errors import UpstreamError, UpstreamProtocolError, UpstreamTimeoutError, UpstreamUnavailableError

__all__ = ["Origin", "Pool", "Response"]

#: unread response bytes that pause reading from the upstream's socket until the reader catches up
HIGH_WATER: Final = 256 * 1024
#: an idle connection older than this is closed instead of reused (servers close theirs at 60 to 75 s)
IDLE_S: Final = 30.0


class _StaleConnectionError(Exception):
    """A kept-alive connection closed before a byte of the response arrived."""


class Origin:
    """``scheme://host:port`` of a URL, and the request target (path and query) to send."""

    __slots__ = ("host", "port", "scheme", "target")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


class Response:
    """An upstream response: status and headers once :meth:`Pool.request` returns; the body as read."""

    __slots__ = ("_chunks", "_conn", "_error", "_waiter", "complete", "framed", "got_bytes", "headers",
                 "keep_alive", "status", "unread")

    def __init__(self, conn: _Conn) -> None:
        self._conn: _Conn | None = conn
        self.status = 0
        #: response headers as sent, names lower-cased
        self.headers: list[tuple[bytes, bytes]] = []
        self._chunks: list[bytes] = []
        self.unread = 0
        self.complete = False
        self.keep_alive = False
        self.got_bytes = False
        #: the body's end is marked (content-length or chunked), not the connection's close
        self.framed = False
        self._error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower-case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @property
    def eof(self) -> bool:
        """Everything the upstream sent has been read."""
        return self.complete and not self._chunks

    async def read(self) -> bytes:
        """The body bytes that arrived since the last read (waiting for some); ``b""`` at the end."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self.complete:
                return b""
            conn = self._conn
            if conn is None:
                raise UpstreamProtocolError("the response was released before it was read")
            await conn.wait(self)
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        conn = self._conn
        if self.unread > HIGH_WATER and conn is not None:
            conn.resume()
        self.unread = 0
        return data

    async def read_all(self) -> bytes:
        """The rest of the body."""
        parts = []
        while chunk := await self.read():
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def release(self) -> None:
        """Hand the connection back: to the pool when the response was read whole, else closed."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.finish(self, reusable=self.complete and self.keep_alive and self._error is None)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)


class _Conn(asyncio.Protocol):
    """One connection: parses what arrives into the response in flight."""

    __slots__ = ("_paused", "_timer", "closed", "idle_since", "parser", "pool", "resp", "transport", "uses")

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.resp: Response | None = None
        self.closed = False
        self.uses = 0
        self.idle_since = 0.0
        self._paused = False
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport

    def data_received(self, data: bytes) -> None:
        resp = self.resp
        if resp is None:  # bytes nobody asked for: the connection cannot be trusted any more
            self.abort()
            return
        resp.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail(UpstreamProtocolError(
                f"upstream {self.pool.name!r} sent a response tunewatch could not read."))

    def eof_received(self) -> bool | None:
        resp = self.resp
        if resp is not None and resp.status and not resp.framed and not resp.complete:
            with contextlib.suppress(httptools.HttpParserError):  # a close-delimited body ends here
                self.parser.feed_data(b"")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.lost(self)
        resp = self.resp
        if resp is not None and not resp.complete:
            self._fail(UpstreamProtocolError(
                f"upstream {self.pool.name!r} closed the connection before the response was complete."))

    def pause_writing(self) -> None:  # a request body bigger than the socket buffer: rare, harmless
        pass

    def resume_writing(self) -> None:
        pass

    # -- httptools callbacks --------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        resp: Response = self.resp  # type: ignore[assignment]  # set while parsing
        name = name.lower()
        if name == b"content-length" or name == b"transfer-encoding":
            resp.framed = True
        resp.headers.append((name, value))

    def on_headers_complete(self) -> None:
        resp: Response = self.resp  # type: ignore[assignment]
        resp.status = self.parser.get_status_code()
        resp.keep_alive = self.parser.should_keep_alive()
        resp._wake()

    def on_body(self, body: bytes) -> None:
        resp: Response = self.resp  # type: ignore[assignment]
        resp._chunks.append(body)
        resp.unread += len(body)
        if resp.unread > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        resp._wake()

    def on_message_complete(self) -> None:
        resp: Response = self.resp  # type: ignore[assignment]
        resp.complete = True
        resp._wake()

    # -- used by Pool and Response --------------------------------------------------------------

    def send(self, resp: Response, data: bytes) -> None:
        self.resp = resp
        self.uses += 1
        self.transport.write(data)  # type: ignore[union-attr]

    async def wait(self, resp: Response) -> None:
        """Until ``resp`` has news (headers, body, end, error), at most ``read_s``."""
        loop = self.pool.loop
        waiter = resp._waiter = loop.create_future()
        timer = loop.call_later(self.pool.read_s, self._timed_out, resp)
        try:
            await waiter
        finally:
            timer.cancel()

    def _timed_out(self, resp: Response) -> None:
        if self.resp is resp and resp._error is None:
            self._fail(UpstreamTimeoutError(
                f"upstream {self.pool.name!r} did not answer in time; retry, or raise its read timeout."))

    def _fail(self, error: UpstreamError) -> None:
        resp = self.resp
        if resp is not None and resp._error is None:
            resp._error = error
            resp._wake()
        self.abort()

    def resume(self) -> None:
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self.transport.resume_reading()

    def finish(self, resp: Response, *, reusable: bool) -> None:
        if self.resp is resp:
            self.resp = None
        if reusable and not self.closed:
            self.pool.put(self)
        else:
            self.abort()

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()
            self.pool.lost(self)


class Pool:
    """Up to ``max_connections`` kept-alive connections to one origin."""

    def __init__(
        self,
        name: str,
        origin: Origin,
        *,
        max_connections: int,
        connect_s: float,
        read_s: float,
        pool_s: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self.origin = origin
        self.max_connections = max_connections
        self.connect_s = connect_s
        self.read_s = read_s
        self.pool_s = pool_s
        self._ssl = ssl_context if ssl_context is not None else (
            ssl.create_default_context() if origin.scheme == "https" else None)
        self._idle: list[_Conn] = []
        self._open: set[_Conn] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    @property
    def size(self) -> int:
        """Open connections (idle and busy)."""
        return len(self._open)

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def request(self, data: bytes) -> Response:
        """Send ``data`` (a whole HTTP/1.1 request); returns once the response's headers are in."""
        conn = await self._acquire()
        if conn.uses:
            try:
                return await self._exchange(conn, data, kept_alive=True)
            except _StaleConnectionError:  # the server closed it while idle: once more, on a new one
                conn = await self._connect()
        return await self._exchange(conn, data, kept_alive=False)

    async def _exchange(self, conn: _Conn, data: bytes, *, kept_alive: bool) -> Response:
        resp = Response(conn)
        try:
            conn.send(resp, data)
            while not resp.status:
                if resp._error is not None:
                    raise resp._error
                await conn.wait(resp)
        except UpstreamProtocolError:
            resp.release()
            if kept_alive and not resp.got_bytes:
                raise _StaleConnectionError from None
            raise
        except BaseException:
            resp.release()
            raise
        return resp

    async def _acquire(self) -> _Conn:
        conn = self._pop_idle()
        if conn is not None:
            return conn
        if len(self._open) < self.max_connections:
            return await self._connect()
        deadline = self.loop.time() + self.pool_s
        while True:  # every connection is busy: wait for one to come back or close
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except TimeoutError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken as the time ran out: the connection goes to the next in line
                raise UpstreamTimeoutError(
                    f"all {self.max_connections} connections to upstream {self.name!r} stayed busy for "
                    f"{self.pool_s:g} s; raise its max_connections or pool_s.") from None
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            conn = self._pop_idle()
            if conn is not None:
                return conn
            if len(self._open) < self.max_connections:
                return await self._connect()

    def _pop_idle(self) -> _Conn | None:
        idle = self._idle
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_S:
                return conn
            conn.abort()
        return None

    async def _connect(self) -> _Conn:
        if self._closing:
            raise UpstreamUnavailableError(f"upstream {self.name!r}: tunewatch is shutting down.")
        conn = _Conn(self)
        self._open.add(conn)
        origin = self.origin
        try:
            async with asyncio.timeout(self.connect_s):
                await self.loop.create_connection(
                    lambda: conn, origin.host, origin.port, ssl=self._ssl,
                    server_hostname=origin.host if self._ssl is not None else None)
        except TimeoutError:
            self.lost(conn)
            raise UpstreamTimeoutError(
                f"cannot connect to upstream {self.name!r} within {self.connect_s:g} s; check that it is "
                "reachable, or raise its connect timeout.") from None
        except (OSError, ssl.SSLError) as exc:
            self.lost(conn)
            raise UpstreamUnavailableError(
                f"cannot connect to upstream {self.name!r}; check that it is running "
                f"({type(exc).__name__}).") from None
        except BaseException:
            conn.abort()
            raise
        return conn

    def put(self, conn: _Conn) -> None:
        if self._closing:
            conn.abort()
            return
        conn.idle_since = time.monotonic()
        self._idle.append(conn)
        self._wake_one()

    def lost(self, conn: _Conn) -> None:
        if conn in self._open:
            self._open.discard(conn)
            with contextlib.suppress(ValueError):
                self._idle.remove(conn)
            self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        """Close every connection; requests in flight fail with a protocol error."""
        self._closing = True
        for conn in list(self._open):
            conn.abort()
        self._idle.clear()
