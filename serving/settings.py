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
      limits: {max_body_bytes: 10485760, max_batch_images: 1024, max_queue_images: 8192}

"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import yaml

from models.specs import MODEL_NAME, NAME_PATTERN

ENV_VAR = "CLOTHES_CONFIG"
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configuration.yaml"
DEFAULT_BATCHING = {"enabled": False, "max_batch_size": 1024, "max_latency_ms": 10_000}


class SettingsError(ValueError):
    """The configuration file is missing or inconsistent."""


@dataclasses.dataclass(frozen=True)
class Settings:
    versions: tuple[str, ...]
    aliases: dict[str, str]
    default_version: str
    max_body_bytes: int
    max_batch_images: int
    max_queue_images: int
    runner_batching: dict[str, dict[str, int]]
    services: dict[str, dict]
    path: str

    def service_options(self, name: str) -> dict:
        """The ``@bentoml.service`` options of one service (its ``batching`` block excluded)."""
        return {k: v for k, v in (self.services.get(name) or {}).items() if k != "batching"}

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
    aliases = dict(section.get("aliases") or {})
    limits = section.get("limits") or {}
    if not versions:
        raise SettingsError(f"{path}: {MODEL_NAME}.versions lists no version to serve")
    for name in (*versions, *aliases):
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise SettingsError(f"{path}: {name!r} is not a valid version or alias name ([a-z0-9._-])")
    for alias, target in aliases.items():
        if alias in versions:
            raise SettingsError(f"{path}: alias {alias!r} hides the version of the same name")
        if target not in versions:
            raise SettingsError(f"{path}: alias {alias!r} points to {target!r}, which is not served")
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
        runner_batching=batching,
        services=dict(services),
        path=str(path),
    )
