"""What the CLI calls: import_reference and ood_score_lines."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from service.drift.commands import import_reference, ood_score_lines, read_queries, render_import
from service.drift.ood import Calibration
from service.drift.reference import DataFileError

SLICE = Path(__file__).parents[2] / "fixtures" / "ood"
FIXTURES = Path(__file__).parent / "fixtures"


def test_import_reference_reports_what_it_calibrated() -> None:
    imported = import_reference(SLICE / "reference.tsv", percentile=90, seed=1)
    summary = imported.summary()
    assert summary["format"] == "tsv" and summary["queries_read"] == 2000
    assert summary["queries_distinct"] == len(imported.texts) <= 2000
    assert summary["percentile"] == 90 and summary["index"]["method"] == "lexical"
    assert json.loads(json.dumps(summary)) == summary  # JSON-able as is
    again = Calibration.from_bytes(imported.calibration.to_bytes())
    assert again.threshold == imported.calibration.threshold
    console = Console(record=True, width=160)
    console.print(render_import(imported))
    assert "p90" in console.export_text()


def test_import_reference_from_a_fine_tuning_file() -> None:
    imported = import_reference(FIXTURES / "good.jsonl")
    assert imported.source.format.value == "jsonl" and len(imported.texts) == 60


def test_ood_score_lines_format_and_order() -> None:
    lines = io.StringIO("How Much Is Whole Life Insurance?\n\n  \nplay the next song on spotify\r\nlast line")
    out = list(ood_score_lines(SLICE / "reference.tsv", lines))
    assert [row["text"] for row in out] == [
        "How Much Is Whole Life Insurance?", "play the next song on spotify", "last line"]
    for row in out:
        assert set(row) == {"text", "score", "out_of_domain"}
        assert isinstance(row["score"], float) and isinstance(row["out_of_domain"], bool)
        json.dumps(row)
    assert out[0]["out_of_domain"] is False and out[1]["out_of_domain"] is True
    assert out[0]["score"] < out[1]["score"]


def test_ood_score_lines_streams_many_lines() -> None:
    queries = (f"Is item {i} covered by renters insurance?\n" for i in range(3000))
    out = ood_score_lines(SLICE / "reference.tsv", queries)
    assert sum(1 for _ in out) == 3000


def test_ood_score_lines_bad_reference_fails_before_output(tmp_path: Path) -> None:
    broken = tmp_path / "ref.jsonl"
    broken.write_text("{nope\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"ref\.jsonl:1"):
        next(ood_score_lines(broken, ["a query"]))


def test_read_queries_from_a_file_or_stdin(tmp_path: Path) -> None:
    path = tmp_path / "queries.txt"
    path.write_bytes(b"first\r\nsecond\n")
    assert list(read_queries(path)) == ["first", "second"]
    assert list(read_queries("-", io.StringIO("a\nb\n"))) == ["a\n", "b\n"]
    path.write_bytes(b"ok\n\xff\n")
    with pytest.raises(DataFileError, match="0xff"):
        list(read_queries(path))
