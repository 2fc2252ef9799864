"""A real HTTP receiver on loopback that checks signatures with the recipe of docs/webhooks.md.

The receiver runs ``http.server`` in a thread on ``127.0.0.1:0``; each request is verified with
``verify_tunewatch_webhook`` taken from the documentation (so a recipe that stopped matching what
we send fails these tests), against the test's hand-moved clock (retries are hours apart in
test time, seconds apart in real time). It answers 401 to a bad signature, else the next
scripted status (204 when the script is empty).
"""

from __future__ import annotations

import functools
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.alerts.sender import build_http_client
from service.store.db import Database
from service.store.migrate import upgrade

DOCS = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"
SECRET = b"it-is-a-test-secret"
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@functools.cache
def docs_recipe() -> Callable[..., bool]:
    """``verify_tunewatch_webhook`` exactly as docs/webhooks.md writes it (its first python block)."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(next(b for b in blocks if "def verify_tunewatch_webhook" in b), namespace)
    recipe: Callable[..., bool] = namespace["verify_tunewatch_webhook"]
    return recipe


@dataclass
class FakeClock:
    current: datetime = T0

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    status: int


@dataclass
class Hook:
    """A webhook receiver. ``script``: statuses to answer, in order (then 204)."""

    clock: FakeClock
    secret: bytes = SECRET
    port: int = 0
    received: list[Received] = field(default_factory=list)
    script: deque[int | tuple[int, dict[str, str]]] = field(default_factory=deque)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def verified(self) -> list[Received]:
        return [r for r in self.received if r.verified]

    def start(self) -> Hook:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                ok = docs_recipe()(
                    hook.secret,
                    self.headers.get("x-tunewatch-timestamp", ""),
                    self.headers.get("x-tunewatch-signature", ""),
                    body,
                    now=hook.clock.now().timestamp(),
                )
                answer = (hook.script.popleft() if hook.script else 204) if ok else 401
                status, headers = answer if isinstance(answer, tuple) else (answer, {})
                hook.received.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body, ok, status)
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0" if status < 400 else "11")
                self.end_headers()
                if status >= 400:
                    self.wfile.write(b"not today\n\n")

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: pytest shows stderr of failing tests only, and this is noise

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-hook", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def hook(clock: FakeClock) -> Iterator[Hook]:
    receiver = Hook(clock).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def http_client() -> Iterator[httpx.Client]:
    with build_http_client() as client:
        yield client


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    """SQLite only, for tests of formats and HTTP behaviour (the outbox tests use both dialects)."""
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()
