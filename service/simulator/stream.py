"""Sending a planned chat completion as server-sent events, and cutting a response short.

OpenAI's stream: a role chunk, content chunks (one word piece each), a finish chunk per choice,
then, only with ``stream_options.include_usage``, a usage chunk with ``"choices": []`` (every other
chunk then carries ``"usage": null``), then ``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from service.simulator import chat, faults
from service.simulator.wire import chunk, new_id, sse, usage

__all__ = ["cut_body", "send"]

#: sleeps shorter than this are batched into the next one (timer overhead would slow the stream)
_MIN_SLEEP_S = 0.005


async def cut_body(request: web.Request, body: bytes) -> web.StreamResponse:
    """Announce the whole body, send half, then abort the connection."""
    resp = web.StreamResponse(headers={"content-type": "application/json", "content-length": str(len(body))})
    await resp.prepare(request)
    await resp.write(body[: len(body) // 2])
    await asyncio.sleep(0.01)  # let the half reach the socket before the reset discards it
    faults.abort(request)
    return resp


def _chunks(req: chat.ChatRequest, plan: chat.Plan) -> list[tuple[dict[str, Any], float]]:
    """The stream's chunk payloads (``choices`` entries) with the tokens each one costs to generate."""
    head: list[tuple[dict[str, Any], float]] = []
    body: list[tuple[dict[str, Any], float]] = []
    for c in plan.choices:
        if c.tool_call is not None:
            fn = c.tool_call["function"]
            first = {
                "index": 0,
                "id": c.tool_call["id"],
                "type": "function",
                "function": {"name": fn["name"], "arguments": ""},
            }
            head.append(
                (
                    {
                        "index": c.index,
                        "delta": {
                            "role": "assistant",
                            "content": None,
                            "tool_calls": [first],
                            "refusal": None,
                        },
                        "logprobs": None,
                        "finish_reason": None,
                    },
                    0,
                )
            )
            args = fn["arguments"]
            body += [
                (
                    {
                        "index": c.index,
                        "delta": {"tool_calls": [{"index": 0, "function": {"arguments": p}}]},
                        "logprobs": None,
                        "finish_reason": None,
                    },
                    1,
                )
                for p in _split(args, 12)
            ]
            continue
        head.append(
            (
                {
                    "index": c.index,
                    "delta": {"role": "assistant", "content": "", "refusal": None},
                    "logprobs": c.logprobs_object([]),
                    "finish_reason": None,
                },
                0,
            )
        )
        for k, p in enumerate(c.pieces):
            lp = c.logprobs_object([c.logprobs[k]]) if c.logprobs is not None else None
            body.append(
                (
                    {"index": c.index, "delta": {"content": p}, "logprobs": lp, "finish_reason": None},
                    len(p) / 4,  # tokens, fractional: pieces are shorter than tokens on average
                )
            )
    if len(plan.choices) > 1:  # n > 1: choices progress together, as OpenAI interleaves them
        per: dict[int, list[tuple[dict[str, Any], float]]] = {}
        for item in body:
            per.setdefault(item[0]["index"], []).append(item)
        body = [x for group in _zip_longest(list(per.values())) for x in group]
    return head + body


def _split(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _zip_longest(groups: list[list[Any]]) -> list[list[Any]]:
    longest = max((len(g) for g in groups), default=0)
    return [[g[i] for g in groups if i < len(g)] for i in range(longest)]


async def send(
    request: web.Request,
    req: chat.ChatRequest,
    plan: chat.Plan,
    ttft_s: float,
    s_per_token: float,
    midstream_reset: bool,
) -> web.StreamResponse:
    """Send ``plan`` as SSE: role chunk now, content after ``ttft_s`` paced per token, finish, usage,
    ``[DONE]``; or abort the connection a third of the way through when ``midstream_reset``."""
    resp = web.StreamResponse(
        headers={"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
    )
    await resp.prepare(request)
    cid, created = new_id("chatcmpl"), int(time.time())
    items = _chunks(req, plan)
    n_head = len(plan.choices)  # the role chunks, sent at once
    cut_at = min(len(items), n_head + max(1, (len(items) - n_head) // 3)) if midstream_reset else None
    buffer: list[bytes] = []
    loop = asyncio.get_running_loop()
    due = loop.time()  # when the next chunk is due: pacing against the clock absorbs sleep overshoot
    try:
        for i, (choice, tokens) in enumerate(items):
            if i == cut_at:
                return await _abort_after(request, resp, buffer)
            if i >= n_head:
                # choices are generated side by side: n of them take as long as one
                due += (ttft_s if i == n_head else 0.0) + tokens * s_per_token / n_head
            wait = due - loop.time()
            if wait > _MIN_SLEEP_S:
                await _flush(resp, buffer)
                await asyncio.sleep(wait)
            buffer.append(sse(chunk(cid, created, req.model, [choice], req.include_usage)))
        if cut_at == len(items):
            return await _abort_after(request, resp, buffer)
        for c in plan.choices:
            done = {"index": c.index, "delta": {}, "logprobs": None, "finish_reason": c.finish_reason}
            buffer.append(sse(chunk(cid, created, req.model, [done], req.include_usage)))
        if req.include_usage:
            totals = usage(plan.prompt_tokens, plan.completion_tokens)
            buffer.append(sse(chunk(cid, created, req.model, [], True, totals)))
        buffer.append(b"data: [DONE]\n\n")
        await _flush(resp, buffer)
        await resp.write_eof()
    except ConnectionResetError:
        pass  # the client left mid-stream: nothing more to send, nobody to tell
    return resp


async def _flush(resp: web.StreamResponse, buffer: list[bytes]) -> None:
    if buffer:
        await resp.write(b"".join(buffer))
        buffer.clear()


async def _abort_after(
    request: web.Request, resp: web.StreamResponse, buffer: list[bytes]
) -> web.StreamResponse:
    """Send what is buffered, then drop the TCP connection mid-stream."""
    await _flush(resp, buffer)
    await asyncio.sleep(0.01)  # let those chunks leave before the reset
    faults.abort(request)
    return resp
