"""``GET /v1/models`` (the experiments, as models) and ``POST /v1/embeddings`` (passed through).

Embeddings go to the control arm's upstream of the experiment named by ``model`` (or by the Azure
deployment in the path), with ``model`` set to that upstream's ``embedding_model`` when it has one.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from service.errors import InvalidRequestError, NotFoundError
from service.gateway.arms import ExperimentRoute
from service.gateway.body import parse_json_object
from service.gateway.upstream import Upstream
from service.h1.asgi import Send

__all__ = ["embeddings", "models"]



async def models(routes: Mapping[str, ExperimentRoute], send: Send, request_id: str) -> None:
    data = [{"id": name, "object": "model", "created": 0, "owned_by": "tunewatch"} for name in sorted(routes)]
    body = orjson.dumps({"object": "list", "data": data})
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode())]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def embeddings(
    raw: bytes,
    deployment: str | None,
    routes: Mapping[str, ExperimentRoute],
    upstreams: Mapping[str, Upstream],
    send: Send,
    request_id: str,
) -> None:
    """Forward an embeddings request; raises ``TunewatchError`` before anything is sent."""
    data = parse_json_object(raw)
    name = deployment or data.get("model")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError("you must provide a model parameter naming an experiment.", param="model")
    if "input" not in data:
        raise InvalidRequestError("`input` is required: a string or an array of strings.", param="input")
    route = routes.get(name)
    if route is None:
        raise NotFoundError(f"The model `{name}` does not exist; tunewatch serves {sorted(routes)}.",
                            param="model", code="model_not_found")
    upstream = upstreams[route.arm(route.control).upstream]
    target = upstream.config.embedding_model
    if target is not None and data.get("model") != target:
        data["model"] = target
        raw = orjson.dumps(data)
    resp = await upstream.embeddings(raw)
    try:
        payload = await resp.read_all()
    finally:
        resp.release()
    await send({"type": "http.response.start", "status": resp.status, "headers": [
        (b"content-type", resp.header(b"content-type") or b"application/json"),
        (b"content-length", str(len(payload)).encode()), (b"x-request-id", request_id.encode()),
        (b"x-tunewatch-experiment", route.name.encode())]})
    await send({"type": "http.response.body", "body": payload, "more_body": False})
