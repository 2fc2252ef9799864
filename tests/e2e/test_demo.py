"""`tunewatch demo` as a user runs it: it prints the URL and keys, serves, records, stops on Ctrl-C."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import httpx
from openai import OpenAI

from tests.support.processes import spawn, tunewatch
from tests.support.wait import wait_for


def test_demo_serves_records_and_stops_cleanly(tmp_path: Path) -> None:
    env = {"TUNEWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}", "TUNEWATCH_API_KEYS": "",
           "TUNEWATCH_ADMIN_KEY": ""}
    with spawn(tunewatch("demo", "--port", "0", "--traffic", "20", "--time-scale", "0.01"), env=env) as child:
        banner = wait_for(lambda: "Ctrl-C stops it" in child.text and child.text, what="the banner")
        key = re.search(r"client key\s+(\S+)", banner).group(1)  # type: ignore[union-attr]
        admin = re.search(r"admin key\s+(\S+)", banner).group(1)  # type: ignore[union-attr]
        url = re.search(r"proxy \(OpenAI\)\s+(\S+)/v1", banner).group(1)  # type: ignore[union-attr]
        with OpenAI(base_url=url + "/v1", api_key=key, max_retries=0) as sdk:
            reply = sdk.chat.completions.create(
                model="demo", user="me", messages=[{"role": "user", "content": "What is a deductible?"}])
        assert reply.choices[0].message.content

        def demo_traffic() -> float:
            text = httpx.get(url + "/metrics").text
            return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith('tunewatch_requests_total{') and 'code="200"' in line)

        wait_for(lambda: demo_traffic() >= 20, timeout_s=30, what="the demo's own traffic")
        exps = httpx.get(url + "/admin/experiments", headers={"Authorization": f"Bearer {admin}"}).json()
        assert [e["name"] for e in exps["experiments"]] == ["demo"]
        child.proc.send_signal(signal.SIGINT)
        assert child.proc.wait(30) == 0
    assert "demo stopped" in child.text
    assert "Traceback" not in child.text
