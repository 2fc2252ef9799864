"""The alerts section: validation that names what to fix, rule lookup, severities, backoff."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from service.alerts.sender import backoff_s, resolve_receivers
from service.config import (
    AlertRule,
    AlertsConfig,
    DeliveryPolicy,
    ReceiverConfig,
    ReceiverKind,
    Severity,
)
from service.errors import ConfigError


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "a", "url": "http://h/x"}, "needs `secret_env`"),
        ({"name": "a", "kind": "pagerduty"}, "needs `routing_key_env`"),
        ({"name": "a", "kind": "slack"}, "needs `url` or `url_env`"),
        ({"name": "a", "kind": "slack", "url": "http://h", "url_env": "U"}, "not both"),
        ({"name": "a", "url": "ftp://h", "secret_env": "S"}, "not an http(s) URL"),
        ({"name": "a", "url": "https://u:p@h/x", "secret_env": "S"}, "credentials"),
        ({"name": "a", "url": "http://h", "secret_env": "S", "extra": 1}, "Extra inputs"),
    ],
)
def test_bad_receivers_are_refused_with_a_reason(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ReceiverConfig.model_validate(fields)


def test_receiver_names_are_unique() -> None:
    r = {"name": "a", "url": "http://h", "secret_env": "S"}
    with pytest.raises(ValidationError, match="unique"):
        AlertsConfig.model_validate({"receivers": [r, r]})


def test_rules_default_and_severities() -> None:
    cfg = AlertsConfig.model_validate(
        {
            "receivers": [
                {"name": "pd", "kind": "pagerduty", "routing_key_env": "K", "severities": ["page"]}
            ],
            "rules": {"quality_below_threshold": {"for_s": 600, "severity": "page"}},
            "default_rule": {"for_s": 120},
        }
    )
    assert cfg.rule_for("quality_below_threshold") == AlertRule(for_s=600, severity=Severity.PAGE)
    assert cfg.rule_for("anything_else").for_s == 120
    pd = cfg.receivers[0]
    assert pd.kind is ReceiverKind.PAGERDUTY
    assert pd.takes("page") and not pd.takes("ticket") and pd.takes("unknown")


def test_resolve_receivers_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = AlertsConfig.model_validate(
        {
            "receivers": [
                {"name": "hook", "url": "http://127.0.0.1:9/h", "secret_env": "TW_T_SECRET"},
                {"name": "slack", "kind": "slack", "url_env": "TW_T_SLACK"},
                {"name": "pd", "kind": "pagerduty", "routing_key_env": "TW_T_PD"},
            ]
        }
    )
    monkeypatch.setenv("TW_T_SECRET", "s3cret")
    monkeypatch.setenv("TW_T_SLACK", "https://hooks.slack.example/T/B/x")
    with pytest.raises(ConfigError, match="TW_T_PD"):
        resolve_receivers(cfg)
    monkeypatch.setenv("TW_T_PD", "routing")
    found = resolve_receivers(cfg)
    assert found["hook"].secret == b"s3cret" and found["slack"].url == "https://hooks.slack.example/T/B/x"
    assert (
        found["pd"].url == "https://events.pagerduty.com/v2/enqueue" and found["pd"].routing_key == "routing"
    )


@settings(deadline=None)
@given(attempts=st.integers(1, 200), seed=st.integers(0, 2**32))
def test_backoff_is_exponential_jittered_and_capped(attempts: int, seed: int) -> None:
    policy = DeliveryPolicy(backoff_base_s=30, backoff_max_s=3600)
    delay = backoff_s(attempts, policy, random.Random(seed))
    ceiling = min(3600.0, 30.0 * 2 ** (attempts - 1))
    assert ceiling / 2 <= delay <= ceiling
