"""Live accuracy (a regressor's live error): predictions joined to their ground truth, as statistics with confidence intervals.

The server joins feedback to the predictions it answered (serving/feedback.py); this module turns the
joined rows of one version into what an operator reads: accuracy with a 95% Wilson interval (scipy's
``binomtest(...).proportion_ci``: exact enough at small counts, where a normal interval leaves [0, 1]),
recall per true class, calibration (expected calibration error over equal-width confidence bins, with
each bin's confidence against its accuracy), the same accuracy per alias and per slice, and a time
series of it. ``calibration_of`` gives the calibration from per-bin sums (a SQL aggregate), for the gauges.
A regressor's joined rows give ``regression_report``: MAE and RMSE per target with 95% intervals (normal
approximations of the mean absolute and mean squared error), the bias, per alias and slice, and a series.

    >>> rows = {"label": labels, "predicted": predicted, "confidence": confidence, "time": times, "alias": aliases, "slice": slices}
    >>> live_report(rows, card.labels, series_seconds=60)["accuracy"]
    {'value': 0.91, 'low': 0.89, 'high': 0.93, 'examples': 1000, 'correct': 910}
"""

from __future__ import annotations

import functools
import math
from typing import TypedDict

import numpy as np

from lifecycle.drift import scipy_stats

CONFIDENCE_LEVEL = 0.95
CALIBRATION_BINS = 10
MAX_SERIES_POINTS = 120


class Proportion(TypedDict):
    value: float | None
    low: float | None
    high: float | None
    examples: int
    correct: int


@functools.cache
def _z() -> float:
    return float(scipy_stats().norm.ppf(0.5 + CONFIDENCE_LEVEL / 2))


def proportion(correct: int, examples: int) -> Proportion:
    """A share with its 95% Wilson interval (the formula scipy's ``binomtest(...).proportion_ci(method="wilson")``
    computes, without the test it also runs: a series of 120 points costs microseconds); no value without examples."""
    if examples == 0:
        return {"value": None, "low": None, "high": None, "examples": 0, "correct": 0}
    z, share = _z(), correct / examples
    spread = z * math.sqrt(share * (1 - share) / examples + z * z / (4 * examples * examples))
    centre, scale = share + z * z / (2 * examples), 1 + z * z / examples
    low, high = max((centre - spread) / scale, 0.0), min((centre + spread) / scale, 1.0)
    return {"value": round(share, 6), "low": round(low, 6), "high": round(high, 6), "examples": examples, "correct": correct}


def calibration_of(rows: list[tuple[int, int, float, int]], bins: int = CALIBRATION_BINS) -> dict:
    """The calibration from per-bin sums (bin, examples, sum of confidence, correct), as :func:`calibration` gives it from rows."""
    total = sum(count for _, count, _, _ in rows)
    if total == 0:
        return {"ece": None, "bins": []}
    edges = np.linspace(0.0, 1.0, bins + 1)
    table, gap = [], 0.0
    for index, count, confidence_sum, correct in sorted(rows):
        mean_confidence, accuracy = confidence_sum / count, correct / count
        gap += count * abs(mean_confidence - accuracy)
        table.append(
            {
                "low": round(float(edges[index]), 2),
                "high": round(float(edges[index + 1]), 2),
                "examples": count,
                "confidence": round(mean_confidence, 6),
                "accuracy": round(accuracy, 6),
            }
        )
    return {"ece": round(gap / total, 6), "bins": table}


