"""Field extraction and the byte-level model swap."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import InvalidRequestError
from service.gateway.body import last_user_text, parse_chat, rewrite

JSON_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@settings(deadline=None)
@given(model=JSON_TEXT.filter(bool), target=JSON_TEXT.filter(bool), content=JSON_TEXT,
       spaced=st.booleans(), extra=st.dictionaries(st.sampled_from(["user", "seed", "n", "metadata"]), JSON_TEXT))
def test_rewrite_changes_only_the_model(model: str, target: str, content: str, spaced: bool,
                                         extra: dict[str, str]) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    raw = orjson.dumps(body) if not spaced else orjson.dumps(body, option=orjson.OPT_INDENT_2)
    req = parse_chat(raw)
    out = rewrite(raw, req, target, add_usage=False)
    assert orjson.loads(out) == {**body, "model": target}


@settings(deadline=None)
@given(content=JSON_TEXT, has_opts=st.booleans())
def test_rewrite_adds_include_usage_for_streams(content: str, has_opts: bool) -> None:
    body: dict[str, object] = {"model": "demo", "stream": True, "messages": [{"role": "user", "content": content}]}
    if has_opts:
        body["stream_options"] = {"include_usage": False}
    raw = orjson.dumps(body)
    req = parse_chat(raw)
    assert not req.wants_usage
    out = orjson.loads(rewrite(raw, req, "gpt", add_usage=True))
    assert out["stream_options"] == {"include_usage": True}
    assert out["model"] == "gpt"
    assert out["messages"] == body["messages"]


def test_a_nested_model_key_with_the_same_value_is_left_alone() -> None:
    body = {"model": "demo", "metadata": {"model": "demo"}, "messages": [{"role": "user", "content": "x"}]}
    raw = orjson.dumps(body)
    out = orjson.loads(rewrite(raw, parse_chat(raw), "gpt", add_usage=False))
    assert out["model"] == "gpt"
    assert out["metadata"] == {"model": "demo"}


def test_azure_body_without_model_gets_one() -> None:
    raw = b'{"messages":[{"role":"user","content":"hi"}]}'
    req = parse_chat(raw, model_required=False)
    assert orjson.loads(rewrite(raw, req, "dep", add_usage=False))["model"] == "dep"


@pytest.mark.parametrize(
    ("raw", "param", "fragment"),
    [
        (b"", None, "empty"),
        (b"{not json", None, "not valid JSON"),
        (b"[1, 2]", None, "must be a JSON object"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model", "model parameter"),
        (b'{"model": 3, "messages": [{"role": "user", "content": "x"}]}', "model", "non-empty string"),
        (b'{"model": "demo"}', "messages", "non-empty array"),
        (b'{"model": "demo", "messages": "hi"}', "messages", "non-empty array"),
        (b'{"model": "demo", "messages": [{"content": "x"}]}', "messages[0]", "role"),
        (b'{"model": "demo", "messages": [{"role": "user"}], "stream": "yes"}', "stream", "true or false"),
        (b'{"model": "demo", "messages": [{"role": "user"}], "user": 5}', "user", "string"),
    ],
)
def test_bad_bodies_say_what_to_fix(raw: bytes, param: str | None, fragment: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_chat(raw)
    assert info.value.param == param
    assert fragment in info.value.message
    assert info.value.status == 400


def test_last_user_text_reads_parts_and_skips_assistant() -> None:
    messages = [
        {"role": "user", "content": "first"},
        {"role": "user",
         "content": [{"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": "answer"},
    ]
    assert last_user_text(messages) == "a\nb"
    assert last_user_text([{"role": "system", "content": "s"}]) is None
