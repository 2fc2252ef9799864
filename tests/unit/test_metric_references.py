"""Every ``tunewatch_*`` series named in ``prometheus/`` and ``grafana/`` is defined in ``metrics.py``.

The metric names are a contract (DESIGN.md): a rule or a panel that names a metric tunewatch does
not export is silently empty. The defined names come from the registry itself, so the series a
family exposes (``_bucket``/``_sum``/``_count`` of a histogram, ``_total`` of a counter) are known
exactly rather than guessed from the source.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

import service.telemetry.metrics  # noqa: F401  (registers every tunewatch metric)

ROOT = Path(__file__).resolve().parents[2]
# the rules and their tests, and the generated dashboards (grafana/dashboards.py is checked through
# its output, which tests/unit/test_dashboards.py keeps equal to what it generates)
SCANNED = [
    *sorted((ROOT / "prometheus" / "rules").rglob("*.yml")),
    *sorted((ROOT / "grafana" / "dashboards").glob("*.json")),
]

# A metric name not glued to a recording rule's `level:` or `:operation` parts, nor to a longer word.
_NAME = re.compile(r"(?<![\w:])tunewatch_[a-z0-9_]*[a-z0-9](?![\w:])")
# Recording-rule names (level:metric:operations) are ours, not tunewatch's: checked separately.
_RECORDED = re.compile(r"\b[a-z_]+:tunewatch_[a-z0-9_]+:[a-z0-9_]+\b")
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
    "summary": ("_sum", "_count", "_created", ""),
}


def exposed_series() -> set[str]:
    """Every series name the registry's tunewatch families can expose."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.name.startswith("tunewatch_"):
            names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


def referenced(path: Path) -> set[str]:
    return set(_NAME.findall(path.read_text(encoding="utf-8")))


def test_the_registry_knows_the_contract_metrics() -> None:
    # guards the guard: if the import stopped registering, every reference would look undefined
    series = exposed_series()
    for name in ("tunewatch_requests_total", "tunewatch_request_duration_seconds_bucket",
                 "tunewatch_quality_score_count", "tunewatch_arm_weight", "tunewatch_signal_active"):
        assert name in series


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_referenced_metric_is_defined(path: Path) -> None:
    names = referenced(path)
    assert names, f"{path.name} names no tunewatch metric: is the scan broken?"
    undefined = sorted(names - exposed_series())
    assert not undefined, f"{path.relative_to(ROOT)} uses metrics not defined in metrics.py: {undefined}"


def test_every_used_recording_rule_is_recorded() -> None:
    rules = (ROOT / "prometheus/rules/tunewatch-recording.yml").read_text(encoding="utf-8")
    recorded = set(re.findall(r"record:\s*(\S+)", rules))
    used: set[str] = set()
    dashboards = sorted((ROOT / "grafana/dashboards").glob("*.json"))
    consumers = [ROOT / "prometheus/rules/tunewatch-alerts.yml", *dashboards]
    for path in consumers:
        used |= set(_RECORDED.findall(path.read_text(encoding="utf-8")))
    assert used, "no recording rule is used: is the scan broken?"
    assert sorted(used - recorded) == []


def test_the_scan_rejects_an_undefined_name(tmp_path: Path) -> None:
    probe = tmp_path / "probe.yml"
    probe.write_text('expr: rate(tunewatch_requests_total[5m]) / rate(tunewatch_no_such_thing_total[5m])\n'
                     "record: experiment_arm:tunewatch_made_up:rate5m\n")
    assert referenced(probe) == {"tunewatch_requests_total", "tunewatch_no_such_thing_total"}
    assert referenced(probe) - exposed_series() == {"tunewatch_no_such_thing_total"}
