"""Drift of production traffic against a version's reference statistics, with scipy's tests.

A bounded :class:`RollingWindow` keeps the last N predictions' features; :func:`drift_report`
compares it with the reference stored at training time (lifecycle/reference.py):

===============================  ===============================  =====================================
statistic                        test                             moves when
===============================  ===============================  =====================================
``intensity_psi``                PSI of pixel-intensity shares    brightness, contrast, inversion
``mean_intensity_ks``            two-sample KS, per-image mean    brightness, contrast, inversion, masks
``confidence_ks``                two-sample KS, top-1 score       inputs the model finds unfamiliar
``predicted_class_chi2``         chi-square, window vs reference  the mix of predicted classes changes
``input_ks[<input>]``            two-sample KS, one input's       that input's distribution changes
                                 values (regressors)
``predicted_value_ks[<target>]`` two-sample KS, one target's      the distribution of what the model
                                 predicted values (regressors)    predicts for that target changes
===============================  ===============================  =====================================

A classifier's report has the first four (no intensity PSI without a value range); a regressor's has
the input statistics, one KS per input of a vector input (lifecycle/reference.py ``feature_names``)
and one per target, and no class shares. The per-input and per-target tests are families of several
tests at once: each family's p-values are Bonferroni-adjusted (times the tests in it, at most 1), so
that one threshold keeps its meaning however many inputs or targets a model has.

    >>> window = RollingWindow(1000, card)
    >>> window.add(values, probabilities.max(axis=1), probabilities.argmax(axis=1))   # a classifier's answers
    >>> window.add_values(values, predicted_values)                                    # a regressor's (N, targets)
    >>> drift_report(reference, window, DriftThresholds())["drifted"]
    False
"""

from __future__ import annotations

import time
from typing import NotRequired, TypedDict

import numpy as np

from config import DriftThresholds
from lifecycle.reference import CONFIDENCE_DECIMALS, MEAN_DECIMALS, feature_names, feature_view, image_features, significant
from models import store
from models.card import ModelCard

MONITOR_NAME = "predictions"  # the service's bentoml.monitor: samples of every model and version, <log_path>/predictions/data/
PSI_FLOOR = 1e-4  # empty bins would make PSI infinite
_NO_TEST = type("NoTest", (), {"statistic": 0.0, "pvalue": 1.0})()


