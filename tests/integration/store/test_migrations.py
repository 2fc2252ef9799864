"""Migrations on both dialects: round trip, and no difference between ``upgrade head`` and the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, pool

from service.store import migrate
from service.store.models import Base

HEAD = "0003_eval_runs"
TABLES = {
    "requests", "samples", "feedback", "scores", "signals", "reference_sets", "reference_items",
    "alert_states", "webhook_deliveries", "experiment_states", "eval_runs", "eval_scores",
}


def _tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _diff(url: str) -> list[object]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            opts = {"compare_type": True, "compare_server_default": True}
            ctx = MigrationContext.configure(conn, opts=opts)
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()


def test_upgrade_downgrade_round_trip(db_url: str) -> None:
    assert migrate.current(db_url) is None
    migrate.upgrade(db_url)
    assert migrate.current(db_url) == migrate.head() == HEAD
    assert migrate.is_up_to_date(db_url)
    assert _tables(db_url) == TABLES

    migrate.downgrade(db_url, "base")
    assert migrate.current(db_url) is None
    assert _tables(db_url) == set()

    migrate.upgrade(db_url)
    assert _tables(db_url) == TABLES
    assert migrate.current(db_url) == HEAD


def test_upgrade_is_idempotent(db_url: str) -> None:
    migrate.upgrade(db_url)
    migrate.upgrade(db_url)
    assert migrate.current(db_url) == HEAD


def test_models_match_migrations(db_url: str) -> None:
    migrate.upgrade(db_url)
    assert _diff(db_url) == []


def test_diff_detects_a_drift(db_url: str) -> None:
    """The comparison can fail: a table the migrations do not know shows up as a difference."""
    migrate.upgrade(db_url)
    engine = create_engine(db_url, poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ix_requests_created_at")
    finally:
        engine.dispose()
    diff = _diff(db_url)
    assert any(d[0] == "add_index" and d[1].name == "ix_requests_created_at" for d in diff), diff  # type: ignore[index]
