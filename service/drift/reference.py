"""Readers of reference files: the queries a fine-tune was trained on.

Three formats, chosen by extension and else by content:

- a fine-tuning JSONL (``.jsonl``): one ``{"messages": [...]}`` per line; the reference is the
  content of every ``user`` message (text parts of multi-part content joined by spaces);
- a TSV with a header (``.tsv``): the column named ``question``, ``query`` or ``text``
  (case-insensitive), else the last column;
- plain text: one query per line.

Blank lines are skipped. Input is read line by line as UTF-8 (a BOM is accepted); bytes that are
not UTF-8, a line that is not JSON, a row with too few columns: :class:`DataFileError` naming the
file, the line and what to fix. Blocking file I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from service.errors import InvalidRequestError

__all__ = ["DataFileError", "ReferenceFormat", "ReferenceSet", "decode_line", "message_text",
           "read_lines", "read_reference"]

_TSV_COLUMNS = ("question", "query", "text")


class DataFileError(InvalidRequestError):
    """A data file (reference, dataset, input) is unreadable; says where and what to fix."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}", code="invalid_data_file")
        self.path = str(path)
        self.line = line
        self.problem = problem


class ReferenceFormat(StrEnum):
    JSONL = "jsonl"
    TSV = "tsv"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class ReferenceSet:
    """The queries of a reference file, in file order, with where they came from."""

    path: str
    format: ReferenceFormat
    texts: list[str]
    #: (JSONL) examples that had no user message, skipped
    skipped: int = 0


def decode_line(raw: bytes, path: Path | str, number: int) -> str:
    """One line as text without its line ending. Raises DataFileError on non-UTF-8 bytes."""
    if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start:exc.start + 1].hex()
        raise DataFileError(path, number, f"byte 0x{bad} at column {exc.start + 1} is not UTF-8; "
                                          "re-save the file as UTF-8") from exc


def read_lines(path: Path | str) -> Iterator[tuple[int, str]]:
    """(line number from 1, text) of each line, streamed. Raises DataFileError (I/O, encoding)."""
    try:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                yield number, decode_line(raw, path, number)
    except OSError as exc:
        raise DataFileError(path, None, f"cannot read the file: {exc.strerror or exc}") from exc


def message_text(content: Any) -> str | None:
    """The text of a chat message's ``content`` (a string or a list of parts); None if neither."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part.get("text") for part in content
                 if isinstance(part, dict) and part.get("type") == "text"]
        if all(isinstance(part, str) for part in parts):
            return " ".join(str(part) for part in parts)
    return None


def _sniff(path: Path) -> ReferenceFormat:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return ReferenceFormat.JSONL
    if suffix in (".tsv", ".tab"):
        return ReferenceFormat.TSV
    for _, line in read_lines(path):
        if line.strip():
            return ReferenceFormat.JSONL if line.lstrip().startswith("{") else ReferenceFormat.TEXT
    return ReferenceFormat.TEXT


def _read_jsonl(path: Path) -> tuple[list[str], int]:
    texts: list[str] = []
    skipped = 0
    for number, line in read_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFileError(path, number, f"not valid JSON ({exc.msg} at column {exc.colno}); "
                                              "each line must be one JSON object") from exc
        messages = row.get("messages") if isinstance(row, dict) else None
        if not isinstance(messages, list):
            raise DataFileError(path, number, 'expected an object with a "messages" list '
                                              '(the chat fine-tuning format)')
        users = [message_text(m.get("content")) for m in messages
                 if isinstance(m, dict) and m.get("role") == "user"]
        found = [text for text in users if text and text.strip()]
        if not found:
            skipped += 1
        texts.extend(text.strip() for text in found)
    return texts, skipped


def _read_tsv(path: Path) -> list[str]:
    lines = read_lines(path)
    header: list[str] | None = None
    texts: list[str] = []
    column = 0
    for number, line in lines:
        if not line.strip():
            continue
        fields = line.split("\t")
        if header is None:
            header = [name.strip().lower() for name in fields]
            named = [header.index(name) for name in _TSV_COLUMNS if name in header]
            column = named[0] if named else len(header) - 1
            continue
        if len(fields) <= column:
            raise DataFileError(path, number, f"has {len(fields)} tab-separated fields, the "
                                              f"{header[column]!r} column is field {column + 1}")
        if fields[column].strip():
            texts.append(fields[column].strip())
    return texts


def read_reference(path: Path | str, fmt: ReferenceFormat | None = None) -> ReferenceSet:
    """Read the reference queries of ``path`` (format from ``fmt``, the extension or the content).

    Raises:
        DataFileError: unreadable, not UTF-8, malformed line, or no query at all.
    """
    path = Path(path)
    fmt = fmt or _sniff(path)
    skipped = 0
    if fmt is ReferenceFormat.JSONL:
        texts, skipped = _read_jsonl(path)
    elif fmt is ReferenceFormat.TSV:
        texts = _read_tsv(path)
    else:
        texts = [line.strip() for _, line in read_lines(path) if line.strip()]
    if not texts:
        hint = "no user message in any example" if fmt is ReferenceFormat.JSONL else "no non-empty line"
        raise DataFileError(path, None, f"no reference query found ({hint})")
    return ReferenceSet(path=str(path), format=fmt, texts=texts, skipped=skipped)