def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS) -> dict:
    """Expected calibration error (the examples' share-weighted gap between confidence and accuracy per
    bin) and the bins that hold examples."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    sums = [(index, int(members.sum()), float(confidence[members].sum()), int(correct[members].sum())) for index in range(bins) if (members := which == index).any()]
    return calibration_of(sums, bins)


def _by(groups: np.ndarray, correct: np.ndarray) -> dict[str, Proportion]:
    names = sorted({str(name) for name in groups if name})
    return {name: proportion(int(correct[groups == name].sum()), int((groups == name).sum())) for name in names}


def series(times: np.ndarray, correct: np.ndarray, seconds: float) -> list[dict]:
    """Accuracy per ``seconds`` of prediction time, oldest first (at most the last MAX_SERIES_POINTS buckets)."""
    if len(times) == 0:
        return []
    buckets = np.floor(times / seconds).astype(np.int64)
    points = []
    for bucket in np.unique(buckets)[-MAX_SERIES_POINTS:]:
        members = buckets == bucket
        points.append({"start": float(bucket * seconds), **proportion(int(correct[members].sum()), int(members.sum()))})
    return points


def live_report(rows: dict[str, np.ndarray], labels: tuple[str, ...], series_seconds: float) -> dict:
    """The live statistics of one version's joined rows: ``label`` and ``predicted`` (class indices),
    ``confidence`` (of the predicted class), ``time`` (of the prediction, epoch seconds), ``alias`` and
    ``slice`` (strings, empty where none)."""
    label, predicted = rows["label"].astype(np.int64), rows["predicted"].astype(np.int64)
    correct = label == predicted
    classes = []
    for index, name in enumerate(labels):
        members = label == index
        recall = proportion(int(correct[members].sum()), int(members.sum()))
        classes.append({"label": name, "recall": recall["value"], "low": recall["low"], "high": recall["high"], "examples": recall["examples"]})
    times = rows["time"].astype(np.float64)
    return {
        "examples": int(len(label)),
        "accuracy": proportion(int(correct.sum()), int(len(label))),
        "classes": classes,
        "calibration": calibration(rows["confidence"].astype(np.float64), correct),
        "aliases": _by(rows["alias"], correct),
        "slices": _by(rows["slice"], correct),
        "series": series(times, correct, series_seconds),
        "first": float(times.min()) if len(times) else None,
        "last": float(times.max()) if len(times) else None,
    }


class ErrorInterval(TypedDict):
    value: float | None
    low: float | None
    high: float | None


def mean_interval(values: np.ndarray) -> ErrorInterval:
    """A mean with its 95% interval from the normal approximation (the errors' spread over sqrt(n)); no interval from one value."""
    if len(values) == 0:
        return {"value": None, "low": None, "high": None}
    mean = float(values.mean())
    if len(values) < 2:
        return {"value": round(mean, 6), "low": None, "high": None}
    half = _z() * float(values.std(ddof=1)) / math.sqrt(len(values))
    return {"value": round(mean, 6), "low": round(mean - half, 6), "high": round(mean + half, 6)}


def errors(truth: np.ndarray, predicted: np.ndarray) -> dict:
    """MAE and RMSE with 95% intervals (RMSE's: the square roots of the mean squared error's bounds), the mean error (bias), the examples."""
    error = predicted - truth
    mae = mean_interval(np.abs(error))
    if mae["low"] is not None:
        mae["low"] = max(mae["low"], 0.0)  # an error's size is never negative; the normal approximation can say so with few or skewed examples
    squared = mean_interval(error**2)
    root: ErrorInterval = {"value": None, "low": None, "high": None}
    for key in ("value", "low", "high"):
        bound = squared[key]
        root[key] = round(math.sqrt(max(bound, 0.0)), 6) if bound is not None else None
    return {"examples": int(len(error)), "mae": mae, "rmse": root, "bias": round(float(error.mean()), 6) if len(error) else None}


def regression_report(rows: dict[str, np.ndarray], targets: list[dict], series_seconds: float) -> dict:
    """The live error of one regressor's joined rows (one per example and target): ``target`` (index),
    ``truth``, ``predicted``, ``time``, ``alias`` and ``slice``; per target, per alias and per slice, and a
    series of each target's MAE."""
    target = rows["target"].astype(np.int64)
    truth, predicted, times = rows["truth"].astype(np.float64), rows["predicted"].astype(np.float64), rows["time"].astype(np.float64)

    def per_target(members: np.ndarray) -> dict:
        return {spec["name"]: errors(truth[members & (target == index)], predicted[members & (target == index)]) for index, spec in enumerate(targets)}

    groups = {}
    for column in ("alias", "slice"):
        names = sorted({str(name) for name in rows[column] if name})
        groups[column] = {name: per_target(rows[column] == name) for name in names}
    points = []
    if len(times):
        buckets = np.floor(times / series_seconds).astype(np.int64)
        for bucket in np.unique(buckets)[-MAX_SERIES_POINTS:]:
            members = buckets == bucket
            points.append(
                {
                    "start": float(bucket * series_seconds),
                    "examples": int((members & (target == 0)).sum()),
                    "mae": {name: errors_of["mae"]["value"] for name, errors_of in per_target(members).items()},
                }
            )
    return {
        "task": "regression",
        "examples": int((target == 0).sum()),
        "targets": [{**spec, **errors(truth[target == index], predicted[target == index])} for index, spec in enumerate(targets)],
        "aliases": groups["alias"],
        "slices": groups["slice"],
        "series": points,
        "first": float(times.min()) if len(times) else None,
        "last": float(times.max()) if len(times) else None,
    }
