"""OpenAI-compatible simulated LLM upstreams (base, fine-tuned, judge) speaking the real wire protocol.

Used by ``tunewatch demo``, ``tunewatch simulate`` and the tests. Public API::

    SimConfig(seed=0, time_scale=1.0, ...)              the knobs (latency, fault rates, auth)
    build_app(profile, config) -> aiohttp Application   profile: base | fine_tuned | judge
    serve(host, port, profile, config)                  foreground, prints "listening on http://…"
    start_in_thread(profile, config, host, port=0)      -> RunningSimulator(.url, .port, .stop())
    demo_queries() -> [(text, in_domain)]               the shipped InsuranceQA/CLINC150 slice

Must not import anything of ours but ``service.config`` and ``service.errors`` (import-linter).
"""

from __future__ import annotations

from service.simulator.faults import Fault
from service.simulator.queries import demo_queries, demo_reference_path
from service.simulator.running import RunningSimulator, serve, start_in_thread
from service.simulator.server import MODELS, build_app
from service.simulator.settings import PROFILES, ConfigOverrideError, SimConfig

__all__ = [
    "MODELS",
    "PROFILES",
    "ConfigOverrideError",
    "Fault",
    "RunningSimulator",
    "SimConfig",
    "build_app",
    "demo_queries",
    "demo_reference_path",
    "serve",
    "start_in_thread",
]
