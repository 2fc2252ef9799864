"""Judge and quality configuration: the model configuration azure-ai-evaluation receives."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from service.config import UpstreamKind
from service.errors import ConfigError
from service.quality.judge import EvaluatorName, JudgeConfig, QualityConfig, judge_model_name, model_config


def test_openai_config_always_has_type_endpoint_and_key() -> None:
    judge = JudgeConfig(base_url="http://127.0.0.1:1/v1", model="gpt-4o-mini")
    cfg = model_config(judge)
    assert cfg == {
        "type": "openai",
        "base_url": "http://127.0.0.1:1/v1",
        "model": "gpt-4o-mini",
        "api_key": "unused",
    }
    assert model_config(judge) is not cfg  # a fresh dict: the library mutates what it gets


def test_azure_config_reads_its_key_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    judge = JudgeConfig(
        kind=UpstreamKind.AZURE,
        endpoint="https://x.openai.azure.com",
        deployment="judge-4o",
        api_version="2024-06-01",
        api_key_env="TW_TEST_JUDGE_KEY",
    )
    monkeypatch.setenv("TW_TEST_JUDGE_KEY", "k-123")
    assert model_config(judge) == {
        "type": "azure_openai",
        "azure_endpoint": "https://x.openai.azure.com",
        "azure_deployment": "judge-4o",
        "api_key": "k-123",
        "api_version": "2024-06-01",
    }
    assert model_config(judge, SecretStr("other"))["api_key"] == "other"
    assert judge_model_name(judge) == "judge-4o"
    monkeypatch.delenv("TW_TEST_JUDGE_KEY")
    with pytest.raises(ConfigError, match="TW_TEST_JUDGE_KEY"):
        model_config(judge)


@pytest.mark.parametrize(
    "fields",
    [
        {
            "kind": "azure",
            "endpoint": "https://x",
            "deployment": "d",
        },  # no key: the library would probe the cloud
        {"kind": "openai", "model": "m"},  # no base_url: the library would call the public API
        {"kind": "openai", "base_url": "ftp://x", "model": "m"},
    ],
)
def test_unsafe_judge_configs_are_refused(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        JudgeConfig.model_validate(fields)


def test_quality_defaults_and_thresholds() -> None:
    q = QualityConfig(judge=JudgeConfig(base_url="http://h/v1", model="m"), thresholds={"tone": 4.0})
    assert q.evaluators == list(EvaluatorName)
    assert q.threshold(EvaluatorName.TONE) == 4.0
    assert q.threshold(EvaluatorName.RELEVANCE) == 3.0
    assert len(q.tone_rubric) == 4


def test_a_lease_shorter_than_a_batch_is_refused() -> None:
    with pytest.raises(ValidationError, match="lease_s"):
        QualityConfig(
            judge=JudgeConfig(base_url="http://h/v1", model="m"), batch_size=100, concurrency=1, lease_s=60
        )
