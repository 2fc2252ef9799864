"""Run tunewatch in a thread of the test process, on a socket bound to 127.0.0.1:0.

In-process so tests can read ``REGISTRY`` deltas and reach the components; the server still talks
real HTTP, so the official SDK, streams and disconnects behave as in production.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from service.api.deps import Components
from service.app import components_of, create_app
from service.config import ExperimentsFile, Settings, parse_experiments
from service.gateway.proxy import Gateway
from service.runner import bind, build_server
from tests.support.wait import wait_for

CLIENT_KEY = "sk-test-client-0123456789"
ADMIN_KEY = "adm-test-0123456789"


@dataclass
class RunningProxy:
    url: str
    app: Gateway

    @property
    def components(self) -> Components:
        return components_of(self.app)

    @property
    def v1(self) -> str:
        return self.url + "/v1"


def demo_experiments(base_url: str, ft_url: str, **experiment: Any) -> ExperimentsFile:
    """The demo's two-arm experiment over two simulator URLs (``http://127.0.0.1:PORT``)."""
    exp = {"name": "demo", "stage": "ab", "salt": "test", "sample_rate": 1.0,
           "arms": [{"name": "base", "upstream": "base", "weight": 0.5},
                    {"name": "fine_tuned", "upstream": "fine_tuned", "weight": 0.5}], **experiment}
    return parse_experiments({
        "upstreams": {
            "base": {"kind": "openai", "base_url": base_url + "/v1", "model": "gpt-4o-mini",
                     "price": {"input_per_1k": 0.0025, "output_per_1k": 0.01},
                     "timeouts": {"connect_s": 2, "read_s": 5, "pool_s": 2}},
            "fine_tuned": {"kind": "azure", "endpoint": ft_url, "deployment": "ft-insurance",
                           "api_version": "2024-06-01",
                           "price": {"input_per_1k": 0.0003, "output_per_1k": 0.0012},
                           "timeouts": {"connect_s": 2, "read_s": 5, "pool_s": 2}},
        },
        "experiments": [exp],
    })


def settings_for_tests(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"api_keys": CLIENT_KEY, "admin_key": ADMIN_KEY, "scheduler_enabled": False,
                              "shutdown_grace_s": 5.0}
    values.update(overrides)
    return Settings(**values)


@contextmanager
def running(app: Gateway, settings: Settings) -> Iterator[RunningProxy]:
    """Serve ``app`` until the block ends; waits for the lifespan to finish starting."""
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = build_server(app, settings)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout_s=15, what="the proxy to start")
        yield RunningProxy(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@contextmanager
def proxy(experiments: ExperimentsFile, settings: Settings | None = None, **kwargs: Any) -> Iterator[RunningProxy]:
    settings = settings or settings_for_tests()
    with running(create_app(settings, experiments, **kwargs), settings) as running_proxy:
        yield running_proxy
