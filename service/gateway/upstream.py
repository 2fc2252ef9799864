"""One pooled HTTP/1.1 client per upstream deployment, with timeouts and a circuit breaker.

The pool is :mod:`service.h1.client` (asyncio Protocols + httptools), not aiohttp or httpx: a
general client's per-request machinery was about a third of the proxy's CPU here
(``../shared/notes/python-proxy-speed.md``). Each :class:`Upstream` builds the head of its
requests once (request line, host, content type, its own auth header) and opens connections
lazily, so the service starts while an upstream is still down.

Transport failures arrive as ours (:mod:`service.errors`): refused or breaker open → 503, timeout →
504, reset or garbage → 502. An upstream's own 4xx/5xx are not errors here: the proxy passes them
through with status, body and ``retry-after``.
"""

from __future__ import annotations

import time
from typing import Final

from pydantic import SecretStr

from service.config import UpstreamConfig, UpstreamKind
from service.errors import UpstreamError, UpstreamUnavailableError
from service.h1.client import Origin, Pool, Response

__all__ = ["Breaker", "Upstream"]

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
    """A deployment reached over one pooled HTTP/1.1 client."""

    def __init__(self, name: str, config: UpstreamConfig, api_key: SecretStr | None) -> None:
        self.name = name
        self.config = config
        self.target_model = config.target_model
        self.price_in = config.price.input_per_1k / 1000.0
        self.price_out = config.price.output_per_1k / 1000.0
        self.breaker = Breaker()
        if config.kind is UpstreamKind.AZURE:
            endpoint = config.endpoint.rstrip("/")  # type: ignore[union-attr]  # validated
            query = f"?api-version={config.api_version}"
            chat_url = f"{endpoint}/openai/deployments/{config.deployment}/chat/completions{query}"
            emb = config.embedding_model or config.deployment
            embeddings_url = f"{endpoint}/openai/deployments/{emb}/embeddings{query}"
            auth = f"api-key: {api_key.get_secret_value()}\r\n" if api_key else ""
        else:
            base = config.base_url.rstrip("/")  # type: ignore[union-attr]  # validated
            chat_url = f"{base}/chat/completions"
            embeddings_url = f"{base}/embeddings"
            auth = f"Authorization: Bearer {api_key.get_secret_value()}\r\n" if api_key else ""
        chat, embeddings = Origin(chat_url), Origin(embeddings_url)
        t = config.timeouts
        self.pool = Pool(name, chat, max_connections=config.max_connections, connect_s=t.connect_s,
                         read_s=t.read_s, pool_s=t.pool_s)
        common = f"Host: {chat.host_header}\r\nContent-Type: application/json\r\nAccept: */*\r\n{auth}"
        #: each request's head up to its Content-Length value; latin-1 as HTTP/1.1 heads are
        self._chat_head = f"POST {chat.target} HTTP/1.1\r\n{common}Content-Length: ".encode("latin-1")
        self._embeddings_head = f"POST {embeddings.target} HTTP/1.1\r\n{common}Content-Length: ".encode("latin-1")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.price_in + completion_tokens * self.price_out

    async def chat(self, body: bytes) -> Response:
        """POST ``body`` to the chat completions URL; the response's headers have arrived."""
        return await self._post(self._chat_head, body)

    async def embeddings(self, body: bytes) -> Response:
        return await self._post(self._embeddings_head, body)

    async def _post(self, head: bytes, body: bytes) -> Response:
        """Raises ``UpstreamError`` subclasses; counts them in the breaker."""
        breaker = self.breaker
        if breaker.open:
            raise UpstreamUnavailableError(
                f"upstream {self.name!r} is failing; tunewatch stopped calling it for a few seconds "
                "(circuit breaker open). Retry shortly."
            )
        try:
            resp = await self.pool.request(b"%s%d\r\n\r\n%s" % (head, len(body), body))
        except UpstreamError:
            breaker.failure()
            raise
        breaker.success()
        return resp

    async def close(self) -> None:
        await self.pool.close()
