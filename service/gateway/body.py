"""Reading the few fields the proxy needs from a request body, and editing it at byte level.

The body is parsed once with orjson; nothing is modelled. The forwarded bytes are the client's own
with ``model`` swapped for the arm's deployment (found by a regex, checked against the parsed
value) and, for streams where the client did not ask for usage, ``stream_options.include_usage``
added. Only when a byte-level edit is ambiguous is the body re-serialised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from service.errors import InvalidRequestError

__all__ = ["ChatRequest", "last_user_text", "parse_chat", "rewrite"]

_MODEL_RE = re.compile(rb'"model"\s*:\s*"((?:[^"\\]|\\.)*)"')
_VALID_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


@dataclass(slots=True)
class ChatRequest:
    """The parsed body and the fields the hot path reads."""

    data: dict[str, Any]
    model: str | None
    stream: bool
    user: str | None
    wants_usage: bool


def _invalid(message: str, param: str | None = None) -> InvalidRequestError:
    return InvalidRequestError(message, param=param, code="invalid_request")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 that says what is wrong."""
    if not raw:
        raise _invalid("The request body is empty; send a JSON object such as "
                       '{"model": "...", "messages": [...]}.')
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _invalid(f"The request body is not valid JSON ({exc.msg} at byte {exc.pos}).") from None
    if not isinstance(data, dict):
        raise _invalid(f"The request body must be a JSON object, not {type(data).__name__}.")
    return data


def parse_chat(raw: bytes, *, model_required: bool = True) -> ChatRequest:
    """Parse and check a chat-completions body; raises ``InvalidRequestError`` (400)."""
    data = parse_json_object(raw)
    model = data.get("model")
    if model is None:
        if model_required:
            raise _invalid("you must provide a model parameter: the name of an experiment, e.g. \"demo\".", "model")
    elif not isinstance(model, str) or not model:
        raise _invalid("`model` must be a non-empty string naming an experiment.", "model")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        what = "missing" if messages is None else f"a {type(messages).__name__}"
        raise _invalid(f"`messages` must be a non-empty array of message objects; it is {what}.", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in _VALID_ROLES:
            raise _invalid(
                f"messages[{i}] must be an object with a `role` of {sorted(_VALID_ROLES)}.", f"messages[{i}]"
            )
    stream = data.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _invalid("`stream` must be true or false.", "stream")
    user = data.get("user")
    if user is not None and not isinstance(user, str):
        raise _invalid("`user` must be a string.", "user")
    opts = data.get("stream_options")
    if opts is not None and not isinstance(opts, dict):
        raise _invalid("`stream_options` must be an object.", "stream_options")
    wants_usage = bool(opts and opts.get("include_usage") is True)
    return ChatRequest(data, model, stream, user or None, wants_usage)


def rewrite(raw: bytes, req: ChatRequest, target_model: str, *, add_usage: bool) -> bytes:
    """The bytes to forward: ``model`` set to ``target_model``; ``include_usage`` added if asked."""
    out = raw
    if req.model != target_model:
        out = _swap_model(out, req, target_model)
    if add_usage:
        if "stream_options" in req.data:
            data = orjson.loads(out)
            data["stream_options"] = {**data["stream_options"], "include_usage": True}
            return orjson.dumps(data)
        brace = out.index(b"{")
        out = out[: brace + 1] + b'"stream_options":{"include_usage":true},' + out[brace + 1 :]
    return out


def _swap_model(raw: bytes, req: ChatRequest, target_model: str) -> bytes:
    new = orjson.dumps(target_model)
    if req.model is None:  # Azure route: the body may have no model
        brace = raw.index(b"{")
        return raw[: brace + 1] + b'"model":' + new + b"," + raw[brace + 1 :]
    matches = [m for m in _MODEL_RE.finditer(raw) if orjson.loads(b'"' + m.group(1) + b'"') == req.model]
    if len(matches) == 1:  # the top-level key, unambiguous: swap its value in place
        m = matches[0]
        return raw[: m.start(1) - 1] + new + raw[m.end(1) + 1 :]
    data = dict(req.data)
    data["model"] = target_model
    return orjson.dumps(data)


def last_user_text(messages: list[Any]) -> str | None:
    """The text of the last user message (text parts joined), for out-of-domain scoring."""
    for m in reversed(messages):
        if m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
            return "\n".join(p for p in parts if isinstance(p, str)) or None
        return None
    return None
