"""Prometheus metrics, through BentoML's metrics API so they appear on the service's ``/metrics``."""

from __future__ import annotations

import functools

import bentoml
import numpy as np

from models.specs import CLASS_NAMES, MODEL_NAME

REQUESTS = bentoml.metrics.Counter(
    name="clothes_requests",
    documentation="Model API requests by model version, route and HTTP status",
    labelnames=["model", "version", "route", "status"],
)
PREDICTIONS = bentoml.metrics.Counter(
    name="clothes_predictions",
    documentation="Images classified, by model version and predicted class",
    labelnames=["model", "version", "label"],
)
CONFIDENCE = bentoml.metrics.Histogram(
    name="clothes_confidence",
    documentation="Confidence of the predicted class, by model version",
    labelnames=["model", "version"],
    buckets=(0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
)


def record_request(version: str, route: str, status: int) -> None:
    REQUESTS.labels(model=MODEL_NAME, version=version, route=route, status=str(status)).inc()


@functools.cache
def _prediction_children(version: str) -> tuple[list, object]:
    """Per-version metric children, resolved once: label lookups cost more than the increments."""
    counters = [PREDICTIONS.labels(model=MODEL_NAME, version=version, label=name) for name in CLASS_NAMES]
    return counters, CONFIDENCE.labels(model=MODEL_NAME, version=version)


def record_predictions(version: str, probabilities: np.ndarray) -> None:
    counters, confidence = _prediction_children(version)
    counts = np.bincount(probabilities.argmax(axis=1), minlength=len(CLASS_NAMES))
    for class_id in np.flatnonzero(counts):
        counters[class_id].inc(int(counts[class_id]))
    for value in probabilities.max(axis=1).tolist():
        confidence.observe(value)
