"""Simulated upstreams over real HTTP and a proxy in front of them."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest

from service.simulator import SimConfig, start_in_thread
from service.telemetry.recorder import Record
from tests.support.proxy import RunningProxy, demo_experiments, proxy


class ListSink:
    """A BatchSink that keeps records in memory."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self._lock = threading.Lock()

    def write(self, records: Sequence[Record]) -> None:
        with self._lock:
            self.records.extend(records)

    def by_id(self, request_id: str) -> Record | None:
        with self._lock:
            return next((r for r in self.records if r.request_id == request_id), None)


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[str, str]]:
    config = SimConfig(seed=7, time_scale=0.0)
    with start_in_thread("base", config) as base, start_in_thread("fine_tuned", config) as ft:
        yield base.url, ft.url


@pytest.fixture(scope="module")
def sink() -> ListSink:
    return ListSink()


@pytest.fixture(scope="module")
def gw(sims: tuple[str, str], sink: ListSink) -> Iterator[RunningProxy]:
    experiments = demo_experiments(*sims)
    with proxy(experiments, sink=sink) as running:
        yield running
