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
from email.utils import formatdate
from typing import Any

import uvloop

from service.h1.asgi import ASGIApp
from service.h1.connection import Connection
from service.h1.lifespan import Lifespan

__all__ = ["ASGIApp", "Server"]

log = logging.getLogger(__name__)



class Server:
    """Serves an ASGI app on sockets bound by the caller until :meth:`stop` (or SIGTERM/SIGINT)."""

    def __init__(self, app: ASGIApp, *, grace_s: float = 10.0, keep_alive_s: float = 30.0) -> None:
        self.app = app
        self.grace_s = grace_s
        self.keep_alive_s = keep_alive_s
        self.state: dict[str, Any] = {}
        self.connections: set[Connection] = set()
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
        lifespan = Lifespan(self.app, self.state)
        failure = await lifespan.startup()
        if failure is not None:
            log.error("server.startup_failed", extra={"reason": failure})
            raise SystemExit(3)
        signals = self._install_signals()
        self._tick()
        servers = [await self._loop.create_server(lambda: Connection(self), sock=sock, backlog=2048)
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

    def forget(self, conn: Connection) -> None:
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
