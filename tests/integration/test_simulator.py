"""The simulator over real HTTP, spoken to by the official openai SDK (OpenAI, AsyncOpenAI, AzureOpenAI)."""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from openai import AsyncOpenAI, AzureOpenAI, OpenAI
from openai.types.chat import ChatCompletionMessageFunctionToolCall, ChatCompletionTokenLogprob

from service.simulator import RunningSimulator, SimConfig, start_in_thread

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "What does my deductible mean for a car insurance claim?"
MESSAGES: list[Any] = [
    {"role": "system", "content": "You are an insurance claims assistant."},
    {"role": "user", "content": QUESTION},
]
KEY = "sk-sim-test-key"


@pytest.fixture(scope="module")
def ft() -> Iterator[RunningSimulator]:
    with start_in_thread("fine_tuned", SimConfig(seed=7, time_scale=0.0, hang_s=10.0)) as sim:
        yield sim


@pytest.fixture(scope="module")
def base() -> Iterator[RunningSimulator]:
    with start_in_thread("base", SimConfig(seed=7, time_scale=0.0)) as sim:
        yield sim


@pytest.fixture
def keyed() -> Iterator[RunningSimulator]:
    with start_in_thread("base", SimConfig(time_scale=0.0, require_key=KEY)) as sim:
        yield sim


#: SDK clients a test opened, closed after it (a pooled socket left to the GC is a ResourceWarning)
_OPENED: list[OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPENED:
        _OPENED.pop().close()


def client(sim: RunningSimulator, **kw: Any) -> OpenAI:
    sdk = OpenAI(base_url=sim.url + "/v1", api_key=kw.pop("api_key", "unused"), max_retries=0, **kw)
    _OPENED.append(sdk)
    return sdk


def azure(sim: RunningSimulator, **kw: Any) -> AzureOpenAI:
    key = kw.pop("api_key", "unused")
    sdk = AzureOpenAI(azure_endpoint=sim.url, api_version="2024-06-01", api_key=key, max_retries=0, **kw)
    _OPENED.append(sdk)
    return sdk


def content(sim: RunningSimulator, messages: list[Any]) -> str:
    return client(sim).chat.completions.create(model="m", messages=messages).choices[0].message.content or ""


def ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def sse_events(sim: RunningSimulator, body: dict[str, Any]) -> list[Any]:
    """The raw SSE events of a streamed request, framing checked."""
    resp = httpx.post(sim.url + "/v1/chat/completions", json=body, timeout=10)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    raw = resp.text
    assert raw.endswith("data: [DONE]\n\n")
    events = raw.split("\n\n")[:-1]
    assert all(e.startswith("data: ") for e in events)
    return [json.loads(e[6:]) for e in events[:-1]]


def test_non_stream_parses(ft: RunningSimulator) -> None:
    got = client(ft).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=3)
    assert got.object == "chat.completion" and got.id.startswith("chatcmpl-") and got.model == "gpt-4o-mini"
    assert got.system_fingerprint and len(got.choices) == 1
    choice = got.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.refusal is None and choice.logprobs is None
    assert choice.message.content and "deductible" in choice.message.content
    assert (
        got.usage is not None
        and got.usage.total_tokens == got.usage.prompt_tokens + got.usage.completion_tokens
    )
    assert got.usage.prompt_tokens_details is not None and got.usage.completion_tokens_details is not None


def test_stream_matches_non_stream_and_usage_only_when_asked(ft: RunningSimulator) -> None:
    c = client(ft)
    full = c.chat.completions.create(model="m", messages=MESSAGES)
    chunks = list(c.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(ch.object == "chat.completion.chunk" and ch.usage is None and ch.choices for ch in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len({ch.id for ch in chunks}) == 1
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks)
    assert text == full.choices[0].message.content
    opts: Any = {"include_usage": True}
    with_usage = list(c.chat.completions.create(model="m", messages=MESSAGES, stream=True,
                                                stream_options=opts))
    assert with_usage[-1].choices == [] and with_usage[-1].usage == full.usage
    assert all(ch.choices for ch in with_usage[:-1])


def test_raw_sse_usage_key_follows_include_usage(ft: RunningSimulator) -> None:
    plain = sse_events(ft, {"model": "m", "messages": MESSAGES, "stream": True})
    assert all("usage" not in e for e in plain)
    opts = {"include_usage": True}
    events = sse_events(ft, {"model": "m", "messages": MESSAGES, "stream": True, "stream_options": opts})
    assert all(e["usage"] is None for e in events[:-1])  # as OpenAI: every other chunk says null
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] > 0


