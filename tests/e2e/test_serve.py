"""`tunewatch serve` as a subprocess in front of simulator subprocesses; the openai SDK as client."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from openai import AzureOpenAI, OpenAI

from tests.support.processes import Child, spawn, tunewatch

KEY = "sk-e2e-0123456789"
ADMIN = "adm-e2e-0123456789"
CANARY_USER = "canary-user-7f3a9c"


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[str, str]]:
    sim = [sys.executable, "-m", "service.simulator", "--port", "0", "--time-scale", "0"]
    with spawn([*sim, "--profile", "base"]) as base, spawn([*sim, "--profile", "fine_tuned"]) as ft:
        yield base.url, ft.url


def write_config(path: Path, base: str, ft: str) -> Path:
    path.write_text(yaml.safe_dump({
        "upstreams": {
            "base": {"kind": "openai", "base_url": base + "/v1", "model": "gpt-4o-mini",
                     "api_key_env": "E2E_UPSTREAM_KEY", "price": {"input_per_1k": 0.0025, "output_per_1k": 0.01}},
            "fine_tuned": {"kind": "azure", "endpoint": ft, "deployment": "ft", "api_key_env": "E2E_UPSTREAM_KEY",
                           "price": {"input_per_1k": 0.0003, "output_per_1k": 0.0012}},
        },
        "experiments": [{"name": "demo", "salt": "e2e", "sample_rate": 0.5,
                         "arms": [{"name": "base", "upstream": "base"},
                                  {"name": "fine_tuned", "upstream": "fine_tuned"}]}],
    }))
    return path


@pytest.fixture
def served(tmp_path: Path, upstreams: tuple[str, str]) -> Iterator[tuple[Child, Path]]:
    config = write_config(tmp_path / "experiments.yaml", *upstreams)
    db = tmp_path / "tw.db"
    env = {"TUNEWATCH_API_KEYS": KEY, "TUNEWATCH_ADMIN_KEY": ADMIN, "TUNEWATCH_DATABASE_URL": f"sqlite:///{db}",
           "E2E_UPSTREAM_KEY": "sk-upstream-secret-42"}
    with spawn(tunewatch("serve", "--config", str(config), "--port", "0"), env=env) as child:
        yield child, db


def test_every_request_is_recorded_after_a_graceful_stop(served: tuple[Child, Path]) -> None:
    child, db = served
    c = OpenAI(base_url=child.url + "/v1", api_key=KEY, max_retries=0)
    az = AzureOpenAI(azure_endpoint=child.url, api_key=KEY, api_version="2024-06-01", max_retries=0)
    messages = [{"role": "user", "content": "Is water damage covered by my home insurance policy?"}]
    sent = 0
    for i in range(30):
        client = c if i % 2 else az
        if i % 3:
            client.chat.completions.create(model="demo", messages=messages, user=CANARY_USER)  # type: ignore[arg-type]
        else:
            list(client.chat.completions.create(model="demo", messages=messages, user=f"u{i}", stream=True))  # type: ignore[arg-type]
        sent += 1
    # feedback on the request just served (it may still sit in the recorder's queue)
    raw = c.chat.completions.with_raw_response.create(model="demo", messages=messages, user="fb")  # type: ignore[arg-type]
    sent += 1
    auth = {"Authorization": f"Bearer {KEY}"}
    fb = httpx.post(child.url + "/v1/feedback", headers=auth,
                    json={"request_id": raw.headers["x-request-id"], "thumbs": "down", "comment": "too long"})
    assert fb.status_code == 201 and fb.json()["sentiment"] == "negative"
    assert fb.json()["arm"] == raw.headers["x-tunewatch-arm"]
    unknown = httpx.post(child.url + "/v1/feedback", headers=auth, json={"request_id": "tw-nope", "score": 4})
    assert unknown.status_code == 404 and "tw-nope" in unknown.json()["error"]["message"]
    bad = httpx.post(child.url + "/v1/feedback", headers=auth, json={"request_id": "tw-nope", "score": 9})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "score"
    assert httpx.post(child.url + "/v1/feedback", json={"request_id": "x", "score": 3}).status_code == 401
    metrics = httpx.get(child.url + "/metrics").text
    arm = raw.headers["x-tunewatch-arm"]
    assert f'tunewatch_feedback_total{{arm="{arm}",experiment="demo",sentiment="negative"}} 1.0' in metrics
    c.close()
    az.close()
    assert httpx.get(child.url + "/readyz").status_code == 200
    assert child.stop() == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM requests").fetchone()[0] == sent
        assert conn.execute("SELECT count(*) FROM requests WHERE status = 200").fetchone()[0] == sent
        assert conn.execute("SELECT thumbs, comment FROM feedback").fetchall() == [("down", "too long")]
        dump = "\n".join(conn.iterdump())
    assert CANARY_USER not in dump and KEY not in dump and "sk-upstream-secret-42" not in dump
    assert "sk-upstream-secret-42" not in child.text
