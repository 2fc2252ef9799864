"""OpenAI's JSON shapes: errors, completion objects, stream chunks, usage; built as plain dicts.

Field for field what api.openai.com sends (the official SDK parses them into its models), built
with no validation layer: the simulator must stay cheap.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, TypedDict

import orjson
from aiohttp import web

__all__ = [
    "SYSTEM_FINGERPRINT",
    "ErrorBody",
    "chunk",
    "completion",
    "error_body",
    "error_response",
    "json_response",
    "new_id",
    "sse",
    "usage",
]

SYSTEM_FINGERPRINT = "fp_sim0a1b2c3d"


class ErrorDetail(TypedDict):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(TypedDict):
    error: ErrorDetail


def error_body(
    message: str, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> ErrorBody:
    """``{"error": {message, type, param, code}}`` as OpenAI sends it."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response serialised with orjson."""
    return web.Response(
        body=orjson.dumps(obj), status=status, headers=headers, content_type="application/json"
    )


def error_response(
    status: int,
    message: str,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """An error in OpenAI's shape with ``status``."""
    return json_response(error_body(message, type_, param, code), status, headers)


def new_id(prefix: str) -> str:
    """A fresh object id such as ``chatcmpl-…`` (random: ids are unique even for equal answers)."""
    return f"{prefix}-{secrets.token_urlsafe(21)}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """A ``usage`` object with the token detail blocks OpenAI includes."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion(cid: str, model: str, choices: list[dict[str, Any]], usage_: dict[str, Any]) -> dict[str, Any]:
    """A ``chat.completion`` object."""
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage_,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def chunk(
    cid: str,
    created: int,
    model: str,
    choices: list[dict[str, Any]],
    with_usage: bool,
    usage_: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``chat.completion.chunk``; ``with_usage`` adds the ``usage`` key (null except on the last chunk)."""
    obj: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": choices,
    }
    if with_usage:
        obj["usage"] = usage_
    return obj


def sse(obj: Any) -> bytes:
    """One server-sent event carrying ``obj`` as JSON."""
    return b"data: " + orjson.dumps(obj) + b"\n\n"