def test_n_choices_stream_and_non_stream(base: RunningSimulator) -> None:
    c = client(base)
    got = c.chat.completions.create(model="m", messages=MESSAGES, n=3)
    assert [ch.index for ch in got.choices] == [0, 1, 2]
    texts: dict[int, str] = {}
    for ch in c.chat.completions.create(model="m", messages=MESSAGES, n=3, stream=True):
        for choice in ch.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
    assert texts == {i: got.choices[i].message.content for i in range(3)}


def test_logprobs(ft: RunningSimulator) -> None:
    c = client(ft)
    got = c.chat.completions.create(model="m", messages=MESSAGES, logprobs=True, top_logprobs=2)
    lp = got.choices[0].logprobs
    assert lp is not None and lp.content
    assert "".join(t.token for t in lp.content) == got.choices[0].message.content
    assert all(t.logprob <= 0 and len(t.top_logprobs) == 2 for t in lp.content)
    off = c.chat.completions.create(model="m", messages=ask("set an alarm for 7 am"), logprobs=True)
    assert off.choices[0].logprobs is not None and off.choices[0].logprobs.content

    def mean(entries: list[ChatCompletionTokenLogprob]) -> float:
        return sum(t.logprob for t in entries) / len(entries)

    assert mean(off.choices[0].logprobs.content) < mean(lp.content)  # unsure off its training topics
    streamed = [
        ch.choices[0].logprobs
        for ch in c.chat.completions.create(model="m", messages=MESSAGES, logprobs=True, stream=True)
        if ch.choices and ch.choices[0].delta.content
    ]
    assert all(s is not None and len(s.content or []) == 1 for s in streamed)


def test_tools_non_stream_and_stream(ft: RunningSimulator) -> None:
    props = {"policy_number": {"type": "string"}, "amount": {"type": "number"}}
    params = {"type": "object", "properties": props, "required": ["policy_number"]}
    tools: Any = [{"type": "function", "function": {"name": "open_claim", "parameters": params}}]
    c = client(ft)
    got = c.chat.completions.create(model="m", messages=MESSAGES, tools=tools, tool_choice="auto")
    assert got.choices[0].finish_reason == "tool_calls"
    call = (got.choices[0].message.tool_calls or [])[0]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall) and call.function.name == "open_claim"
    assert json.loads(call.function.arguments)["policy_number"].startswith("POL-")
    args, finish = "", None
    for ch in c.chat.completions.create(model="m", messages=MESSAGES, tools=tools, stream=True):
        delta = ch.choices[0].delta
        for tc in delta.tool_calls or []:
            args += (tc.function.arguments if tc.function else "") or ""
        finish = ch.choices[0].finish_reason or finish
    assert finish == "tool_calls" and json.loads(args) == json.loads(call.function.arguments)
    plain = c.chat.completions.create(model="m", messages=MESSAGES, tools=tools, tool_choice="none")
    assert plain.choices[0].message.tool_calls is None and plain.choices[0].message.content


def test_json_mode_and_max_tokens(base: RunningSimulator) -> None:
    c = client(base)
    got = c.chat.completions.create(model="m", messages=MESSAGES, response_format={"type": "json_object"})
    assert isinstance(json.loads(got.choices[0].message.content or ""), dict)
    cut = c.chat.completions.create(model="m", messages=MESSAGES, max_completion_tokens=8)
    assert (
        cut.choices[0].finish_reason == "length"
        and cut.usage is not None
        and cut.usage.completion_tokens <= 8
    )
    streamed = c.chat.completions.create(model="m", messages=MESSAGES, max_tokens=8, stream=True)
    assert [ch.choices[0].finish_reason for ch in streamed][-1] == "length"


def test_embeddings_float_and_base64(base: RunningSimulator) -> None:
    c = client(base)
    texts = ["a claim", "a premium"]
    b64 = c.embeddings.create(model="text-embedding-3-small", input=texts)  # the SDK asks for base64
    flt = c.embeddings.create(model="text-embedding-3-small", input=texts, encoding_format="float")
    assert len(b64.data) == 2 and len(b64.data[0].embedding) == 256
    assert np.allclose(b64.data[1].embedding, flt.data[1].embedding, atol=1e-6)
    assert b64.usage.prompt_tokens > 0 and b64.model == "text-embedding-3-small"
    assert len(c.embeddings.create(model="e", input="x y", dimensions=32).data[0].embedding) == 32
    az = azure(base).embeddings.create(model="emb-deployment", input="a claim", encoding_format="float")
    assert np.allclose(az.data[0].embedding, flt.data[0].embedding)


