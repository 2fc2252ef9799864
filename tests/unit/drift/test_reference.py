"""Reference readers: fine-tuning JSONL, TSV with a header, plain text; clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.drift.reference import DataFileError, ReferenceFormat, read_reference
from service.errors import InvalidRequestError

FIXTURES = Path(__file__).parent / "fixtures"


def test_jsonl_takes_every_user_message() -> None:
    ref = read_reference(FIXTURES / "tricky.jsonl")
    assert ref.format is ReferenceFormat.JSONL
    assert ref.texts[0] == "Does renters insurance cover theft from my car?"  # text parts joined
    assert "Hello there" in ref.texts and "What is a deductible on a home policy?" in ref.texts
    assert "Mon assurance habitation couvre-t-elle les dégâts des eaux \u2013 “water damage”?" in ref.texts
    assert len(ref.texts) == 13  # 12 examples, one with two user turns
    assert not any(text.startswith("\ufeff") for text in ref.texts)


def test_jsonl_without_user_message_is_counted_as_skipped(tmp_path: Path) -> None:
    path = tmp_path / "ft.jsonl"
    rows = [{"messages": [{"role": "user", "content": "Is flood covered?"},
                          {"role": "assistant", "content": "No"}]},
            {"messages": [{"role": "system", "content": "S"}, {"role": "assistant", "content": "Hi"}]}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    ref = read_reference(path)
    assert ref.texts == ["Is flood covered?"] and ref.skipped == 1


@pytest.mark.parametrize(("header", "row", "expected"), [
    ("category\tquestion", "auto\tCan I drive home uninsured?", "Can I drive home uninsured?"),
    ("Query\tdomain", "book a flight\ttravel", "book a flight"),
    ("id\tTEXT\tlabel", "7\thello there\tsmall_talk", "hello there"),
    ("domain\tintent\tutterance", "travel\tbook\tbook a hotel", "book a hotel"),  # no known name: last
])
def test_tsv_column_choice(header: str, row: str, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "ref.tsv"
    path.write_text(f"{header}\n{row}\n\n", encoding="utf-8")
    assert read_reference(path).texts == [expected]


def test_tsv_short_row_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "ref.tsv"
    path.write_text("category\tquestion\nauto\tok?\nonly-one-field\n", encoding="utf-8")
    with pytest.raises(DataFileError) as caught:
        read_reference(path)
    assert caught.value.line == 3 and "'question'" in str(caught.value) and str(path) in str(caught.value)


def test_plain_text_lines_and_sniffing(tmp_path: Path) -> None:
    path = tmp_path / "queries"
    path.write_text("  Is flood covered?  \n\nWhat is a rider?\r\n", encoding="utf-8")
    ref = read_reference(path)
    assert ref.format is ReferenceFormat.TEXT and ref.texts == ["Is flood covered?", "What is a rider?"]
    sniffed = tmp_path / "data.txt"
    sniffed.write_text(json.dumps({"messages": [{"role": "user", "content": "Q"}]}) + "\n", encoding="utf-8")
    assert read_reference(sniffed).format is ReferenceFormat.JSONL


def test_broken_json_line_is_reported_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "ft.jsonl"
    good = json.dumps({"messages": [{"role": "user", "content": "Q"}]})
    path.write_text(f"{good}\n{good}\n{{\"messages\": [\n", encoding="utf-8")
    with pytest.raises(DataFileError) as caught:
        read_reference(path)
    assert caught.value.line == 3 and "not valid JSON" in caught.value.message
    assert isinstance(caught.value, InvalidRequestError)  # rendered as a 400 if it reaches the API


def test_wrong_shape_says_what_is_expected(tmp_path: Path) -> None:
    path = tmp_path / "ft.jsonl"
    path.write_text('{"prompt": "a", "completion": "b"}\n', encoding="utf-8")
    with pytest.raises(DataFileError, match='"messages" list'):
        read_reference(path)


def test_non_utf8_bytes_name_line_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "ref.txt"
    path.write_bytes(b"fine\nIs my caf\xe9 covered?\n")
    with pytest.raises(DataFileError) as caught:
        read_reference(path)
    assert caught.value.line == 2 and "0xe9" in caught.value.message and "UTF-8" in caught.value.message


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="cannot read"):
        read_reference(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    with pytest.raises(DataFileError, match="no reference query"):
        read_reference(empty)
