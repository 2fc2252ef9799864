"""The official openai SDK through the proxy to simulated upstreams, over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI, AzureOpenAI, OpenAI
from prometheus_client import REGISTRY

from tests.integration.gateway.conftest import ListSink
from tests.support.proxy import ADMIN_KEY, CLIENT_KEY, RunningProxy
from tests.support.wait import wait_for

MESSAGES: list[Any] = [
    {"role": "system", "content": "You are an insurance claims assistant."},
    {"role": "user", "content": "What does my deductible mean for a car insurance claim?"},
]


_OPEN: list[OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def client(gw: RunningProxy, **kw: Any) -> OpenAI:
    """An SDK client on the proxy, closed after the test."""
    c = OpenAI(base_url=gw.v1, api_key=CLIENT_KEY, max_retries=0, **kw)
    _OPEN.append(c)
    return c


def upstream(url: str) -> OpenAI:
    """An SDK client straight on a simulator, closed after the test."""
    c = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    _OPEN.append(c)
    return c


def record_of(gw: RunningProxy, sink: ListSink, request_id: str) -> Any:
    gw.components.recorder.flush()
    return wait_for(lambda: sink.by_id(request_id), what=f"the record of {request_id}")


def requests_total(arm: str, code: str, stream: str) -> float:
    value = REGISTRY.get_sample_value(
        "tunewatch_requests_total", {"experiment": "demo", "arm": arm, "code": code, "stream": stream})
    return value or 0.0


def test_non_stream_answer_is_the_upstreams(gw: RunningProxy, sims: tuple[str, str], sink: ListSink) -> None:
    raw = client(gw).chat.completions.with_raw_response.create(model="demo", user="alice", messages=MESSAGES)
    got = raw.parse()
    arm = raw.headers["x-tunewatch-arm"]
    assert raw.headers["x-tunewatch-experiment"] == "demo"
    direct = upstream(sims[0] if arm == "base" else sims[1]).chat.completions.create(
        model="gpt-4o-mini" if arm == "base" else "ft-insurance", user="alice", messages=MESSAGES)
    assert got.choices[0].message.content == direct.choices[0].message.content
    assert got.usage == direct.usage
    rec = record_of(gw, sink, raw.headers["x-request-id"])
    assert (rec.arm, rec.status, rec.outcome) == (arm, 200, "ok")
    assert rec.prompt_tokens == direct.usage.prompt_tokens and rec.cost_usd > 0  # type: ignore[union-attr]
    assert rec.query == MESSAGES[-1]["content"]
    assert rec.response_text == direct.choices[0].message.content  # sample rate 1.0


@pytest.mark.parametrize("include_usage", [False, True])
def test_stream_is_the_upstreams_chunk_for_chunk(
    gw: RunningProxy, sims: tuple[str, str], sink: ListSink, include_usage: bool
) -> None:
    opts: Any = {"include_usage": True} if include_usage else openai.NOT_GIVEN
    with client(gw).chat.completions.with_streaming_response.create(
        model="demo", user="bob", messages=MESSAGES, stream=True, stream_options=opts
    ) as resp:
        arm, rid = resp.headers["x-tunewatch-arm"], resp.headers["x-request-id"]
        chunks = list(resp.parse())
    direct = list(upstream(sims[0] if arm == "base" else sims[1]).chat.completions.create(
        model="x", user="bob", messages=MESSAGES, stream=True, stream_options=opts))
    strip = lambda cs: [(c.choices[0].delta.content, c.choices[0].finish_reason) if c.choices else c.usage for c in cs]  # noqa: E731
    assert strip(chunks) == strip(direct)
    assert (chunks[-1].usage is not None) == include_usage  # the proxy's own usage chunk never leaks
    rec = record_of(gw, sink, rid)
    assert rec.completion_tokens and rec.completion_tokens > 0  # known even when the client did not ask
    assert rec.ttft_s is not None and rec.ttft_s <= rec.latency_s
    assert rec.response_text == "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_azure_client_stream_and_non_stream(gw: RunningProxy) -> None:
    az = AzureOpenAI(azure_endpoint=gw.url, api_version="2024-06-01", api_key=CLIENT_KEY, max_retries=0)
    _OPEN.append(az)
    got = az.chat.completions.create(model="demo", messages=MESSAGES, user="carol")
    assert got.choices[0].message.content
    text = "".join(c.choices[0].delta.content or "" for c in az.chat.completions.create(
        model="demo", messages=MESSAGES, user="carol", stream=True) if c.choices)
    assert text == got.choices[0].message.content  # same user → same arm → same deterministic answer


def test_async_client_concurrent_requests(gw: RunningProxy) -> None:
    async def main() -> list[str]:
        async with AsyncOpenAI(base_url=gw.v1, api_key=CLIENT_KEY, max_retries=0) as ac:
            results = await asyncio.gather(*(ac.chat.completions.create(
                model="demo", user=f"user-{i}", messages=MESSAGES) for i in range(20)))
        return [r.choices[0].message.content or "" for r in results]

    answers = asyncio.run(main())
    assert len(answers) == 20 and all(answers)


def test_openai_parameters_pass_through(gw: RunningProxy) -> None:
    tools: Any = [{"type": "function", "function": {
        "name": "open_claim", "parameters": {"type": "object", "properties": {"policy": {"type": "string"}}}}}]
    c = client(gw)
    got = c.chat.completions.create(model="demo", messages=MESSAGES, tools=tools, tool_choice="auto", user="dan")
    assert got.choices[0].message.tool_calls and got.choices[0].finish_reason == "tool_calls"
    got = c.chat.completions.create(model="demo", messages=MESSAGES, n=2, seed=1, logprobs=True, top_logprobs=2,
                                    max_completion_tokens=50, user="dan")
    assert len(got.choices) == 2
    assert got.choices[0].logprobs is not None and got.choices[0].logprobs.content
    got = c.chat.completions.create(model="demo", messages=MESSAGES, response_format={"type": "json_object"},
                                    user="dan")
    assert got.choices[0].message.content and got.choices[0].message.content.lstrip().startswith("{")


def test_same_user_same_arm_and_both_arms_used(gw: RunningProxy) -> None:
    c = client(gw)
    arms = {}
    for i in range(40):
        user = f"sticky-{i % 8}"
        arm = c.chat.completions.with_raw_response.create(model="demo", user=user, messages=MESSAGES).headers[
            "x-tunewatch-arm"]
        assert arms.setdefault(user, arm) == arm
    assert set(arms.values()) == {"base", "fine_tuned"}


def test_sticky_header_when_there_is_no_user(gw: RunningProxy) -> None:
    c = client(gw, default_headers={"x-session-id": "session-42"})
    seen = {c.chat.completions.with_raw_response.create(model="demo", messages=MESSAGES).headers["x-tunewatch-arm"]
            for _ in range(10)}
    assert len(seen) == 1


def test_models_and_embeddings(gw: RunningProxy) -> None:
    c = client(gw)
    assert [m.id for m in c.models.list()] == ["demo"]
    emb = c.embeddings.create(model="demo", input=["a claim", "a premium"])
    assert len(emb.data) == 2 and len(emb.data[0].embedding) > 8


def test_admin_stage_and_weights_take_effect(gw: RunningProxy) -> None:
    admin = httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    c = client(gw)
    try:
        assert httpx.post(gw.url + "/admin/experiments/demo/stage", json={"stage": "promoted"}).status_code == 401
        r = admin.post("/admin/experiments/demo/stage", json={"stage": "promoted"})
        assert r.status_code == 200 and r.json()["stage"] == "promoted"
        assert REGISTRY.get_sample_value("tunewatch_arm_weight", {"experiment": "demo", "arm": "fine_tuned"}) == 1.0
        for i in range(10):
            h = c.chat.completions.with_raw_response.create(model="demo", user=f"p{i}", messages=MESSAGES).headers
            assert h["x-tunewatch-arm"] == "fine_tuned"
        admin.post("/admin/experiments/demo/stage", json={"stage": "ab"})
        r = admin.put("/admin/experiments/demo/weights", json={"weights": {"base": 1.0, "fine_tuned": 0.0}})
        assert r.status_code == 200
        for i in range(10):
            h = c.chat.completions.with_raw_response.create(model="demo", user=f"p{i}", messages=MESSAGES).headers
            assert h["x-tunewatch-arm"] == "base"
        bad = admin.put("/admin/experiments/demo/weights", json={"weights": {"nope": 1.0}})
        assert bad.status_code == 400 and "unknown arms" in bad.json()["error"]["message"]
        assert admin.post("/admin/experiments/nope/stage", json={"stage": "ab"}).status_code == 404
        assert admin.post("/admin/experiments/demo/stage", json={"stage": "sideways"}).status_code == 400
    finally:
        admin.put("/admin/experiments/demo/weights", json={"weights": {"base": 0.5, "fine_tuned": 0.5}})
        admin.post("/admin/experiments/demo/stage", json={"stage": "ab"})
        admin.close()
