"""The demo's queries: a shipped slice of InsuranceQA (in-domain) and CLINC150 (off-topic).

Sources and licences: ``data/ATTRIBUTION.md`` beside this module.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DATA_DIR", "demo_queries"]

DATA_DIR = Path(__file__).with_name("data")


def _column(path: Path, index: int) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]  # skip the header
    return [line.split("\t")[index] for line in lines if line.strip()]


def demo_queries() -> list[tuple[str, bool]]:
    """``(text, in_domain)`` pairs: 300 insurance questions (True), then 150 off-topic requests (False).

    Reads two small files (blocking, ~30 KB); call it once, off the event loop.
    """
    insurance = [(q, True) for q in _column(DATA_DIR / "insuranceqa.tsv", 1)]
    off_topic = [(q, False) for q in _column(DATA_DIR / "clinc150.tsv", 2)]
    return insurance + off_topic


def demo_reference_path() -> Path:
    """The demo fine-tune's stand-in training queries (InsuranceQA train), for its OOD reference."""
    return DATA_DIR / "insuranceqa-reference.tsv"
