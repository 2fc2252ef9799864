"""The HTML report opened in headless Chromium (Debian's ``chromium``), offline: it renders, its table,
verdict and charts are in the DOM, and the screenshot is a real page. The screenshot is kept as
``artifacts/report-screenshot.png`` (git-ignored) for a person to look at."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from service.quality.report import build_report
from service.quality.report_html import render_html
from service.store.db import Database
from service.store.migrate import upgrade
from tests.integration.report.png import read_png
from tests.unit.quality.report_rows import NOW, Rows, deploy_dataset
from tests.unit.quality.test_report import experiments

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts"
CHARTS = 7  # cost, payback, 2 score distributions, latency, out-of-domain and quality over time
_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync")  # fmt: skip


def _chromium(tmp_path: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{name}"
    profile.mkdir()
    return subprocess.run(
        [str(CHROMIUM), *_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def report_file(tmp_path: Path) -> Path:
    url = f"sqlite:///{tmp_path / 'report.db'}"
    upgrade(url)
    db = Database(url)
    try:
        rows = Rows()
        deploy_dataset(rows)
        rows.write(db)
        report = build_report(db, experiments(), "demo", now=NOW, job_cost_usd=300.0)
    finally:
        db.dispose()
    path = tmp_path / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path


def test_the_report_renders_in_headless_chromium(report_file: Path, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"NO CHROMIUM at {CHROMIUM}: the HTML report was not rendered (apt-get install chromium)")
    url = report_file.as_uri()

    dom = _chromium(tmp_path, "dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert '<table id="comparison">' in html and "p95 latency" in html
    assert 'id="verdict"' in html and re.search(r'class="action">\s*deploy', html)
    charts = re.findall(r'<svg class="chart" data-chart="([^"]+)"', html)
    assert len(charts) == CHARTS and len(set(charts)) == CHARTS, charts

    png = tmp_path / "report.png"
    shot = _chromium(tmp_path, "shot", f"--screenshot={png}", "--window-size=1280,2400", url)
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(png, ARTIFACTS / "report-screenshot.png")
    assert png.stat().st_size > 50_000  # a blank 1280x2400 page compresses to a few kB

    image = read_png(png)
    assert (image.width, image.height) == (1280, 2400)
    assert image.distinct_colours() > 500  # text anti-aliasing, charts, table shading
    rgb = image.pixels[..., :3].reshape(-1, 3)
    background = np.array([0xF4, 0xF6, 0xF9])  # the page's CSS background
    assert 0.2 < float((rgb == background).all(axis=1).mean()) < 0.95
    # solid fills prove the CSS and the SVG were drawn: the deploy verdict's green bar, the arms' bars
    for colour in ((0x2E, 0x7D, 0x32), (0x4E, 0x79, 0xA7), (0xF2, 0x8E, 0x2B)):
        assert int((rgb == np.array(colour)).all(axis=1).sum()) > 200, colour
