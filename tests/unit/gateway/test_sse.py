"""SSE framing under arbitrary chunk splits: the bytes forwarded equal the bytes received."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.gateway.sse import StreamInspector, error_event


def _chunk(obj: dict[str, object]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _stream(words: list[str], *, usage: bool, sep: bytes = b"\n\n") -> bytes:
    head = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    events = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    events += [{**head, "choices": [{"index": 0, "delta": {"content": w}}]} for w in words]
    events.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage:
        events.append({**head, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": len(words)}})
    body = b"".join(b"data: " + orjson.dumps(e) + sep for e in events)
    return body + b"data: [DONE]" + sep


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = [], 0
    for p in points:
        out.append(data[prev:p])
        prev = p
    out.append(data[prev:])
    return out


def _run(insp: StreamInspector, pieces: list[bytes]) -> bytes:
    return b"".join(insp.feed(p) for p in pieces) + insp.finish()


WORDS = st.lists(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=8),
                 min_size=1, max_size=12)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=WORDS, cuts=st.lists(st.integers(0, 10_000), max_size=20),
       sep=st.sampled_from([b"\n\n", b"\r\n\r\n", b"\r\r"]))
def test_passthrough_is_byte_identical_for_any_split(words: list[str], cuts: list[int], sep: bytes) -> None:
    data = _stream(words, usage=True, sep=sep)
    insp = StreamInspector(strip_usage=False, keep_text=True)
    assert _run(insp, _split(data, cuts)) == data
    assert insp.usage == {"prompt_tokens": 3, "completion_tokens": len(words)}
    assert insp.text == "".join(words)
    assert insp.done
    assert insp.first_content


@settings(deadline=None)
@given(words=WORDS, cuts=st.lists(st.integers(0, 10_000), max_size=20), sampled=st.booleans())
def test_usage_chunk_is_removed_when_the_proxy_asked_for_it(words: list[str], cuts: list[int],
                                                            sampled: bool) -> None:
    data = _stream(words, usage=True)
    insp = StreamInspector(strip_usage=True, keep_text=sampled)
    out = _run(insp, _split(data, cuts))
    assert out == _stream(words, usage=False)
    assert insp.usage is not None and insp.usage["completion_tokens"] == len(words)
    assert insp.done
    assert insp.text == ("".join(words) if sampled else None)


def test_role_chunk_alone_is_not_the_first_token() -> None:
    insp = StreamInspector(strip_usage=False, keep_text=False)
    insp.feed(_chunk({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}))
    assert not insp.first_content
    insp.feed(_chunk({"choices": [{"index": 0, "delta": {"content": "Hi"}}]}))
    assert insp.first_content


def test_tool_call_arguments_count_as_first_token() -> None:
    insp = StreamInspector(strip_usage=False, keep_text=False)
    delta = {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\""}}]}
    insp.feed(_chunk({"choices": [{"index": 0, "delta": delta}]}))
    assert insp.first_content


def test_partial_event_is_held_until_complete() -> None:
    insp = StreamInspector(strip_usage=False, keep_text=False)
    event = _chunk({"choices": [{"index": 0, "delta": {"content": "Hi"}}]})
    assert insp.feed(event[:10]) == b""
    assert insp.feed(event[10:]) == event


def test_error_event_is_noted_and_forwarded() -> None:
    insp = StreamInspector(strip_usage=True, keep_text=False)
    event = error_event("boom", "server_error", "x")
    assert insp.feed(event) == event
    assert insp.error == {"message": "boom", "type": "server_error", "param": None, "code": "x"}


def test_comments_and_unterminated_tail_pass_through() -> None:
    insp = StreamInspector(strip_usage=False, keep_text=True)
    assert insp.feed(b": keep-alive\n\n") == b": keep-alive\n\n"
    assert insp.feed(b"data: [DONE]") == b""
    assert insp.finish() == b"data: [DONE]"
    assert insp.done
