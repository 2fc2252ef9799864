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
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

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

Row = dict[str, Any]


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
            # The writer shares the proxy's core: SQLAlchemy's per-row bind processing cost about as
            # much as SQLite itself (~30 us a record with it, ~15 without), so SQLite gets the DBAPI's
            # executemany with the values SQLAlchemy would have bound (UTC text times, ints for bools).
            _sqlite_insert(conn, "requests", request_rows)
            if sample_rows:
                _sqlite_insert(conn, "samples", sample_rows)
            return
        conn.execute(self._insert_requests, request_rows)
        if sample_rows:
            conn.execute(self._insert_samples, sample_rows)

    def _write_one_by_one(self, request_rows: list[Row], sample_rows: list[Row]) -> None:
        samples = {row["request_id"]: row for row in sample_rows}
        for row in request_rows:
            sample = samples.get(row["id"])
            try:
                with self._db.begin() as conn:
                    self._insert(conn, [row], [sample] if sample is not None else [])
            except (DataError, IntegrityError) as exc:
                self.rejected += 1
                log.error(
                    "store.record_rejected",
                    extra={"request_id": row["id"], "error": type(exc.orig).__name__},
                )

    def _rows(self, records: Sequence[Record]) -> tuple[list[Row], list[Row]]:
        key = self._key
        clean = _strip_nul if self._db.is_postgres else _same
        request_rows: list[Row] = []
        sample_rows: list[Row] = []
        for r in records:
            created_at = datetime.fromtimestamp(r.started_at, UTC)
            redacting = r.experiment in self._redact
            query = clean(redact_text(r.query) if redacting else r.query)
            request_rows.append({
                "id": r.request_id,
                "created_at": created_at,
                "experiment": r.experiment,
                "arm": r.arm,
                "upstream": r.upstream[:_NAME_CHARS],
                "stream": r.stream,
                "status": r.status,
                "outcome": r.outcome[:_OUTCOME_CHARS],
                "error_kind": r.error_kind[:_NAME_CHARS] if r.error_kind is not None else None,
                "latency_s": r.latency_s,
                "ttft_s": r.ttft_s,
                "upstream_latency_s": r.upstream_latency_s,
                "overhead_s": r.overhead_s,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "cost_usd": r.cost_usd,
                "unit_hash": hash_unit(key, r.unit_id) if r.unit_id is not None else None,
                "sampled": r.sampled,
                "shadow": r.shadow,
                "query": query,
                "query_chars": len(query) if query is not None else None,
                "logprob_mean": r.logprob_mean,
            })
            if r.sampled:
                sample_rows.append({
                    "request_id": r.request_id,
                    "created_at": created_at,
                    "experiment": r.experiment,
                    "arm": r.arm,
                    "messages": _json(redact_messages(r.messages) if redacting else r.messages),
                    "query": query,
                    "response_text": clean(redact_text(r.response_text) if redacting else r.response_text),
                    "context": clean(redact_text(r.context) if redacting else r.context),
                    "state": SampleState.PENDING.value,
                    "attempts": 0,
                })
        return request_rows, sample_rows


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


def _sqlite_value(value: Any) -> Any:
    # SQLAlchemy's SQLite DateTime storage format (UTCDateTime reads it back as aware UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, datetime) else value


def _sqlite_insert(conn: Connection, table: str, rows: list[Row]) -> None:
    columns = tuple(rows[0])
    sql = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
           "ON CONFLICT DO NOTHING")
    conn.exec_driver_sql(sql, [tuple(_sqlite_value(row[c]) for c in columns) for row in rows])


def _insert_ignore(db: Database, table: Table) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the database's dialect."""
    if db.is_postgres:
        return pg_insert(table).on_conflict_do_nothing()
    return sqlite_insert(table).on_conflict_do_nothing()
