"""Recorder sink throughput: records/s that ``RequestSink`` writes into SQLite and PostgreSQL.

Batches of 500 (the recorder's default), one process, one thread: the shape of the recorder's
writer thread. Records are built before the clock starts; 10 % are sampled and carry their
messages and response text, as with the default sample rate. PostgreSQL is a throwaway cluster
started from ``tests/support/postgres.py`` (``fsync=off`` unless ``--durable``); pass
``--postgres-url`` to measure a real server instead.

    .venv/bin/python bench/writer_throughput.py [--records 50000] [--durable] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.store.db import Database  # noqa: E402
from service.store.migrate import upgrade  # noqa: E402
from service.store.sink import RequestSink  # noqa: E402
from service.telemetry.recorder import Record  # noqa: E402
from tests.support.postgres import PostgresUnavailable, start_cluster  # noqa: E402

BATCH = 500
QUERY = "How do I add my spouse to my life insurance policy after we got married last month? " * 2
ANSWER = "You can add your spouse as a beneficiary by filing a change-of-beneficiary form. " * 8


def make_records(n: int, sample_every: int = 10) -> list[Record]:
    t0 = time.time()
    out = []
    for i in range(n):
        sampled = i % sample_every == 0
        out.append(Record(
            request_id=f"tw-bench{i:012x}", started_at=t0 + i / 1000, experiment="demo",
            arm="base" if i % 2 else "fine_tuned", upstream="base", stream=i % 3 == 0, status=200,
            outcome="ok",
            error_kind=None, latency_s=0.8, ttft_s=0.2, upstream_latency_s=0.79, overhead_s=0.0009,
            prompt_tokens=40, completion_tokens=120, cost_usd=0.00031, unit_id=f"user-{i % 5000}",
            sampled=sampled, query=QUERY,
            messages=[{"role": "system", "content": "You are an insurance assistant."},
                      {"role": "user", "content": QUERY}] if sampled else None,
            response_text=ANSWER if sampled else None,
        ))
    return out


def measure(url: str, records: list[Record]) -> float:
    """Records/s for writing ``records`` in batches of 500 into a freshly migrated database."""
    upgrade(url)
    db = Database(url)
    try:
        sink = RequestSink(db, b"bench-key-0123456789abcdef")
        sink.write(records[:BATCH])  # warm-up: connection, statement compilation
        rest = records[BATCH:]
        start = time.perf_counter()
        for i in range(0, len(rest), BATCH):
            sink.write(rest[i:i + BATCH])
        elapsed = time.perf_counter() - start
    finally:
        db.dispose()
    return len(rest) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--postgres-url", help="measure this PostgreSQL instead of a throwaway cluster")
    parser.add_argument("--durable", action="store_true",
                        help="run the throwaway cluster with fsync and synchronous_commit on (the defaults)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    records = make_records(args.records + BATCH)
    results: dict[str, float] = {}
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tunewatch-bench-")))
        results["sqlite"] = measure(f"sqlite:///{work / 'bench.db'}", records)
        pg_url = args.postgres_url
        if pg_url is None:
            try:
                pg_url = stack.enter_context(start_cluster(durable=args.durable)).create_database("bench")
            except PostgresUnavailable as exc:
                print(f"postgresql: skipped ({exc})", file=sys.stderr)
        if pg_url is not None:
            results["postgresql"] = measure(pg_url, records)
    print(f"RequestSink, {args.records} records in batches of {BATCH}, 10 % sampled, one thread:")
    for name, rate in results.items():
        print(f"  {name:<11} {rate:>10,.0f} records/s")
    if args.postgres_url is None and "postgresql" in results:
        durability = "fsync, synchronous_commit on" if args.durable else "fsync=off, synchronous_commit=off"
        print(f"  (postgresql: throwaway local cluster, {durability})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"batch": BATCH, "records": args.records, "records_per_s": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