class RollingWindow:
    """The last ``capacity`` predictions: each input's feature view (lifecycle/reference.py), and a
    classifier's confidence and predicted class, or a regressor's predicted values (one per target).

    Adding costs a copy into fixed-size ring buffers; the features are computed only when a report
    asks for them, so the request path stays cheap.
    """

    def __init__(self, capacity: int, card: ModelCard):
        self.capacity = capacity
        self.card = card
        self.classes = card.classes
        self.regression = card.output.kind == "regression"
        probe = feature_view(np.zeros((1, *card.input.shape), dtype=np.uint8 if card.is_image else np.float32), card)
        self.images = np.zeros((capacity, probe.shape[1]), dtype=probe.dtype)
        self.confidence = np.zeros(capacity)
        self.predicted = np.zeros(capacity, dtype=np.int16)
        self.outputs = np.zeros((capacity if self.regression else 0, len(card.output.targets)))  # a regressor's predicted values
        self.times = np.zeros(capacity)  # when each row was added (epoch seconds): windows of several workers merge by it
        self.count = 0  # predictions in the window
        self.seen = 0  # predictions ever added
        self._next = 0

    def add(self, values: np.ndarray, confidence: np.ndarray, predicted: np.ndarray) -> None:
        """Examples (N, *shape) as clients sent them, with their top-1 confidence and predicted class."""
        self.add_views(feature_view(values, self.card), confidence, predicted)

    def add_views(self, pixels: np.ndarray, confidence: np.ndarray, predicted: np.ndarray) -> None:
        """Examples already reduced to their feature views (as the data log holds them)."""
        n = added = len(pixels)
        if n > self.capacity:
            pixels, confidence, predicted = pixels[-self.capacity :], confidence[-self.capacity :], predicted[-self.capacity :]
            n = self.capacity
        rows: int | np.ndarray
        if n == 1:  # the common case, without fancy indexing
            rows = self._next
            pixels, confidence, predicted = pixels[0], confidence[0], predicted[0]
        else:
            rows = (self._next + np.arange(n)) % self.capacity
        self.images[rows] = pixels
        self.confidence[rows] = confidence
        self.predicted[rows] = predicted
        self.times[rows] = time.time()
        self._next = (self._next + n) % self.capacity
        self.count = min(self.count + n, self.capacity)
        self.seen += added

    def add_values(self, values: np.ndarray, predicted: np.ndarray) -> None:
        """A regressor's examples (N, *shape) as clients sent them, with its predicted values (N, targets)."""
        self.add_values_views(feature_view(values, self.card), predicted)

    def add_values_views(self, pixels: np.ndarray, predicted: np.ndarray) -> None:
        """A regressor's examples already reduced to their feature views, with its predicted values."""
        predicted = np.asarray(predicted, dtype=np.float64).reshape(len(pixels), -1)
        n = added = len(pixels)
        if n > self.capacity:
            pixels, predicted = pixels[-self.capacity :], predicted[-self.capacity :]
            n = self.capacity
        rows = (self._next + np.arange(n)) % self.capacity
        self.images[rows] = pixels
        self.outputs[rows] = predicted
        self.times[rows] = time.time()
        self._next = (self._next + n) % self.capacity
        self.count = min(self.count + n, self.capacity)
        self.seen += added

    def _columns(self) -> tuple[str, ...]:
        """The ring buffers of one prediction each."""
        return ("images", "outputs", "times") if self.regression else ("images", "confidence", "predicted", "times")

    def rows(self) -> dict[str, np.ndarray]:
        """The window's rows as arrays (for another worker to merge), and how many predictions it ever saw."""
        n = self.count
        if self.regression:
            return {"images": self.images[:n], "outputs": self.outputs[:n], "times": self.times[:n], "seen": np.asarray(self.seen)}
        return {"images": self.images[:n], "confidence": self.confidence[:n], "predicted": self.predicted[:n], "times": self.times[:n], "seen": np.asarray(self.seen)}

    @classmethod
    def merged(cls, parts: list[dict[str, np.ndarray]], capacity: int, card: ModelCard) -> RollingWindow:
        """One window of the newest ``capacity`` rows of several windows' :meth:`rows` (several entry workers')."""
        window = cls(capacity, card)
        times = np.concatenate([part["times"] for part in parts])
        newest = np.argsort(times, kind="stable")[-capacity:]
        window.count = len(newest)
        for name in window._columns():
            getattr(window, name)[: window.count] = np.concatenate([part[name] for part in parts])[newest]
        window._next = window.count % capacity
        window.seen = int(sum(int(part["seen"]) for part in parts))
        return window

    def snapshot(self) -> WindowSnapshot:
        """The window's features: per-image means, pooled intensity counts, and a classifier's confidences
        and class counts, or a regressor's values of each input (a vector input's) and of each target."""
        means, histograms = image_features(self.images[: self.count], self.card)
        if self.regression:
            inputs = feature_names(self.card)
            return {
                "means": means,
                "intensity_counts": histograms.sum(axis=0) if histograms is not None else None,
                "inputs": [_finite(column) for column in self.images[: self.count].T] if inputs is not None else None,
                "outputs": [_finite(column) for column in self.outputs[: self.count].T],
            }
        return {
            "means": means,
            "intensity_counts": histograms.sum(axis=0) if histograms is not None else None,
            "confidence": self.confidence[: self.count].copy(),
            "class_counts": np.bincount(self.predicted[: self.count], minlength=self.classes),
        }


class WindowSnapshot(TypedDict):
    means: np.ndarray  # per image
    intensity_counts: np.ndarray | None  # pooled over the window; None when the card gives no value range
    confidence: NotRequired[np.ndarray]  # a classifier's
    class_counts: NotRequired[np.ndarray]
    inputs: NotRequired[list[np.ndarray] | None]  # a regressor's: each input's finite values (None: not tested one by one)
    outputs: NotRequired[list[np.ndarray]]  # a regressor's: each target's finite predicted values


