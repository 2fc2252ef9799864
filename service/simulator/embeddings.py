"""Deterministic embeddings: hashed word and character-trigram features, L2-normalised.

Texts that share words land close together, which is all the drift detector's tests need; the
same text always gets the same vector, in any process (crc32, not Python's salted ``hash``).
"""

from __future__ import annotations

import base64
import re
import zlib
from typing import Any

import numpy as np

from service.simulator.chat import BadRequestError
from service.simulator.tokens import count_tokens

__all__ = ["DEFAULT_DIMENSIONS", "embed", "embeddings_response", "parse_inputs"]

DEFAULT_DIMENSIONS = 256
_MAX_DIMENSIONS = 3072
_WORD = re.compile(r"[a-z0-9]+")


def embed(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The unit-length float32 vector of ``text`` (a zero vector for text with no letters or digits)."""
    vec = np.zeros(dimensions, dtype=np.float32)
    low = text.lower()
    features = [f"w:{w}" for w in _WORD.findall(low)]
    padded = f" {' '.join(_WORD.findall(low))} "
    features += [f"c:{padded[i : i + 3]}" for i in range(len(padded) - 2)]
    for f in features:
        h = zlib.crc32(f.encode())
        # words weigh more than trigrams; the sign bit spreads collisions around zero
        vec[h % dimensions] += (2.0 if f[0] == "w" else 1.0) * (1.0 if h & 0x80000000 else -1.0)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


def parse_inputs(body: Any) -> tuple[list[str], int, str]:
    """(texts, dimensions, encoding_format) of an embeddings request body.

    ``input`` is a string, a list of strings, or token arrays (embedded as their digits).

    Raises:
        BadRequestError: the 400 OpenAI would send.
    """
    if not isinstance(body, dict):
        raise BadRequestError("The request body must be a JSON object.", None, None)
    raw = body.get("input")
    if raw is None:
        raise BadRequestError("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    items = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
    texts: list[str] = []
    for item in items:
        if isinstance(item, str) and item:
            texts.append(item)
        elif (
            isinstance(item, list)
            and item
            and all(isinstance(t, int) and not isinstance(t, bool) for t in item)
        ):
            texts.append(" ".join(map(str, item)))
        else:
            raise BadRequestError(
                "'$.input' is invalid: expected a non-empty string, an array of non-empty "
                "strings, or arrays of token integers.",
                "input",
            )
    dims = body.get("dimensions", DEFAULT_DIMENSIONS)
    if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= _MAX_DIMENSIONS:
        raise BadRequestError(
            f"Invalid 'dimensions': expected an integer between 1 and {_MAX_DIMENSIONS}.", "dimensions"
        )
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise BadRequestError(
            "Invalid 'encoding_format': supported values are 'float' and 'base64'.", "encoding_format"
        )
    return texts, dims, fmt


def embeddings_response(body: Any, model: str) -> dict[str, Any]:
    """The ``list`` object answering an embeddings request (raises ``BadRequestError`` on a bad body)."""
    texts, dims, fmt = parse_inputs(body)
    data = []
    for i, text in enumerate(texts):
        vec = embed(text, dims)
        value: Any = (
            base64.b64encode(vec.astype("<f4").tobytes()).decode() if fmt == "base64" else vec.tolist()
        )
        data.append({"object": "embedding", "index": i, "embedding": value})
    tokens = sum(count_tokens(t) for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
