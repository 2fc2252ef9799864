"""The dataset linter: every rule fires on the file made to break it, and on no other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from service.drift.lint import LintReport, Severity, lint_dataset
from service.drift.lint_render import render, to_dict, to_json

FIXTURES = Path(__file__).parent / "fixtures"
GOOD = (FIXTURES / "good.jsonl").read_text(encoding="utf-8").splitlines()
LONG_QUESTION = ("My home insurance policy lists a separate deductible for wind and hail damage; "
                 "how is it applied when a storm damages both the roof and the detached garage")


def problems(report: LintReport) -> set[str]:
    """Rules that fired as an error or a warning (info notes are not problems)."""
    return report.rules(Severity.ERROR) | report.rules(Severity.WARNING)


def lines_of(report: LintReport, rule: str) -> set[int]:
    return {line for f in report.findings if f.rule == rule for line in f.lines}


def write(path: Path, lines: list[str | bytes]) -> Path:
    with path.open("wb") as handle:
        for line in lines:
            handle.write((line if isinstance(line, bytes) else line.encode("utf-8")) + b"\n")
    return path


def example(i: int) -> dict[str, Any]:
    row: dict[str, Any] = json.loads(GOOD[i])
    return row


def replaced(i: int, row: dict[str, Any] | str | bytes) -> list[str | bytes]:
    lines: list[str | bytes] = list(GOOD)
    lines[i] = row if isinstance(row, str | bytes) else json.dumps(row)
    return lines


def with_user(i: int, text: str) -> dict[str, Any]:
    row = example(i)
    row["messages"][1]["content"] = text
    return row


def test_good_file_has_no_problem() -> None:
    report = lint_dataset(FIXTURES / "good.jsonl")
    assert problems(report) == set()
    assert report.ok and report.exit_code == 0
    assert report.rules(Severity.INFO) == {"token-stats", "validation-split"}
    assert report.stats["valid_examples"] == 60
    assert report.stats["system_prompts"][0]["count"] == 60


def test_bad_file_names_each_broken_line() -> None:
    report = lint_dataset(FIXTURES / "bad.jsonl")
    assert not report.ok and report.exit_code == 1
    expected = {"json": {2, 3}, "messages": {4}, "role": {5}, "content": {6}, "no-assistant": {7},
                "blank-line": {8}, "encoding": {9}}
    for rule, lines in expected.items():
        assert lines_of(report, rule) == lines, rule
    assert problems(report) == set(expected) | {"too-few"}
    encoding = next(f for f in report.findings if f.rule == "encoding")
    assert "0xe9" in encoding.message and "UTF-8" in encoding.message


def test_tricky_but_valid_file_only_warns_about_its_size() -> None:
    # BOM, CRLF, multi-part content, tool calls with empty content, weight 0, U+2028 in a string
    report = lint_dataset(FIXTURES / "tricky.jsonl")
    assert problems(report) == {"few-examples"}
    assert report.stats["valid_examples"] == 12


def _drop_assistant(i: int) -> dict[str, Any]:
    row = example(i)
    row["messages"] = row["messages"][:2]
    return row


def _role(i: int, role: str) -> dict[str, Any]:
    row = example(i)
    row["messages"][1]["role"] = role
    return row


def _empty_answer(i: int) -> dict[str, Any]:
    row = example(i)
    row["messages"][2]["content"] = ""
    return row


def _no_user(i: int) -> dict[str, Any]:
    row = example(i)
    del row["messages"][1]
    return row


def _system(i: int, text: str) -> dict[str, Any]:
    row = example(i)
    row["messages"][0]["content"] = text
    return row


def _near_pair() -> list[str | bytes]:
    lines = replaced(9, with_user(9, LONG_QUESTION + "?"))
    lines[1] = json.dumps(with_user(1, LONG_QUESTION + " too?"))
    return lines


def _cp1252(i: int) -> bytes:
    return json.dumps(with_user(i, "Caf\u00e9 cover?"), ensure_ascii=False).encode("cp1252")


MUTATIONS: dict[str, tuple[list[str | bytes], set[int]]] = {
    "json": (replaced(4, '{"messages": [{"role": "user"'), {5}),
    "messages": (replaced(4, '{"messages": []}'), {5}),
    "role": (replaced(4, _role(4, "human")), {5}),
    "content": (replaced(4, _empty_answer(4)), {5}),
    "no-assistant": (replaced(4, _drop_assistant(4)), {5}),
    "encoding": (replaced(4, _cp1252(4)), {5}),
    "blank-line": ([*GOOD[:10], "", *GOOD[10:]], {11}),
    "no-user": (replaced(4, _no_user(4)), {5}),
    "duplicate": (replaced(9, with_user(9, example(1)["messages"][1]["content"].upper() + "!!")), {2, 10}),
    "near-duplicate": (_near_pair(), {2, 10}),
}


@pytest.mark.parametrize("rule", sorted(MUTATIONS))
def test_each_line_rule_fires_alone_on_its_line(rule: str, tmp_path: Path) -> None:
    lines, where = MUTATIONS[rule]
    report = lint_dataset(write(tmp_path / "train.jsonl", lines))
    assert problems(report) == {rule}
    assert lines_of(report, rule) == where


def test_system_prompt_variants_are_listed_with_counts(tmp_path: Path) -> None:
    lines: list[str | bytes] = list(GOOD)
    for i in (2, 6):
        lines[i] = json.dumps(_system(i, "You are a friendly helper."))
    row = example(8)
    del row["messages"][0]
    lines[8] = json.dumps(row)
    report = lint_dataset(write(tmp_path / "train.jsonl", lines))
    assert problems(report) == {"system-prompt"}
    finding = next(f for f in report.findings if f.rule == "system-prompt")
    assert set(finding.lines) == {3, 7, 9}
    assert "3 different system prompts" in finding.message and "x57" in finding.message
    assert "x2" in finding.message and "(none) x1" in finding.message


def test_category_balance(tmp_path: Path) -> None:
    rows = [example(i) for i in range(60)]
    for i, row in enumerate(rows):
        row["metadata"] = {"category": "auto" if i < 5 else "home" if i < 35 else "life"}
        del row["category"]
    report = lint_dataset(write(tmp_path / "train.jsonl", [json.dumps(r) for r in rows]))
    assert problems(report) == {"category-balance"}
    assert report.stats["categories"] == {"home": 30, "life": 25, "auto": 5}
    # 10 / 25 / 25 is within the 1:3 tolerance
    for i, row in enumerate(rows):
        row["metadata"]["category"] = "auto" if i < 10 else "home" if i < 35 else "life"
    assert problems(lint_dataset(write(tmp_path / "ok.jsonl", [json.dumps(r) for r in rows]))) == set()


@pytest.mark.parametrize(("count", "expected"), [(9, {"too-few"}), (10, {"few-examples"}),
                                                 (49, {"few-examples"}), (50, set())])
def test_example_count_thresholds(count: int, expected: set[str], tmp_path: Path) -> None:
    report = lint_dataset(write(tmp_path / "train.jsonl", list(GOOD[:count])))
    assert problems(report) == expected


def test_too_long_examples(tmp_path: Path) -> None:
    row = example(3)
    row["messages"][2]["content"] = "word " * 400  # 2,000 characters, ~500 tokens
    report = lint_dataset(write(tmp_path / "train.jsonl", replaced(3, row)), max_example_tokens=300)
    assert problems(report) == {"too-long"}
    assert lines_of(report, "too-long") == {4}
    assert report.stats["tokens"]["max"] > 500


def test_validation_split_share_and_overlap(tmp_path: Path) -> None:
    train = write(tmp_path / "train.jsonl", list(GOOD[:48]))
    right = write(tmp_path / "right.jsonl", list(GOOD[48:60]))  # 12 of 60 = 20 %
    report = lint_dataset(train, right)
    assert problems(report) == {"few-examples"}
    assert report.stats["validation_examples"] == 12

    small = write(tmp_path / "small.jsonl", list(GOOD[48:50]))
    report = lint_dataset(train, small)
    assert problems(report) == {"few-examples", "validation-split"}

    leaky = write(tmp_path / "leaky.jsonl", [*GOOD[48:58], GOOD[0], GOOD[1]])
    report = lint_dataset(train, leaky)
    assert problems(report) == {"few-examples", "validation-overlap"}
    overlap = next(f for f in report.findings if f.rule == "validation-overlap")
    assert overlap.file == str(leaky) and set(overlap.lines) == {11, 12}


def test_validation_file_errors_point_into_that_file(tmp_path: Path) -> None:
    train = write(tmp_path / "train.jsonl", list(GOOD[:50]))
    broken = write(tmp_path / "valid.jsonl", [*GOOD[50:59], "{not json"])
    report = lint_dataset(train, broken)
    json_findings = [f for f in report.findings if f.rule == "json"]
    assert [(f.file, f.lines) for f in json_findings] == [(str(broken), (10,))]


def test_missing_file_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    report = lint_dataset(tmp_path / "nope.jsonl")
    assert "file" in report.rules(Severity.ERROR) and report.exit_code == 1


def test_many_bad_lines_are_summarised(tmp_path: Path) -> None:
    report = lint_dataset(write(tmp_path / "train.jsonl", [*GOOD, *["{oops"] * 50]))
    json_findings = [f for f in report.findings if f.rule == "json"]
    assert len(json_findings) == 21  # 20 one by one, then one summary of the other 30
    assert "30 more lines" in json_findings[-1].message and len(json_findings[-1].lines) == 30


def test_large_file_is_streamed(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    template = example(0)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(5_000):
            template["messages"][1]["content"] = f"Question {i}: is item {i * 7919 % 100_003} covered?"
            handle.write(json.dumps(template) + "\n")
    report = lint_dataset(path)
    assert report.ok and report.stats["valid_examples"] == 5_000


def test_json_and_rich_renderings(tmp_path: Path) -> None:
    report = lint_dataset(FIXTURES / "bad.jsonl")
    data = json.loads(to_json(report))
    assert data == to_dict(report)
    assert data["ok"] is False and data["counts"]["error"] == report.count(Severity.ERROR)
    assert {"severity": "error", "rule": "role", "file": report.path, "lines": [5]}.items() <= next(
        f for f in data["findings"] if f["rule"] == "role").items()
    console = Console(record=True, width=200)
    console.print(render(report))
    text = console.export_text()
    assert "FAIL" in text and "no-assistant" in text and "customer" in text
