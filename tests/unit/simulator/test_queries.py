"""The shipped demo slice: present, small, attributed, loadable."""

from __future__ import annotations

from service.simulator import demo_queries
from service.simulator.queries import DATA_DIR


def test_demo_queries() -> None:
    queries = demo_queries()
    assert sum(d for _, d in queries) == 300 and sum(not d for _, d in queries) == 150
    assert all(text.strip() and "\t" not in text for text, _ in queries)
    assert len({text for text, _ in queries}) > 420


def test_slice_is_small_and_attributed() -> None:
    assert sum(p.stat().st_size for p in DATA_DIR.iterdir()) < 250_000  # demo traffic + its OOD reference
    attribution = (DATA_DIR / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "InsuranceQA" in attribution and "Research use only" in attribution
    assert "CLINC150" in attribution and "CC BY 3.0" in attribution
