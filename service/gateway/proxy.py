"""The hot path: a plain ASGI app serving the OpenAI and Azure routes in front of FastAPI.

``Gateway.__call__`` dispatches on the path: chat completions, embeddings and the model list are
served here with no framework in the way; everything else (admin, feedback, metrics, health) goes
to the fallback app. A chat completion is: auth → parse (orjson; model, stream, user) → sticky arm
→ the client's bytes forwarded with ``model`` swapped → the upstream's bytes streamed back as they
arrive → metrics and ``recorder.put_nowait(record)`` after the last byte. Nothing here touches the
database, the judge or the disk.

Must not import: store, quality, drift, alerts, rollout (see DESIGN.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from itertools import count
from typing import Any
from zlib import crc32

from service.errors import (
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    TunewatchError,
)
from service.gateway.arms import ExperimentRoute, RoutingTable
from service.gateway.auth import KeyChecker, key_from_headers
from service.gateway.body import last_user_text, parse_chat
from service.gateway.errors import error_headers, render
from service.gateway.forward import Exchange, forward
from service.gateway.passthrough import embeddings, models
from service.gateway.upstream import Upstream
from service.h1.asgi import ASGIApp, Receive, Scope, Send
from service.telemetry.metrics import HotPathCollector
from service.telemetry.recorder import Recorder

__all__ = ["Gateway"]

log = logging.getLogger(__name__)


_CHAT = "/v1/chat/completions"
_AZURE = "/openai/deployments/"
_SHADOW_MAX_INFLIGHT = 64


class Gateway:
    """The raw ASGI handler of the proxy routes; ``fallback`` serves every other path."""

    def __init__(
        self,
        *,
        fallback: ASGIApp,
        table: RoutingTable,
        upstreams: Mapping[str, Upstream],
        client_keys: KeyChecker,
        recorder: Recorder,
        metrics: HotPathCollector,
        max_body_bytes: int,
    ) -> None:
        self._fallback = fallback
        self.table = table
        self.routes = table.routes  # the same dict: admin changes are seen at once
        self.upstreams = upstreams
        self._keys = client_keys
        self._recorder = recorder
        self._metrics = metrics
        self._max_body = max_body_bytes
        self._ids = count(1)
        self._id_prefix = os.urandom(4).hex()
        self._shadows: set[asyncio.Task[None]] = set()
        self._stats = {
            (name, arm.name): metrics.bind(name, arm.name) for name, r in self.routes.items() for arm in r.arms
        }
        self._unrouted = metrics.bind("other", "other")

    @property
    def fallback(self) -> ASGIApp:
        return self._fallback

    # -- ASGI -----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self._fallback(scope, receive, send)
        path: str = scope["path"]
        if path == _CHAT:
            return await self._post_only(scope, receive, send, None)
        if path.startswith(_AZURE):
            name, _, tail = path[len(_AZURE):].partition("/")
            if tail == "chat/completions" and name:
                return await self._post_only(scope, receive, send, name)
            if tail == "embeddings" and name:
                return await self._embeddings(scope, receive, send, name)
        elif path == "/v1/embeddings":
            return await self._embeddings(scope, receive, send, None)
        elif path == "/v1/models":
            return await self._models(scope, receive, send)
        return await self._fallback(scope, receive, send)

    async def _post_only(self, scope: Scope, receive: Receive, send: Send, deployment: str | None) -> None:
        if scope["method"] != "POST":
            return await self._reject(send, MethodNotAllowedError(
                f"{scope['method']} is not allowed on {scope['path']}; use POST."), self._new_id())
        await self._chat(scope, receive, send, deployment)

    # -- chat completions -----------------------------------------------------------------------

    async def _chat(self, scope: Scope, receive: Receive, send: Send, deployment: str | None) -> None:
        t0 = time.perf_counter()
        started_at = time.time()
        rid = self._new_id()
        headers = dict(scope["headers"])
        try:
            self._check_key(headers)
            if deployment is not None:
                _require_api_version(scope)
            raw = await read_body(receive, headers.get(b"content-length"), self._max_body)
            req = parse_chat(raw, model_required=deployment is None)
            name = deployment or req.model
            route = self.routes.get(name)  # type: ignore[arg-type]  # one of the two is set
            if route is None:
                raise NotFoundError(
                    f"The model `{name}` does not exist; tunewatch serves the experiments "
                    f"{sorted(self.routes)}.", param="model", code="model_not_found")
        except TunewatchError as exc:
            return await self._reject(send, exc, rid)
        unit = req.user
        if unit is None and route.sticky_header is not None:
            sticky = headers.get(route.sticky_header)
            unit = sticky.decode("latin-1") if sticky else None
        arm = route.choose(unit)
        rate = arm.sample_rate
        sampled = rate > 0.0 and crc32(rid.encode()) < rate * 4294967296.0
        messages = req.data["messages"]
        ex = Exchange(
            request_id=rid, started_at=started_at, t0=t0, route=route, arm=arm,
            upstream=self.upstreams[arm.upstream], req=req, raw=raw, unit_id=unit, sampled=sampled,
            query=last_user_text(messages), stats=self._stats[(route.name, arm.name)],
            context=_context(headers, req.data),
        )
        if route.stage == "shadow" and route.treatment != arm.name:
            self._mirror(ex, route)
        await forward(ex, receive, send, self._recorder)

    def _mirror(self, ex: Exchange, route: ExperimentRoute) -> None:
        """Send a copy to the treatment arm; its answer is recorded, never returned (shadow stage)."""
        if len(self._shadows) >= _SHADOW_MAX_INFLIGHT:
            return
        arm = route.arm(route.treatment)
        copy = Exchange(
            request_id=self._new_id(), started_at=ex.started_at, t0=time.perf_counter(), route=route,
            arm=arm, upstream=self.upstreams[arm.upstream], req=ex.req, raw=ex.raw, unit_id=ex.unit_id,
            sampled=ex.sampled, query=ex.query, stats=self._stats[(route.name, arm.name)],
            context=ex.context, shadow=True,
        )
        task = asyncio.get_running_loop().create_task(forward(copy, None, None, self._recorder))
        self._shadows.add(task)
        task.add_done_callback(self._shadows.discard)

    async def close(self) -> None:
        """Wait for mirrored requests, then close every upstream pool."""
        if self._shadows:
            await asyncio.wait(set(self._shadows), timeout=5.0)
            for task in self._shadows:
                task.cancel()
        for upstream in self.upstreams.values():
            await upstream.close()

    # -- the other routes -----------------------------------------------------------------------

    async def _embeddings(self, scope: Scope, receive: Receive, send: Send, deployment: str | None) -> None:
        rid = self._new_id()
        if scope["method"] != "POST":
            return await self._reject(send, MethodNotAllowedError(
                f"{scope['method']} is not allowed on {scope['path']}; use POST."), rid)
        headers = dict(scope["headers"])
        try:
            self._check_key(headers)
            raw = await read_body(receive, headers.get(b"content-length"), self._max_body)
            await embeddings(raw, deployment, self.routes, self.upstreams, send, rid)
        except TunewatchError as exc:
            await self._reject(send, exc, rid)

    async def _models(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = self._new_id()
        headers = dict(scope["headers"])
        try:
            if scope["method"] != "GET":
                raise MethodNotAllowedError(f"{scope['method']} is not allowed on /v1/models; use GET.")
            self._check_key(headers)
        except TunewatchError as exc:
            return await self._reject(send, exc, rid)
        await models(self.routes, send, rid)

    # -- helpers --------------------------------------------------------------------------------

    def _check_key(self, headers: Mapping[bytes, bytes]) -> None:
        """The client key, as ``Authorization: Bearer`` or Azure's ``api-key``; 401 otherwise."""
        self._keys.check(key_from_headers(headers.get(b"authorization"), headers.get(b"api-key")))

    def _new_id(self) -> str:
        return f"tw-{self._id_prefix}{next(self._ids):08x}"

    async def _reject(self, send: Send, exc: TunewatchError, rid: str) -> None:
        self._unrouted.count(exc.status, False)
        headers = [*error_headers(exc), (b"x-request-id", rid.encode())]
        await send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": render(exc), "more_body": False})


