"""Server-sent events as the OpenAI API frames them, read on the fly.

:class:`StreamInspector` takes the upstream's chunks as they arrive and returns the bytes to send
on: every complete event, unchanged, in order, except the usage-only chunk when the proxy asked
for usage on the client's behalf. A partial event is held until its end arrives. On the way it
notes the first content chunk (time to first token), the usage, an ``error`` event, and, when the
request is sampled, the answer's text.

Events end with a blank line: ``\\n\\n``, ``\\r\\n\\r\\n`` or ``\\r\\r`` (the SDK accepts all three).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

__all__ = ["StreamInspector", "error_event"]

_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
# a delta that carries text or tool-call arguments: the first token has arrived
_NEEDS_READING = re.compile(rb'"usage"\s*:\s*\{|"error"\s*:')
_CONTENT = re.compile(rb'"(?:content|arguments|refusal|reasoning_content)"\s*:\s*"(?!")')
_DATA_PREFIX = re.compile(rb"^data:\s?", re.MULTILINE)


class StreamInspector:
    """Frames an SSE byte stream into events and watches what the proxy must know."""

    __slots__ = ("_buf", "_strip_usage", "_texts", "first_content", "usage", "error", "done", "logprobs")

    def __init__(self, *, strip_usage: bool, keep_text: bool) -> None:
        self._buf = b""
        self._strip_usage = strip_usage
        self._texts: list[str] | None = [] if keep_text else None
        self.first_content = False
        self.usage: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        self.done = False
        self.logprobs: list[float] | None = [] if keep_text else None

    def feed(self, chunk: bytes) -> bytes:
        """The complete events of ``held + chunk`` to forward; holds back an incomplete tail."""
        data = self._buf + chunk if self._buf else chunk
        cut = _last_event_end(data)
        if cut < len(data):
            self._buf = data[cut:]
            data = data[:cut]
        else:
            self._buf = b""
        if not data:
            return data
        if not self.first_content and _CONTENT.search(data):
            self.first_content = True
        if self._texts is None:
            if b"data: [DONE]" in data:
                self.done = True
            if b'"usage"' not in data and b'"error"' not in data:
                return data  # fast path: nothing in these events needs reading
            return self._targeted(data)
        return self._events(data)

    def _targeted(self, data: bytes) -> bytes:
        """Read only the events that carry a usage object or an error (the text is not kept)."""
        cut: tuple[int, int] | None = None
        for m in _NEEDS_READING.finditer(data):
            start = _event_start(data, m.start())
            end_match = _EVENT_END.search(data, m.end())
            end = end_match.end() if end_match else len(data)
            if not self._inspect(data[start:end]):
                cut = (start, end)
        if cut is None:
            return data
        return data[: cut[0]] + data[cut[1] :]

    def _events(self, data: bytes) -> bytes:
        """Inspect event by event; drop the ones ``_inspect`` refuses."""
        start, pos = 0, 0
        kept: list[bytes] = []
        for m in _EVENT_END.finditer(data):
            end = m.end()
            if not self._inspect(data[start:end]):
                kept.append(data[pos:start])
                pos = end
            start = end
        if pos == 0:
            return data
        kept.append(data[pos:])
        return b"".join(kept)

    def finish(self) -> bytes:
        """Whatever is left when the upstream closes (an unterminated last event)."""
        rest, self._buf = self._buf, b""
        if rest.strip() and self._inspect(rest):
            return rest
        return b""

    @property
    def text(self) -> str | None:
        return "".join(self._texts) if self._texts is not None else None

    def _inspect(self, event: bytes) -> bool:
        """Note what ``event`` says; False when it must not be forwarded."""
        if self._texts is None and b'"usage"' not in event and b'"error"' not in event:
            if event.startswith(b"data: [DONE]"):
                self.done = True
            return True
        payload = _payload(event)
        if payload is None:
            return True
        if payload == b"[DONE]":
            self.done = True
            return True
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return True
        if not isinstance(obj, dict):
            return True
        if isinstance(obj.get("error"), dict):
            self.error = obj["error"]
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        choices = obj.get("choices")
        if self._texts is not None and isinstance(choices, list):
            self._collect(choices)
        # the usage-only chunk the client did not ask for
        return not (self._strip_usage and isinstance(usage, dict) and not choices)

    def _collect(self, choices: list[Any]) -> None:
        assert self._texts is not None
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                self._texts.append(delta["content"])
            lp = choice.get("logprobs")
            if self.logprobs is not None and isinstance(lp, dict) and isinstance(lp.get("content"), list):
                self.logprobs.extend(t["logprob"] for t in lp["content"] if isinstance(t, dict)
                                     and isinstance(t.get("logprob"), int | float))


def _last_event_end(data: bytes) -> int:
    """The offset just past the last complete event in ``data`` (0 when there is none)."""
    cut = data.rfind(b"\n\n")
    cut = cut + 2 if cut >= 0 else 0
    crlf = data.rfind(b"\r\n\r\n")
    if crlf >= 0 and crlf + 4 > cut:
        cut = crlf + 4
    cr = data.rfind(b"\r\r")
    if cr >= 0 and cr + 2 > cut:
        cut = cr + 2
    return cut


def _event_start(data: bytes, pos: int) -> int:
    """The offset where the event holding ``pos`` begins."""
    start = 0
    for sep in (b"\n\n", b"\r\n\r\n", b"\r\r"):
        found = data.rfind(sep, 0, pos)
        if found >= 0 and found + len(sep) > start:
            start = found + len(sep)
    return start


def _payload(event: bytes) -> bytes | None:
    """The joined ``data:`` lines of one event, or None when it has none (a comment, a ping)."""
    lines = [ln for ln in event.splitlines() if ln.startswith(b"data:")]
    if not lines:
        return None
    return b"\n".join(_DATA_PREFIX.sub(b"", ln, count=1) for ln in lines).strip()


def error_event(message: str, type_: str, code: str | None) -> bytes:
    """A final SSE event with an OpenAI ``error`` object; the SDK raises ``APIError`` on it."""
    body = orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})
    return b"data: " + body + b"\n\n"
