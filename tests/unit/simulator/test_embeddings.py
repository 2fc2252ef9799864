"""Deterministic hashed embeddings and the embeddings request body."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from service.simulator.chat import BadRequestError
from service.simulator.embeddings import embed, embeddings_response


def test_unit_length_deterministic_and_meaningful() -> None:
    a = embed("how do I file a car insurance claim")
    assert a.shape == (256,) and a.dtype == np.float32
    assert abs(float(np.linalg.norm(a)) - 1.0) < 1e-5
    assert np.array_equal(a, embed("how do I file a car insurance claim"))
    near = embed("filing a claim on my car insurance")
    far = embed("what is the weather in paris tomorrow")
    assert float(a @ near) > float(a @ far)
    assert embed("x", 64).shape == (64,)
    assert not embed("!!!").any()


def test_response_shapes() -> None:
    got = embeddings_response({"input": ["a claim", "a premium"], "dimensions": 8}, "m")
    assert [d["index"] for d in got["data"]] == [0, 1] and len(got["data"][0]["embedding"]) == 8
    assert got["usage"]["prompt_tokens"] == got["usage"]["total_tokens"] > 0
    b64 = embeddings_response({"input": "a claim", "encoding_format": "base64", "dimensions": 8}, "m")
    decoded = np.frombuffer(base64.b64decode(b64["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, got["data"][0]["embedding"])
    assert len(embeddings_response({"input": [[1, 2, 3], [4]]}, "m")["data"]) == 2
    assert len(embeddings_response({"input": [1, 2, 3]}, "m")["data"]) == 1


@pytest.mark.parametrize(
    "body",
    [
        [],
        {},
        {"input": ""},
        {"input": [""]},
        {"input": [None]},
        {"input": "x", "dimensions": 0},
        {"input": "x", "encoding_format": "hex"},
    ],
)
def test_bad_bodies(body: object) -> None:
    with pytest.raises(BadRequestError):
        embeddings_response(body, "m")
