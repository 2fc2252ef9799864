"""One pooled aiohttp client per upstream deployment, with timeouts and a circuit breaker.

aiohttp, not httpx, on the hot path: httpx's per-request cost measured ~10x aiohttp's here
(``../shared/notes/python-proxy-speed.md``). Each :class:`Upstream` owns one ``ClientSession``
(keep-alive, bounded connections, connect/read/pool timeouts from its config) opened lazily on
first use, so the service starts while an upstream is still down.

Transport failures become ours here, raised ``from`` the aiohttp error: refused or breaker open →
``UpstreamUnavailableError`` (503), timeout → ``UpstreamTimeoutError`` (504), reset or garbage →
``UpstreamProtocolError`` (502). An upstream's own 4xx/5xx are not errors here: the proxy passes
them through with status, body and ``retry-after``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

import aiohttp
from pydantic import SecretStr

from service.config import UpstreamConfig, UpstreamKind
from service.errors import (
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)

__all__ = ["Breaker", "Upstream", "transport_error"]

#: response headers passed back to the client (besides content-type)
PASSED_HEADERS: Final = (
    "retry-after", "retry-after-ms", "x-ratelimit-limit-requests", "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens", "openai-processing-ms", "x-should-retry",
)


class Breaker:
    """Opens after ``threshold`` consecutive transport failures; half-opens after ``cooldown_s``."""

    __slots__ = ("_cooldown_s", "_failures", "_opened_at", "_threshold")

    def __init__(self, threshold: int = 5, cooldown_s: float = 5.0) -> None:
        self._threshold = threshold
        self._cooldown_s = cooldown_s
        self._failures = 0
        self._opened_at = 0.0

    @property
    def open(self) -> bool:
        if self._failures < self._threshold:
            return False
        # past the cooldown it is half-open: one call goes through and its outcome decides
        return time.monotonic() - self._opened_at < self._cooldown_s

    def success(self) -> None:
        self._failures = 0

    def failure(self) -> None:
        self._failures += 1
        if self._failures >= self._threshold:
            self._opened_at = time.monotonic()


class Upstream:
    """A deployment reached over one pooled HTTP client."""

    def __init__(self, name: str, config: UpstreamConfig, api_key: SecretStr | None) -> None:
        self.name = name
        self.config = config
        self.target_model = config.target_model
        self.price_in = config.price.input_per_1k / 1000.0
        self.price_out = config.price.output_per_1k / 1000.0
        self.breaker = Breaker()
        if config.kind is UpstreamKind.AZURE:
            root = f"{config.endpoint.rstrip('/')}/openai/deployments/{config.deployment}"  # type: ignore[union-attr]  # validated
            query = f"?api-version={config.api_version}"
            self.chat_url = f"{root}/chat/completions{query}"
            emb = config.embedding_model or config.deployment
            self.embeddings_url = f"{config.endpoint.rstrip('/')}/openai/deployments/{emb}/embeddings{query}"  # type: ignore[union-attr]
            self.models_url = f"{config.endpoint.rstrip('/')}/openai/models{query}"  # type: ignore[union-attr]
            auth = {"api-key": api_key.get_secret_value()} if api_key else {}
        else:
            base = config.base_url.rstrip("/")  # type: ignore[union-attr]  # validated
            self.chat_url = f"{base}/chat/completions"
            self.embeddings_url = f"{base}/embeddings"
            self.models_url = f"{base}/models"
            auth = {"Authorization": f"Bearer {api_key.get_secret_value()}"} if api_key else {}
        self.headers = {"Content-Type": "application/json", **auth}
        t = config.timeouts
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=t.pool_s + t.connect_s, sock_connect=t.connect_s, sock_read=t.read_s
        )
        self._session: aiohttp.ClientSession | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.price_in + completion_tokens * self.price_out

    @property
    def session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None:
            connector = aiohttp.TCPConnector(
                limit=self.config.max_connections, limit_per_host=0, keepalive_timeout=30.0,
                enable_cleanup_closed=False,
            )
            session = self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, skip_auto_headers=("User-Agent",),
                raise_for_status=False, auto_decompress=True,
            )
        return session

    async def post(self, url: str, body: bytes, extra: dict[str, str] | None = None) -> aiohttp.ClientResponse:
        """Send ``body``; the response's headers have arrived. Raises ``UpstreamError`` subclasses."""
        if self.breaker.open:
            raise UpstreamUnavailableError(
                f"upstream {self.name!r} is failing; tunewatch stopped calling it for a few seconds "
                "(circuit breaker open). Retry shortly."
            )
        headers = {**self.headers, **extra} if extra else self.headers
        try:
            resp = await self.session.post(url, data=body, headers=headers)
        except BaseException as exc:
            err = transport_error(self.name, exc)
            if err is None:
                raise
            self.breaker.failure()
            raise err from exc
        self.breaker.success()
        return resp

    async def get(self, url: str) -> aiohttp.ClientResponse:
        try:
            return await self.session.get(url, headers=self.headers)
        except BaseException as exc:
            err = transport_error(self.name, exc)
            if err is None:
                raise
            raise err from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def transport_error(name: str, exc: BaseException) -> UpstreamError | None:
    """Our error for an aiohttp/OS failure talking to upstream ``name``; None for anything else."""
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamTimeoutError(f"upstream {name!r} did not answer in time; retry, or raise its read timeout.")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamUnavailableError(f"cannot connect to upstream {name!r}; check that it is running.")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return UpstreamProtocolError(f"upstream {name!r} closed the connection before the response was complete.")
    if isinstance(exc, aiohttp.ClientError):
        return UpstreamProtocolError(f"upstream {name!r} sent a response tunewatch could not read.")
    return None
