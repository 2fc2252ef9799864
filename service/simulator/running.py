"""Running a simulator: in the foreground (``serve``) or on a daemon thread (``start_in_thread``).

Both bind the socket themselves before serving, so port 0 works and the real port is known at once.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
from types import TracebackType

import uvloop
from aiohttp import web

from service.simulator.server import STATE, build_app
from service.simulator.settings import SimConfig, override

__all__ = ["RunningSimulator", "serve", "start_in_thread"]

#: how long a stop waits for in-flight requests (a hung ``#sim:timeout`` one is then cancelled)
_SHUTDOWN_S = 0.5


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _runner(app: web.Application) -> web.AppRunner:
    # handler_cancellation: a client that hangs up cancels its handler, so a hung #sim:timeout
    # request ends when the client gives up instead of 30 s later
    return web.AppRunner(
        app, handle_signals=False, access_log=None, handler_cancellation=True, shutdown_timeout=_SHUTDOWN_S
    )


class RunningSimulator:
    """A simulator serving on its own event loop in a daemon thread; ``stop()`` or use ``with``."""

    def __init__(
        self,
        profile: str,
        url: str,
        app: web.Application,
        loop: asyncio.AbstractEventLoop,
        thread: threading.Thread,
    ) -> None:
        self.profile = profile
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self._app = app
        self._loop = loop
        self._thread = thread

    def reconfigure(self, **changes: object) -> SimConfig:
        """Replace some ``SimConfig`` fields at run time, as ``POST /_sim/config`` does (thread-safe).

        Raises:
            ConfigOverrideError: unknown field or bad value.
        """
        state = self._app[STATE]
        new = override(state.config, changes)
        self._loop.call_soon_threadsafe(setattr, state, "config", new)
        return new

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving and wait (at most ``timeout_s``) for the thread to finish. Idempotent; blocks."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout_s)

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningSimulator(profile={self.profile!r}, url={self.url!r})"


def start_in_thread(
    profile: str, config: SimConfig, host: str = "127.0.0.1", port: int = 0
) -> RunningSimulator:
    """Serve a ``profile`` simulator on ``host:port`` (0: a free port) from a daemon thread.

    Returns once it accepts connections. Blocks for at most a few milliseconds.

    Raises:
        ValueError: unknown profile.
        OSError: the address cannot be bound.
        RuntimeError: the server did not start within 10 s.
    """
    app = build_app(profile, config)
    sock = _bind(host, port)
    loop = uvloop.new_event_loop()
    runner = _runner(app)
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            try:
                loop.run_until_complete(runner.setup())
                loop.run_until_complete(web.SockSite(runner, sock).start())
            except BaseException as exc:  # handed to the starting thread, which raises it
                failure.append(exc)
                return
            finally:
                started.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
        finally:
            sock.close()
            loop.close()

    thread = threading.Thread(target=run, name=f"simulator-{profile}", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError(f"the {profile} simulator did not start within 10 s")
    if failure:
        raise failure[0]
    return RunningSimulator(profile, _url(sock), app, loop, thread)


async def _serve(app: web.Application, sock: socket.socket) -> None:
    runner = _runner(app)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        print(f"listening on {_url(sock)}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def serve(host: str, port: int, profile: str, config: SimConfig) -> None:
    """Serve a ``profile`` simulator in the foreground until SIGTERM or SIGINT (blocking, uvloop).

    The first line on stdout is ``listening on http://HOST:PORT`` (flushed), so a parent that
    started it with port 0 can read the real port.

    Raises:
        ValueError: unknown profile.
        OSError: the address cannot be bound.
    """
    app = build_app(profile, config)
    sock = _bind(host, port)
    try:
        uvloop.run(_serve(app, sock))
    finally:
        sock.close()
