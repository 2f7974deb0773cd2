"""Production monitoring: Prometheus metrics, drift against the training reference, sampled data logs.

- Counters and a histogram per model, version and class, through BentoML's metrics API, so they
  appear on the service's ``/metrics`` (labels ``model``, ``version``; requests also ``protocol``).
- :class:`VersionMonitor` keeps each version's rolling window of prediction features
  (lifecycle/drift.py; a classifier's or a regressor's, of one input tensor), answers
  ``GET /models/<name>/<version>/drift`` and refreshes the
  ``serving_drift_*`` gauges at most once per ``refresh_seconds``, on a thread of their own. With several entry workers, each
  publishes its window at each refresh (serving/workers.py) and reports merge the newest rows of all.
- A sample of inputs and outputs goes to BentoML's data-collection log (``bentoml.monitor``,
  ``monitoring/predictions/data/``, one record per example with its ``model`` and ``version``),
  which ``python -m lifecycle.drift_report`` reads. One monitor serves every version: BentoML's
  default monitor writes through one global logger, so a monitor per version would mix their files.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import bentoml
import numpy as np

from lifecycle.drift import MONITOR_NAME, RollingWindow, pooled_snapshot, report_of, scipy_stats, window_counts
from lifecycle.reference import drift_card, drift_values, feature_view
from models.card import ModelCard
from serving.workers import Board

log = logging.getLogger(__name__)

REQUESTS = bentoml.metrics.Counter(
    name="serving_requests",
    documentation="Model API requests by model, version, protocol, endpoint and HTTP status",
    labelnames=["model", "version", "protocol", "endpoint", "status"],
)
REQUEST_SECONDS = bentoml.metrics.Histogram(
    name="serving_request_seconds",
    documentation="Seconds from a request's body read to its answer sent, by model, version, protocol and endpoint",
    labelnames=["model", "version", "protocol", "endpoint"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PREDICTIONS = bentoml.metrics.Counter(
    name="serving_predictions",
    documentation="Examples classified, by model, version and predicted class",
    labelnames=["model", "version", "label"],
)
CONFIDENCE = bentoml.metrics.Histogram(
    name="serving_confidence",
    documentation="Confidence of the predicted class, by model version",
    labelnames=["model", "version"],
    buckets=(0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
)
DRIFT_VALUE = bentoml.metrics.Gauge(
    name="serving_drift_statistic",
    documentation="Drift statistic of the rolling window against the training reference (PSI, KS D or chi-square)",
    labelnames=["model", "version", "statistic"],
)
DRIFT_P_VALUE = bentoml.metrics.Gauge(
    name="serving_drift_p_value",
    documentation="p-value of a drift test (KS, chi-square) of the rolling window against the training reference",
    labelnames=["model", "version", "statistic"],
)
DRIFT_DETECTED = bentoml.metrics.Gauge(
    name="serving_drift_detected",
    documentation="1 when a drift statistic is past its threshold (statistic=any: any of them)",
    labelnames=["model", "version", "statistic"],
)
DRIFT_WINDOW = bentoml.metrics.Gauge(
    name="serving_drift_window_size",
    documentation="Predictions in the rolling drift window",
    labelnames=["model", "version"],
)
CLASS_SHARE = bentoml.metrics.Gauge(
    name="serving_drift_class_share",
    documentation="Share of each predicted class in the rolling window and in the training reference",
    labelnames=["model", "version", "label", "source"],
)


OOD_SCORE_MEAN = bentoml.metrics.Gauge(
    name="serving_ood_score_mean",
    documentation="Mean out-of-distribution score (lifecycle/ood.py; the model's ood.score) of the examples answered since the previous refresh, by model version",
    labelnames=["model", "version"],
    multiprocess_mode="mostrecent",
)
ABSTENTIONS = bentoml.metrics.Counter(
    name="serving_abstentions",
    documentation="Examples answered with an abstention: their out-of-distribution score was past the model's ood.abstain_above",
    labelnames=["model", "version"],
)


@functools.cache
def _abstentions(model: str, version: str) -> Any:
    return ABSTENTIONS.labels(model=model, version=version)


def record_abstentions(model: str, version: str, abstained: np.ndarray) -> None:
    """Count abstentions (per request only when there are some: a score per example would cost every request a metric write)."""
    if abstained.any():
        _abstentions(model, version).inc(int(abstained.sum()))


# Live accuracy (serving/feedback.py): every entry worker reads the same joined rows, so the most recent value is the value.
LIVE_ACCURACY = bentoml.metrics.Gauge(
    name="serving_live_accuracy",
    documentation="Accuracy on the examples given ground truth within feedback.window_seconds, with its 95% Wilson interval (bound=value, low, high)",
    labelnames=["model", "version", "bound"],
    multiprocess_mode="mostrecent",
)
LIVE_EXAMPLES = bentoml.metrics.Gauge(
    name="serving_live_examples",
    documentation="Examples given ground truth and joined to their prediction, within feedback.window_seconds",
    labelnames=["model", "version"],
    multiprocess_mode="mostrecent",
)
LIVE_CALIBRATION_ERROR = bentoml.metrics.Gauge(
    name="serving_live_calibration_error",
    documentation="Expected calibration error of the examples given ground truth (10 confidence bins)",
    labelnames=["model", "version"],
    multiprocess_mode="mostrecent",
)


LIVE_ERROR = bentoml.metrics.Gauge(
    name="serving_live_error",
    documentation="A regressor's error on the examples given ground truth within feedback.window_seconds, per target (statistic=mae, rmse)",
    labelnames=["model", "version", "target", "statistic"],
    multiprocess_mode="mostrecent",
)


class LiveGauges:
    """The live-accuracy gauges, refreshed after new outcomes, at most once per ``every`` seconds (called
    after each pass of the journal's thread with the outcomes it wrote)."""

    def __init__(self, journal, registry, every: float):
        self.journal, self.registry, self.every = journal, registry, every
        self._next = 0.0
        self._stale = True  # the first pass sets them: another worker's outcomes count too

    def __call__(self, written: int) -> None:
        self._stale = self._stale or written > 0
        now = time.monotonic()
        if not self._stale or now < self._next:
            return
        self._next, self._stale = now + self.every, False
        from lifecycle.outcomes import CALIBRATION_BINS, calibration_of, proportion

        for handle in self.registry.handles():
            if handle.card is None:
                continue
            if handle.card.output.kind == "regression":
                self._errors(handle)
                continue
            # SQL aggregates, not the rows: at the outcomes' bound a full live report takes a good part of a second
            accuracy = proportion(*self.journal.tally(handle.name, handle.version))
            labels = {"model": handle.name, "version": handle.version}
            LIVE_EXAMPLES.labels(**labels).set(accuracy["examples"])
            if accuracy["examples"]:
                for bound in ("value", "low", "high"):
                    LIVE_ACCURACY.labels(**labels, bound=bound).set(accuracy[bound] or 0.0)
                LIVE_CALIBRATION_ERROR.labels(**labels).set(calibration_of(self.journal.calibration_tally(handle.name, handle.version, CALIBRATION_BINS))["ece"])

    def _errors(self, handle) -> None:
        """A regressor's MAE and RMSE per target, and its joined examples, from SQL sums."""
        labels = {"model": handle.name, "version": handle.version}
        targets = handle.card.output.targets
        tally = {index: (count, absolute, squared) for index, count, absolute, squared in self.journal.error_tally(handle.name, handle.version)}
        LIVE_EXAMPLES.labels(**labels).set(tally.get(0, (0,))[0])
        for index, (count, absolute, squared) in tally.items():
            if index < len(targets) and count:
                LIVE_ERROR.labels(**labels, target=targets[index].name, statistic="mae").set(absolute / count)
                LIVE_ERROR.labels(**labels, target=targets[index].name, statistic="rmse").set((squared / count) ** 0.5)


LOG_FAILURES = bentoml.metrics.Counter(
    name="serving_monitoring_log_failures",
    documentation="Samples that could not be written to the monitoring data log",
    labelnames=["model", "version"],
)


@functools.cache
def _request_counter(model: str, version: str, protocol: str, endpoint: str, status: int):
    return REQUESTS.labels(model=model, version=version, protocol=protocol, endpoint=endpoint, status=str(status))


@functools.cache
def _request_histogram(model: str, version: str, protocol: str, endpoint: str):
    return REQUEST_SECONDS.labels(model=model, version=version, protocol=protocol, endpoint=endpoint)


def record_request(model: str, version: str, protocol: str, endpoint: str, status: int, seconds: float | None = None) -> None:
    """Count one request (and its duration); ``model`` and ``version`` are served names or "unknown",
    ``endpoint`` a handler or route name (clients cannot grow the label set)."""
    _request_counter(model, version, protocol, endpoint, status).inc()
    if seconds is not None:
        _request_histogram(model, version, protocol, endpoint).observe(seconds)


@functools.cache
def _prediction_children(model: str, version: str, labels: tuple[str, ...]) -> tuple[list[Any], Any]:
    """Per-version metric children, resolved once: label lookups cost more than the increments."""
    counters = [PREDICTIONS.labels(model=model, version=version, label=name) for name in labels]
    return counters, CONFIDENCE.labels(model=model, version=version)


def record_predictions(card: ModelCard, predicted: np.ndarray, confidence: np.ndarray) -> None:
    counters, histogram = _prediction_children(card.name, card.version, card.labels)
    if len(predicted) == 1:
        counters[predicted[0]].inc()
        histogram.observe(float(confidence[0]))
        return
    counts = np.bincount(predicted, minlength=card.classes)
    for class_id in np.flatnonzero(counts):
        counters[class_id].inc(int(counts[class_id]))
    for value in confidence.tolist():
        histogram.observe(value)


SCIPY_IMPORT_DELAY_SECONDS = 1.0
REFRESHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drift-refresh")  # one at a time, whatever the versions


@functools.cache
def import_scipy_in_background() -> None:
    """scipy.stats (the drift tests, half a second to import) on a thread of its own, a second after the
    first version with a drift reference: neither readiness nor, mostly, the first drift report waits for it."""
    # A moment after the start: an import holds the GIL, and the worker is answering its first probes.
    importer = threading.Timer(SCIPY_IMPORT_DELAY_SECONDS, scipy_stats)
    importer.name, importer.daemon = "import-scipy", True
    importer.start()


def example_ids(requests: list[tuple[str | None, int]] | None, examples: int) -> np.ndarray:
    """Each example's request id (None where unknown), from a group's (request id, examples) in order."""
    if not requests:
        return np.full(examples, None, dtype=object)
    return np.repeat(np.asarray([request_id for request_id, _ in requests], dtype=object), [count for _, count in requests])


class VersionMonitor:
    """Metrics, drift window and data-log sampling of one served version: a classifier (its answers are
    class probabilities) or a regressor (its answers are predicted values, one per target)."""

    def __init__(self, card: ModelCard, reference: dict | None, settings, board: Board | None = None) -> None:
        self.served = card  # what clients send: named inputs arrive packed, and are watched as drift_card's vector
        card = drift_card(card) or card
        self.card = card
        self.board = board or Board("drift")
        self.key = f"{card.name}+{card.version}"
        self.labels = {"model": card.name, "version": card.version}
        self.reference = reference
        self.settings = settings
        self.regression = card.output.kind == "regression"
        self.window = RollingWindow(settings.window, card)
        self.last_counts: dict | None = None  # the window as counts, as of the last drift report
        self._rng = np.random.default_rng()
        self._next_refresh = 0.0
        self._refreshing = False
        self._log_failed = False
        self._ood_sum, self._ood_count = 0.0, 0  # OOD scores since the last refresh: the mean's gauge
        self._log_second, self._logged_this_second = 0, 0
        self._until_sample = self._gap() - 1  # examples to skip before the next one goes to the data log
        if reference is not None:
            if settings.enabled:
                import_scipy_in_background()
            for index, name in enumerate(card.labels if not self.regression else ()):
                CLASS_SHARE.labels(**self.labels, label=name, source="reference").set(reference["classes"]["shares"][index])

    def observe(self, pixels: np.ndarray, probabilities: np.ndarray, requests: list[tuple[str | None, int]] | None = None, scores: np.ndarray | None = None) -> None:
        """Examples (N, *shape) as clients sent them, and the class probabilities answered (a regressor's
        predicted values, N x targets): a group of requests the batcher sent together (serving/dispatch.py),
        after they were answered, with each request's id and number of examples (the sampled records carry the id)."""
        pixels = drift_values(pixels, self.served)
        if self.regression:
            self._observe_values(pixels, probabilities, requests)
            return
        predicted, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)
        record_predictions(self.card, predicted, confidence)
        if scores is not None:
            self._ood_sum, self._ood_count = self._ood_sum + float(scores.sum()), self._ood_count + len(scores)
        if not self.settings.enabled:
            return
        self.window.add(pixels, confidence, predicted)
        now = time.monotonic()
        sampled = self._to_log(len(pixels), now)
        if sampled.size:
            self._log(self._write_samples, pixels[sampled], predicted[sampled], confidence[sampled], example_ids(requests, len(pixels))[sampled])
        self._maybe_refresh(now)

    def _observe_values(self, pixels: np.ndarray, answers: np.ndarray, requests: list[tuple[str | None, int]] | None) -> None:
        """A regressor's group: its inputs and predicted values into the window and, sampled, the data log."""
        if not self.settings.enabled:
            return
        values = np.asarray(answers, dtype=np.float64).reshape(len(pixels), -1)
        self.window.add_values(pixels, values)
        now = time.monotonic()
        sampled = self._to_log(len(pixels), now)
        if sampled.size:
            self._log(self._write_values, pixels[sampled], values[sampled], example_ids(requests, len(pixels))[sampled])
        self._maybe_refresh(now)

    def _to_log(self, n: int, now: float) -> np.ndarray:
        """Indices of a group's ``n`` examples that go to the data log: sampled, within this second's allowance."""
        if self.settings.log_sample_rate <= 0:
            return np.zeros(0, dtype=np.intp)
        sampled = self._sample(n)
        if sampled.size:
            sampled = sampled[: self._log_allowance(now)]
            self._logged_this_second += sampled.size
        return sampled

    def _maybe_refresh(self, now: float) -> None:
        """Refresh the gauges (on the refresher's thread) when ``refresh_seconds`` have passed since the last time."""
        if self.reference is not None and now >= self._next_refresh and not self._refreshing:
            self._next_refresh = now + self.settings.refresh_seconds
            self._refreshing = True
            rows = {name: array.copy() for name, array in self.window.rows().items()}  # the loop goes on adding to the window
            REFRESHER.submit(self._refresh, rows)

    def _refresh(self, rows: dict[str, np.ndarray]) -> None:
        """Publish the window and refresh the gauges, on the refresher's thread: a report takes ~10 ms of
        scipy, which on the event loop was every request's p99 once per ``refresh_seconds``."""
        if self._ood_count:
            OOD_SCORE_MEAN.labels(**self.labels).set(self._ood_sum / self._ood_count)
            self._ood_sum, self._ood_count = 0.0, 0
        try:
            self.publish(rows)
            self.refresh_gauges(rows)
        except Exception:  # the next refresh tries again; serving goes on
            log.exception("refreshing the drift gauges of %s failed", self.key)
        finally:
            self._refreshing = False

    def drift(self, rows: dict[str, np.ndarray] | None = None) -> dict | None:
        """The drift report of this worker's window (or ``rows`` of it) with the other workers' published
        ones, or None without a stored reference."""
        if self.reference is None or not self.settings.enabled:
            return None
        window = self._replica_window(rows)
        snapshot = window.snapshot()
        self.last_counts = window_counts(window, snapshot)  # for the replica's report (GET /fleet): no second pass over the rows
        return report_of(self.reference, snapshot, window.capacity, window.seen, self.settings.thresholds)

    def _replica_window(self, rows: dict[str, np.ndarray] | None = None) -> RollingWindow:
        parts = [rows if rows is not None else self.window.rows(), *self.board.others_arrays(self.key)]
        return RollingWindow.merged(parts, self.settings.window, self.card) if len(parts) > 1 or rows is not None else self.window

    def counts(self) -> dict | None:
        """This replica's window (every entry worker's) as histogram counts, for the fleet's drift: as of the
        last drift report (the gauges' refresh, every ``monitoring.refresh_seconds`` while predictions
        arrive), so a replica's report costs nothing more."""
        return self.last_counts

    def fleet_drift(self, parts: list[dict]) -> dict | None:
        """The drift of several replicas' windows, from their counts (:meth:`counts`)."""
        if self.reference is None or not self.settings.enabled or not parts:
            return None
        return report_of(self.reference, pooled_snapshot(parts), self.settings.window * len(parts), sum(part["seen"] for part in parts), self.settings.thresholds)

    def publish(self, rows: dict[str, np.ndarray] | None = None) -> None:
        """This worker's window, for the other entry workers' reports."""
        try:
            self.board.publish_arrays(self.key, rows if rows is not None else self.window.rows())
        except OSError as exc:
            log.warning("could not publish the drift window of %s: %s", self.key, exc)

    def refresh_gauges(self, rows: dict[str, np.ndarray] | None = None) -> dict | None:
        report = self.drift(rows)
        if report is None:
            return None
        labels = self.labels
        DRIFT_WINDOW.labels(**labels).set(report["window"]["size"])
        for name, row in report["statistics"].items():
            DRIFT_VALUE.labels(**labels, statistic=name).set(row["value"])
            if "p_value" in row:
                DRIFT_P_VALUE.labels(**labels, statistic=name).set(row["p_value"])
            DRIFT_DETECTED.labels(**labels, statistic=name).set(int(row["drifted"]))
        DRIFT_DETECTED.labels(**labels, statistic="any").set(int(report["drifted"]))
        for name, share in zip(self.card.labels, report["class_shares"]["window"] if "class_shares" in report else (), strict=True):
            CLASS_SHARE.labels(**labels, label=name, source="window").set(share)
        return report

    def _gap(self) -> int:
        """Examples from one data-log sample to the next: geometric, so each example is sampled with
        probability ``log_sample_rate``, at one random draw per sample rather than one per request."""
        rate = self.settings.log_sample_rate
        return int(self._rng.geometric(rate)) if rate > 0 else 0

    def _sample(self, n: int) -> np.ndarray:
        """Indices of this request's ``n`` examples that go to the data log."""
        picked, position = [], self._until_sample
        while position < n:
            picked.append(position)
            position += self._gap()
        self._until_sample = position - n
        return np.asarray(picked, dtype=np.intp)

    def _log_allowance(self, now: float) -> int:
        """Records the data log may still take this second (each costs ~0.4 ms of the event loop)."""
        second = int(now)
        if second != self._log_second:
            self._log_second, self._logged_this_second = second, 0
        return max(self.settings.log_max_per_second - self._logged_this_second, 0)

    def _log(self, write, *samples: np.ndarray) -> None:
        """Write samples to the data log with ``write``; a failing log (bad path, full disk) never fails a prediction."""
        try:
            write(*samples)
        except Exception as exc:
            LOG_FAILURES.labels(**self.labels).inc()
            if not self._log_failed:
                log.error("the monitoring data log failed; predictions go on without it: %s: %s", type(exc).__name__, exc)
                self._log_failed = True

    def _log_inputs(self, monitor, pixels: np.ndarray, request_ids: np.ndarray) -> None:
        """The columns every sample has: its request, model, version and input features."""
        means = pixels.reshape(len(pixels), -1).mean(axis=1)
        # "request_id" is BentoML's own column (its tracing id, "None" here): ours is the X-Request-Id of the answer
        monitor.log_batch(request_ids.tolist(), "x_request_id", "feature", "categorical")
        monitor.log_batch([self.card.name] * len(pixels), "model", "feature", "categorical")
        monitor.log_batch([self.card.version] * len(pixels), "version", "feature", "categorical")
        monitor.log_batch(feature_view(pixels, self.card).tolist(), "pixels", "feature", "numerical_sequence")
        monitor.log_batch(means.round(3).tolist(), "mean_intensity", "feature", "numerical")

    def _write_values(self, pixels: np.ndarray, values: np.ndarray, request_ids: np.ndarray) -> None:
        """A regressor's samples: each record's ``predicted_values`` holds one value per target."""
        with bentoml.monitor(MONITOR_NAME) as monitor:
            self._log_inputs(monitor, pixels, request_ids)
            # finite values only in a JSON record: a non-finite one is logged as null
            monitor.log_batch([[v if np.isfinite(v) else None for v in row] for row in values.tolist()], "predicted_values", "prediction", "numerical_sequence")

    def _write_samples(self, pixels: np.ndarray, predicted: np.ndarray, confidence: np.ndarray, request_ids: np.ndarray) -> None:
        with bentoml.monitor(MONITOR_NAME) as monitor:
            self._log_inputs(monitor, pixels, request_ids)
            monitor.log_batch(predicted.tolist(), "predicted_class", "prediction", "categorical")
            monitor.log_batch(confidence.round(5).tolist(), "confidence", "prediction", "numerical")
