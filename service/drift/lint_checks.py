"""The streaming pass of the dataset linter: one example per line, checked and summarised.

:func:`scan_file` reads a fine-tuning JSONL line by line and keeps only what the file-wide rules
need (counts, digests, line numbers, token counts, capped user texts fed to a
:class:`~service.drift.dupes.DuplicateFinder`). Blocking file I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from service.drift.dupes import DuplicateFinder
from service.drift.reference import DataFileError, decode_line, message_text
from service.drift.text import approx_tokens, normalise

__all__ = ["ROLES", "ExampleScan", "Severity", "scan_file"]

ROLES = frozenset({"system", "user", "assistant", "tool"})
#: tokens the chat format adds per message (role and separators), as OpenAI's cookbook counts
_PER_MESSAGE_TOKENS = 4


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(slots=True)
class ExampleScan:
    """What one pass over a file found."""

    lines: int = 0
    examples: int = 0  # non-blank lines
    valid: int = 0  # examples without an error
    problems: list[tuple[int, Severity, str, str]] = field(default_factory=list)  # line, severity, rule, msg
    system_prompts: Counter[str | None] = field(default_factory=Counter)
    system_prompt_lines: defaultdict[str | None, list[int]] = field(default_factory=lambda: defaultdict(list))
    categories: Counter[str] = field(default_factory=Counter)
    tokens: list[int] = field(default_factory=list)
    token_lines: list[int] = field(default_factory=list)
    user_digests: list[tuple[bytes, int]] = field(default_factory=list)

    def problem(self, line: int, severity: Severity, rule: str, message: str) -> None:
        self.problems.append((line, severity, rule, message))


def _category(row: dict[str, Any]) -> str | None:
    value = row.get("category")
    metadata = row.get("metadata")
    if value is None and isinstance(metadata, dict):
        value = metadata.get("category")
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def _check_messages(line: int, messages: list[Any], scan: ExampleScan) -> bool:
    """Role and content checks; True when the example has no error."""
    ok = True
    for position, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            scan.problem(line, Severity.ERROR, "messages", f"message {position} is not an object")
            ok = False
            continue
        role = message.get("role")
        if role not in ROLES:
            scan.problem(line, Severity.ERROR, "role", f"message {position} has role {role!r}; use one of "
                         f"{', '.join(sorted(ROLES))}")
            ok = False
            continue
        text = message_text(message.get("content"))
        calls = message.get("tool_calls") or message.get("function_call")
        if (text is None or not text.strip()) and not (role == "assistant" and calls):
            scan.problem(line, Severity.ERROR, "content", f"message {position} ({role}) has empty or "
                         "missing content; write the text or drop the message")
            ok = False
    assistants = [m for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]
    if not assistants:
        scan.problem(line, Severity.ERROR, "no-assistant", "no assistant message: add the ideal answer "
                     "the model should learn")
        ok = False
    elif all(m.get("weight", 1) == 0 for m in assistants):
        scan.problem(line, Severity.ERROR, "no-assistant", "every assistant message has weight 0, so "
                     "there is nothing to learn from; set weight 1 on at least one")
        ok = False
    return ok


def _summarise(line: int, row: dict[str, Any], messages: list[dict[str, Any]], scan: ExampleScan,
               finder: DuplicateFinder | None) -> None:
    system = next((message_text(m.get("content")) for m in messages if m.get("role") == "system"), None)
    scan.system_prompts[system] += 1
    scan.system_prompt_lines[system].append(line)
    category = _category(row)
    if category is not None:
        scan.categories[category] += 1
    texts = [message_text(m.get("content")) or "" for m in messages]
    scan.tokens.append(sum(approx_tokens(text) + _PER_MESSAGE_TOKENS for text in texts))
    scan.token_lines.append(line)
    user = " ".join(message_text(m.get("content")) or "" for m in messages if m.get("role") == "user")
    if not user.strip():
        scan.problem(line, Severity.WARNING, "no-user", "no user message: the example shows no question "
                     "to answer (and adds nothing to the out-of-domain reference)")
        return
    digest = hashlib.blake2b(normalise(user).encode("utf-8"), digest_size=12).digest()
    scan.user_digests.append((digest, line))
    if finder is not None:
        finder.add(line, user)


def _check_line(line: int, text: str, scan: ExampleScan, finder: DuplicateFinder | None) -> None:
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        scan.problem(line, Severity.ERROR, "json", f"not valid JSON ({exc.msg} at column {exc.colno}); "
                     "each line must hold one complete JSON object")
        return
    if not isinstance(row, dict):
        scan.problem(line, Severity.ERROR, "json", f"a JSON {type(row).__name__}, not an object: "
                     'write {"messages": [...]}')
        return
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        scan.problem(line, Severity.ERROR, "messages", 'missing or empty "messages" list: each line is '
                     '{"messages": [{"role": ..., "content": ...}, ...]}')
        return
    if _check_messages(line, messages, scan):
        scan.valid += 1
        _summarise(line, row, messages, scan, finder)


def scan_file(path: Path | str, finder: DuplicateFinder | None) -> ExampleScan:
    """Stream ``path`` once. Unreadable files, bad bytes and bad lines become problems, never raise."""
    scan = ExampleScan()
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed in the finally below, lines streamed
    except OSError as exc:
        scan.problem(0, Severity.ERROR, "file", f"cannot read {path}: {exc.strerror or exc}")
        return scan
    try:
        for line, raw in enumerate(handle, start=1):
            scan.lines = line
            try:
                text = decode_line(raw, path, line)
            except DataFileError as exc:
                scan.examples += 1
                scan.problem(line, Severity.ERROR, "encoding", exc.problem)
                continue
            if not text.strip():
                scan.problem(line, Severity.WARNING, "blank-line", "empty line: remove it (one example "
                             "per line, no blank lines)")
                continue
            scan.examples += 1
            _check_line(line, text, scan, finder)
    finally:
        handle.close()
    return scan
