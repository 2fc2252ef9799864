"""The ASGI 3 types, named once for the server (``service/h1``) and the gateway's raw routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

__all__ = ["ASGI_VERSION", "ASGIApp", "Message", "Receive", "Scope", "Send"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: the ``asgi`` key of every scope the server makes
ASGI_VERSION: Final = {"version": "3.0", "spec_version": "2.3"}
