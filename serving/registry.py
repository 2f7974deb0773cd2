"""The model registry: (name, version or alias) -> the handle of one served version.

A :class:`VersionHandle` holds what the entry service knows of a version: its card, its runner
(behind a :class:`~serving.dispatch.Batcher` and a :class:`~serving.runner_health.RunnerHealth`),
its monitor, and the files stored next to the model (evaluation report, drift reference).

    >>> registry = ModelRegistry.from_config(config, runner_calls)
    >>> handle = registry.resolve("clothes", "stable")       # ModelNotFound / VersionNotFound
    >>> probabilities = await handle.infer(values)
"""

from __future__ import annotations

import json
import logging
from typing import Awaitable, Callable

import numpy as np

from config import Config
from lifecycle.reference import REFERENCE_FILE
from lifecycle.report import REPORT_FILE
from models import store
from models.card import ModelCard
from serving.dispatch import Batcher
from serving.errors import ModelNotFound, Unavailable, VersionNotFound
from serving.monitoring import VersionMonitor
from serving.runner_health import RunnerHealth

log = logging.getLogger(__name__)
RETRY_MISSING_SECONDS = 30  # a version missing from the store stays missing until a restart


class RunnerClient:
    """How the entry reaches one version's runner: ``predict(values)`` and ``status()``, both awaitable."""

    predict: Callable[[np.ndarray], Awaitable[np.ndarray]]
    status: Callable[[], Awaitable[dict]]


class VersionHandle:
    def __init__(self, name: str, version: str, config: Config, runner: RunnerClient, card: ModelCard | None = None,
                 created: str | None = None, report: bytes | None = None, reference: dict | None = None, failure: str | None = None):
        self.name, self.version = name, version
        self.card = card
        self.created = created
        self.report = report
        self.reference = reference
        self.failure = failure  # why the entry itself cannot serve it (not in the store)
        self.health = RunnerHealth(f"{name}:{version}", runner.status)
        runner_settings = config.runner(name, version)
        self.batcher = Batcher(lambda values: self.health.call(runner.predict, values), runner_settings.batching.max_batch_size, config.limits.max_queue_images)
        self.monitor = VersionMonitor(card, reference, config.monitoring) if card else None

    @classmethod
    def from_store(cls, name: str, version: str, config: Config, runner: RunnerClient) -> VersionHandle:
        """The handle of a stored version: its card, creation time and stored files; a version missing
        from the store (or without a card) is kept with the reason, and answers 503."""
        try:
            stored = store.get(name, version)
            card = store.load_card(name, version, stored)
        except store.ModelStoreError as exc:
            log.error("%s", exc)
            return cls(name, version, config, runner, failure=str(exc))
        reference = store.read_file(stored, REFERENCE_FILE)
        return cls(
            name, version, config, runner, card,
            created=stored.info.creation_time.isoformat(),
            report=store.read_file(stored, REPORT_FILE),
            reference=json.loads(reference) if reference else None,
        )

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def status(self) -> dict:
        """ready, loading (its runner does not answer yet) or unavailable (with the reason), and the
        engine its runner runs it on (None until the runner has loaded it)."""
        if self.failure:
            return {"status": "unavailable", "reason": self.failure, "engine": None}
        return {"status": self.health.status["status"], "reason": self.health.status["reason"], "engine": self.health.status.get("engine")}

    def available(self) -> ModelCard:
        """The card of a version that can answer, or Unavailable (503) with the reason."""
        if self.failure:
            raise Unavailable(self.failure, retry_after=RETRY_MISSING_SECONDS)
        if self.health.status["status"] == "unavailable":  # its model failed to load in the runner
            raise Unavailable(self.health.status["reason"], retry_after=RETRY_MISSING_SECONDS)
        return self.card

    async def infer(self, values: np.ndarray) -> np.ndarray:
        """Class probabilities (N, classes); Unavailable (503) when the version cannot answer now."""
        self.available()
        probabilities = await self.batcher.submit(values)
        self.monitor.observe(values, probabilities)
        return probabilities


class ServedModel:
    def __init__(self, name: str, handles: dict[str, VersionHandle], aliases: dict[str, str], default_version: str):
        self.name = name
        self.handles = handles
        self.aliases = aliases
        self.default_version = default_version

    def resolve(self, version_or_alias: str) -> VersionHandle:
        version = self.aliases.get(version_or_alias, version_or_alias)
        if version not in self.handles:
            raise VersionNotFound(self.name, version_or_alias, [*self.handles, *self.aliases])
        return self.handles[version]

    def aliases_of(self, version: str) -> list[str]:
        return sorted(alias for alias, target in self.aliases.items() if target == version)


class ModelRegistry:
    def __init__(self, models: dict[str, ServedModel]):
        self.models = models

    @classmethod
    def from_config(cls, config: Config, runners: dict[tuple[str, str], RunnerClient]) -> ModelRegistry:
        return cls({
            name: ServedModel(
                name,
                {version: VersionHandle.from_store(name, version, config, runners[name, version]) for version in settings.versions},
                dict(settings.aliases),
                settings.default,
            )
            for name, settings in config.models.items()
        })

    def model(self, name: str) -> ServedModel:
        if name not in self.models:
            raise ModelNotFound(name, list(self.models))
        return self.models[name]

    def resolve(self, name: str, version_or_alias: str) -> VersionHandle:
        return self.model(name).resolve(version_or_alias)

    def handles(self) -> list[VersionHandle]:
        return [handle for model in self.models.values() for handle in model.handles.values()]

    def label(self, name: str | None, version_or_alias: str | None) -> tuple[str, str]:
        """Metric labels for a request: served names only, so clients cannot grow the label set."""
        model = self.models.get(name or "")
        if model is None:
            return "unknown", "unknown"
        version = model.aliases.get(version_or_alias or "", version_or_alias)
        return name, version if version in model.handles else "unknown"
