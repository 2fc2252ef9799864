"""The dataset linter's report for people (rich) and for scripts (JSON). Pure, no I/O."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from service.drift.lint import LintReport, Severity

__all__ = ["render", "to_dict", "to_json"]

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
#: line numbers shown per finding in the table (JSON has them all)
_SHOWN_LINES = 12


def to_dict(report: LintReport) -> dict[str, Any]:
    """The report as JSON-able values: ``ok``, ``counts``, ``findings``, ``stats``."""
    return {
        "path": report.path,
        "validation_path": report.validation_path,
        "ok": report.ok,
        "counts": {severity.value: report.count(severity) for severity in Severity},
        "findings": [
            {"severity": f.severity.value, "rule": f.rule, "message": f.message, "file": f.file,
             "lines": list(f.lines)}
            for f in report.findings
        ],
        "stats": report.stats,
    }


def to_json(report: LintReport) -> str:
    """:func:`to_dict` as indented JSON text."""
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False)


def _where(file: str, lines: tuple[int, ...], main: str) -> str:
    shown = ", ".join(map(str, lines[:_SHOWN_LINES])) + (f" … (+{len(lines) - _SHOWN_LINES})"
                                                         if len(lines) > _SHOWN_LINES else "")
    prefix = "" if file == main else f"{file} "
    return f"{prefix}{shown}".strip() or "-"


def render(report: LintReport) -> RenderableType:
    """A summary line and a table of findings (severity, rule, lines, what to do)."""
    stats = report.stats
    counts = {severity: report.count(severity) for severity in Severity}
    verdict = Text("FAIL", style="bold red") if not report.ok else Text("OK", style="bold green")
    summary = Text.assemble(
        verdict, f"  {report.path}: {stats.get('valid_examples', 0)} valid of {stats.get('examples', 0)} "
        f"examples; {counts[Severity.ERROR]} errors, {counts[Severity.WARNING]} warnings, "
        f"{counts[Severity.INFO]} notes",
    )
    table = Table(show_lines=False, expand=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("rule", no_wrap=True)
    table.add_column("lines", max_width=30)
    table.add_column("what to do", ratio=1)
    for finding in report.findings:
        table.add_row(Text(finding.severity.value, style=_STYLE[finding.severity]), finding.rule,
                      _where(finding.file, finding.lines, report.path), finding.message)
    return Group(summary, table) if report.findings else Group(summary)
