"""``Database`` session settings and concurrent use, on both dialects."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from service.store import migrate
from service.store.db import Database
from service.store.models import Feedback, Request
from service.store.queries import add_feedback
from service.store.sink import RequestSink
from tests.support.records import make_record

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.postgres
def test_postgres_session_settings(pg_database_url: str) -> None:
    db = Database(pg_database_url, statement_timeout_s=0.5)
    try:
        with db.begin() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "500ms"
            assert conn.execute(text("SHOW timezone")).scalar() == "UTC"
            assert conn.execute(text("SELECT current_setting('application_name')")).scalar() == "tunewatch"
        assert db.ping() and db.is_postgres
        with pytest.raises(Exception, match="statement timeout"), db.begin() as conn:
            conn.execute(text("SELECT pg_sleep(10)"))
    finally:
        db.dispose()


def test_writer_and_readers_share_the_database(migrated_db: Database) -> None:
    """The writer thread, feedback and reads at once: no "database is locked" (SQLite) and no loss."""
    sink = RequestSink(migrated_db, b"key")
    sink.write([make_record(i) for i in range(10)])
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for b in range(20):
                sink.write([make_record(i) for i in range(100 + b * 25, 125 + b * 25)])
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    def feedback() -> None:
        try:
            for n in range(40):
                add_feedback(migrated_db, make_record(n % 10).request_id, 1 + n % 5, None, None)
                with migrated_db.begin() as conn:
                    conn.execute(select(func.count()).select_from(Request)).scalar_one()
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=feedback)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    with migrated_db.begin() as conn:
        assert conn.execute(select(func.count()).select_from(Request)).scalar_one() == 10 + 20 * 25
        assert conn.execute(select(func.count()).select_from(Feedback)).scalar_one() == 40


@pytest.mark.postgres
def test_concurrent_upgrades_take_turns(pg_database_url: str) -> None:
    """Two replicas migrating at once: the advisory lock serialises them, both succeed."""
    cmd = [sys.executable, "-m", "alembic", "-x", f"url={pg_database_url}", "upgrade", "head"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert migrate.current(pg_database_url) == migrate.head()
