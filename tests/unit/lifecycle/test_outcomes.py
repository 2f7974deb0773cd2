"""Live accuracy statistics (lifecycle/outcomes.py) against scipy and sklearn computed apart."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, recall_score

from lifecycle.outcomes import calibration, calibration_of, live_report, proportion

LABELS = ("a", "b", "c")


def rows(label, predicted, confidence=None, times=None, alias=None, slices=None):
    n = len(label)
    return {
        "label": np.asarray(label),
        "predicted": np.asarray(predicted),
        "confidence": np.asarray(confidence if confidence is not None else [0.9] * n, dtype=float),
        "time": np.asarray(times if times is not None else [1000.0] * n, dtype=float),
        "alias": np.asarray(alias if alias is not None else [""] * n, dtype=object),
        "slice": np.asarray(slices if slices is not None else [""] * n, dtype=object),
    }


def test_accuracy_and_recall_equal_sklearn_with_wilson_intervals():
    rng = np.random.default_rng(0)
    label = rng.integers(0, 3, 500)
    predicted = np.where(rng.random(500) < 0.8, label, rng.integers(0, 3, 500))
    report = live_report(rows(label, predicted), LABELS, 60)
    assert report["accuracy"]["value"] == pytest.approx(accuracy_score(label, predicted), abs=1e-6)
    interval = stats.binomtest(int((label == predicted).sum()), 500).proportion_ci(method="wilson")
    assert (report["accuracy"]["low"], report["accuracy"]["high"]) == pytest.approx((interval.low, interval.high), abs=1e-6)
    assert report["accuracy"]["low"] < report["accuracy"]["value"] < report["accuracy"]["high"]
    recalls = recall_score(label, predicted, average=None)
    assert [c["recall"] for c in report["classes"]] == pytest.approx(recalls, abs=1e-6)
    assert sum(c["examples"] for c in report["classes"]) == 500


def test_no_examples_give_no_values():
    report = live_report(rows([], []), LABELS, 60)
    assert report["accuracy"] == {"value": None, "low": None, "high": None, "examples": 0, "correct": 0}
    assert report["calibration"] == {"ece": None, "bins": []} and report["series"] == [] and report["first"] is None
    assert proportion(0, 0)["value"] is None


def test_calibration_error_of_a_perfectly_and_a_badly_calibrated_model():
    confidence = np.full(1000, 0.75)
    correct = np.arange(1000) < 750
    assert calibration(confidence, correct)["ece"] == pytest.approx(0.0, abs=1e-9)
    overconfident = calibration(np.full(1000, 0.95), np.arange(1000) < 500)
    assert overconfident["ece"] == pytest.approx(0.45, abs=1e-9)
    assert overconfident["bins"] == [{"low": 0.9, "high": 1.0, "examples": 1000, "confidence": 0.95, "accuracy": 0.5}]


def test_aliases_slices_and_series_split_the_same_examples():
    label = [0, 0, 1, 1, 2, 2]
    predicted = [0, 1, 1, 1, 2, 0]
    report = live_report(
        rows(label, predicted, times=[0, 10, 59, 60, 61, 200], alias=["stable", "stable", "", "latest", "latest", ""], slices=["night", "", "night", "", "", ""]),
        LABELS,
        60,
    )
    assert report["aliases"]["stable"]["value"] == 0.5 and report["aliases"]["latest"]["value"] == 1.0
    assert set(report["aliases"]) == {"stable", "latest"} and set(report["slices"]) == {"night"}
    assert report["slices"]["night"]["examples"] == 2 and report["slices"]["night"]["correct"] == 2
    assert [(p["start"], p["examples"], p["correct"]) for p in report["series"]] == [(0.0, 3, 2), (60.0, 2, 2), (180.0, 1, 0)]


@pytest.mark.parametrize(("correct", "examples"), [(0, 1), (1, 1), (7, 10), (990, 1000), (0, 50), (50, 50), (1234, 5000)])
def test_the_wilson_interval_equals_scipys(correct, examples):
    interval = stats.binomtest(correct, examples).proportion_ci(method="wilson")
    found = proportion(correct, examples)
    assert (found["low"], found["high"]) == pytest.approx((interval.low, interval.high), abs=2e-6)


def test_calibration_from_bin_sums_equals_calibration_from_rows():
    rng = np.random.default_rng(3)
    confidence = rng.random(2000)
    correct = rng.random(2000) < confidence
    which = np.minimum((confidence * 10).astype(int), 9)
    sums = [(b, int((which == b).sum()), float(confidence[which == b].sum()), int(correct[which == b].sum())) for b in range(10) if (which == b).any()]
    from_sums, from_rows = calibration_of(sums), calibration(confidence, correct)
    assert from_sums["ece"] == pytest.approx(from_rows["ece"], abs=1e-6)
    assert [(b["low"], b["examples"]) for b in from_sums["bins"]] == [(b["low"], b["examples"]) for b in from_rows["bins"]]
    assert [b["accuracy"] for b in from_sums["bins"]] == pytest.approx([b["accuracy"] for b in from_rows["bins"]], abs=1e-6)


def test_a_regressors_live_error_per_target_alias_and_slice():
    from lifecycle.outcomes import regression_report

    rng = np.random.default_rng(0)
    n = 400
    truth = rng.normal(0, 1, (n, 2))
    predicted = truth + rng.normal(0.5, 1, (n, 2))
    rows = {
        "target": np.tile([0, 1], n),
        "truth": truth.reshape(-1),
        "predicted": predicted.reshape(-1),
        "time": np.repeat(np.arange(n) * 1.0, 2),
        "alias": np.repeat(np.where(np.arange(n) < 100, "canary", ""), 2).astype(object),
        "slice": np.repeat(np.full(n, ""), 2).astype(object),
    }
    report = regression_report(rows, [{"name": "price", "unit": "USD"}, {"name": "area", "unit": None}], series_seconds=100)
    error = predicted - truth
    price = report["targets"][0]
    assert report["examples"] == n and price["name"] == "price" and price["unit"] == "USD" and price["examples"] == n
    assert price["mae"]["value"] == pytest.approx(np.abs(error[:, 0]).mean(), abs=1e-6)
    assert price["rmse"]["value"] == pytest.approx(np.sqrt((error[:, 0] ** 2).mean()), abs=1e-6)
    assert price["bias"] == pytest.approx(error[:, 0].mean(), abs=1e-6)
    assert price["mae"]["low"] < price["mae"]["value"] < price["mae"]["high"] and price["rmse"]["low"] < price["rmse"]["value"] < price["rmse"]["high"]
    assert set(report["aliases"]) == {"canary"} and report["aliases"]["canary"]["area"]["examples"] == 100 and report["slices"] == {}
    assert [point["examples"] for point in report["series"]] == [100] * 4 and set(report["series"][0]["mae"]) == {"price", "area"}
    empty = regression_report({key: value[:0] for key, value in rows.items()}, [{"name": "price", "unit": None}], 60)
    assert empty["examples"] == 0 and empty["targets"][0]["mae"] == {"value": None, "low": None, "high": None} and empty["series"] == []


def test_a_live_mae_interval_never_goes_below_zero():
    from lifecycle.outcomes import errors

    skewed = errors(np.zeros(5), np.array([0.0, 0.0, 0.0, 0.0, 100.0]))
    assert skewed["mae"]["value"] == 20.0 and skewed["mae"]["low"] == 0.0 and skewed["mae"]["high"] > 20.0