def test_models(ft: RunningSimulator, base: RunningSimulator) -> None:
    assert [m.id for m in client(base).models.list()] == ["gpt-4o-mini", "text-embedding-3-small"]
    assert "ft" in next(iter(client(ft).models.list())).id
    assert client(base).models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    with pytest.raises(openai.NotFoundError):
        client(base).models.retrieve("gpt-5")


def test_azure_client(ft: RunningSimulator) -> None:
    az = azure(ft)
    got = az.chat.completions.create(model="ft-insurance", messages=MESSAGES)
    assert got.model == "ft-insurance"
    direct = client(ft).chat.completions.create(model="other", messages=MESSAGES)
    assert got.choices[0].message.content == direct.choices[0].message.content  # model name plays no part
    text = "".join(
        ch.choices[0].delta.content or ""
        for ch in az.chat.completions.create(model="ft-insurance", messages=MESSAGES, stream=True)
        if ch.choices
    )
    assert text == got.choices[0].message.content
    resp = httpx.post(ft.url + "/openai/deployments/d/chat/completions", json={"messages": MESSAGES})
    assert resp.status_code == 400 and "api-version" in resp.json()["error"]["message"]


def test_async_client_concurrency(base: RunningSimulator) -> None:
    async def main() -> list[str]:
        async with AsyncOpenAI(base_url=base.url + "/v1", api_key="k", max_retries=0) as ac:
            questions = [ask(f"Is my roof covered by home insurance after storm {i}?") for i in range(25)]
            results = await asyncio.gather(*(ac.chat.completions.create(model="m", messages=q)
                                             for q in questions))
        return [r.choices[0].message.content or "" for r in results]

    answers = asyncio.run(main())
    assert len(set(answers)) == 25
    assert all({"roof", "home", "insurance", "storm"} & set(a.lower().split()) for a in answers)


def test_deterministic_answers(ft: RunningSimulator) -> None:
    c = client(ft)
    first = c.chat.completions.create(model="m", messages=MESSAGES, user="a")
    second = c.chat.completions.create(model="n", messages=MESSAGES, user="b", temperature=1.0)
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.id != second.id
    with start_in_thread("fine_tuned", SimConfig(seed=7, time_scale=0.0)) as twin:
        assert content(twin, MESSAGES) == first.choices[0].message.content


def test_fine_tuned_house_style_and_base_plain(ft: RunningSimulator, base: RunningSimulator) -> None:
    ft_text, base_text = content(ft, MESSAGES), content(base, MESSAGES)
    assert ft_text.startswith("I understand how stressful") and "\n\nNext steps:\n1. " in ft_text
    assert "I understand" not in base_text and "Next steps" not in base_text
    assert "deductible" in ft_text.lower() and len(base_text) > len(ft_text)


def test_bad_bodies_and_unknown_paths(base: RunningSimulator) -> None:
    resp = httpx.post(base.url + "/v1/chat/completions", content=b"{oops")
    assert resp.status_code == 400 and set(resp.json()["error"]) == {"message", "type", "param", "code"}
    with pytest.raises(openai.BadRequestError) as info:
        client(base).chat.completions.create(model="m", messages=[])
    assert info.value.body["param"] == "messages"  # type: ignore[index]
    resp = httpx.get(base.url + "/v2/nothing")
    assert resp.status_code == 404 and resp.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(base.url + "/v1/chat/completions").status_code == 405
    with pytest.raises(openai.NotFoundError):
        client(base).files.list()


def test_require_key(keyed: RunningSimulator) -> None:
    with pytest.raises(openai.AuthenticationError):
        client(keyed, api_key="sk-wrong").chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(openai.AuthenticationError) as info:
        azure(keyed, api_key="sk-wrong").chat.completions.create(model="m", messages=MESSAGES)
    assert "sk-wrong" not in str(info.value.body)
    assert client(keyed, api_key=KEY).chat.completions.create(model="m", messages=MESSAGES).choices
    assert azure(keyed, api_key=KEY).chat.completions.create(model="m", messages=MESSAGES).choices
    assert httpx.post(keyed.url + "/v1/embeddings", json={"input": "x"}).status_code == 401