def _finite(column: np.ndarray) -> np.ndarray:
    """A column's finite values, rounded as a regressor's reference stores them."""
    column = significant(column)
    return column[np.isfinite(column)]


def scipy_stats():
    """scipy.stats, imported on first use (half a second): scipy.sparse first, while no model.yaml is
    being read (models/store.py says why)."""
    store.import_module("scipy.sparse")
    from scipy import stats

    return stats


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), PSI_FLOOR)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def statistics(reference: dict, window: WindowSnapshot, thresholds: DriftThresholds) -> dict[str, dict]:
    """Each drift statistic of a window snapshot against the reference, with threshold and verdict
    (no intensity PSI for a model whose card gives no value range)."""
    if "outputs" in window:
        return regression_statistics(reference, window, thresholds)
    stats = scipy_stats()

    rows = _input_rows(reference, window, thresholds)
    ks_means = rows.pop("mean_intensity_ks")
    ks_confidence = stats.ks_2samp(np.round(window["confidence"], CONFIDENCE_DECIMALS), reference["confidence"]["values"], method="asymp")
    # A test of two samples (a 2 x classes contingency table), not goodness of fit against the
    # reference shares: the reference is a sample too, and treating it as exact inflates false alarms.
    counts = np.stack([window["class_counts"], np.rint(np.asarray(reference["classes"]["shares"]) * reference["images"])])
    counts = counts[:, counts.sum(axis=0) > 0]  # classes neither sample predicted carry no information
    chi2 = stats.chi2_contingency(counts, correction=False) if counts.shape[1] > 1 else _NO_TEST
    return {
        **rows,
        "mean_intensity_ks": ks_means,
        "confidence_ks": _test_row("ks_2samp", ks_confidence.statistic, ks_confidence.pvalue, thresholds),
        "predicted_class_chi2": _test_row("chi2_contingency", chi2.statistic, chi2.pvalue, thresholds),
    }


def _input_rows(reference: dict, window: WindowSnapshot, thresholds: DriftThresholds) -> dict[str, dict]:
    """The statistics of the inputs every model has: the intensity PSI (with a value range) and the KS
    test of the per-example means."""
    stats = scipy_stats()
    rows = {}
    if window["intensity_counts"] is not None and reference["intensity"]["shares"] is not None:
        counts = window["intensity_counts"]
        rows["intensity_psi"] = _psi_row(psi(reference["intensity"]["shares"], counts / max(counts.sum(), 1)), thresholds)
    # method="asymp": scipy's default picks the exact distribution up to 10,000 samples, which costs
    # tens of milliseconds per test; at these sample sizes the asymptotic one agrees with it.
    ks_means = stats.ks_2samp(np.round(window["means"], MEAN_DECIMALS), reference["intensity"]["mean_per_image"], method="asymp")
    rows["mean_intensity_ks"] = _test_row("ks_2samp", ks_means.statistic, ks_means.pvalue, thresholds)
    return rows


def regression_statistics(reference: dict, window: WindowSnapshot, thresholds: DriftThresholds) -> dict[str, dict]:
    """A regressor's statistics: its inputs' (as every model's), a KS test per input of a vector input and
    one per target of its predicted values, each family Bonferroni-adjusted."""
    rows = _input_rows(reference, window, thresholds)
    inputs, live = reference.get("inputs"), window.get("inputs")
    if inputs is not None and live is not None and len(inputs["names"]) == len(live):
        for index, row in _ks_family(live, inputs["values"], thresholds).items():
            rows[f"input_ks[{inputs['names'][index]}]"] = {**row, "input": inputs["names"][index]}
    targets = reference["targets"]["names"]
    for index, row in _ks_family(window["outputs"], reference["targets"]["values"], thresholds).items():
        rows[f"predicted_value_ks[{targets[index]}]"] = {**row, "target": targets[index]}
    return rows


