"""The one place that renders errors: OpenAI's shape, the SDK's status codes.

``{"error": {"message", "type", "param", "code"}}``. Used by the raw proxy handler and registered
on the FastAPI app (``install_handlers``) for ``TunewatchError``, validation errors, Starlette's
404/405 and any unexpected exception (500 with the request id; the traceback goes to the log).
"""

from __future__ import annotations

import logging
from typing import Any, TypedDict

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from service.errors import TunewatchError

__all__ = ["ErrorBody", "error_body", "error_headers", "install_handlers"]

log = logging.getLogger(__name__)

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "invalid_request_error", 405: "invalid_request_error", 409: "invalid_request_error",
          413: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error"}


class ErrorDetail(TypedDict):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(TypedDict):
    error: ErrorDetail


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> bytes:
    body: ErrorBody = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return orjson.dumps(body)


def render(exc: TunewatchError) -> bytes:
    return error_body(exc.message, exc.type, exc.param, exc.code)


def error_headers(exc: TunewatchError) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", b"application/json")]
    if exc.should_retry is not None:
        headers.append((b"x-should-retry", b"true" if exc.should_retry else b"false"))
    return headers


def _response(status: int, body: bytes, request: Request, retry: bool | None = None) -> Response:
    headers = {}
    if retry is not None:
        headers["x-should-retry"] = "true" if retry else "false"
    rid = request.headers.get("x-request-id")
    if rid:
        headers["x-request-id"] = rid
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _describe(errors: Any) -> tuple[str, str | None]:
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    where = ".".join(loc) or None
    msg = first.get("msg", "invalid request")
    return (f"{where}: {msg}" if where else msg), where


def install_handlers(app: FastAPI) -> None:
    """Map every error the FastAPI side can raise to OpenAI's shape."""

    async def on_ours(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TunewatchError)
        return _response(exc.status, render(exc), request, exc.should_retry)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        message, param = _describe(exc.errors())
        return _response(400, error_body(message, "invalid_request_error", param, "invalid_request"), request, False)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        if status == 404:
            message = f"Unknown path {request.url.path}; see the README for the routes tunewatch serves."
        elif status == 405:
            message = f"{request.method} is not allowed on {request.url.path}."
        else:
            message = str(exc.detail)
        code = {404: "not_found", 405: "method_not_allowed"}.get(status)
        return _response(status, error_body(message, _TYPES.get(status, "api_error"), None, code), request)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        rid = request.headers.get("x-request-id", "")
        log.error("http.unhandled_error", exc_info=exc, extra={"path": request.url.path, "request_id": rid})
        message = "tunewatch hit an internal error; it has been logged" + (f" (request {rid})." if rid else ".")
        return _response(500, error_body(message, "api_error", None, "internal_error"), request)

    app.add_exception_handler(TunewatchError, on_ours)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
