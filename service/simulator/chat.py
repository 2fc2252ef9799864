"""Chat completions: read and check a request body, and plan the choices of its answer.

The plan (text or tool call per choice, finish reason, logprobs, usage) is computed once; the
server then sends it as one ``chat.completion`` object or as a stream of chunks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import orjson

from service.simulator import schema
from service.simulator.profiles import answer, answer_rng, last_user_text, logprob_of
from service.simulator.tokens import count_prompt_tokens, count_tokens, pieces, truncate

__all__ = ["BadRequestError", "ChatRequest", "Choice", "Plan", "parse", "plan"]

_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_FORMATS = ("text", "json_object", "json_schema")
#: the runners-up a top_logprobs list offers (real ones are other plausible next tokens)
_ALTERNATIVES = (
    "the",
    "a",
    "your",
    "this",
    "it",
    "to",
    "and",
    "of",
    "we",
    "you",
    "that",
    "in",
    "for",
    "is",
    "on",
    "as",
    "with",
    "be",
    "or",
    "at",
)


class BadRequestError(ValueError):
    """A body OpenAI would refuse with 400; carries the ``param`` and ``code`` of its error."""

    def __init__(self, message: str, param: str | None = None, code: str | None = "invalid_value") -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """The parts of a chat completions body the simulator honours."""

    body: dict[str, Any]
    model: str
    messages: list[Any]
    n: int
    stream: bool
    include_usage: bool
    logprobs: bool
    top_logprobs: int
    max_tokens: int | None
    tools: list[Any]
    tool_choice: Any
    response_format: str
    json_schema: Any


def _int(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequestError(
            f"Invalid '{name}': expected an integer between {low} and {high}, got {value!r}.",
            name,
            "integer_below_min_value" if isinstance(value, int) and value < low else None,
        )
    return value


def _bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequestError(
            f"Invalid type for '{name}': expected a boolean, but got {type(value).__name__}.",
            name,
            "invalid_type",
        )
    return value


def parse(body: Any, deployment: str | None = None) -> ChatRequest:
    """Check a chat completions body the way OpenAI does (the common cases) and read it.

    ``deployment`` is the Azure deployment from the path, which stands in for ``model``.

    Raises:
        BadRequestError: the message, ``param`` and ``code`` of the 400 OpenAI would send.
    """
    if not isinstance(body, dict):
        raise BadRequestError("The request body must be a JSON object.", None, None)
    model = body.get("model", deployment)
    if not isinstance(model, str) or not model:
        raise BadRequestError("you must provide a model parameter", None, None)
    messages = body.get("messages")
    if messages is None:
        raise BadRequestError(
            "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
        )
    if not isinstance(messages, list) or not messages:
        raise BadRequestError(
            "Invalid 'messages': expected a non-empty array of message objects.", "messages"
        )
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            raise BadRequestError(
                f"Invalid value for 'messages[{i}].role': supported values are "
                f"{', '.join(repr(r) for r in _ROLES)}.",
                f"messages[{i}].role",
            )
    temperature = body.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2
    ):
        raise BadRequestError("Invalid 'temperature': expected a number between 0 and 2.", "temperature")
    logprobs = _bool(body, "logprobs")
    top = _int(body, "top_logprobs", 0, 20)
    if top is not None and not logprobs:
        raise BadRequestError(
            "Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is used.",
            "top_logprobs",
        )
    max_tokens = _int(body, "max_completion_tokens", 1, 1_000_000) or _int(body, "max_tokens", 1, 1_000_000)
    stream_options = body.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise BadRequestError(
            "Invalid type for 'stream_options': expected an object.", "stream_options", "invalid_type"
        )
    stream = _bool(body, "stream")
    if stream_options and not stream:
        raise BadRequestError(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options"
        )
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(
        isinstance(t, dict)
        and isinstance(t.get("function"), dict)
        and isinstance(t["function"].get("name"), str)
        for t in tools
    ):
        raise BadRequestError("Invalid 'tools': expected an array of function tools with a name.", "tools")
    fmt = body.get("response_format") or {"type": "text"}
    if not isinstance(fmt, dict) or fmt.get("type") not in _FORMATS:
        raise BadRequestError(
            "Invalid 'response_format.type': supported values are 'text', 'json_object' and 'json_schema'.",
            "response_format.type",
        )
    json_schema = fmt.get("json_schema")
    return ChatRequest(
        body=body,
        model=model,
        messages=messages,
        n=_int(body, "n", 1, 128) or 1,
        stream=stream,
        include_usage=bool(stream_options and stream_options.get("include_usage") is True),
        logprobs=logprobs,
        top_logprobs=top or 0,
        max_tokens=max_tokens,
        tools=tools,
        tool_choice=body.get("tool_choice", "auto"),
        response_format=fmt["type"],
        json_schema=json_schema.get("schema") if isinstance(json_schema, dict) else None,
    )


@dataclass(frozen=True, slots=True)
class Choice:
    """One planned choice: content pieces (or a tool call), its finish reason and logprobs."""

    index: int
    pieces: list[str]
    finish_reason: str
    tool_call: dict[str, Any] | None
    logprobs: list[dict[str, Any]] | None

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def message(self) -> dict[str, Any]:
        """The ``message`` of a non-streamed choice."""
        if self.tool_call is not None:
            return {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [self.tool_call],
                "annotations": [],
            }
        return {"role": "assistant", "content": self.text, "refusal": None, "annotations": []}

    def logprobs_object(self, entries: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
        """``{"content": [...], "refusal": null}``, or None when logprobs were not asked for."""
        if self.logprobs is None:
            return None
        return {"content": self.logprobs if entries is None else entries, "refusal": None}


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything one response will say, decided before the first byte is sent."""

    choices: list[Choice]
    prompt_tokens: int
    completion_tokens: int
    in_domain: bool

    @property
    def longest_tokens(self) -> int:
        """Completion tokens of the longest choice: the time to generate is paced by it."""
        return max(count_tokens(c.text or orjson.dumps(c.tool_call).decode()) for c in self.choices)