def _ks_family(samples: list[np.ndarray], references: list[list[float]], thresholds: DriftThresholds) -> dict[int, dict]:
    """Two-sample KS tests of each sample against its reference, their p-values Bonferroni-adjusted for
    the family's size. A column with fewer than two finite values on either side has no test (p = 1)."""
    stats = scipy_stats()
    tests = len(samples)
    rows = {}
    for index, (sample, expected) in enumerate(zip(samples, references, strict=True)):
        test = stats.ks_2samp(sample, expected, method="asymp") if len(sample) >= 2 and len(expected) >= 2 else _NO_TEST
        p_value = float(test.pvalue) if np.isfinite(test.pvalue) else 1.0
        rows[index] = {**_test_row("ks_2samp", test.statistic, min(p_value * tests, 1.0), thresholds), "correction": {"method": "bonferroni", "tests": tests}}
    return rows


def drift_report(reference: dict, window: RollingWindow, thresholds: DriftThresholds) -> dict:
    """The drift verdict of a window: its size, every statistic and whether any drifted."""
    return report_of(reference, window.snapshot(), window.capacity, window.seen, thresholds)


def report_of(reference: dict, snapshot: WindowSnapshot, capacity: int, seen: int, thresholds: DriftThresholds) -> dict:
    """The drift verdict of a window's snapshot (one window's, or several replicas' pooled counts)."""
    if "outputs" in snapshot:
        return regression_report_of(reference, snapshot, capacity, seen, thresholds)
    size = int(snapshot["class_counts"].sum())
    enough = size >= thresholds.min_samples
    rows = statistics(reference, snapshot, thresholds) if size >= 2 else {}
    if not enough:
        for row in rows.values():
            row["drifted"] = False
    shares = np.asarray(snapshot["class_counts"] / max(size, 1))
    return {
        "window": {"size": size, "capacity": capacity, "min_samples": thresholds.min_samples, "predictions_seen": seen},
        "drifted": any(row["drifted"] for row in rows.values()),
        "verdict": "drift" if enough and any(r["drifted"] for r in rows.values()) else ("no drift" if enough else "too few predictions"),
        "statistics": rows,
        "class_shares": {"window": shares.round(4).tolist(), "reference": reference["classes"]["shares"]},
        "reference_images": reference["images"],
    }


def regression_report_of(reference: dict, snapshot: WindowSnapshot, capacity: int, seen: int, thresholds: DriftThresholds) -> dict:
    """A regressor's drift verdict, by the classifier's rules (no verdict under ``min_samples``), with
    each target's predicted values summarised in the window and the reference instead of class shares."""
    size = len(snapshot["means"])
    enough = size >= thresholds.min_samples
    rows = statistics(reference, snapshot, thresholds) if size >= 2 else {}
    if not enough:
        for row in rows.values():
            row["drifted"] = False
    targets = reference["targets"]
    return {
        "window": {"size": size, "capacity": capacity, "min_samples": thresholds.min_samples, "predictions_seen": seen},
        "drifted": any(row["drifted"] for row in rows.values()),
        "verdict": "drift" if enough and any(r["drifted"] for r in rows.values()) else ("no drift" if enough else "too few predictions"),
        "statistics": rows,
        "drifted_inputs": [row["input"] for row in rows.values() if "input" in row and row["drifted"]],
        "drifted_targets": [row["target"] for row in rows.values() if "target" in row and row["drifted"]],
        "predicted_values": {
            name: {"unit": unit, "window": _summary(live), "reference": _summary(np.asarray(expected, dtype=np.float64))}
            for name, unit, live, expected in zip(targets["names"], targets["units"], snapshot["outputs"], targets["values"], strict=True)
        },
        "reference_images": reference["images"],
    }


def _summary(values: np.ndarray) -> dict:
    """Mean and quantiles of a target's predicted values (None without any)."""
    if not len(values):
        return {"mean": None, "p10": None, "p50": None, "p90": None}
    p10, p50, p90 = np.quantile(values, (0.1, 0.5, 0.9))
    return {"mean": _rounded(values.mean()), "p10": _rounded(p10), "p50": _rounded(p50), "p90": _rounded(p90)}


def _rounded(value: float) -> float:
    return float(significant(np.asarray(value)))


