"""Run the Alembic migrations from code: ``upgrade``, ``downgrade``, ``current``, ``head``.

The migrations ship inside the package (``service/store/migrations``), so an installed tunewatch
migrates without the repository; ``alembic.ini`` at the repository top points at the same folder
for ``alembic upgrade head``. The URL is handed over in ``Config.attributes`` and never written to
an ini option (a ``%`` in a password would break ``ConfigParser``, and nothing secret is logged).

Blocking: call from the CLI, a test, or a thread at startup, never from ``async def``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from service.store.db import parse_url

__all__ = ["MIGRATIONS_DIR", "alembic_config", "current", "downgrade", "head", "is_up_to_date", "upgrade"]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic ``Config`` built in code: the packaged migrations, this URL, no logging setup."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = url
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision``; raises what SQLAlchemy/Alembic raise."""
    safe = parse_url(url).render_as_string(hide_password=True)
    log.info("store.migrate_upgrade", extra={"url": safe, "revision": revision})
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate down to ``revision`` (``"base"`` drops every table tunewatch created)."""
    safe = parse_url(url).render_as_string(hide_password=True)
    log.info("store.migrate_downgrade", extra={"url": safe, "revision": revision})
    command.downgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    """The revision the database is at, or None for an empty (unmigrated) database."""
    engine = create_engine(parse_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision the package ships."""
    rev = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if rev is None:  # pragma: no cover - the package always ships 0001_initial
        raise RuntimeError("no migrations found in the package")
    return rev


def is_up_to_date(url: str) -> bool:
    """True when the database is at :func:`head` (``/readyz`` or ``serve`` without auto-migrate)."""
    return current(url) == head()
