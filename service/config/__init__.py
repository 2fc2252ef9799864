"""Process settings (``TUNEWATCH_*``) and the experiments file (YAML).

``Settings`` is built once by the CLI or a test fixture and passed down; each component takes its
slice. The experiments file describes upstreams, experiments and their arms; it never holds a
secret: an upstream names the environment variable its key lives in (``api_key_env``), and
:func:`load_experiments` reads it. A bad file fails at start with the file, the key and what to fix.

Only ``settings.py`` here reads ``os.environ``. This package imports nothing of ours but ``errors``.
"""

from __future__ import annotations

from service.config.alerts import (
    PAGERDUTY_EVENTS_URL,
    AlertRule,
    AlertsConfig,
    DeliveryPolicy,
    ReceiverConfig,
    ReceiverKind,
    Severity,
)
from service.config.experiments import ExperimentConfig, ExperimentsFile, load_experiments, parse_experiments
from service.config.quality import DEMO_TONE_RUBRIC, EvaluatorName, JudgeConfig, QualityConfig
from service.config.settings import Settings, read_env
from service.config.upstreams import (
    ArmConfig,
    Price,
    Stage,
    Timeouts,
    UpstreamConfig,
    UpstreamKind,
    effective_weights,
)

__all__ = [
    "DEMO_TONE_RUBRIC",
    "PAGERDUTY_EVENTS_URL",
    "AlertRule",
    "AlertsConfig",
    "ArmConfig",
    "DeliveryPolicy",
    "EvaluatorName",
    "ExperimentConfig",
    "ExperimentsFile",
    "JudgeConfig",
    "Price",
    "QualityConfig",
    "ReceiverConfig",
    "ReceiverKind",
    "Settings",
    "Severity",
    "Stage",
    "Timeouts",
    "UpstreamConfig",
    "UpstreamKind",
    "effective_weights",
    "load_experiments",
    "parse_experiments",
    "read_env",
]