def window_counts(window: RollingWindow, snapshot: WindowSnapshot | None = None) -> dict:
    """A window as histogram counts (JSON): each per-image mean and confidence rounded as the tests round
    them, with its count; the pooled intensity counts and the class counts (a regressor's: each input's
    and each target's values with their counts, instead of confidences and classes). Several replicas'
    counts add up (:func:`pooled_snapshot`), and the drift of the sum is the drift of their windows
    pooled. ``snapshot``: the window's, when taken already (it costs the features of every row)."""
    snapshot = snapshot if snapshot is not None else window.snapshot()
    if "outputs" in snapshot:
        return _regression_counts(window, snapshot)
    means = np.unique(np.round(snapshot["means"], MEAN_DECIMALS), return_counts=True)
    confidence = np.unique(np.round(snapshot["confidence"], CONFIDENCE_DECIMALS), return_counts=True)
    intensity = snapshot["intensity_counts"]
    return {
        "seen": window.seen,
        "means": [means[0].tolist(), means[1].tolist()],
        "confidence": [confidence[0].tolist(), confidence[1].tolist()],
        "intensity_counts": intensity.tolist() if intensity is not None else None,
        "class_counts": snapshot["class_counts"].tolist(),
    }


def _regression_counts(window: RollingWindow, snapshot: WindowSnapshot) -> dict:
    means = np.unique(np.round(snapshot["means"], MEAN_DECIMALS), return_counts=True)
    intensity = snapshot["intensity_counts"]
    inputs = snapshot.get("inputs")
    return {
        "seen": window.seen,
        "means": [means[0].tolist(), means[1].tolist()],
        "intensity_counts": intensity.tolist() if intensity is not None else None,
        "inputs": [_value_counts(column) for column in inputs] if inputs is not None else None,
        "outputs": [_value_counts(column) for column in snapshot["outputs"]],
    }


def _value_counts(column: np.ndarray) -> list[list]:
    values, counts = np.unique(column, return_counts=True)
    return [values.tolist(), counts.tolist()]


def _repeated(pair: list) -> np.ndarray:
    return np.repeat(np.asarray(pair[0], dtype=np.float64), np.asarray(pair[1], dtype=np.intp))


def _pooled_columns(parts: list[list[list]]) -> list[np.ndarray]:
    """Each column's values of several windows' [values, counts] per column, pooled."""
    return [np.concatenate([_repeated(pair) for pair in column]) for column in zip(*parts, strict=True)]


def pooled_snapshot(parts: list[dict]) -> WindowSnapshot:
    """One snapshot of several windows' :func:`window_counts`."""

    def values(field: str) -> np.ndarray:
        return np.concatenate([np.repeat(np.asarray(part[field][0], dtype=np.float64), part[field][1]) for part in parts])

    intensity = [part["intensity_counts"] for part in parts if part["intensity_counts"] is not None]
    if "outputs" in parts[0]:
        return {
            "means": values("means"),
            "intensity_counts": np.sum(intensity, axis=0) if intensity else None,
            "inputs": _pooled_columns([part["inputs"] for part in parts]) if all(part.get("inputs") is not None for part in parts) else None,
            "outputs": _pooled_columns([part["outputs"] for part in parts]),
        }
    return {
        "means": values("means"),
        "intensity_counts": np.sum(intensity, axis=0) if intensity else None,
        "confidence": values("confidence"),
        "class_counts": np.sum([part["class_counts"] for part in parts], axis=0),
    }


def _psi_row(value: float, thresholds: DriftThresholds) -> dict:
    return {"test": "psi", "value": round(value, 6), "threshold": thresholds.psi, "drifted": bool(value > thresholds.psi)}


def _test_row(test: str, statistic: float, p_value: float, thresholds: DriftThresholds) -> dict:
    p_value = float(p_value) if np.isfinite(p_value) else 1.0
    return {
        "test": test,
        "value": round(float(statistic), 6),
        "p_value": p_value,
        "threshold": {"p_value": thresholds.p_value},
        "drifted": bool(p_value < thresholds.p_value),
    }
