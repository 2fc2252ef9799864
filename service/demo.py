"""``tunewatch demo``: simulated upstreams, the proxy, and traffic through the official SDK.

Everything runs in this process: the base, fine-tuned and judge simulators on their own threads
and loopback ports, the proxy on the configured port (8000), and a traffic thread that asks the
demo's questions (InsuranceQA in-domain, CLINC150 off-topic) at ``traffic_rps`` with the ``openai``
SDK, as an application would, and leaves feedback on some answers.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, ExitStack
from typing import Any

import anyio
import openai
from pydantic import SecretStr

from service.api.deps import Components
from service.config import ExperimentsFile, Settings, parse_experiments
from service.drift.commands import import_reference
from service.drift.references import load_references, store_reference
from service.runner import bind, run_service
from service.simulator import SimConfig, demo_queries, demo_reference_path, start_in_thread
from service.store.db import Database

__all__ = ["demo_experiments", "run_demo"]

log = logging.getLogger(__name__)

#: the study guide's scenario: GPT-4o-class base with a long prompt vs a fine-tuned GPT-4o-mini
BASE_PRICE = {"input_per_1k": 0.0025, "output_per_1k": 0.01}
FINE_TUNED_PRICE = {"input_per_1k": 0.0003, "output_per_1k": 0.0012}


def demo_experiments(base_url: str, fine_tuned_url: str, judge_url: str) -> ExperimentsFile:
    """The ``demo`` experiment: arms ``base`` and ``fine_tuned`` over the simulators at those URLs."""
    return parse_experiments({
        "upstreams": {
            "base": {"kind": "openai", "base_url": f"{base_url}/v1", "model": "gpt-4o-mini",
                     "embedding_model": "text-embedding-3-small", "price": BASE_PRICE},
            "fine_tuned": {"kind": "azure", "endpoint": fine_tuned_url, "deployment": "gpt-4o-mini-insurance-ft",
                           "api_version": "2024-06-01", "price": FINE_TUNED_PRICE},
        },
        "experiments": [{
            "name": "demo", "stage": "ab", "salt": "demo", "sample_rate": 0.2, "sticky_header": "x-session-id",
            "fine_tuning_job_cost_usd": 300.0, "redact": True,
            "quality": {
                "judge": {"kind": "openai", "base_url": f"{judge_url}/v1", "model": "gpt-4o"},
                "thresholds": {"relevance": 3.5, "coherence": 3.5, "fluency": 3.5, "tone": 3.5},
                "timeout_s": 20.0, "backoff_base_s": 5.0, "lease_s": 120.0, "batch_size": 20,
            },
            "arms": [{"name": "base", "upstream": "base", "weight": 0.5},
                     {"name": "fine_tuned", "upstream": "fine_tuned", "weight": 0.5}],
        }],
    }, source="<demo>")


class Traffic:
    """Sends demo requests at a steady rate from a thread pool until stopped."""

    def __init__(self, url: str, key: str, rps: float, seed: int = 0) -> None:
        self._client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=1, timeout=60)
        self._rps = rps
        self._rng = random.Random(seed)
        self._queries = demo_queries()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=max(4, int(rps * 4)), thread_name_prefix="demo-traffic")
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)
        self.sent = 0
        self.failed = 0

    def start(self) -> None:
        if self._rps > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def _run(self) -> None:
        interval = 1.0 / self._rps
        while not self._stop.wait(self._rng.expovariate(1.0 / interval)):
            text, in_domain = self._rng.choice(self._queries)
            user = f"customer-{self._rng.randrange(500):03d}"
            self._pool.submit(self._one, text, in_domain, user, self._rng.random() < 0.5)

    def _one(self, text: str, in_domain: bool, user: str, stream: bool) -> None:
        messages: Any = [{"role": "user", "content": text}]
        try:
            raw = self._client.chat.completions.with_raw_response.create(
                model="demo", messages=messages, user=user, stream=stream)
            if stream:
                for _ in raw.parse():
                    pass
            else:
                raw.parse()
            self.sent += 1
            self._feedback(raw.headers.get("x-request-id"), raw.headers.get("x-tunewatch-arm"), in_domain)
        except openai.APIError:
            self.failed += 1

    def _feedback(self, request_id: str | None, arm: str | None, in_domain: bool) -> None:
        if request_id is None or self._rng.random() > 0.3:
            return
        happy = 0.8 if (arm == "fine_tuned") == in_domain else 0.55
        body = {"request_id": request_id, "thumbs": "up" if self._rng.random() < happy else "down"}
        try:
            self._client.post("/feedback", cast_to=object, body=body)
        except openai.APIError:
            self.failed += 1


def run_demo(settings: Settings, *, traffic_rps: float, time_scale: float, echo: Callable[[str], None]) -> None:
    """Run the demo until Ctrl-C (blocking)."""
    client_key = settings.api_keys[0].get_secret_value() if settings.api_keys else f"sk-demo-{secrets.token_hex(12)}"
    admin_key = settings.admin_key.get_secret_value() if settings.admin_key else f"adm-demo-{secrets.token_hex(12)}"
    settings = settings.model_copy(update={"api_keys": [SecretStr(client_key)], "admin_key": SecretStr(admin_key)})
    sim = SimConfig(seed=1, time_scale=time_scale)
    with ExitStack() as stack:
        base = stack.enter_context(start_in_thread("base", sim))
        ft = stack.enter_context(start_in_thread("fine_tuned", sim))
        judge = stack.enter_context(start_in_thread("judge", sim))
        experiments = demo_experiments(base.url, ft.url, judge.url)
        sock = bind(settings.host, settings.port)
        host, port = sock.getsockname()[:2]
        url = f"http://{host}:{port}"
        traffic = Traffic(url, client_key, traffic_rps)

        async def start_traffic(comps: Components, stack: AsyncExitStack) -> None:
            if comps.database is not None:
                await anyio.to_thread.run_sync(_ensure_reference, comps.database, echo)
            traffic.start()
            stack.callback(traffic.stop)
            _banner(echo, url, client_key, admin_key, traffic_rps, settings)

        run_service(settings, experiments, sock=sock, announce=lambda _: None, start_hooks=[start_traffic])
    echo(f"demo stopped: {traffic.sent} demo requests sent, {traffic.failed} failed.")


def _ensure_reference(database: Database, echo: Callable[[str], None]) -> None:
    """Give the demo experiment its out-of-domain reference once (blocking: reads and calibrates)."""
    if "demo" in load_references(database):
        return
    imported = import_reference(demo_reference_path())
    store_reference(database, "demo", imported)
    echo(f"imported the demo's out-of-domain reference: {len(imported.texts)} queries, "
         f"threshold {imported.calibration.threshold:.2f} at the {imported.calibration.percentile:g}th percentile")


def _banner(echo: Callable[[str], None], url: str, key: str, admin: str, rps: float, settings: Settings) -> None:
    echo(f"""
tunewatch demo is running
  proxy (OpenAI)   {url}/v1          model="demo", arms base and fine_tuned
  proxy (Azure)    {url}             AzureOpenAI(azure_endpoint=..., api_version="2024-06-01")
  client key       {key}
  admin key        {admin}
  demo traffic     {rps:g} requests/s through the openai SDK (--traffic 0 turns it off)
  database         {settings.database_url}

Where to look
  metrics          {url}/metrics
  experiments      curl -H "Authorization: Bearer {admin}" {url}/admin/experiments
  report           tunewatch report --experiment demo            (also --format html --out report.html)
                   {url}/admin/experiments/demo/report?format=html  (admin key)

Try it
  curl {url}/v1/chat/completions -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
       -d '{{"model": "demo", "user": "alice", "messages": [{{"role": "user", "content": "What is a deductible?"}}]}}'

Ctrl-C stops it.
""")
