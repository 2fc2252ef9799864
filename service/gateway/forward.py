"""One chat completion forwarded: upstream call, bytes streamed back, metrics, record.

The upstream request is opened inside :func:`forward`, so a cancel (the client hung up) closes it.
A watcher on ``receive()``, started once a request has run for 0.2 s, notices the hang-up while we
wait on the upstream and cancels this task; the cancel is ours, so it is noted
(``client_disconnected``) and not re-raised into the server. The outcome lives in an ``_Outcome``
and is recorded once, in ``finally``, with the synchronous ``recorder.put_nowait``, which cannot be
cancelled half-way: right after the last send, which on our server (``service/h1/server.py``)
writes without yielding, so the record is queued in the same step of the loop as the answer's
last bytes, before the client can ask about it (feedback), and its cost is off the answer's time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson

from service.errors import TunewatchError, UpstreamError, UpstreamProtocolError
from service.gateway.arms import ArmRoute, ExperimentRoute
from service.gateway.body import ChatRequest, rewrite
from service.gateway.errors import error_headers, render
from service.gateway.sse import StreamInspector, error_event
from service.gateway.upstream import PASSED_HEADERS, Upstream
from service.h1.asgi import Message, Receive, Send
from service.h1.client import Response
from service.telemetry.metrics import ArmStats
from service.telemetry.recorder import Record, Recorder

__all__ = ["Exchange", "forward"]

_PASSED = frozenset(h.encode() for h in PASSED_HEADERS)
_SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
_END = {"type": "http.response.body", "body": b"", "more_body": False}
#: a request still running after this long starts watching for the client's hang-up; watching every
#: request from its first microsecond costs a task each, and the quick ones finish before it matters
_WATCH_AFTER_S = 0.2


@dataclass(slots=True)
class Exchange:
    """A request on its way: what the gateway decided, and what forwarding needs to record."""

    request_id: str
    started_at: float
    t0: float
    route: ExperimentRoute
    arm: ArmRoute
    upstream: Upstream
    req: ChatRequest
    raw: bytes
    unit_id: str | None
    sampled: bool
    query: str | None
    stats: ArmStats
    context: str | None = None
    shadow: bool = False


class _Outcome:
    """What happened, filled in as it happens, recorded once by :func:`_record`."""

    __slots__ = ("closing", "disconnected", "error_kind", "logprob", "outcome", "recorded", "recorder", "status",
                 "text", "ttft", "upstream_s", "usage", "watch_handle", "watcher")

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.recorded = False
        self.status = 0
        self.outcome = "ok"
        self.error_kind: str | None = None
        self.ttft: float | None = None
        self.upstream_s: float | None = None
        self.usage: dict[str, Any] | None = None
        self.text: str | None = None
        self.logprob: float | None = None
        self.disconnected = False
        self.closing = False
        self.watcher: asyncio.Future[Message] | None = None
        self.watch_handle: asyncio.TimerHandle | None = None


async def _discard(message: Message) -> None:
    """The ``send`` of a shadow copy: its answer goes nowhere."""


async def forward(ex: Exchange, receive: Receive | None, send: Send | None, recorder: Recorder) -> None:
    """Forward ``ex`` to its upstream and stream the answer to ``send`` (None: a shadow copy)."""
    out = _Outcome(recorder)
    if receive is not None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        out.watch_handle = loop.call_later(_WATCH_AFTER_S, _watch_disconnect, receive, out, task)
    try:
        await _exchange(ex, send or _discard, out)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if out.disconnected and task is not None:
            task.uncancel()  # our own cancel, from the hang-up watcher: nothing above must see it
            out.outcome, out.status = "client_disconnected", 499
        else:
            out.outcome, out.status = "cancelled", out.status or 499
            raise
    finally:
        _stop(out)
        _record(ex, out)


def _watch_disconnect(receive: Receive, out: _Outcome, task: asyncio.Task[Any] | None) -> None:
    """Start listening for the client's hang-up (a request still running after ``_WATCH_AFTER_S``)."""
    if out.closing:
        return
    watcher = asyncio.ensure_future(receive())

    def on_message(fut: asyncio.Future[Message]) -> None:
        if out.closing or fut.cancelled() or fut.exception() is not None:
            return
        if fut.result().get("type") == "http.disconnect" and task is not None:
            out.disconnected = True
            task.cancel()

    watcher.add_done_callback(on_message)
    out.watcher = watcher


def _headers(ex: Exchange, resp: Response | None) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-request-id", ex.request_id.encode()),
        (b"x-tunewatch-arm", ex.arm.name.encode()),
        (b"x-tunewatch-experiment", ex.route.name.encode()),
    ]
    if resp is not None:
        for key, value in resp.headers:
            if key in _PASSED:
                headers.append((key, value))
    return headers


async def _exchange(ex: Exchange, send: Send, out: _Outcome) -> None:
    up = ex.upstream
    add_usage = ex.req.stream and not ex.req.wants_usage
    body = rewrite(ex.raw, ex.req, up.target_model, add_usage=add_usage)
    t_up = time.perf_counter()
    try:
        resp = await up.chat(body)
    except TunewatchError as exc:
        out.status, out.outcome, out.error_kind = exc.status, "upstream_error", exc.code
        await _send_error(ex, send, exc, out)
        return
    try:
        if ex.req.stream and resp.status == 200:
            await _stream(ex, resp, send, out, t_up, add_usage)
        else:
            await _whole(ex, resp, send, out, t_up)
    finally:
        resp.release()


