"""Failure injection: ``#sim:`` markers, seeded fault rates, and the failures themselves.

A marker in the last user message forces a fault for that request (so a test can trigger one
through a proxy); otherwise one uniform draw per chat request against the ``SimConfig`` rates:

=====================  ==========================================================================
``#sim:429``           429 ``rate_limit_exceeded`` with ``retry-after``
``#sim:500``           500 ``server_error``
``#sim:timeout``       no answer for ``hang_s`` (30 s), then the connection is closed
``#sim:reset``         the connection is closed before any response byte
``#sim:midstream-reset`` some of the body (SSE chunks, or half the JSON) is sent, then the TCP
                       connection is aborted
``#sim:slow=SECONDS``  the answer takes SECONDS (unscaled), streamed over that time
``#sim:garbage``       200 ``application/json`` whose body is not JSON
=====================  ==========================================================================
"""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import dataclass
from enum import StrEnum

from aiohttp import web

from service.simulator.settings import SimConfig
from service.simulator.wire import error_response

__all__ = [
    "Fault",
    "FaultSpec",
    "abort",
    "draw",
    "garbage",
    "hang",
    "rate_limited",
    "server_error",
    "spec_of",
]

_MARKER = re.compile(r"#sim:(429|500|timeout|reset|midstream-reset|garbage|slow=(\d+(?:\.\d+)?))")


class Fault(StrEnum):
    """The injectable failures (values are the marker names)."""

    RATE_LIMIT = "429"
    SERVER_ERROR = "500"
    TIMEOUT = "timeout"
    RESET = "reset"
    MIDSTREAM_RESET = "midstream-reset"
    GARBAGE = "garbage"


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """What a request asked for: a fault (or None) and a forced duration in seconds (or None)."""

    fault: Fault | None = None
    slow_s: float | None = None


def spec_of(text: str) -> FaultSpec:
    """The faults the ``#sim:`` markers of ``text`` ask for (the first fault marker wins)."""
    if "#sim:" not in text:  # the common case: no regex work
        return FaultSpec()
    fault: Fault | None = None
    slow: float | None = None
    for m in _MARKER.finditer(text):
        if m.group(2) is not None:
            slow = float(m.group(2))
        elif fault is None:
            fault = Fault(m.group(1))
    return FaultSpec(fault, slow)


def draw(rng: random.Random, config: SimConfig, stream: bool) -> Fault | None:
    """A fault drawn from ``config``'s rates, or None (one uniform draw, only when a rate is set)."""
    rates = (
        (Fault.RATE_LIMIT, config.rate_429),
        (Fault.SERVER_ERROR, config.rate_500),
        (Fault.TIMEOUT, config.rate_timeout),
        (Fault.RESET, config.rate_reset),
        (Fault.MIDSTREAM_RESET, config.rate_midstream_reset if stream else 0.0),
    )
    if not any(rate for _, rate in rates):
        return None
    u = rng.random()
    for fault, rate in rates:
        if u < rate:
            return fault
        u -= rate
    return None


def rate_limited(config: SimConfig) -> web.Response:
    """OpenAI's 429 with ``retry-after`` (whole seconds when whole, else fractional)."""
    after = f"{config.retry_after_s:g}"
    return error_response(
        429,
        f"Rate limit reached for requests on this simulated deployment. Please try again in {after}s.",
        "requests",
        None,
        "rate_limit_exceeded",
        headers={
            "retry-after": after,
            "retry-after-ms": str(int(config.retry_after_s * 1000)),
            "x-ratelimit-remaining-requests": "0",
        },
    )


def server_error() -> web.Response:
    """OpenAI's 500."""
    return error_response(
        500, "The server had an error while processing your request. Sorry about that!", "server_error"
    )


def abort(request: web.BaseRequest) -> None:
    """Drop the TCP connection now (RST where the OS allows): the client sees a reset, not an answer."""
    if request.transport is not None:
        request.transport.abort()


async def hang(request: web.BaseRequest, seconds: float) -> web.StreamResponse:
    """Answer nothing for ``seconds``, then drop the connection (cancelled early if the client leaves)."""
    await asyncio.sleep(seconds)
    abort(request)
    return web.Response(status=504)  # never reaches the client: the transport is gone


def garbage() -> web.Response:
    """200 that claims JSON but is not: what a broken gateway in front of a model sends."""
    return web.Response(body=b"<html><body>upstream says: {not json", content_type="application/json")
