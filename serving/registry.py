"""The model registry: (name, version or alias) -> the handle of one served version.

A :class:`VersionHandle` holds what the entry service knows of a version: its card, its runner slot
(behind a :class:`~serving.dispatch.Batcher` and a :class:`~serving.runner_health.RunnerHealth`),
its monitor, and the files stored next to the model (evaluation report, drift reference). A
:class:`ServedModel` maps versions and aliases to handles; an alias may be a weighted split of
versions, sticky per caller key. Versions come and go while serving (serving/live.py changes them).

    >>> registry = ModelRegistry({...})
    >>> handle = registry.resolve("clothes", "stable", key="user-42")   # ModelNotFound / VersionNotFound
    >>> probabilities, ood_scores, extra = await handle.infer(values)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
from collections.abc import Awaitable
from typing import Protocol

import numpy as np
import orjson

from config import Config, RunnerSettings
from lifecycle import ood
from lifecycle.reference import REFERENCE_FILE, drift_card
from lifecycle.report import REPORT_FILE
from models import store
from models.card import ModelCard
from models.engines.base import EngineInputError
from serving.core import VersionState, VersionStatus
from serving.dispatch import Batcher
from serving.errors import ModelNotFound, ServingError, Unavailable, VersionNotFound
from serving.monitoring import VersionMonitor
from serving.runner_health import RunnerHealth

log = logging.getLogger(__name__)
RETRY_MISSING_SECONDS = 30  # a version missing from the store stays missing until it is loaded again
RUNNER_RETRIES = 2

Target = str | dict[str, int]  # an alias's version, or its weighted split of versions


class RunnerClient(Protocol):
    """How the entry reaches one runner slot: ``predict(values)`` and ``status()``, both awaitable."""

    def predict(self, values: np.ndarray, /) -> Awaitable[np.ndarray]: ...

    def status(self) -> Awaitable[dict]: ...


class VersionHandle:
    def __init__(
        self,
        name: str,
        version: str,
        config: Config,
        runner: RunnerClient,
        card: ModelCard | None = None,
        created: str | None = None,
        report: bytes | None = None,
        reference: dict | None = None,
        failure: str | None = None,
        settings: RunnerSettings | None = None,
        slot: str | None = None,
    ):
        self.name, self.version = name, version
        self.card = card
        self.created = created
        self.report = report
        self.reference = reference
        self.failure = failure  # why the entry itself cannot serve it (not in the store)
        self.slot = slot  # the runner slot hosting it (serving/slots.py)
        self.runner = runner
        self.in_flight = 0  # requests in it now: an unloaded version finishes them first
        self.health = RunnerHealth(f"{name}:{version}", self._runner_status)
        settings = settings or config.runner(name, version)
        # Drift and the prediction counters read a classifier's classes or a regressor's values, and one input tensor (named
        # inputs: their numeric values as one, lifecycle/reference.py drift_card); OOD scores read one input tensor itself.
        monitored = card is not None and (card.is_classifier or card.output.kind in ("regression", "multilabel")) and drift_card(card) is not None
        self.monitor = VersionMonitor(card, reference, config.monitoring) if card is not None and monitored else None
        model_settings = config.models.get(name)
        scored = card is not None and card.is_classifier and not card.named_inputs
        self.ood = OodScorer.of(card, reference, model_settings.ood) if card is not None and scored and model_settings is not None else None
        # Monitoring sees each group the batcher sends once, after its requests have their answers.
        on_answer = self.monitor.observe if self.monitor is not None else None
        self.batcher = Batcher(
            self._call_runner, settings.batching.max_batch_size, config.limits.max_queue_images, on_answer=on_answer, score=self.ood.scores if self.ood is not None else None
        )

    @classmethod
    def from_store(cls, name: str, version: str, config: Config, runner: RunnerClient, **kwargs) -> VersionHandle:
        """The handle of a stored version: its card, creation time and stored files; a version missing
        from the store (or without a card) is kept with the reason, and answers 503."""
        try:
            stored = store.get(name, version)
            card = store.load_card(name, version, stored)
        except store.ModelStoreError as exc:
            log.error("%s", exc)
            return cls(name, version, config, runner, failure=str(exc), **kwargs)
        reference = store.read_file(stored, REFERENCE_FILE)
        return cls(
            name,
            version,
            config,
            runner,
            card,
            created=stored.info.creation_time.isoformat(),
            report=store.read_file(stored, REPORT_FILE),
            reference=read_reference(reference) if reference else None,
            **kwargs,
        )

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def status(self) -> VersionStatus:
        """ready, loading (its runner does not answer yet) or unavailable (with the reason), and the
        engine its runner runs it on (None until the runner has loaded it)."""
        if self.failure:
            return {"status": VersionState.UNAVAILABLE, "reason": self.failure, "engine": None}
        return {"status": self.health.status["status"], "reason": self.health.status["reason"], "engine": self.health.status["engine"]}

    def available(self) -> ModelCard:
        """The card of a version that can answer, or Unavailable (503) with the reason."""
        if self.failure or self.card is None:
            raise Unavailable(self.failure or f"{self.tag}: no model card", retry_after=RETRY_MISSING_SECONDS)
        if self.health.status["status"] == VersionState.UNAVAILABLE:  # its model failed to load in the runner
            raise Unavailable(self.health.status["reason"] or f"{self.tag} failed to load", retry_after=RETRY_MISSING_SECONDS)
        return self.card

    async def infer(self, values: np.ndarray, request_id: str | None = None) -> tuple[np.ndarray, np.ndarray | None, dict[str, np.ndarray]]:
        """The answers (class probabilities (N, classes) for a classifier), each example's OOD score (None
        without one) and further outputs (a pipeline's: serving/pipelines.py; none here); Unavailable
        (503) when the version cannot answer now."""
        self.available()
        self.in_flight += 1
        try:
            answers, scores = await self.batcher.submit_scored(values, request_id)
            return answers, scores, {}
        finally:
            self.in_flight -= 1

    async def _call_runner(self, values: np.ndarray) -> np.ndarray:
        """One call into the runner. A call that fails in the runner's connection (its worker died) is
        sent again (inference has no side effects), to another worker of the slot when it has several;
        a pooled connection to the dead worker fails at once, hence up to RUNNER_RETRIES sends."""
        for _ in range(RUNNER_RETRIES):
            try:
                return await self.health.call(self.runner.predict, values)
            except (ServingError, EngineInputError, asyncio.CancelledError):
                raise
            except Exception as exc:
                log.warning("%s: a runner call failed (%s: %s); sending it again", self.tag, type(exc).__name__, exc)
        return await self.health.call(self.runner.predict, values)  # the last send: its failure is the answer

    async def _runner_status(self) -> dict:
        """The slot's status answer, for this version: a slot hosting another version (or none) is not
        ready for it. RunnerHealth.probe types the answer (its values are plain strings)."""
        status = await self.runner.status()
        hosting = (status.get("model"), status.get("version"))
        if self.slot is not None and "model" in status and hosting != (self.name, self.version):
            return {"status": VersionState.LOADING, "reason": f"its runner {self.slot} hosts {':'.join(map(str, hosting)) if hosting[0] else 'nothing'}", "engine": None}
        return status


class OodScorer:
    """A version's out-of-distribution score per example (lifecycle/ood.py) and its abstention threshold."""

    def __init__(self, name: str, score, reference: dict | None, abstain_above: float | None):
        self.name, self._score, self._reference, self.abstain_above = name, score, reference, abstain_above

    @classmethod
    def of(cls, card: ModelCard, stored_reference: dict | None, settings) -> OodScorer | None:
        """The configured score, or None when it is off or the version lacks what it needs (logged)."""
        if not settings.enabled:
            return None
        reference = ood.reference_of(stored_reference, card)
        if ood.needs_reference(settings.score) and (reference is None or "mean" not in reference):
            log.warning("%s:%s has no reference statistics: its answers carry no %s score (retrain it, or import it with evaluation data)", card.name, card.version, settings.score)
            return None
        return cls(settings.score, ood.SCORES[settings.score], reference, settings.abstain_above)

    def scores(self, values: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        """Each example's score (the batcher calls it once per group)."""
        return self._score(values, probabilities, self._reference)

    def abstained(self, scores: np.ndarray) -> np.ndarray | None:
        """Which examples are past the threshold; None without one."""
        return scores > self.abstain_above if self.abstain_above is not None else None

    def __call__(self, values: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(scores, abstained) of examples scored alone."""
        scores = self.scores(values, probabilities)
        return scores, self.abstained(scores)


class ServedModel:
    def __init__(self, name: str, handles: dict[str, VersionHandle], aliases: dict[str, Target], default_version: str):
        self.name = name
        self.handles = handles
        self.aliases = aliases
        self.default_version = default_version
        self.failures: dict[str, str] = {}  # versions whose load failed, with the reason
        self.shadow: dict | None = None  # {"alias", "candidate", "share"}: serving/shadow.py

    def resolve(self, version_or_alias: str, key: str | None = None) -> VersionHandle:
        """The handle a version or alias names now; a split alias picks a version by its weights, the
        same one for the same caller ``key``."""
        target = self.aliases.get(version_or_alias, version_or_alias)
        version = pick(version_or_alias, target, key) if isinstance(target, dict) else target
        if version not in self.handles:
            raise VersionNotFound(self.name, version_or_alias, [*self.handles, *self.aliases])
        return self.handles[version]

    def aliases_of(self, version: str) -> list[str]:
        return sorted(alias for alias, target in self.aliases.items() if version in targets(target))


def targets(target: Target) -> list[str]:
    """The versions an alias may answer with (a split's versions of nonzero weight)."""
    return [target] if isinstance(target, str) else [v for v, weight in target.items() if weight > 0]


def pick(alias: str, weights: dict[str, int], key: str | None) -> str:
    """A version of a split by its weights: by the caller key's hash when there is one (sticky), else at random."""
    live = [(version, weight) for version, weight in weights.items() if weight > 0]
    total = sum(weight for _, weight in live)
    if key is None:
        point = random.random() * total
    else:
        digest = hashlib.blake2b(f"{alias}\0{key}".encode(), digest_size=8).digest()
        point = int.from_bytes(digest, "big") / 2**64 * total
    for version, weight in live:
        point -= weight
        if point < 0:
            return version
    return live[-1][0]


class ModelRegistry:
    def __init__(self, models: dict[str, ServedModel]):
        self.models = models

    def model(self, name: str) -> ServedModel:
        if name not in self.models:
            raise ModelNotFound(name, list(self.models))
        return self.models[name]

    def resolve(self, name: str, version_or_alias: str, key: str | None = None) -> VersionHandle:
        return self.model(name).resolve(version_or_alias, key)

    def labels_of(self, name: str, version: str) -> tuple[str, ...] | None:
        """A served version's labels (its card's), None when it does not serve or has no card."""
        model = self.models.get(name)
        handle = model.handles.get(version) if model is not None else None
        return handle.card.labels if handle is not None and handle.card is not None and handle.card.is_classifier else None

    def targets_of(self, name: str, version: str) -> int | None:
        """A served regressor's number of targets, None when it does not serve, has no card or is no regressor."""
        model = self.models.get(name)
        handle = model.handles.get(version) if model is not None else None
        card = handle.card if handle is not None else None
        return len(card.output.targets) if card is not None and card.output.kind == "regression" else None

    def handles(self) -> list[VersionHandle]:
        return [handle for model in self.models.values() for handle in model.handles.values()]

    def label(self, name: str | None, version_or_alias: str | None) -> tuple[str, str]:
        """Metric labels for a request: served names only, so clients cannot grow the label set."""
        model = self.models.get(name) if name else None
        if name is None or model is None:
            return "unknown", "unknown"
        version = version_or_alias if version_or_alias in model.handles else None
        if version is None and version_or_alias in model.aliases:
            version = version_or_alias  # an alias not resolved (an error before inference): count it under its name
        return name, version or "unknown"


def read_reference(content: bytes) -> dict:
    """A version's reference statistics: orjson, ~4x the standard library on the start-up path; the
    standard library for a file written with NaN or infinity (orjson refuses them)."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return json.loads(content)
