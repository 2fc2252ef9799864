"""Chat request checks (OpenAI's 400s) and answer plans (n, max_tokens, tools, formats, logprobs)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from service.simulator.chat import BadRequestError, parse, plan
from service.simulator.tokens import count_tokens

USER = [{"role": "user", "content": "What does my deductible mean for a car insurance claim?"}]


def body(**kw: Any) -> dict[str, Any]:
    return {"model": "m", "messages": USER, **kw}


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        ([], None),
        ({"messages": USER}, None),
        ({"model": "m"}, "messages"),
        (body(messages=[]), "messages"),
        (body(messages=[{"role": "robot", "content": "x"}]), "messages[0].role"),
        (body(n=0), "n"),
        (body(n=True), "n"),
        (body(stream="yes"), "stream"),
        (body(max_tokens=0), "max_tokens"),
        (body(top_logprobs=2), "top_logprobs"),
        (body(temperature=3), "temperature"),
        (body(stream_options={"include_usage": True}), "stream_options"),
        (body(tools=[{"type": "function"}]), "tools"),
        (body(response_format={"type": "xml"}), "response_format.type"),
    ],
)
def test_bad_bodies(raw: Any, param: str | None) -> None:
    with pytest.raises(BadRequestError) as info:
        parse(raw)
    assert info.value.param == param and info.value.message


def test_azure_deployment_stands_in_for_model() -> None:
    assert parse({"messages": USER}, deployment="ft").model == "ft"


def test_n_choices_and_usage() -> None:
    p = plan(parse(body(n=3)), "base", 0)
    assert [c.index for c in p.choices] == [0, 1, 2]
    assert p.completion_tokens == sum(count_tokens(c.text) for c in p.choices)
    assert p.prompt_tokens > count_tokens(USER[0]["content"])


def test_max_tokens_truncates_with_finish_length() -> None:
    full = plan(parse(body()), "base", 0).choices[0]
    cut = plan(parse(body(max_completion_tokens=10)), "base", 0).choices[0]
    assert full.finish_reason == "stop" and cut.finish_reason == "length"
    assert full.text.startswith(cut.text) and count_tokens(cut.text) <= 10


def test_tools_and_tool_choice() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "a",
                "parameters": {"type": "object", "properties": {"policy_number": {"type": "string"}}},
            },
        },
        {"type": "function", "function": {"name": "b"}},
    ]
    got = plan(parse(body(tools=tools)), "fine_tuned", 0).choices[0]
    assert got.finish_reason == "tool_calls" and got.tool_call is not None
    assert got.tool_call["function"]["name"] == "a"
    assert orjson.loads(got.tool_call["function"]["arguments"])["policy_number"].startswith("POL-")
    named = plan(
        parse(body(tools=tools, tool_choice={"type": "function", "function": {"name": "b"}})), "base", 0
    )
    assert named.choices[0].tool_call is not None and named.choices[0].tool_call["function"]["name"] == "b"
    assert plan(parse(body(tools=tools, tool_choice="none")), "base", 0).choices[0].tool_call is None
    after = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "tool", "tool_call_id": "x", "content": "done"},
    ]
    assert plan(parse(body(tools=tools, messages=after)), "base", 0).choices[0].tool_call is None


def test_response_formats() -> None:
    obj = orjson.loads(
        plan(parse(body(response_format={"type": "json_object"})), "fine_tuned", 0).choices[0].text
    )
    assert obj["answer"].startswith("I understand") and obj["in_domain"] is True
    schema = {"type": "object", "properties": {"summary": {"type": "string"}, "urgent": {"type": "boolean"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    got = orjson.loads(plan(parse(body(response_format=fmt)), "base", 0).choices[0].text)
    assert set(got) == {"summary", "urgent"}


def test_logprobs_entries_match_the_pieces() -> None:
    c = plan(parse(body(logprobs=True, top_logprobs=3)), "fine_tuned", 0).choices[0]
    assert c.logprobs is not None and [e["token"] for e in c.logprobs] == c.pieces
    for e in c.logprobs:
        assert (
            e["logprob"] <= 0 and len(e["top_logprobs"]) == 3 and e["top_logprobs"][0]["token"] == e["token"]
        )
        assert len({t["token"] for t in e["top_logprobs"]}) == 3
    assert plan(parse(body()), "base", 0).choices[0].logprobs is None
