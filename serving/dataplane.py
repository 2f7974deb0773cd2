"""The data plane: every protocol's routes call it; it knows no HTTP.

It resolves names and aliases through the registry, runs inference through each version's batcher
and runner (recording predictions and drift), and answers listings, model info, reports, drift and
readiness as plain values. Errors are ``serving.errors`` exceptions carrying their status.

A request's :class:`Caller` (a context variable the protocols set) carries its traffic key in, so
that a split alias answers one caller with one version, and the version that answered out, for the
response's ``X-Model-Version`` and the metrics. Requests through a shadowed alias are also sent to
the shadow candidate, after the answer (serving/shadow.py).

    >>> plane = DataPlane(registry, config)
    >>> handle = plane.resolve("clothes", "stable")
    >>> probabilities = await plane.infer(handle, values)
    >>> plane.model_info("clothes", "v1")["number_of_parameters"]
"""

from __future__ import annotations

import contextvars
import dataclasses

import numpy as np

from config import Config
from serving.errors import NotFound, Unavailable
from serving.registry import RETRY_MISSING_SECONDS, ModelRegistry, VersionHandle


@dataclasses.dataclass
class Caller:
    key: str | None = None  # the request's traffic key (live.traffic_key_header)
    alias: str | None = None  # the alias the request named, if it named one
    answered: VersionHandle | None = None  # the version that answered


CALLER: contextvars.ContextVar[Caller] = contextvars.ContextVar("caller")


def caller() -> Caller:
    """This request's caller; outside a request (tests, tools), a fresh one."""
    try:
        return CALLER.get()
    except LookupError:
        current = Caller()
        CALLER.set(current)
        return current


class DataPlane:
    def __init__(self, registry: ModelRegistry, config: Config, shadows=None):
        self.registry = registry
        self.config = config
        self.shadows = shadows  # serving.shadow.Shadows, or None
        self.live = None  # serving.live.LiveModels: set by the entry service

    def resolve(self, name: str, version_or_alias: str) -> VersionHandle:
        current = caller()
        model = self.registry.model(name)
        current.alias = version_or_alias if version_or_alias in model.aliases else None
        return model.resolve(version_or_alias, current.key)

    async def infer(self, handle: VersionHandle, values: np.ndarray) -> np.ndarray:
        """Class probabilities (N, classes) for values (N, *shape) already checked against the card."""
        current = caller()
        probabilities = await handle.infer(values)
        current.answered = handle
        if self.shadows is not None and current.alias is not None:
            self.shadows.after_answer(self.registry.model(handle.name), current.alias, handle, values, probabilities)
        return probabilities

    def list_models(self) -> dict:
        return {
            "models": [
                {"name": name, "versions": list(model.handles), "aliases": model.aliases, "default_version": model.default_version}
                for name, model in self.registry.models.items()
            ]
        }

    def list_versions(self, name: str) -> dict:
        """Every version with its status (a version whose load failed too, with the reason), the aliases
        (a split as its weights) and the shadow, if any."""
        model = self.registry.model(name)
        versions = [{"version": v, "aliases": model.aliases_of(v), **h.status} for v, h in model.handles.items()]
        versions += [{"version": v, "aliases": [], "status": "unavailable", "reason": reason, "engine": None}
                     for v, reason in model.failures.items() if v not in model.handles]
        return {"name": name, "versions": versions, "aliases": model.aliases, "default_version": model.default_version, "shadow": model.shadow}

    def model_info(self, name: str, version_or_alias: str) -> dict:
        """The version's card with the store's facts, its aliases and its endpoints."""
        handle = self.resolve(name, version_or_alias)
        card = handle.available()
        base = f"/models/{handle.name}/{handle.version}"
        return {
            **card.model_dump(mode="json"),
            "tag": handle.tag,
            "created": handle.created,
            "aliases": self.registry.model(name).aliases_of(handle.version),
            "endpoints": {"predict": base, "report": f"{base}/report", "drift": f"{base}/drift"},
        }

    def report(self, name: str, version_or_alias: str) -> bytes:
        """The evaluation report stored with the version (HTML)."""
        handle = self.resolve(name, version_or_alias)
        if handle.failure:
            raise Unavailable(handle.failure, retry_after=RETRY_MISSING_SECONDS)
        if not handle.report:
            raise NotFound(f"{handle.tag} has no evaluation report; retrain it, or import it with evaluation data")
        return handle.report

    def drift(self, name: str, version_or_alias: str) -> dict:
        """Drift of the version's recent traffic against its training reference."""
        handle = self.resolve(name, version_or_alias)
        if not self.config.monitoring.enabled:
            raise NotFound("drift monitoring is disabled (monitoring.enabled in the configuration)")
        if handle.failure:
            raise Unavailable(handle.failure, retry_after=RETRY_MISSING_SECONDS)
        report = handle.monitor.drift()
        if report is None:
            raise NotFound(f"{handle.tag} has no reference statistics; retrain it, or import it with evaluation data")
        return {"model": handle.name, "version": handle.version, **report}

    def ready(self) -> bool:
        """Ready when every version's runner has loaded its model and answered its warm-up inference.

        Without ``strict_readiness``, a version whose model is missing or failed to load does not hold
        the others back (it answers 503 itself); at least one version must be ready. A runner that
        does not answer (loading, killed, restarting) always makes the service unready.
        """
        states = [handle.status["status"] for handle in self.registry.handles()]
        tolerated = {"ready"} if self.config.strict_readiness else {"ready", "unavailable"}
        return "ready" in states and all(state in tolerated for state in states)
