"""The out-of-domain job on a real database: every request gets a score, only sampled ones keep text."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import REGISTRY
from sqlalchemy import select

from service.drift.commands import import_reference
from service.drift.references import load_references, store_reference
from service.drift.scoring import OodScorer
from service.store.db import Database
from service.store.models import ReferenceItem, Request
from service.store.sink import RequestSink
from tests.support.records import make_record

REFERENCE = Path(__file__).resolve().parents[2] / "fixtures" / "ood" / "reference.tsv"
IN_DOMAIN = ["Does Homeowners Insurance Cover Roof Leaks?", "How Much Life Insurance Do I Need?",
             "Can I Get Auto Insurance Without A License?", "Is Long Term Care Insurance Tax Deductible?"]
OFF_TOPIC = ["book me a table for two at an italian place", "what is the weather in paris tomorrow",
             "set an alarm for 6 am", "how do i say thank you in japanese"]


def ood_total(arm: str) -> float:
    return REGISTRY.get_sample_value("tunewatch_out_of_domain_total", {"experiment": "demo", "arm": arm}) or 0.0


def test_every_request_is_scored_and_only_sampled_text_stays(migrated_db: Database) -> None:
    store_reference(migrated_db, "demo", import_reference(REFERENCE))
    assert load_references(migrated_db)["demo"].threshold > 0
    queries = IN_DOMAIN + OFF_TOPIC
    records = [make_record(i, query=q, arm="fine_tuned", sampled=i % 2 == 0) for i, q in enumerate(queries)]
    RequestSink(migrated_db, b"k").write(records)
    before = ood_total("fine_tuned")
    assert OodScorer(migrated_db, ["demo"]).run_once() == len(queries)
    with migrated_db.begin() as conn:
        rows = {r.id: r for r in conn.execute(select(Request.id, Request.ood_score, Request.out_of_domain,
                                                          Request.query, Request.sampled))}
        assert conn.execute(select(ReferenceItem.id)).first() is not None
    for rec in records:
        row = rows[rec.request_id]
        assert row.ood_score is not None
        assert row.out_of_domain is (rec.query in OFF_TOPIC)
        assert (row.query is not None) is rec.sampled  # text only for sampled requests
    assert ood_total("fine_tuned") == before + len(OFF_TOPIC)
    assert OodScorer(migrated_db, ["demo"]).run_once() == 0  # nothing left to score
