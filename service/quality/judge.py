"""Judge and quality configuration, and the azure-ai-evaluation model configuration built from it.

The pydantic models here are the experiments file's ``quality`` section (one per experiment):
which evaluators run, their pass thresholds, the tone rubric, the judge deployment and the scorer's
limits. :func:`model_config` turns a :class:`JudgeConfig` into the dict azure-ai-evaluation takes
(``AzureOpenAIModelConfiguration`` or ``OpenAIModelConfiguration`` shape), always with ``type``,
``api_key`` and the endpoint set: without a key an Azure config falls back to
``DefaultAzureCredential`` (cloud metadata probes), without ``base_url`` an OpenAI config goes to
the public API (``../shared/notes/azure-ai-evaluation.md``).

Imports nothing heavy (no azure.ai.evaluation): safe to import from config and CLI code.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from service.config import DEMO_TONE_RUBRIC, EvaluatorName, JudgeConfig, QualityConfig, UpstreamKind, read_env
from service.errors import ConfigError

__all__ = [
    "DEMO_TONE_RUBRIC",
    "EvaluatorName",
    "JudgeConfig",
    "QualityConfig",
    "judge_model_name",
    "model_config",
]

#: sent as the key when the judge needs none (a local OpenAI-compatible server); never empty, so the
#: library never goes looking for a credential of its own
NO_KEY = "unused"


def judge_model_name(judge: JudgeConfig) -> str:
    """The deployment or model name, stored with each score when the judge reply names none."""
    return (judge.deployment if judge.kind is UpstreamKind.AZURE else judge.model) or "unknown"


def model_config(judge: JudgeConfig, api_key: SecretStr | None = None) -> dict[str, Any]:
    """The azure-ai-evaluation model configuration for ``judge`` (a fresh dict on every call).

    The key comes from ``api_key`` or else the variable ``judge.api_key_env``. Raises
    ``ConfigError`` when that variable is named but unset. The library mutates the dict it is
    given, so each evaluator must get its own: call this once per evaluator.
    """
    key = api_key
    if key is None and judge.api_key_env:
        key = read_env(judge.api_key_env)
        if key is None:
            raise ConfigError(f"judge: environment variable {judge.api_key_env} (api_key_env) is not set")
    secret = key.get_secret_value() if key is not None else NO_KEY
    if judge.kind is UpstreamKind.AZURE:
        cfg: dict[str, Any] = {
            "type": "azure_openai",
            "azure_endpoint": judge.endpoint,
            "azure_deployment": judge.deployment,
            "api_key": secret,
        }
        if judge.api_version:
            cfg["api_version"] = judge.api_version
        return cfg
    # type="openai" is required: without it the library mistakes the dict for an Azure one.
    return {"type": "openai", "base_url": judge.base_url, "model": judge.model, "api_key": secret}