def _wants_tool(req: ChatRequest) -> dict[str, Any] | None:
    """The function tool to call, or None when the answer is text."""
    if not req.tools or req.tool_choice == "none":
        return None
    last = req.messages[-1]
    if isinstance(last, dict) and last.get("role") in ("tool", "function") and req.tool_choice == "auto":
        return None  # a tool result came back: answer in words, as a model does
    if isinstance(req.tool_choice, dict):
        wanted = (req.tool_choice.get("function") or {}).get("name")
        for t in req.tools:
            if t["function"]["name"] == wanted:
                return t["function"]  # type: ignore[no-any-return]
    return req.tools[0]["function"]  # type: ignore[no-any-return]


def _logprobs(
    text_pieces: list[str], rng: random.Random, profile: str, in_domain: bool, top: int
) -> list[dict[str, Any]]:
    entries = []
    for p in text_pieces:
        lp = logprob_of(rng, profile, in_domain)
        top_list = [{"token": p, "logprob": lp, "bytes": list(p.encode())}]
        if top > 1:
            lead = p[: len(p) - len(p.lstrip())]
            offset = len(p) % len(_ALTERNATIVES)
            others = [lead + a for a in _ALTERNATIVES[offset:] + _ALTERNATIVES[:offset] if lead + a != p]
            alt_lp = lp
            for alt in others[: top - 1]:
                alt_lp = round(alt_lp - rng.uniform(0.5, 2.5), 6)
                top_list.append({"token": alt, "logprob": alt_lp, "bytes": list(alt.encode())})
        entries.append({"token": p, "logprob": lp, "bytes": list(p.encode()), "top_logprobs": top_list[:top]})
    return entries


def plan(req: ChatRequest, profile: str, seed: int) -> Plan:
    """Decide the answer to ``req`` as ``profile`` (deterministic given seed, profile and messages)."""
    tool = _wants_tool(req)
    prompt_extra = orjson.dumps(req.tools).decode() if req.tools else ""
    choices: list[Choice] = []
    completion_tokens = 0
    in_domain = True
    for i in range(req.n):
        rng = answer_rng(seed, profile, req.messages, i)
        if tool is not None:
            args = schema.fill(tool.get("parameters", {}), last_user_text(req.messages), rng)
            call = {
                "id": f"call_{rng.getrandbits(96):024x}",
                "type": "function",
                "function": {"name": tool["name"], "arguments": orjson.dumps(args).decode()},
            }
            choices.append(Choice(i, [], "tool_calls", call, None))
            completion_tokens += count_tokens(orjson.dumps(args).decode()) + 5
            continue
        ans = answer(profile, req.body, seed, i)
        in_domain = ans.in_domain
        text = ans.text
        if req.response_format == "json_object" and profile != "judge":  # the judge's reply is JSON already
            text = orjson.dumps({"answer": text, "in_domain": ans.in_domain}).decode()
        elif req.response_format == "json_schema" and req.json_schema is not None:
            text = orjson.dumps(schema.fill(req.json_schema, ans.text, rng)).decode()
        finish = "stop"
        if req.max_tokens is not None:
            text, cut = truncate(text, req.max_tokens)
            finish = "length" if cut else "stop"
        parts = pieces(text)
        lps = _logprobs(parts, rng, profile, ans.in_domain, req.top_logprobs) if req.logprobs else None
        choices.append(Choice(i, parts, finish, None, lps))
        completion_tokens += count_tokens(text)
    return Plan(choices, count_prompt_tokens(req.messages, prompt_extra), completion_tokens, in_domain)
