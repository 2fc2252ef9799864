"""An experiment with ``redact: true`` stores its text without personal data; others unchanged."""

from __future__ import annotations

from sqlalchemy import select

from service.store.db import Database
from service.store.models import Request, Sample
from service.store.sink import RequestSink
from tests.support.records import make_record

SECRET_TEXT = "I am jane@example.com, card 4111 1111 1111 1111, call +44 20 7946 0958"


def test_redacted_experiments_store_no_personal_data(migrated_db: Database) -> None:
    sink = RequestSink(migrated_db, b"k", redact=["demo"])
    msgs = [{"role": "user", "content": SECRET_TEXT}]
    sink.write([
        make_record(0, experiment="demo", sampled=True, query=SECRET_TEXT, messages=msgs,
                    response_text=f"Noted: {SECRET_TEXT}", context=SECRET_TEXT),
        make_record(1, experiment="other", sampled=True, query=SECRET_TEXT, messages=msgs),
    ])
    with migrated_db.begin() as conn:
        requests = dict(conn.execute(select(Request.experiment, Request.query)).all())
        samples = {r.experiment: r for r in conn.execute(select(Sample))}
    redacted = "I am [EMAIL], card [CARD], call [PHONE]"
    assert requests["demo"] == redacted
    demo = samples["demo"]
    assert SECRET_TEXT not in f"{demo.messages}{demo.response_text}{demo.context}{demo.query}"
    assert demo.response_text == f"Noted: {redacted}" and redacted in demo.messages
    assert requests["other"] == SECRET_TEXT  # redaction is per experiment
