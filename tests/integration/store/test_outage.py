"""A database that goes away while traffic flows: the service keeps answering and loses nothing
that fits the recorder's queue; what does not fit is dropped and counted, never blocking a client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openai import OpenAI
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, func, pool, select

from service.app import build_service
from service.simulator import SimConfig, start_in_thread
from service.store.models import Request
from tests.support.postgres import PostgresCluster, PostgresUnavailable, start_cluster
from tests.support.proxy import CLIENT_KEY, demo_experiments, running, settings_for_tests
from tests.support.wait import wait_for

pytestmark = pytest.mark.postgres
MESSAGES: Any = [{"role": "user", "content": "Does my renters insurance cover theft?"}]


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    try:
        with start_cluster() as c:  # its own cluster: this test stops it
            yield c
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL server binaries are missing ({exc}); `make test` installs them")


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[str, str]]:
    config = SimConfig(seed=3, time_scale=0.0)
    with start_in_thread("base", config) as base, start_in_thread("fine_tuned", config) as ft:
        yield base.url, ft.url


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def rows(url: str) -> int:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(Request)).scalar_one())
    finally:
        engine.dispose()


def send(sdk: OpenAI, n: int, tag: str) -> None:
    for i in range(n):
        reply = sdk.chat.completions.create(model="demo", user=f"{tag}-{i}", messages=MESSAGES)
        assert reply.choices[0].message.content  # answered while the database is away


@pytest.mark.parametrize("queue", [10_000, 15])
def test_database_outage(cluster: PostgresCluster, sims: tuple[str, str], queue: int) -> None:
    url = cluster.url()
    settings = settings_for_tests(database_url=url, recorder_queue_size=queue, recorder_batch_size=10,
                             recorder_flush_interval_s=0.05, scheduler_enabled=False, shutdown_grace_s=15.0)
    dropped_before = counter("tunewatch_records_dropped_total")
    failures_before = counter("tunewatch_recorder_write_errors_total")
    with running(build_service(settings, demo_experiments(*sims)), settings) as proxy, \
            OpenAI(base_url=proxy.v1, api_key=CLIENT_KEY, max_retries=0) as sdk:
        send(sdk, 20, "before")
        wait_for(lambda: rows(url) == 20, what="the first 20 rows")
        cluster.halt()
        send(sdk, 40, "during")  # the writer fails and keeps what it holds; the queue fills
        wait_for(lambda: counter("tunewatch_recorder_write_errors_total") > failures_before,
                 what="the writer to notice the outage")
        cluster.restart()
        send(sdk, 10, "after")
    # the graceful stop flushed the queue
    dropped = counter("tunewatch_records_dropped_total") - dropped_before
    assert rows(url) + dropped == 70
    if queue == 10_000:
        assert dropped == 0
    else:
        assert dropped > 0
