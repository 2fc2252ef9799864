"""Every PromQL query of the committed dashboards, with Grafana's variables substituted.

For tests that run each panel's query against a real Prometheus (and for a human: ``python
grafana/queries.py`` prints them). Reads the JSON in ``grafana/dashboards/`` only, with the
standard library, so it needs neither Grafana nor the generator's SDK.

Substitution follows Grafana's syntax for the forms the dashboards use: ``$name``, ``${name}`` and
``${name:format}`` (the format is ignored: every value here is a single plain string). An unknown
variable raises ``KeyError``, so a dashboard that grows a variable fails the test that lists it.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DASHBOARD_DIR", "DEFAULT_VARIABLES", "PanelQuery", "panel_queries", "substitute"]

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboards"

#: what a test against the demo uses: experiment `demo`, short windows that fill within minutes
DEFAULT_VARIABLES: Mapping[str, str] = {
    "experiment": "demo",
    "datasource": "prometheus",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
}

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


@dataclass(frozen=True, slots=True)
class PanelQuery:
    """One target of one panel: ``expr`` has its variables substituted, ``raw_expr`` as committed."""

    dashboard: str  # file name, e.g. "tunewatch-experiment.json"
    panel_id: int
    panel_title: str
    ref_id: str
    expr: str
    raw_expr: str
    instant: bool


def substitute(expr: str, variables: Mapping[str, str]) -> str:
    """``expr`` with every ``$var`` / ``${var}`` replaced; raises ``KeyError`` naming an unknown one."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise KeyError(f"dashboard variable ${name} has no value (known: {sorted(variables)})")
        return variables[name]

    return _VARIABLE.sub(value, expr)


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        # a collapsed row keeps its panels inside it
        yield from _panels(panel.get("panels") or [])


def panel_queries(
    variables: Mapping[str, str] = DEFAULT_VARIABLES, directory: Path = DASHBOARD_DIR
) -> list[PanelQuery]:
    """Every panel target of every ``*.json`` dashboard in ``directory``, in file and panel order.

    Blocking (reads files). Raises ``KeyError`` for an unknown variable and ``ValueError`` for a
    dashboard that is not JSON.
    """
    out = []
    for path in sorted(directory.glob("*.json")):
        try:
            dashboard = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path.name}: not JSON: {exc}") from None
        for panel in _panels(dashboard.get("panels", [])):
            for target in panel.get("targets") or []:
                raw = target.get("expr", "")
                out.append(PanelQuery(
                    dashboard=path.name,
                    panel_id=int(panel.get("id", 0)),
                    panel_title=str(panel.get("title", "")),
                    ref_id=str(target.get("refId", "")),
                    expr=substitute(raw, variables),
                    raw_expr=raw,
                    instant=bool(target.get("instant", False)),
                ))
    return out


if __name__ == "__main__":
    for q in panel_queries():
        sys.stdout.write(f"{q.dashboard}\t{q.panel_title}\t{q.ref_id}\t{q.expr}\n")
