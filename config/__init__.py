"""The runtime configuration: what a fresh start serves and how (``configuration.yaml``).

Read by the entry files, ``serving/`` and the lifecycle tools alike; it imports nothing of the server.
Another file: ``MODEL_SERVER_CONFIG=path``.

    >>> config = load_config()
    >>> config.served()                       # [("clothes", "v1"), ("clothes", "v2"), ...]
    >>> config.runner("clothes", "v2").workers
    >>> config.models["clothes"].resolve("stable")
"""

from config.record import PromotionRecord
from config.settings import (
    CONFIG_ENV,
    Config,
    ConfigError,
    DriftThresholds,
    FeedbackSettings,
    Limits,
    Live,
    ModelSettings,
    Monitoring,
    OodSettings,
    Placement,
    PromotionPolicy,
    RunnerSettings,
    Security,
    VersionPolicy,
    Watch,
    load_config,
    runner_name,
)

__all__ = [
    "CONFIG_ENV",
    "Config",
    "ConfigError",
    "DriftThresholds",
    "FeedbackSettings",
    "Limits",
    "Live",
    "ModelSettings",
    "Monitoring",
    "OodSettings",
    "PromotionPolicy",
    "PromotionRecord",
    "Placement",
    "RunnerSettings",
    "Security",
    "VersionPolicy",
    "Watch",
    "load_config",
    "runner_name",
]
