"""``RequestSink``: the recorder's :class:`~service.telemetry.recorder.BatchSink`, writing to the store.

One transaction per batch: ``INSERT ... ON CONFLICT DO NOTHING`` into ``requests`` and, for the
sampled records, into ``samples``, each one SQLAlchemy Core ``executemany`` (psycopg pipelines it,
sqlite3 loops in C), never ORM objects one by one. ``ON CONFLICT DO NOTHING`` makes a retried
batch harmless: the recorder retries a batch whose write raised, and the first attempt may have
committed before the error reached us.

The raw unit id (user / session) never reaches the database: it is replaced by
``HMAC-SHA256(unit_hash_key, unit_id)``, hex, first 32 characters (128 bits).

A record the database refuses as data (``DataError``/``IntegrityError``, e.g. a string longer
than its column) would make the recorder retry its batch forever; instead the batch is written
record by record, the refused ones are logged and counted in :attr:`RequestSink.rejected`, and
the rest are kept. Connection and timeout errors still raise, so the recorder retries the batch.

This module only names ``Record`` for type checking: the store must not import telemetry.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import orjson
from sqlalchemy import Connection, Insert, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DataError, IntegrityError

from service.store.db import Database
from service.store.models import Request, Sample, SampleState
from service.store.redact import redact_messages, redact_text

if TYPE_CHECKING:
    from service.telemetry.recorder import Record

__all__ = ["RequestSink", "hash_unit"]

log = logging.getLogger(__name__)

#: hex characters kept of the HMAC (128 bits: collisions are negligible at any traffic we see)
UNIT_HASH_CHARS = 32
# Column widths of the free-form strings a record carries (config names are validated shorter).
_NAME_CHARS = 64
_OUTCOME_CHARS = 32

Row = tuple[Any, ...]

#: the order of the values in a request row and a sample row
REQUEST_COLUMNS: Final = (
    "id", "created_at", "experiment", "arm", "upstream", "stream", "status", "outcome", "error_kind", "latency_s",
    "ttft_s", "upstream_latency_s", "overhead_s", "prompt_tokens", "completion_tokens", "cost_usd", "unit_hash",
    "sampled", "shadow", "query", "query_chars", "logprob_mean",
)
SAMPLE_COLUMNS: Final = (
    "request_id", "created_at", "experiment", "arm", "messages", "query", "response_text", "context", "state",
    "attempts",
)


def _sqlite_insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            "ON CONFLICT DO NOTHING")


def hash_unit(key: bytes, unit_id: str) -> str:
    """The stored form of a unit id: keyed HMAC-SHA256, hex, truncated to 32 characters."""
    digest = hmac.new(key, unit_id.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    return digest[:UNIT_HASH_CHARS]


class RequestSink:
    """Writes recorder batches to ``requests`` and ``samples``. Blocking; called from the writer thread.

    ``unit_hash_key`` must be secret and stable (hashes are only comparable under one key); an empty
    key raises ``ValueError``.
    """

    def __init__(self, db: Database, unit_hash_key: bytes, *, redact: Collection[str] = ()) -> None:
        if not unit_hash_key:
            raise ValueError("unit_hash_key must not be empty: raw unit ids would be one hash away")
        self._db = db
        self._key = unit_hash_key
        #: experiments whose stored text has personal data redacted first (``store/redact.py``)
        self._redact = frozenset(redact)
        requests_table: Table = Request.__table__  # type: ignore[assignment]  # a declarative Table
        samples_table: Table = Sample.__table__  # type: ignore[assignment]  # a declarative Table
        self._insert_requests = _insert_ignore(db, requests_table)
        self._insert_samples = _insert_ignore(db, samples_table)
        self._sqlite_requests = _sqlite_insert_sql("requests", REQUEST_COLUMNS)
        self._sqlite_samples = _sqlite_insert_sql("samples", SAMPLE_COLUMNS)
        self._sqlite_time = _SqliteTime()
        #: records dropped because the database refused them as data (see the module docstring)
        self.rejected = 0

    def write(self, records: Sequence[Record]) -> None:
        """Persist every record in one transaction, or raise and keep none (``BatchSink`` contract).

        Records the database refuses as data are dropped (logged, counted in ``rejected``), not raised.
        """
        if not records:
            return
        request_rows, sample_rows = self._rows(records)
        try:
            with self._db.begin() as conn:
                self._insert(conn, request_rows, sample_rows)
        except (DataError, IntegrityError):
            log.warning("store.batch_refused", exc_info=True, extra={"records": len(records)})
            self._write_one_by_one(request_rows, sample_rows)

    def _insert(self, conn: Connection, request_rows: list[Row], sample_rows: list[Row]) -> None:
        if self._db.is_sqlite:
            # The writer shares the proxy's core: SQLite gets the DBAPI's executemany with the tuples
            # as built (UTC text times as SQLAlchemy stores them; sqlite3 stores bools as 0/1).
            # SQLAlchemy's per-row bind processing cost as much as SQLite's own work.
            conn.exec_driver_sql(self._sqlite_requests, request_rows)
            if sample_rows:
                conn.exec_driver_sql(self._sqlite_samples, sample_rows)
            return
        conn.execute(self._insert_requests, [dict(zip(REQUEST_COLUMNS, row, strict=True)) for row in request_rows])
        if sample_rows:
            conn.execute(self._insert_samples, [dict(zip(SAMPLE_COLUMNS, row, strict=True)) for row in sample_rows])

    def _write_one_by_one(self, request_rows: list[Row], sample_rows: list[Row]) -> None:
        samples = {row[0]: row for row in sample_rows}
        for row in request_rows:
            sample = samples.get(row[0])
            try:
                with self._db.begin() as conn:
                    self._insert(conn, [row], [sample] if sample is not None else [])
            except (DataError, IntegrityError) as exc:
                self.rejected += 1
                log.error(
                    "store.record_rejected",
                    extra={"request_id": row[0], "error": type(exc.orig).__name__},
                )

    def _rows(self, records: Sequence[Record]) -> tuple[list[Row], list[Row]]:
        """Rows in ``REQUEST_COLUMNS`` / ``SAMPLE_COLUMNS`` order."""
        key = self._key
        postgres = self._db.is_postgres
        clean = _strip_nul if postgres else _same
        stamp = _utc_datetime if postgres else self._sqlite_time
        redact = self._redact
        pending = SampleState.PENDING.value
        request_rows: list[Row] = []
        sample_rows: list[Row] = []
        for r in records:
            created_at = stamp(r.started_at)
            redacting = r.experiment in redact
            query = clean(redact_text(r.query) if redacting else r.query)
            request_rows.append((
                r.request_id, created_at, r.experiment, r.arm, r.upstream[:_NAME_CHARS], r.stream, r.status,
                r.outcome[:_OUTCOME_CHARS], r.error_kind[:_NAME_CHARS] if r.error_kind is not None else None,
                r.latency_s, r.ttft_s, r.upstream_latency_s, r.overhead_s, r.prompt_tokens, r.completion_tokens,
                r.cost_usd, hash_unit(key, r.unit_id) if r.unit_id is not None else None, r.sampled, r.shadow,
                query, len(query) if query is not None else None, r.logprob_mean,
            ))
            if r.sampled:
                sample_rows.append((
                    r.request_id, created_at, r.experiment, r.arm,
                    _json(redact_messages(r.messages) if redacting else r.messages), query,
                    clean(redact_text(r.response_text) if redacting else r.response_text),
                    clean(redact_text(r.context) if redacting else r.context), pending, 0,
                ))
        return request_rows, sample_rows


class _SqliteTime:
    """``started_at`` (epoch seconds) as SQLAlchemy's SQLite DateTime text, UTC; the part up to the
    second is formatted once per second, not once per record."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, ts: float) -> str:
        frac, whole = math.modf(ts)  # rounded as datetime.fromtimestamp rounds (half-even, with carry)
        second, micros = int(whole), round(frac * 1e6)
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{micros:06d}"


def _utc_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _json(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        # Cannot happen for messages parsed by orjson on the hot path; never block a batch on it.
        log.warning("store.messages_not_serialisable")
        return None


def _strip_nul(text: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; JSON bodies may carry "\u0000" and must not poison a batch.
    if text is None or "\x00" not in text:
        return text
    return text.replace("\x00", "\ufffd")


def _same(text: str | None) -> str | None:
    return text


def _insert_ignore(db: Database, table: Table) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the database's dialect."""
    if db.is_postgres:
        return pg_insert(table).on_conflict_do_nothing()
    return sqlite_insert(table).on_conflict_do_nothing()