async def _whole(ex: Exchange, resp: Response, send: Send, out: _Outcome, t_up: float) -> None:
    try:
        payload = await resp.read_all()
    except UpstreamError as err:
        out.status, out.outcome, out.error_kind = err.status, "upstream_error", err.code
        await _send_error(ex, send, err, out)
        return
    out.upstream_s = time.perf_counter() - t_up
    status = out.status = resp.status
    headers = _headers(ex, resp)
    headers.append((b"content-type", resp.header(b"content-type") or b"application/json"))
    headers.append((b"content-length", str(len(payload)).encode()))
    _stop(out)
    if status != 200:
        out.outcome, out.error_kind = "upstream_error", f"http_{status}"
    elif not ex.req.stream:
        _read_completion(payload, out, ex.sampled)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


async def _stream(ex: Exchange, resp: Response, send: Send, out: _Outcome, t_up: float,
                  add_usage: bool) -> None:
    out.status = 200
    await send({"type": "http.response.start", "status": 200, "headers": [*_headers(ex, resp), *_SSE_HEADERS]})
    insp = StreamInspector(strip_usage=add_usage, keep_text=ex.sampled)
    pending = b""
    try:
        while chunk := await resp.read():
            data = insp.feed(chunk)
            if out.ttft is None and insp.first_content:
                out.ttft = time.perf_counter() - ex.t0
            if resp.eof:
                pending = data  # the whole rest has arrived: it goes out with the last send
                break
            if data:
                await send({"type": "http.response.body", "body": data, "more_body": True})
        tail = pending + insp.finish()
        if not insp.done and insp.error is None:
            raise UpstreamProtocolError(f"upstream {ex.upstream.name!r} ended the stream without [DONE].")
    except UpstreamError as err:
        out.outcome, out.error_kind = "upstream_error", err.code
        tail = pending + error_event(err.message, err.type, err.code)
    out.upstream_s = time.perf_counter() - t_up
    out.usage, out.text = insp.usage, insp.text
    if insp.logprobs:
        out.logprob = sum(insp.logprobs) / len(insp.logprobs)
    if insp.error is not None:
        out.outcome, out.error_kind = "upstream_error", "stream_error_event"
    _stop(out)
    await send({"type": "http.response.body", "body": tail, "more_body": False} if tail else _END)


def _read_completion(payload: bytes, out: _Outcome, keep_text: bool) -> None:
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        out.error_kind = "invalid_json_from_upstream"
        return
    if not isinstance(obj, dict):
        return
    usage = obj.get("usage")
    if isinstance(usage, dict):
        out.usage = usage
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return
    first = choices[0]
    if keep_text:
        message = first.get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            out.text = message["content"]
    lp = first.get("logprobs")
    if isinstance(lp, dict) and isinstance(lp.get("content"), list) and lp["content"]:
        values = [t["logprob"] for t in lp["content"]
                  if isinstance(t, dict) and isinstance(t.get("logprob"), int | float)]
        if values:
            out.logprob = sum(values) / len(values)


def _stop(out: _Outcome) -> None:
    """Before the last send: once the response is complete, ``receive()`` reports a disconnect."""
    out.closing = True
    if out.watch_handle is not None:
        out.watch_handle.cancel()
    if out.watcher is not None:
        out.watcher.cancel()


async def _send_error(ex: Exchange, send: Send, exc: TunewatchError, out: _Outcome) -> None:
    _stop(out)
    headers = [*_headers(ex, None), *error_headers(exc)]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": render(exc), "more_body": False})


def _record(ex: Exchange, out: _Outcome) -> None:
    """Metrics and the record, once, after the last send (see the module docstring). Synchronous, so
    a cancel cannot cut it in half; the duration ends once the answer is handed to the server."""
    if out.recorded:
        return
    out.recorded = True
    latency = time.perf_counter() - ex.t0
    stats = ex.stats
    stream = ex.req.stream
    stats.count(out.status, stream)
    stats.duration["true" if stream else "false"].observe(latency)
    overhead = None
    if out.upstream_s is not None:
        stats.upstream.observe(out.upstream_s)
        overhead = max(0.0, latency - out.upstream_s)
        stats.overhead.observe(overhead)
    if out.ttft is not None:
        stats.ttft.observe(out.ttft)
    prompt = completion = None
    cost = None
    usage = out.usage
    if usage is not None:
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if isinstance(prompt, int) and isinstance(completion, int):
            cost = ex.upstream.cost(prompt, completion)
            stats.prompt_tokens += prompt
            stats.completion_tokens += completion
            stats.cost_usd += cost
        else:
            prompt = completion = None
    sampled = ex.sampled and out.status == 200
    out.recorder.put_nowait(Record(
        ex.request_id, ex.started_at, ex.route.name, ex.arm.name, ex.upstream.name, stream, out.status,
        out.outcome, out.error_kind, latency, out.ttft, out.upstream_s, overhead, prompt, completion, cost,
        ex.unit_id, sampled, ex.query,
        ex.req.data["messages"] if sampled else None,
        out.text if sampled else None,
        ex.context if sampled else None,
        out.logprob, ex.shadow,
    ))
