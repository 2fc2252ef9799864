"""The simulator's aiohttp application: OpenAI and Azure routes, SSE streaming, control endpoints.

Routes: ``POST /v1/chat/completions``, ``POST /openai/deployments/{d}/chat/completions``,
``POST /v1/embeddings``, ``POST /openai/deployments/{d}/embeddings``, ``GET /v1/models``,
``GET /v1/models/{id}``, ``GET /openai/models``; control: ``GET|POST|DELETE /_sim/config``,
``GET /_sim/stats``.

Imports nothing of ours outside ``service.simulator`` (import-linter contract).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from service.simulator import chat, faults, stream
from service.simulator.embeddings import embeddings_response
from service.simulator.profiles import draw_latency, last_user_text
from service.simulator.settings import PROFILES, ConfigOverrideError, SimConfig, override
from service.simulator.wire import completion, error_response, json_response, new_id, usage

__all__ = ["MODELS", "SimState", "build_app"]

#: the model ids each profile lists on ``GET /v1/models``
MODELS = {
    "base": ("gpt-4o-mini", "text-embedding-3-small"),
    "fine_tuned": ("gpt-4o-mini-2024-07-18.ft-atlas-insurance-v1", "text-embedding-3-small"),
    "judge": ("gpt-4o", "text-embedding-3-small"),
}
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)


@dataclasses.dataclass(slots=True)
class SimState:
    """What one app owns: its profile, current and initial config, draw generator and counters."""

    profile: str
    config: SimConfig
    initial: SimConfig
    rng: random.Random
    requests: Counter[str] = dataclasses.field(default_factory=Counter)
    faults: Counter[str] = dataclasses.field(default_factory=Counter)


STATE = web.AppKey("simulator_state", SimState)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(profile: str, config: SimConfig) -> web.Application:
    """The aiohttp application simulating one upstream playing ``profile`` (base, fine_tuned, judge).

    Raises:
        ValueError: unknown profile.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown simulator profile {profile!r}: use one of {', '.join(PROFILES)}")
    app = web.Application(middlewares=[_openai_errors], client_max_size=32 * 1024 * 1024)
    app[STATE] = SimState(profile, config, config, random.Random(config.seed))
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", _chat)
    app.router.add_post("/v1/embeddings", _embeddings)
    app.router.add_post("/openai/deployments/{deployment}/embeddings", _embeddings)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/openai/models", _models)
    app.router.add_get("/v1/models/{model}", _models)
    app.router.add_get("/_sim/config", _get_config)
    app.router.add_post("/_sim/config", _set_config)
    app.router.add_delete("/_sim/config", _reset_config)
    app.router.add_get("/_sim/stats", _stats)
    return app


@web.middleware
async def _openai_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own 404/405 pages rendered in OpenAI's error shape."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return error_response(404, f"Invalid URL ({request.method} {request.path})", code="unknown_url")
    except web.HTTPMethodNotAllowed:
        return error_response(405, f"Method not allowed ({request.method} {request.path})")


def _azure(request: web.Request) -> bool:
    return "deployment" in request.match_info


def _count(request: web.Request, route: str) -> SimState:
    state = request.app[STATE]
    state.requests[route] += 1
    return state


def _refused(request: web.Request, state: SimState) -> web.Response | None:
    """401/400 for a wrong key or a missing Azure ``api-version``; None when the request may go on."""
    azure = _azure(request)
    if azure and not request.query.get("api-version"):
        return error_response(
            400,
            "Missing required query parameter 'api-version' (e.g. ?api-version=2024-06-01).",
            param="api-version",
            code="missing_required_parameter",
        )
    expected = state.config.require_key
    if expected is None:
        return None
    auth = request.headers.get("authorization", "")
    given = auth[7:] if auth.lower().startswith("bearer ") else None
    if azure and given is None:
        given = request.headers.get("api-key")
    if given == expected:
        return None
    if given is None:
        msg = "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'" + (
            " or in the 'api-key' header." if azure else "."
        )
        return error_response(401, msg, code="missing_api_key" if not azure else "401")
    return error_response(
        401,
        "Incorrect API key provided."
        if not azure
        else "Access denied due to invalid subscription key or wrong API endpoint.",
        code="invalid_api_key" if not azure else "401",
    )


async def _json_body(request: web.Request) -> Any:
    """The parsed body; raises ``chat.BadRequestError`` when it is not JSON."""
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise chat.BadRequestError(_BAD_JSON, None, None) from exc


