"""Check a fine-tuning JSONL against the study guide's data rules (``tunewatch lint-dataset``).

Rules (id, severity), from the guide's "Data quality guidelines" and its exam tips:

=====================  ========  ===========================================================
``file``               error     the file cannot be opened
``encoding``           error     a line is not UTF-8
``json``               error     a line is not one JSON object
``messages``           error     no non-empty ``messages`` list of objects
``role``               error     a role other than system, user, assistant, tool
``content``            error     empty content (an assistant may carry tool calls instead)
``no-assistant``       error     no assistant message to learn from (or all have weight 0)
``too-few``            error     fewer than 10 valid examples (Azure OpenAI's minimum)
``few-examples``       warning   fewer than 50 (50-100 is the practical minimum)
``blank-line``         warning   an empty line
``no-user``            warning   an example without a user message
``system-prompt``      warning   more than one system prompt across examples (variants listed)
``duplicate``          warning   identical user messages (case, punctuation, spacing ignored)
``near-duplicate``     warning   user messages with character 5-gram Jaccard >= 0.9
``category-balance``   warning   the smallest category under 1/3 of the largest
``validation-split``   warning   validation not ~20% of all examples (info if none given)
``validation-overlap`` warning   a validation user message also in training
``too-long``           warning   an example above ``max_example_tokens`` (approximate)
``token-stats``        info      token length statistics
=====================  ========  ===========================================================

The file is streamed: only per-example digests, counts and capped user texts stay in memory.
Rendering is in ``lint_render.py``. Blocking file I/O and CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from service.drift.dupes import DuplicateFinder
from service.drift.lint_checks import ExampleScan, Severity, scan_file

__all__ = ["Finding", "LintReport", "Severity", "lint_dataset"]

MIN_EXAMPLES = 10
PRACTICAL_MIN_EXAMPLES = 50
VALIDATION_SHARE = (0.1, 0.3)  # around the recommended 20 %
BALANCE_RATIO = 3.0
#: per-line findings of one rule listed one by one before they are summarised
_PER_RULE = 20
_MAX_LINES = 1000


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: what rule, how bad, what to do, and where (1-based line numbers of ``file``)."""

    severity: Severity
    rule: str
    message: str
    file: str
    lines: tuple[int, ...] = ()


@dataclass(slots=True)
class LintReport:
    """Findings of :func:`lint_dataset` and the statistics behind them."""

    path: str
    validation_path: str | None
    findings: list[Finding] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def count(self, severity: Severity) -> int:
        return sum(1 for finding in self.findings if finding.severity is severity)

    @property
    def ok(self) -> bool:
        """No error (warnings allowed): what ``lint-dataset`` maps to exit 0."""
        return self.count(Severity.ERROR) == 0

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def rules(self, severity: Severity | None = None) -> set[str]:
        """Ids of the rules that fired (of one severity when given)."""
        return {f.rule for f in self.findings if severity is None or f.severity is severity}


def _quote(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= width else flat[:width - 1] + "…")


def _lines(lines: list[int]) -> tuple[int, ...]:
    return tuple(lines[:_MAX_LINES])


def _line_findings(scan: ExampleScan, path: str) -> list[Finding]:
    """Per-line problems: the first ``_PER_RULE`` of each rule one by one, the rest summarised."""
    findings: list[Finding] = []
    by_rule: dict[str, list[tuple[int, Severity, str]]] = {}
    for line, severity, rule, message in scan.problems:
        by_rule.setdefault(rule, []).append((line, severity, message))
    for rule, items in by_rule.items():
        for line, severity, message in items[:_PER_RULE]:
            findings.append(Finding(severity, rule, message, path, (line,) if line else ()))
        if len(items) > _PER_RULE:
            rest = [line for line, _, _ in items[_PER_RULE:]]
            findings.append(Finding(items[0][1], rule, f"{len(rest)} more lines with the same problem",
                                    path, _lines(rest)))
    return findings


def _system_prompts(scan: ExampleScan, path: str) -> list[Finding]:
    variants = scan.system_prompts.most_common()
    if len(variants) <= 1:
        if variants and variants[0][0] is None:
            return [Finding(Severity.INFO, "system-prompt", "no example has a system prompt; the guide "
                            "uses the same one in every example to fix the persona", path)]
        return []
    listed = "; ".join(
        f"{_quote(text) if text is not None else '(none)'} x{count} "
        f"(first at line {scan.system_prompt_lines[text][0]})" for text, count in variants[:10]
    )
    minority = [line for text, _ in variants[1:] for line in scan.system_prompt_lines[text]]
    return [Finding(Severity.WARNING, "system-prompt",
                    f"{len(variants)} different system prompts: {listed}. Use the same system prompt in "
                    "every example; the lines listed differ from the most common one", path,
                    _lines(sorted(minority)))]


def _duplicates(finder: DuplicateFinder, path: str, threshold: float) -> list[Finding]:
    groups = finder.groups()
    findings: list[Finding] = []
    for rule, kind, found in (("duplicate", "the same user message", groups.exact),
                              ("near-duplicate", f"near-identical user messages (Jaccard >= {threshold:g})",
                               groups.near)):
        for group in found[:_PER_RULE]:
            findings.append(Finding(Severity.WARNING, rule, f"{len(group)} examples have {kind}: keep one "
                                    "or vary them", path, _lines(group)))
        if len(found) > _PER_RULE:
            rest = sorted(line for group in found[_PER_RULE:] for line in group)
            findings.append(Finding(Severity.WARNING, rule, f"{len(found) - _PER_RULE} more groups of {kind}",
                                    path, _lines(rest)))
    return findings


