"""The service's settings, read once from the runtime configuration file.

``configuration.yaml`` (or the file named by ``CLOTHES_CONFIG``) has two sections:

- ``services``: per BentoML service, the options of ``@bentoml.service`` in BentoML's own schema
  (workers, traffic, runner_connection, metrics, ...), plus a runner's ``batching``:
  ``max_batch_size`` caps the images the entry groups into one call to that runner; ``enabled``
  adds BentoML's own adaptive dispatcher inside the runner, with ``max_latency_ms`` as its budget.
  service.py hands each service its block. (BentoML's ``BENTOML_CONFIG`` cannot carry
  this file: its loader rejects unknown top-level keys.)
- ``clothes``: what is served:

    clothes:
      versions: [v1, v2]              # each gets its own runner service, clothes-v1, clothes-v2
      aliases: {stable: v1, latest: v2}
      default_version: stable         # used by the typed APIs when the caller names no version
      limits: {max_body_bytes: 10485760, max_batch_images: 1024, max_queue_images: 8192,
               max_requests_in_flight: 256, body_timeout_seconds: 10}
      promotion:                      # the gate (train_and_save.py promote) and its record
        alias: stable                 #   the alias it moves; the record's choice overrides `aliases`
        record: deploy/promotions.json
        min_improvement: 0.002
        max_class_regression: 0.02
        max_slice_regression: 0.02
      monitoring: {window: 1000, min_samples: 200, p_value: 0.001, psi: 0.2, log_sample_rate: 0.01}
      strict_readiness: false         # true: refuse to start unless every version is in the store and loadable
      security:                       # the optional API token (serving/auth.py); off without api_token_env
        api_token_env: CLOTHES_API_TOKEN  # the token is read from this environment variable
        protect_metrics: false        #   true: /metrics needs it too

"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import yaml

from lifecycle.drift import Thresholds
from lifecycle.gate import Policy, read_record
from models.specs import MODEL_NAME, NAME_PATTERN

ENV_VAR = "CLOTHES_CONFIG"
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configuration.yaml"
DEFAULT_BATCHING = {"enabled": False, "max_batch_size": 1024, "max_latency_ms": 10_000}
MIN_TOKEN_CHARS = 16  # a shorter API token is too easy to guess


class SettingsError(ValueError):
    """The configuration file is missing or inconsistent."""


@dataclasses.dataclass(frozen=True)
class Promotion:
    alias: str | None = None  # None: no gate; aliases come from the configuration alone
    record: str | None = None  # absolute path of the promotion record
    policy: Policy = Policy()


@dataclasses.dataclass(frozen=True)
class Monitoring:
    enabled: bool = True  # false: only the Prometheus counters (measures the drift monitoring's cost)
    window: int = 1000  # predictions per version in the rolling drift window
    thresholds: Thresholds = Thresholds()
    log_sample_rate: float = 0.01  # share of predictions written to the bentoml.monitor data log
    log_max_per_second: int = 50  # and at most this many per second and entry worker (each ~0.4 ms)
    refresh_seconds: float = 1.0  # how often the Prometheus drift gauges are recomputed


@dataclasses.dataclass(frozen=True)
class Security:
    api_token: str | None = dataclasses.field(default=None, repr=False)  # None: no token required
    api_token_env: str | None = None  # the environment variable the token was read from
    protect_metrics: bool = False  # whether /metrics needs the token too


@dataclasses.dataclass(frozen=True)
class Settings:
    versions: tuple[str, ...]
    aliases: dict[str, str]
    default_version: str
    max_body_bytes: int
    max_batch_images: int
    max_queue_images: int
    max_requests_in_flight: int  # per entry worker; more get 503 + Retry-After (middleware.ConcurrencyLimit)
    body_timeout_seconds: float  # a body still arriving after this gets 408 (middleware.BodyLimit)
    runner_batching: dict[str, dict[str, int]]
    services: dict[str, dict]
    path: str
    promotion: Promotion = Promotion()
    monitoring: Monitoring = Monitoring()
    security: Security = Security()
    # True: start-up fails on a version missing from the store or not loadable, and /readyz waits for
    # every version. False: such a version is served as unavailable (503) and the others are ready.
    strict_readiness: bool = False

    def service_options(self, name: str) -> dict:
        """The ``@bentoml.service`` options of one service (its ``batching`` block excluded)."""
        options = {k: v for k, v in (self.services.get(name) or {}).items() if k != "batching"}
        monitor = (options.get("monitoring") or {}).get("options") or {}
        if monitor.get("log_config_file"):
            log_config = Path(self.path).parent / monitor["log_config_file"]
            options["monitoring"] = {**options["monitoring"], "options": {**monitor, "log_config_file": str(log_config.resolve())}}
        return options

    def resolve(self, version_or_alias: str) -> str | None:
        """A served version for a version or alias, or None."""
        version = self.aliases.get(version_or_alias, version_or_alias)
        return version if version in self.versions else None

    def aliases_of(self, version: str) -> list[str]:
        return sorted(alias for alias, target in self.aliases.items() if target == version)


def runner_name(version: str) -> str:
    return f"{MODEL_NAME}-{version}"


def config_path() -> Path:
    return Path(os.environ.get(ENV_VAR) or DEFAULT_CONFIG)


def load_settings(path: str | os.PathLike | None = None) -> Settings:
    path = Path(path) if path else config_path()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise SettingsError(f"cannot read configuration {path}: {exc}") from None
    section = raw.get(MODEL_NAME) or {}
    versions = tuple(section.get("versions") or ())
    promotion = _promotion(section.get("promotion"), path)
    aliases = dict(section.get("aliases") or {})
    if promotion.record:
        promoted = read_record(promotion.record)["stable"]
        if promoted is not None:
            aliases[promotion.alias] = promoted
    limits = section.get("limits") or {}
    if not versions:
        raise SettingsError(f"{path}: {MODEL_NAME}.versions lists no version to serve")
    for name in (*versions, *aliases):
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise SettingsError(f"{path}: {name!r} is not a valid version or alias name ([a-z0-9._-])")
    for alias, target in aliases.items():
        if alias in versions:
            raise SettingsError(f"{path}: alias {alias!r} hides the version of the same name")
        if target not in versions:
            source = f"the promotion record {promotion.record}" if promotion.alias == alias and promotion.record else "it"
            raise SettingsError(f"{path}: alias {alias!r} points to {target!r} ({source}), which is not served")
    default_version = str(section.get("default_version") or versions[0])
    if default_version not in versions and default_version not in aliases:
        raise SettingsError(f"{path}: default_version {default_version!r} is neither a served version nor an alias")
    services = raw.get("services") or {}
    batching = {
        v: {**DEFAULT_BATCHING, **((services.get(runner_name(v)) or {}).get("batching") or {})} for v in versions
    }
    return Settings(
        versions=versions,
        aliases=aliases,
        default_version=default_version,
        max_body_bytes=int(limits.get("max_body_bytes", 10 * 1024 * 1024)),
        max_batch_images=int(limits.get("max_batch_images", 1024)),
        max_queue_images=int(limits.get("max_queue_images", 8192)),
        max_requests_in_flight=int(limits.get("max_requests_in_flight", 256)),
        body_timeout_seconds=float(limits.get("body_timeout_seconds", 10)),
        runner_batching=batching,
        services=dict(services),
        path=str(path),
        promotion=promotion,
        monitoring=_monitoring(section.get("monitoring") or {}),
        security=_security(section.get("security") or {}, path),
        strict_readiness=_flag(section, "strict_readiness", path),
    )


def _promotion(raw: dict | None, path: Path) -> Promotion:
    if not raw:
        return Promotion()
    record = raw.get("record")
    defaults = Policy()
    return Promotion(
        alias=str(raw.get("alias", "stable")),
        record=str((path.parent / record).resolve()) if record else None,
        policy=Policy(**{f.name: float(raw.get(f.name, getattr(defaults, f.name))) for f in dataclasses.fields(Policy)}),
    )


def _monitoring(raw: dict) -> Monitoring:
    defaults = Monitoring()
    thresholds = Thresholds(
        p_value=float(raw.get("p_value", defaults.thresholds.p_value)),
        psi=float(raw.get("psi", defaults.thresholds.psi)),
        min_samples=int(raw.get("min_samples", defaults.thresholds.min_samples)),
    )
    window = int(raw.get("window", defaults.window))
    if window < thresholds.min_samples or window < 2:
        raise SettingsError(f"monitoring.window ({window}) must be at least min_samples ({thresholds.min_samples}) and 2")
    return Monitoring(
        enabled=bool(raw.get("enabled", defaults.enabled)),
        window=window,
        thresholds=thresholds,
        log_sample_rate=float(raw.get("log_sample_rate", defaults.log_sample_rate)),
        log_max_per_second=int(raw.get("log_max_per_second", defaults.log_max_per_second)),
        refresh_seconds=float(raw.get("refresh_seconds", defaults.refresh_seconds)),
    )


def _security(raw: dict, path: Path) -> Security:
    """The API token comes from the environment variable named by ``api_token_env``, never from the file.

    A named variable that is unset or short stops the service: a deployment meant to be protected
    must not start open.
    """
    if "api_token" in raw:
        raise SettingsError(f"{path}: security.api_token: the token must not be in the file; name its environment variable in api_token_env")
    protect_metrics = raw.get("protect_metrics", False)
    if not isinstance(protect_metrics, bool):
        raise SettingsError(f"{path}: security.protect_metrics must be true or false, got {protect_metrics!r}")
    env = raw.get("api_token_env")
    if not env:
        return Security(protect_metrics=protect_metrics)
    token = os.environ.get(env, "").strip()
    if len(token) < MIN_TOKEN_CHARS:
        problem = "is not set" if not token else f"is shorter than {MIN_TOKEN_CHARS} characters"
        raise SettingsError(f"{path}: security.api_token_env names {env}, but {env} {problem}")
    return Security(api_token=token, api_token_env=env, protect_metrics=protect_metrics)


def _flag(section: dict, key: str, path: Path) -> bool:
    value = section.get(key, False)
    if not isinstance(value, bool):
        raise SettingsError(f"{path}: {MODEL_NAME}.{key} must be true or false, got {value!r}")
    return value
