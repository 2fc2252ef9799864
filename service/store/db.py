"""``Database``: the one engine and ``sessionmaker`` of a process, for SQLite or PostgreSQL.

Built from a SQLAlchemy URL string (``TUNEWATCH_DATABASE_URL``). Everything here blocks: call it
from the writer thread, a job thread or a FastAPI ``def`` route, never from ``async def``.

- SQLite (the embedded default): WAL journal, ``busy_timeout``, ``foreign_keys=ON``, and every
  transaction starts with ``BEGIN IMMEDIATE``. Taking the write lock up front means a transaction
  that reads then writes waits on ``busy_timeout`` instead of failing with ``SQLITE_BUSY`` when
  another thread committed in between (a deferred transaction cannot upgrade its snapshot).
- PostgreSQL (``postgresql+psycopg://``): ``statement_timeout``, ``timezone=UTC``, a connect
  timeout, ``pool_pre_ping`` and a bounded pool.

URLs may hold passwords: only :attr:`Database.safe_url` (password masked) is ever logged or shown.
Engines are built with ``hide_parameters``: an error message never carries user text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from service.errors import ConfigError

__all__ = ["Database", "parse_url"]

log = logging.getLogger(__name__)


def parse_url(url: str) -> URL:
    """Parse a database URL; ``postgresql://`` and ``postgres://`` mean psycopg 3.

    Raises ``ConfigError`` (naming ``TUNEWATCH_DATABASE_URL``, never echoing the URL, which may
    hold a password) when it is not a URL of a supported dialect.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "TUNEWATCH_DATABASE_URL is not a SQLAlchemy URL; use sqlite:///path.db or "
            "postgresql+psycopg://user:password@host/db"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"TUNEWATCH_DATABASE_URL: the dialect {parsed.get_backend_name()!r} is not supported; "
            "use sqlite or postgresql+psycopg"
        )
    return parsed


class Database:
    """One engine, one ``sessionmaker``; ``dispose()`` closes the pool. Blocking throughout.

    ``statement_timeout_s`` bounds every PostgreSQL statement; ``busy_timeout_s`` bounds how long a
    SQLite connection waits for the write lock; ``connect_timeout_s`` bounds a PostgreSQL connect.
    """

    def __init__(
        self,
        url: str,
        *,
        statement_timeout_s: float = 30.0,
        busy_timeout_s: float = 10.0,
        connect_timeout_s: float = 10.0,
        pool_size: int = 5,
        max_overflow: int = 5,
        pool_timeout_s: float = 10.0,
    ) -> None:
        self.url = parse_url(url)
        self.is_postgres = self.url.get_backend_name() == "postgresql"
        self.is_sqlite = not self.is_postgres
        if self.is_postgres:
            self.engine = _postgres_engine(
                self.url, statement_timeout_s, connect_timeout_s, pool_size, max_overflow, pool_timeout_s
            )
        else:
            self.engine = _sqlite_engine(self.url, busy_timeout_s)
        self.sessions: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)
        log.info("store.database_opened", extra={"url": self.safe_url})

    @property
    def safe_url(self) -> str:
        """The URL with its password masked: the only form that may be logged or displayed."""
        return self.url.render_as_string(hide_password=True)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A Core connection inside one transaction: committed on exit, rolled back on a raise."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def session(self) -> Iterator[Session]:
        """An ORM session that is one unit of work: committed on exit, rolled back on a raise."""
        with self.sessions.begin() as session:
            yield session

    def ping(self) -> bool:
        """True when a ``SELECT 1`` round-trips (``/readyz``); never raises. Blocks up to the timeouts."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            log.warning("store.ping_failed", exc_info=True, extra={"url": self.safe_url})
            return False
        return True

    def dispose(self) -> None:
        """Close every pooled connection; the object is unusable afterwards."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.safe_url!r})"


def _postgres_engine(
    url: URL, statement_timeout_s: float, connect_timeout_s: float, pool_size: int, max_overflow: int,
    pool_timeout_s: float,
) -> Engine:
    options = f"-c statement_timeout={int(statement_timeout_s * 1000)} -c timezone=UTC"
    return create_engine(
        url,
        hide_parameters=True,  # error messages and logs never carry user text
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout_s,
        connect_args={
            "options": options,
            "connect_timeout": max(1, round(connect_timeout_s)),
            "application_name": "tunewatch",
        },
    )


def _sqlite_engine(url: URL, busy_timeout_s: float) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}, "hide_parameters": True}
    if in_memory:
        # One shared connection, or every checkout would see its own empty database.
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)
    busy_ms = int(busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # The driver's own transaction handling is off so that the "begin" hook owns BEGIN.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                # in WAL mode: survives a process crash; a power cut may lose the last commits
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
