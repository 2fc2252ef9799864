"""Running the ASGI app on our HTTP/1.1 server (``service/h1/server.py``, uvloop + httptools), on a
socket we bind ourselves.

Binding first lets ``--port 0`` work: the caller learns the real port before the server starts,
and tests hand a bound socket over. One process: metrics live in it (no multiprocess mode).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from service.app import StartHook, build_service
from service.config import ExperimentsFile, Settings
from service.h1.asgi import ASGIApp
from service.h1.server import Server

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


def build_server(app: ASGIApp, settings: Settings) -> Server:
    """The server for ``app``: no access log, graceful shutdown bounded by the grace period.

    uvicorn served here before; its per-request cost was about a quarter of the proxy's CPU under
    the benchmark, so the service runs on a server made for it (see ``service/h1/server.py``).
    """
    return Server(app, grace_s=max(1.0, settings.shutdown_grace_s), keep_alive_s=30.0)


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
    build_server(app, settings).run([sock])  # SIGTERM / Ctrl-C: a graceful stop, exit 0