async def _chat(request: web.Request) -> web.StreamResponse:
    state = _count(request, "chat.completions")
    refused = _refused(request, state)
    if refused is not None:
        return refused
    try:
        req = chat.parse(await _json_body(request), request.match_info.get("deployment"))
    except chat.BadRequestError as exc:
        return error_response(400, exc.message, param=exc.param, code=exc.code)
    config = state.config
    spec = faults.spec_of(last_user_text(req.messages))
    fault = spec.fault or faults.draw(state.rng, config, req.stream)
    if fault is not None:
        state.faults[fault] += 1
        if fault is faults.Fault.RATE_LIMIT:
            return faults.rate_limited(config)
        if fault is faults.Fault.SERVER_ERROR:
            return faults.server_error()
        if fault is faults.Fault.TIMEOUT:
            return await faults.hang(request, config.hang_s)
        if fault is faults.Fault.RESET:
            faults.abort(request)
            return web.Response(status=502)  # never reaches the client: the transport is gone
        if fault is faults.Fault.GARBAGE:
            return faults.garbage()
    plan = chat.plan(req, state.profile, config.seed)
    ttft_s, s_per_token = draw_latency(
        state.rng, config.timing(state.profile), config.latency_sigma, config.time_scale
    )
    if spec.slow_s is not None:  # forced duration, unscaled: a fifth waiting, the rest streaming
        ttft_s = 0.2 * spec.slow_s
        s_per_token = 0.8 * spec.slow_s / max(1, plan.longest_tokens)
    midstream = fault is faults.Fault.MIDSTREAM_RESET
    if req.stream:
        return await stream.send(request, req, plan, ttft_s, s_per_token, midstream)
    duration_s = ttft_s + plan.longest_tokens * s_per_token
    if duration_s > 0:
        await asyncio.sleep(duration_s)
    choices = [
        {
            "index": c.index,
            "message": c.message(),
            "logprobs": c.logprobs_object(),
            "finish_reason": c.finish_reason,
        }
        for c in plan.choices
    ]
    obj = completion(
        new_id("chatcmpl"), req.model, choices, usage(plan.prompt_tokens, plan.completion_tokens)
    )
    if midstream:
        return await stream.cut_body(request, orjson.dumps(obj))
    return json_response(obj)


async def _embeddings(request: web.Request) -> web.StreamResponse:
    state = _count(request, "embeddings")
    refused = _refused(request, state)
    if refused is not None:
        return refused
    try:
        body = await _json_body(request)
        model = body.get("model") if isinstance(body, dict) else None
        model = (
            model
            if isinstance(model, str)
            else request.match_info.get("deployment", "text-embedding-3-small")
        )
        return json_response(embeddings_response(body, model))
    except chat.BadRequestError as exc:
        return error_response(400, exc.message, param=exc.param, code=exc.code)


async def _models(request: web.Request) -> web.StreamResponse:
    state = _count(request, "models")
    refused = _refused(request, state) if state.config.require_key else None
    if refused is not None:
        return refused
    data = [
        {"id": m, "object": "model", "created": 1721172741, "owned_by": "system"}
        for m in MODELS[state.profile]
    ]
    wanted = request.match_info.get("model")
    if wanted is None:
        return json_response({"object": "list", "data": data})
    found = next((m for m in data if m["id"] == wanted), None)
    if found is None:
        return error_response(
            404, f"The model '{wanted}' does not exist", param="model", code="model_not_found"
        )
    return json_response(found)


def _config_view(state: SimState) -> dict[str, Any]:
    view = dataclasses.asdict(state.config)
    view["require_key"] = None if state.config.require_key is None else "***"
    return {"profile": state.profile, "config": view}


async def _get_config(request: web.Request) -> web.StreamResponse:
    return json_response(_config_view(request.app[STATE]))


async def _set_config(request: web.Request) -> web.StreamResponse:
    """Replace some SimConfig fields at run time (``{"rate_500": 0.5, "fine_tuned_ttft_s": 2}``)."""
    state = request.app[STATE]
    try:
        changes = await _json_body(request)
        if not isinstance(changes, dict):
            raise chat.BadRequestError("The body must be a JSON object of SimConfig fields.")
        state.config = override(state.config, changes)
    except (chat.BadRequestError, ConfigOverrideError) as exc:
        return error_response(400, str(exc))
    return json_response(_config_view(state))


async def _reset_config(request: web.Request) -> web.StreamResponse:
    """Back to the config the app was built with; counters are kept."""
    state = request.app[STATE]
    state.config = state.initial
    return json_response(_config_view(state))


async def _stats(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    return json_response(
        {
            "profile": state.profile,
            "requests": dict(state.requests),
            "faults": {str(k): v for k, v in state.faults.items()},
            "total": sum(state.requests.values()),
        }
    )
