"""Bad input and upstream faults: OpenAI-shaped errors the SDK maps to the right class, counted."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.integration.gateway.conftest import ListSink
from tests.integration.gateway.test_proxy import _OPEN, MESSAGES, _close_clients, client, record_of, requests_total  # noqa: F401
from tests.support.proxy import CLIENT_KEY, RunningProxy

AUTH = {"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json"}


def error_of(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("content", "status", "fragment"),
    [
        (b"{oops", 400, "not valid JSON"),
        (b"[]", 400, "JSON object"),
        (b'{"model": "demo"}', 400, "messages"),
        (b'{"model": 7, "messages": [{"role": "user", "content": "x"}]}', 400, "model"),
        (b'{"model": "demo", "messages": [{"role": "user", "content": "x"}], "stream": 1}', 400, "stream"),
        (b'{"model": "gpt-5", "messages": [{"role": "user", "content": "x"}]}', 404, "gpt-5"),
    ],
)
def test_bad_bodies(gw: RunningProxy, content: bytes, status: int, fragment: str) -> None:
    resp = httpx.post(gw.v1 + "/chat/completions", content=content, headers=AUTH)
    assert resp.status_code == status
    assert fragment in error_of(resp)["message"]
    assert resp.headers["x-should-retry"] == "false"


def test_unknown_model_through_the_sdk(gw: RunningProxy) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client(gw).chat.completions.create(model="gpt-5", messages=MESSAGES)
    assert "gpt-5" in info.value.message and "demo" in info.value.message


def test_oversized_body_is_413(gw: RunningProxy) -> None:
    limit = gw.components.settings.max_body_bytes
    big = {"model": "demo", "messages": [{"role": "user", "content": "x" * (limit + 10)}]}
    resp = httpx.post(gw.v1 + "/chat/completions", json=big, headers=AUTH)
    assert resp.status_code == 413 and "TUNEWATCH_MAX_BODY_BYTES" in error_of(resp)["message"]


@pytest.mark.parametrize("key", [None, "sk-wrong"])
def test_wrong_or_missing_key_is_401(gw: RunningProxy, key: str | None) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    resp = httpx.post(gw.v1 + "/chat/completions", json={"model": "demo", "messages": MESSAGES}, headers=headers)
    assert resp.status_code == 401 and error_of(resp)["type"] == "authentication_error"
    wrong = OpenAI(base_url=gw.v1, api_key="sk-wrong", max_retries=0)
    _OPEN.append(wrong)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="demo", messages=MESSAGES)


def test_wrong_method_and_unknown_path(gw: RunningProxy) -> None:
    assert httpx.get(gw.v1 + "/chat/completions", headers=AUTH).status_code == 405
    assert httpx.delete(gw.v1 + "/models", headers=AUTH).status_code == 405
    resp = httpx.get(gw.url + "/v2/whatever", headers=AUTH)
    assert resp.status_code == 404 and error_of(resp)["code"] == "not_found"
    resp = httpx.post(gw.url + "/openai/deployments/demo/chat/completions", json={"messages": MESSAGES}, headers=AUTH)
    assert resp.status_code == 400 and "api-version" in error_of(resp)["message"]


def test_admin_without_key_is_401(gw: RunningProxy) -> None:
    resp = httpx.get(gw.url + "/admin/experiments")
    assert resp.status_code == 401 and error_of(resp)["type"] == "authentication_error"


def _ask(gw: RunningProxy, marker: str, **kw: Any) -> Any:
    messages = [{"role": "user", "content": f"What is a deductible? {marker}"}]
    return client(gw, timeout=20).chat.completions.create(model="demo", user="fault-user", messages=messages, **kw)


def test_upstream_429_passes_through_with_retry_after(gw: RunningProxy) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        _ask(gw, "#sim:429")
    assert info.value.response.headers.get("retry-after")
    assert info.value.status_code == 429


def test_upstream_500_passes_through(gw: RunningProxy, sink: ListSink) -> None:
    arm = client(gw).chat.completions.with_raw_response.create(
        model="demo", user="fault-user", messages=MESSAGES).headers["x-tunewatch-arm"]
    before = requests_total(arm, "500", "false")
    with pytest.raises(openai.InternalServerError) as info:
        _ask(gw, "#sim:500")
    assert requests_total(arm, "500", "false") == before + 1
    rec = record_of(gw, sink, info.value.response.headers["x-request-id"])
    assert (rec.status, rec.outcome) == (500, "upstream_error")


def test_connection_reset_is_502(gw: RunningProxy) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        _ask(gw, "#sim:reset")
    assert info.value.status_code == 502
    assert info.value.body["code"] == "upstream_protocol_error"  # type: ignore[index]


def test_timeout_is_504(gw: RunningProxy, sink: ListSink) -> None:
    # the test upstreams have read_s=5: #sim:timeout hangs longer
    with pytest.raises(openai.APIStatusError) as info:
        _ask(gw, "#sim:timeout")
    assert info.value.status_code == 504
    rec = record_of(gw, sink, info.value.response.headers["x-request-id"])
    assert rec.error_kind == "upstream_timeout"


def test_reset_mid_stream_ends_with_an_error_event(gw: RunningProxy, sink: ListSink) -> None:
    with pytest.raises(openai.APIError) as info:
        for _ in _ask(gw, "#sim:midstream-reset", stream=True):
            pass
    assert "closed the connection" in str(info.value) or "upstream" in str(info.value)


def test_client_disconnect_cancels_the_upstream(gw: RunningProxy, sink: ListSink) -> None:
    messages = [{"role": "user", "content": "Explain subrogation in detail #sim:slow=3"}]
    with client(gw, timeout=20).chat.completions.with_streaming_response.create(
        model="demo", user="leaver", messages=messages, stream=True
    ) as resp:
        rid = resp.headers["x-request-id"]
    rec = record_of(gw, sink, rid)  # closed before the upstream finished
    assert rec.outcome == "client_disconnected" and rec.status == 499
