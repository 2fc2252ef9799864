"""``RequestSink`` on both dialects: rows land, retries do not duplicate, raw unit ids never reach the DB."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, inspect, select, text

from service.store.db import Database
from service.store.models import Request, Sample
from service.store.sink import RequestSink, hash_unit
from service.telemetry.recorder import Recorder
from tests.support.postgres import PostgresCluster
from tests.support.records import at, make_record

KEY = b"test-unit-hash-key-0123456789abcdef"


def _count(db: Database, model: type[Request] | type[Sample]) -> int:
    with db.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def test_batch_is_written(migrated_db: Database) -> None:
    records = [make_record(i) for i in range(100)]
    RequestSink(migrated_db, KEY).write(records)

    assert _count(migrated_db, Request) == 100
    assert _count(migrated_db, Sample) == sum(r.sampled for r in records) == 25
    with migrated_db.session() as s:
        row = s.get(Request, records[4].request_id)
        assert row is not None
        assert row.created_at == at(records[4].started_at)
        assert (row.experiment, row.arm, row.status, row.stream) == ("demo", "base", 200, False)
        assert row.latency_s == pytest.approx(0.504)
        assert row.unit_hash == hash_unit(KEY, "user-4")
        assert row.query == records[4].query and row.query_chars == len(records[4].query or "")
        assert row.sampled is True and row.ood_score is None
        sample = s.get(Sample, records[4].request_id)
        assert sample is not None
        assert orjson.loads(sample.messages or "null") == records[4].messages
        assert (sample.state, sample.attempts) == ("pending", 0)
        assert sample.response_text == records[4].response_text
        assert s.get(Sample, records[1].request_id) is None  # not sampled


def test_retried_batch_does_not_duplicate(migrated_db: Database) -> None:
    sink = RequestSink(migrated_db, KEY)
    first = [make_record(i) for i in range(10)]
    sink.write(first)
    sink.write(first)  # the recorder retries a batch whose commit raced a failure
    sink.write([*first[5:], *(make_record(i) for i in range(10, 15))])
    assert _count(migrated_db, Request) == 15
    assert _count(migrated_db, Sample) == 4  # 0, 4, 8, 12
    assert sink.rejected == 0


def test_empty_batch_is_a_no_op(migrated_db: Database) -> None:
    RequestSink(migrated_db, KEY).write([])
    assert _count(migrated_db, Request) == 0


def test_nul_characters_do_not_poison_a_batch(migrated_db: Database) -> None:
    records = [make_record(0, query="a\x00b", response_text="c\x00d"), make_record(1)]
    sink = RequestSink(migrated_db, KEY)
    sink.write(records)
    assert _count(migrated_db, Request) == 2
    assert sink.rejected == 0


def test_a_refused_record_is_dropped_and_the_rest_kept(migrated_db: Database) -> None:
    # PostgreSQL refuses an integer out of range (DataError); SQLite stores it.
    bad = make_record(1, prompt_tokens=2**40)
    sink = RequestSink(migrated_db, KEY)
    sink.write([make_record(0), bad, make_record(2)])
    expected_rejected = 1 if migrated_db.is_postgres else 0
    assert sink.rejected == expected_rejected
    assert _count(migrated_db, Request) == 3 - expected_rejected


def test_recorder_drains_into_the_sink(migrated_db: Database) -> None:
    recorder = Recorder(RequestSink(migrated_db, KEY), batch_size=50, flush_interval_s=0.05)
    recorder.start()
    try:
        for i in range(220):
            recorder.put_nowait(make_record(i))
        assert recorder.flush(timeout_s=30)
    finally:
        assert recorder.close(grace_s=10) == 0
    assert _count(migrated_db, Request) == 220


def test_raw_unit_ids_never_reach_the_database(
    migrated_db: Database, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    canary = "canary-user-7f3a9c1e@example.com"
    records = [make_record(i, unit_id=canary if i % 2 else f"{canary}-{i}") for i in range(40)]
    RequestSink(migrated_db, KEY).write(records)

    dump = _select_star(migrated_db)
    assert hash_unit(KEY, canary) in dump  # the dump does hold the rows...
    assert "canary-user" not in dump  # ...but never the raw id, nor a part of it
    if migrated_db.is_postgres:
        cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
        pg_dump = cluster.dump(migrated_db.url.database or "")
        assert hash_unit(KEY, canary) in pg_dump
        assert "canary-user" not in pg_dump
    else:
        migrated_db.dispose()  # checkpoint the WAL, then read every byte of the files
        raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("tunewatch.db"))
        assert hash_unit(KEY, canary).encode() in raw
        assert b"canary-user" not in raw


def test_empty_key_is_refused(migrated_db: Database) -> None:
    with pytest.raises(ValueError, match="unit_hash_key"):
        RequestSink(migrated_db, b"")


def _select_star(db: Database) -> str:
    """Every row of every table, as text."""
    out = []
    with db.begin() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                out.append(repr(tuple(row)))
    return "\n".join(out)