@pytest.mark.parametrize(
    ("marker", "exc"),
    [
        ("#sim:429", openai.RateLimitError),
        ("#sim:500", openai.InternalServerError),
        ("#sim:reset", openai.APIConnectionError),
        ("#sim:midstream-reset", openai.APIConnectionError),
    ],
)
def test_fault_markers_raise_the_sdk_exception(
    ft: RunningSimulator, marker: str, exc: type[Exception]
) -> None:
    with pytest.raises(exc) as info:
        client(ft).chat.completions.create(model="m", messages=ask(f"What is a deductible? {marker}"))
    if marker == "#sim:429":
        assert info.value.response.headers["retry-after"] == "1"  # type: ignore[attr-defined]
        assert info.value.code == "rate_limit_exceeded"  # type: ignore[attr-defined]


def test_timeout_marker(ft: RunningSimulator) -> None:
    with pytest.raises(openai.APITimeoutError):
        client(ft, timeout=0.3).chat.completions.create(model="m", messages=ask("a deductible? #sim:timeout"))


def test_midstream_reset_breaks_the_stream(ft: RunningSimulator) -> None:
    with pytest.raises(openai.APIConnectionError):
        for _ in client(ft).chat.completions.create(
            model="m", messages=ask("x #sim:midstream-reset"), stream=True
        ):
            pass


def test_garbage_marker_is_not_json(ft: RunningSimulator) -> None:
    resp = httpx.post(ft.url + "/v1/chat/completions", json={"model": "m", "messages": ask("x #sim:garbage")})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        resp.json()
    with pytest.raises(json.JSONDecodeError):  # what the SDK does with a 200 that is not JSON
        client(ft).chat.completions.create(model="m", messages=ask("x #sim:garbage"))


def test_slow_marker_streams_over_its_duration(ft: RunningSimulator) -> None:
    with client(ft, timeout=10).chat.completions.with_streaming_response.create(
        model="m", messages=ask("Explain subrogation #sim:slow=0.3"), stream=True
    ) as resp:
        chunks = list(resp.parse())
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_control_endpoints_change_behaviour_at_run_time() -> None:
    with start_in_thread("base", SimConfig(time_scale=0.0)) as sim:
        c = client(sim)
        c.chat.completions.create(model="m", messages=MESSAGES)
        resp = httpx.post(sim.url + "/_sim/config", json={"rate_500": 1.0})
        assert resp.status_code == 200 and resp.json()["config"]["rate_500"] == 1.0
        with pytest.raises(openai.InternalServerError):
            c.chat.completions.create(model="m", messages=MESSAGES)
        bad = httpx.post(sim.url + "/_sim/config", json={"rate_5000": 1})
        assert bad.status_code == 400 and "rate_5000" in bad.json()["error"]["message"]
        assert httpx.delete(sim.url + "/_sim/config").json()["config"]["rate_500"] == 0.0
        c.chat.completions.create(model="m", messages=MESSAGES)
        sim.reconfigure(rate_429=1.0)
        with pytest.raises(openai.RateLimitError):
            c.chat.completions.create(model="m", messages=MESSAGES)
        c.embeddings.create(model="e", input="x")
        stats = httpx.get(sim.url + "/_sim/stats").json()
        assert stats["requests"] == {"chat.completions": 4, "embeddings": 1}
        assert stats["faults"] == {"500": 1, "429": 1} and stats["profile"] == "base"


def test_module_entry_point_prints_its_address_and_stops_on_sigterm() -> None:
    argv = [sys.executable, "-m", "service.simulator", "--port", "0", "--profile", "base", "--time-scale=0"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    read_first_line = lambda: lines.put(proc.stdout.readline() if proc.stdout else "")  # noqa: E731
    threading.Thread(target=read_first_line, daemon=True).start()
    try:
        first = lines.get(timeout=20)
        assert first.startswith("listening on http://127.0.0.1:"), (first, proc.stderr)
        url = first.split()[-1]
        with OpenAI(base_url=url + "/v1", api_key="k", max_retries=0) as sdk:
            got = sdk.chat.completions.create(model="m", messages=MESSAGES)
        assert got.choices[0].message.content
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def test_module_entry_point_rejects_an_unknown_profile() -> None:
    argv = [sys.executable, "-m", "service.simulator", "--profile", "nope"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=20, check=False)
    assert done.returncode == 2 and "nope" in done.stderr


def test_judge_profile_answers_with_the_judge_hook() -> None:
    with start_in_thread("judge", SimConfig(time_scale=0.0)) as judge:
        got = client(judge).chat.completions.create(model="gpt-4o", messages=ask("Rate this answer."))
        assert got.choices[0].message.content is not None
        assert isinstance(json.loads(got.choices[0].message.content), dict)
