"""``Database`` on SQLite, URL handling and the UTC column type."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text

from service.errors import ConfigError
from service.store.db import Database, parse_url
from service.store.migrate import upgrade
from service.store.models import Request
from service.store.sink import RequestSink
from tests.support.records import make_record


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'unit.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def test_sqlite_pragmas(db: Database) -> None:
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    assert db.is_sqlite and not db.is_postgres
    assert db.ping()


def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(Exception, match="FOREIGN KEY"), db.begin() as conn:
        conn.execute(text(
            "INSERT INTO feedback (request_id, created_at, experiment, arm, sentiment) "
            "VALUES ('nope', '2026-01-01 00:00:00', 'demo', 'base', 'positive')"
        ))


def test_times_come_back_aware_utc(db: Database) -> None:
    paris = timezone(timedelta(hours=1))
    record = make_record(0)
    RequestSink(db, b"k").write([record])
    with db.session() as s:
        row = s.scalars(select(Request)).one()
        assert row.created_at.tzinfo is UTC
        row.created_at = datetime(2026, 11, 24, 13, 0, tzinfo=paris)
    with db.session() as s:
        assert s.scalars(select(Request.created_at)).one() == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
        # comparisons bind through the same type, so an aware bound in another zone still matches
        one_pm_paris = datetime(2026, 11, 24, 13, 0, tzinfo=paris)
        assert s.scalars(select(Request.id).where(Request.created_at >= one_pm_paris)).all()


def test_naive_datetimes_are_refused(db: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"), db.session() as s:
        s.scalars(select(Request).where(Request.created_at < datetime(2026, 1, 1))).all()


def test_in_memory_database_is_shared_across_checkouts() -> None:
    database = Database("sqlite://")
    try:
        with database.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        with database.begin() as conn:
            assert conn.exec_driver_sql("SELECT x FROM t").scalar() == 1
    finally:
        database.dispose()


def test_ping_fails_without_raising(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}")
    try:
        assert database.ping() is False
    finally:
        database.dispose()


@pytest.mark.parametrize("url", ["postgresql://u:pw@h/db", "postgres://u:pw@h/db", "postgresql+psycopg://u:pw@h/db"])
def test_postgres_urls_mean_psycopg3(url: str) -> None:
    assert parse_url(url).drivername == "postgresql+psycopg"


def test_bad_urls_never_echo_the_password() -> None:
    for url in ["not a url", "mysql://user:s3cr3t-canary@host/db"]:
        with pytest.raises(ConfigError) as info:
            parse_url(url)
        assert "TUNEWATCH_DATABASE_URL" in str(info.value)
        assert "s3cr3t-canary" not in str(info.value)


def test_passwords_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    database = Database("postgresql+psycopg://tw:s3cr3t-canary@127.0.0.1:1/db", connect_timeout_s=1)
    try:
        assert "s3cr3t-canary" not in database.safe_url
        assert "s3cr3t-canary" not in repr(database)
        assert database.is_postgres
        assert database.ping() is False  # nothing listens on port 1
    finally:
        database.dispose()
    for record in caplog.records:
        assert "s3cr3t-canary" not in record.getMessage()
        assert "s3cr3t-canary" not in str(record.__dict__)
