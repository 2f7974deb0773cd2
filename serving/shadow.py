"""Shadow traffic: a share of an alias's requests also goes to a candidate version, after the answer.

The candidate's answer is never returned: the server records whether it agrees with the version
that answered (the same top class), how long it took and whether it failed, per model, in
``/metrics`` (``serving_shadow_*``) and at ``GET /models/<name>/shadow``. A shadow call starts only
once the caller has its answer and runs as a task of its own, at most ``live.shadow_max_in_flight``
at a time per model (more are skipped and counted), so it never slows or fails the answered request.
With several entry workers, each publishes its counts (serving/workers.py) and the summary merges them.

    >>> shadows = Shadows(max_in_flight=16)
    >>> model.shadow = {"alias": "stable", "candidate": "v2", "share": 0.1}
    >>> shadows.after_answer(model, "stable", answered_handle, values, probabilities)    # from the data plane
    >>> shadows.summary(model)
    {'alias': 'stable', 'candidate': 'v2', 'share': 0.1, 'compared': 812, 'agreement': 0.93, ...}
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time

import bentoml
import numpy as np

from serving.workers import PUBLISH_SECONDS, Board

log = logging.getLogger(__name__)
LATENCIES_KEPT = 2000  # the latest candidate latencies, for the summary's percentiles

COMPARED = bentoml.metrics.Counter(
    name="serving_shadow_examples",
    documentation="Examples answered by a shadow candidate, by whether its top class agreed with the answered version's",
    labelnames=["model", "version", "candidate", "agreed"],
)
SHADOW_ERRORS = bentoml.metrics.Counter(
    name="serving_shadow_errors",
    documentation="Shadow calls that failed",
    labelnames=["model", "candidate"],
)
SHADOW_SKIPPED = bentoml.metrics.Counter(
    name="serving_shadow_skipped",
    documentation="Shadow calls not made because too many were in flight",
    labelnames=["model", "candidate"],
)
SHADOW_SECONDS = bentoml.metrics.Histogram(
    name="serving_shadow_seconds",
    documentation="Latency of the shadow candidate's calls",
    labelnames=["model", "candidate"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
)


class ShadowStats:
    COUNTS = ("requests", "examples", "agreed", "errors", "skipped")

    def __init__(self, candidate: str):
        self.candidate = candidate
        self.requests = self.examples = self.agreed = self.errors = self.skipped = 0
        self.latencies: collections.deque[float] = collections.deque(maxlen=LATENCIES_KEPT)

    def snapshot(self) -> dict:
        return {"candidate": self.candidate, **{name: getattr(self, name) for name in self.COUNTS}, "latencies": list(self.latencies)}


class Shadows:
    def __init__(self, max_in_flight: int = 16, board: Board | None = None):
        self.max_in_flight = max_in_flight
        self.stats: dict[str, ShadowStats] = {}
        self.in_flight: dict[str, int] = collections.defaultdict(int)
        self.tasks: set[asyncio.Task] = set()
        self.board = board or Board("shadow")
        self._publishing: set[str] = set()  # models with a publication scheduled
        self.version_stats = None  # the data plane's VersionStats: agreement per candidate and alias, for rollouts' gate

    def _counted(self, name: str) -> None:
        """Publish the model's counts for the other entry workers, at most every PUBLISH_SECONDS."""
        if name not in self._publishing:
            self._publishing.add(name)
            asyncio.get_running_loop().call_later(PUBLISH_SECONDS, self._publish, name)

    def _publish(self, name: str) -> None:
        self._publishing.discard(name)
        try:
            self.board.publish(name, self.stats[name].snapshot())
        except OSError as exc:  # the summary then misses this worker's latest counts; serving goes on
            log.warning("could not publish the shadow counts of %s: %s", name, exc)

    def after_answer(self, model, alias: str, answered, values: np.ndarray, probabilities: np.ndarray) -> None:
        """Maybe send the request to the model's shadow candidate (the data plane calls this with the answer)."""
        shadow = model.shadow
        if not shadow or shadow["alias"] != alias or random.random() >= shadow["share"]:
            return
        candidate = model.handles.get(shadow["candidate"])
        stats = self._stats(model.name, shadow["candidate"])
        if candidate is None or candidate is answered:
            return
        if self.in_flight[model.name] >= self.max_in_flight:
            stats.skipped += 1
            SHADOW_SKIPPED.labels(model=model.name, candidate=candidate.version).inc()
            self._counted(model.name)
            return
        self.in_flight[model.name] += 1
        task = asyncio.get_running_loop().create_task(self._shadow(model.name, alias, candidate, answered, values, probabilities.argmax(axis=1), stats))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _shadow(self, name: str, alias: str, candidate, answered, values: np.ndarray, classes: np.ndarray, stats: ShadowStats) -> None:
        started = time.perf_counter()
        try:
            probabilities = await candidate.batcher.submit(values)  # no monitor: the shadow is not traffic of the candidate
        except Exception as exc:
            stats.errors += 1
            SHADOW_ERRORS.labels(model=name, candidate=candidate.version).inc()
            log.debug("shadow %s failed: %s", candidate.tag, exc)
            self._counted(name)
            return
        finally:
            self.in_flight[name] -= 1
        seconds = time.perf_counter() - started
        agreed = int((probabilities.argmax(axis=1) == classes).sum())
        stats.requests += 1
        stats.examples += len(classes)
        stats.agreed += agreed
        stats.latencies.append(seconds)
        if self.version_stats is not None:
            self.version_stats.record_shadow(name, candidate.version, alias, len(classes), agreed)
        self._counted(name)
        SHADOW_SECONDS.labels(model=name, candidate=candidate.version).observe(seconds)
        for outcome, count in (("true", agreed), ("false", len(classes) - agreed)):
            if count:
                COMPARED.labels(model=name, version=answered.version, candidate=candidate.version, agreed=outcome).inc(count)

    def _stats(self, name: str, candidate: str) -> ShadowStats:
        stats = self.stats.get(name)
        if stats is None or stats.candidate != candidate:  # a new candidate starts from nothing
            stats = self.stats[name] = ShadowStats(candidate)
        return stats

    def summary(self, model) -> dict:
        """The model's shadow setting and what its candidate did so far, in every entry worker."""
        shadow = model.shadow
        if not shadow:
            return {"shadow": None}
        snapshots = [self._stats(model.name, shadow["candidate"]).snapshot()]
        snapshots += [other for other in self.board.others(model.name) if other.get("candidate") == shadow["candidate"]]
        counts = {name: sum(int(snapshot[name]) for snapshot in snapshots) for name in ShadowStats.COUNTS}
        latencies = np.asarray([value for snapshot in snapshots for value in snapshot["latencies"]]) * 1000
        return {
            "shadow": shadow,
            "requests": counts["requests"],
            "examples": counts["examples"],
            "agreement": round(counts["agreed"] / counts["examples"], 6) if counts["examples"] else None,
            "errors": counts["errors"],
            "skipped": counts["skipped"],
            "latency_ms": {"p50": round(float(np.percentile(latencies, 50)), 3), "p99": round(float(np.percentile(latencies, 99)), 3)} if len(latencies) else None,
        }
