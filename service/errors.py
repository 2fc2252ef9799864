"""The one exception hierarchy of tunewatch.

Every error a client can see is a ``TunewatchError``; ``gateway/errors.py`` renders it once, in
OpenAI's error shape, so the official SDK raises the matching exception class::

    TunewatchError
    ├── InvalidRequestError        400  invalid_request_error
    │   └── PayloadTooLargeError   413  invalid_request_error
    ├── AuthenticationError        401  authentication_error
    ├── PermissionDeniedError      403  permission_error
    ├── NotFoundError              404  invalid_request_error (code model_not_found, not_found …)
    ├── MethodNotAllowedError      405  invalid_request_error
    └── UpstreamError              502  upstream_error
        ├── UpstreamProtocolError  502
        ├── UpstreamUnavailableError 503
        └── UpstreamTimeoutError   504
    ConfigError                         startup only: bad settings or experiments file

Messages say what to fix. This module imports nothing of ours.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "InvalidRequestError",
    "MethodNotAllowedError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "TunewatchError",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamTimeoutError",
    "UpstreamUnavailableError",
]


class TunewatchError(Exception):
    """Base of every error rendered to a client."""

    status: int = 500
    type: str = "api_error"
    code: str | None = None
    #: whether the SDK should retry (sent as ``x-should-retry``); None leaves it to the SDK.
    should_retry: bool | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequestError(TunewatchError):
    status = 400
    type = "invalid_request_error"
    should_retry = False


class PayloadTooLargeError(InvalidRequestError):
    status = 413
    code = "payload_too_large"


class AuthenticationError(TunewatchError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"
    should_retry = False


class PermissionDeniedError(TunewatchError):
    status = 403
    type = "permission_error"
    should_retry = False


class NotFoundError(TunewatchError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"
    should_retry = False


class MethodNotAllowedError(TunewatchError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"
    should_retry = False


class UpstreamError(TunewatchError):
    """The upstream could not be reached or spoke nonsense (its own 4xx/5xx pass through as is)."""

    status = 502
    type = "upstream_error"
    code = "upstream_error"


class UpstreamProtocolError(UpstreamError):
    status = 502
    code = "upstream_protocol_error"


class UpstreamUnavailableError(UpstreamError):
    status = 503
    code = "upstream_unavailable"


class UpstreamTimeoutError(UpstreamError):
    status = 504
    code = "upstream_timeout"


class ConfigError(Exception):
    """Bad settings or experiments file; raised at startup only, with where and what to fix."""