async def read_body(receive: Receive, content_length: bytes | None, limit: int) -> bytes:
    """The whole request body, refusing more than ``limit`` bytes with a 413."""
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise PayloadTooLargeError(
            f"The request body is {int(content_length)} bytes; the limit is {limit} "
            "(TUNEWATCH_MAX_BODY_BYTES).")
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    parts = [body]
    size = len(body)
    while message.get("more_body"):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(
                f"The request body is over the limit of {limit} bytes (TUNEWATCH_MAX_BODY_BYTES).")
        parts.append(chunk)
    return b"".join(parts)


def _require_api_version(scope: Scope) -> None:
    if b"api-version=" not in scope.get("query_string", b""):
        raise InvalidRequestError("Azure routes need the `api-version` query parameter, e.g. ?api-version=2024-06-01.",
                                  param="api-version", code="missing_api_version")


def _context(headers: Mapping[bytes, bytes], data: Mapping[str, Any]) -> str | None:
    """Grounding context for the groundedness judge: ``metadata.tunewatch_context`` or a header."""
    meta = data.get("metadata")
    if isinstance(meta, dict):
        ctx = meta.get("tunewatch_context")
        if isinstance(ctx, str) and ctx:
            return ctx
    raw = headers.get(b"x-tunewatch-context")
    return raw.decode("utf-8", "replace") if raw else None