def _categories(scan: ExampleScan, path: str) -> list[Finding]:
    counts = scan.categories
    if len(counts) < 2:
        return []
    (top, most), (bottom, least) = counts.most_common()[0], counts.most_common()[-1]
    if most < BALANCE_RATIO * least:
        return []
    listed = ", ".join(f"{name}: {count}" for name, count in counts.most_common())
    return [Finding(Severity.WARNING, "category-balance",
                    f"categories are unbalanced ({listed}); {bottom!r} has {least} examples against "
                    f"{most} for {top!r}: add examples to the small ones for roughly equal shares", path)]


def _tokens(scan: ExampleScan, path: str, max_tokens: int) -> tuple[list[Finding], dict[str, Any]]:
    if not scan.tokens:
        return [], {}
    values = np.array(scan.tokens)
    stats = {"min": int(values.min()), "median": float(np.median(values)),
             "p95": float(np.percentile(values, 95)), "max": int(values.max()), "total": int(values.sum())}
    findings = [Finding(Severity.INFO, "token-stats",
                        f"approximate tokens per example: min {stats['min']}, median {stats['median']:.0f}, "
                        f"p95 {stats['p95']:.0f}, max {stats['max']}; {stats['total']} in all", path)]
    long = [line for line, count in zip(scan.token_lines, scan.tokens, strict=True) if count > max_tokens]
    if long:
        findings.append(Finding(Severity.WARNING, "too-long", f"{len(long)} examples exceed ~{max_tokens} "
                                "tokens and may be truncated or rejected: shorten or split them", path,
                                _lines(long)))
    return findings, stats


def _validation(train: ExampleScan, validation: ExampleScan, path: str, train_path: str) -> list[Finding]:
    findings = _line_findings(validation, path)
    total = train.valid + validation.valid
    share = validation.valid / total if total else 0.0
    low, high = VALIDATION_SHARE
    if not low <= share <= high:
        findings.append(Finding(Severity.WARNING, "validation-split",
                                f"validation is {share:.0%} of all examples ({validation.valid} of {total}); "
                                f"aim for ~20% (about {round(0.2 * total)})", path))
    seen = {digest for digest, _ in train.user_digests}
    overlap = sorted(line for digest, line in validation.user_digests if digest in seen)
    if overlap:
        findings.append(Finding(Severity.WARNING, "validation-overlap",
                                f"{len(overlap)} validation examples repeat a user message of {train_path}: "
                                "validation loss on them measures memorisation; remove them", path,
                                _lines(overlap)))
    return findings


def lint_dataset(path: Path | str, validation: Path | str | None = None, *, near_threshold: float = 0.9,
                 max_example_tokens: int = 32_768) -> LintReport:
    """Lint the fine-tuning JSONL ``path`` (and its ``validation`` file, when given).

    Never raises on bad content: unreadable files and lines become error findings.
    Blocking; streams the file (100k lines take a few seconds).
    """
    train_path = str(path)
    report = LintReport(path=train_path, validation_path=str(validation) if validation is not None else None)
    finder = DuplicateFinder(threshold=near_threshold)
    scan = scan_file(path, finder)
    report.findings += _line_findings(scan, train_path)
    if scan.valid < MIN_EXAMPLES:
        report.findings.append(Finding(
            Severity.ERROR, "too-few",
            f"{scan.valid} valid examples; Azure OpenAI fine-tuning needs at least {MIN_EXAMPLES}",
            train_path))
    elif scan.valid < PRACTICAL_MIN_EXAMPLES:
        report.findings.append(Finding(
            Severity.WARNING, "few-examples", f"{scan.valid} valid examples; 50-100 diverse, "
            "expert-reviewed examples is the practical minimum", train_path))
    report.findings += _system_prompts(scan, train_path)
    report.findings += _duplicates(finder, train_path, near_threshold)
    report.findings += _categories(scan, train_path)
    token_findings, token_stats = _tokens(scan, train_path, max_example_tokens)
    report.findings += token_findings
    if validation is None:
        report.findings.append(Finding(Severity.INFO, "validation-split", "no validation file: hold out ~20% "
                                       f"of the examples (about {round(0.2 * scan.valid)} of {scan.valid})",
                                       train_path))
        validation_count = None
    else:
        val_scan = scan_file(validation, None)
        report.findings += _validation(scan, val_scan, str(validation), train_path)
        validation_count = val_scan.valid
    report.stats = {
        "lines": scan.lines, "examples": scan.examples, "valid_examples": scan.valid,
        "validation_examples": validation_count, "tokens": token_stats,
        "system_prompts": [{"text": text, "count": count}
                           for text, count in scan.system_prompts.most_common()],
        "categories": dict(scan.categories.most_common()),
    }
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    report.findings.sort(key=lambda f: (order[f.severity], f.file != train_path, f.lines[:1] or (0,)))
    return report
