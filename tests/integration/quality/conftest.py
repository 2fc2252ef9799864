"""The simulated judge (and upstreams) over real HTTP, and helpers to put samples in the store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest

from service.quality.judge import JudgeConfig, QualityConfig
from service.simulator import SimConfig, start_in_thread
from service.simulator.profiles import answer
from service.store.db import Database
from service.store.sink import RequestSink
from service.telemetry.recorder import Record
from tests.support.records import make_record

IN_DOMAIN = [
    "How Does Assigned Risk Auto Insurance Work?",
    "Does My Homeowners Insurance Cover Lost Wedding Ring?",
    "What Does Medicare Part B Cover?",
    "Can Creditors Take Life Insurance After Death?",
    "Is Car Insurance Prepaid?",
    "What Happens When Long Term Care Insurance Runs Out?",
]
OFF_TOPIC = [
    "how many vacation days do i have left this year",
    "set a timer for ten minutes",
    "what is the exchange rate between dollars and euros",
    "find me a recipe for lasagna",
]


@pytest.fixture(autouse=True)
def _lazy_ca_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    # The library builds an OpenAI client per evaluation; with SSL_CERT_FILE set, each one parses the
    # whole CA bundle (~27 ms of CPU). The judge here is plain HTTP on loopback: load nothing eagerly.
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)


@pytest.fixture(scope="module")
def judge_url() -> Iterator[str]:
    """The simulator's judge profile, answering at once; its ``/v1`` base URL."""
    with start_in_thread("judge", SimConfig(seed=3, time_scale=0.0, hang_s=3.0)) as sim:
        yield sim.url


def quality_for(url: str, **overrides: object) -> QualityConfig:
    """A quality config on the judge at ``url`` with short timeouts for tests."""
    values: dict[str, object] = {
        "judge": JudgeConfig(base_url=url + "/v1", model="judge-sim"),
        "timeout_s": 5.0,
        "concurrency": 8,
        "max_attempts": 2,
        "backoff_base_s": 60.0,
        "batch_size": 10,
    }
    values.update(overrides)
    return QualityConfig.model_validate(values)


def styled_answer(profile: str, query: str) -> str:
    """What the simulated ``profile`` upstream answers to ``query``."""
    return answer(profile, {"messages": [{"role": "user", "content": query}]}, seed=0).text


def put_samples(db: Database, rows: Sequence[tuple[str, str, str | None]], start: int = 0) -> list[str]:
    """Store (arm, query, context) rows as sampled requests with that arm's simulated answer (+ suffix)."""
    records: list[Record] = []
    for i, (arm, query, context) in enumerate(rows, start=start):
        suffix = ""
        if "|" in arm:
            arm, suffix = arm.split("|", 1)
        text = styled_answer(arm, query) + suffix
        records.append(
            make_record(
                i,
                arm=arm,
                sampled=True,
                query=query,
                response_text=text,
                context=context,
                messages=[{"role": "user", "content": query}],
                started_at=datetime.now(UTC).timestamp() - 60,
            )
        )
    RequestSink(db, b"k" * 32).write(records)
    return [r.request_id for r in records]
