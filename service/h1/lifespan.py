"""The ASGI lifespan protocol, run as one task for the server's life: startup before serving,
shutdown after the last connection closed (the app's shutdown flushes the records).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from service.h1.asgi import ASGI_VERSION, ASGIApp, Message

__all__ = ["Lifespan"]

log = logging.getLogger("service.h1.server")



class Lifespan:
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
        scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self._state}
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
