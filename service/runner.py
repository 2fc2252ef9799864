"""Running the ASGI app on uvicorn (uvloop + httptools), on a socket we bind ourselves.

Binding first lets ``--port 0`` work: the caller learns the real port before the server starts,
and tests hand a bound socket over. One process: metrics live in it (no multiprocess mode).
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable

import uvicorn

from service.app import StartHook, build_service
from service.config import ExperimentsFile, Settings
from service.gateway.proxy import ASGIApp

__all__ = ["bind", "build_server", "run_service"]


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def build_server(app: ASGIApp, settings: Settings) -> uvicorn.Server:
    """A uvicorn server for ``app``: no access log, graceful shutdown bounded by the grace period."""
    config = uvicorn.Config(
        app,  # a plain ASGI 3 callable
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        proxy_headers=False,  # the client address is never used: skip uvicorn's middleware
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_s)),
        timeout_keep_alive=30,
        backlog=2048,
    )
    return uvicorn.Server(config)


def run_service(
    settings: Settings,
    experiments: ExperimentsFile,
    *,
    announce: Callable[[str], None] = print,
    sock: socket.socket | None = None,
    start_hooks: list[StartHook] | None = None,
) -> None:
    """Build the service and serve until SIGTERM/Ctrl-C (blocking); prints the bound address first."""
    sock = sock or bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    app = build_service(settings, experiments, start_hooks=start_hooks)
    announce(f"tunewatch listening on http://{host}:{port}")
    server = build_server(app, settings)
    # uvicorn re-raises the signal that stopped it once it has shut down gracefully; with the default
    # handlers that kills the process (-15) or raises KeyboardInterrupt. A stop we asked for is exit 0.
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stopped(signum: int, frame: object) -> None:
    """The signal uvicorn re-raises after its graceful shutdown: nothing left to do."""
