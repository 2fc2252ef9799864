"""Alembic environment for tunewatch (SQLite and PostgreSQL).

The database URL comes, first found, from: ``config.attributes["url"]`` (set by
:mod:`service.store.migrate`), ``alembic -x url=...``, ``sqlalchemy.url`` set in code, and
``TUNEWATCH_DATABASE_URL`` through :class:`service.config.Settings`. ``alembic.ini`` holds no URL,
so it holds no secret. ``render_as_batch`` lets SQLite alter tables (move and copy); on SQLite the
migration engine leaves ``foreign_keys`` off, so a table copy never fires ``ON DELETE CASCADE``.
On PostgreSQL the whole upgrade is one transaction holding an advisory lock, so replicas that
migrate at the same time run it one after the other.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, create_engine, pool, text
from sqlalchemy.engine import URL

from service.config import Settings
from service.store.db import parse_url
from service.store.models import Base

#: pg_advisory_xact_lock key of the migration run ("tunewatch migrate")
MIGRATION_LOCK_KEY = 7_411_500_001

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> URL:
    url = (
        config.attributes.get("url")
        or context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or Settings.from_env().database_url
    )
    return parse_url(str(url))


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )


def run_migrations_offline() -> None:
    """``alembic upgrade head --sql``: print the SQL instead of running it."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    lock = text("SELECT pg_advisory_xact_lock(:key)")
                    connection.execute(lock, {"key": MIGRATION_LOCK_KEY})
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
