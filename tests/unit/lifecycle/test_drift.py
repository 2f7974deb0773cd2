import numpy as np
import pytest

from lifecycle.drift import RollingWindow, Thresholds, drift_report, psi
from lifecycle.reference import INTENSITY_BINS, build_reference, image_features
from lifecycle.slices import apply_shift
from models.data import load_fashion_mnist


def probabilities_for(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """A plausible classifier's output: mostly right, with varied confidence."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1, (len(labels), 10))
    logits[np.arange(len(labels)), labels] += 3.0
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    return load_fashion_mnist(allow_download=False)


@pytest.fixture(scope="module")
def reference(data):
    return build_reference(data.x_test[:5000], probabilities_for(data.y_test[:5000]))


def window_of(images, probabilities, capacity=1000):
    window = RollingWindow(capacity)
    window.add(np.asarray(images, dtype=np.float32), probabilities.max(axis=1), probabilities.argmax(axis=1))
    return window


def test_image_features_match_numpy(data):
    images = data.x_test[:50].astype(np.float32)
    means, histograms = image_features(images)
    np.testing.assert_allclose(means, images.reshape(50, -1).mean(axis=1))
    for image, row in zip(images, histograms):
        np.testing.assert_array_equal(row, np.histogram(image, bins=INTENSITY_BINS, range=(0, 256))[0])


def test_rolling_window_keeps_only_the_latest():
    window = RollingWindow(5)
    for value in range(8):
        pixels = np.full((1, 28, 28), value, dtype=np.float32)
        window.add(pixels, np.array([0.5]), np.array([value % 10]))
    assert window.count == 5 and window.seen == 8
    assert sorted(window.snapshot()["means"]) == [3, 4, 5, 6, 7]
    window.add(np.zeros((12, 28, 28), dtype=np.float32), np.full(12, 0.9), np.zeros(12, dtype=int))  # larger than the window
    assert window.count == 5 and window.seen == 20 and window.snapshot()["class_counts"][0] == 5


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift():
    base = np.full(10, 0.1)
    assert psi(base, base) == pytest.approx(0.0)
    small, large = psi(base, [0.12, 0.08] + [0.1] * 8), psi(base, [0.5, 0.0] + [0.0625] * 8)
    assert 0 < small < 0.02 < 0.2 < large


def test_clean_held_out_images_raise_no_drift(data, reference):
    labels = data.y_test[5000:6000]
    report = drift_report(reference, window_of(data.x_test[5000:6000], probabilities_for(labels, seed=1)), Thresholds())
    assert report["verdict"] == "no drift" and not report["drifted"], report["statistics"]
    assert set(report["statistics"]) == {"intensity_psi", "mean_intensity_ks", "confidence_ks", "predicted_class_chi2"}


@pytest.mark.parametrize("shift", ["inverted", "brightness", "occlusion"])
def test_shifted_images_raise_drift(data, reference, shift):
    labels = data.y_test[5000:6000]
    images = apply_shift(shift, data.x_test[5000:6000])
    report = drift_report(reference, window_of(images, probabilities_for(labels, seed=1)), Thresholds())
    assert report["drifted"] and report["verdict"] == "drift"
    assert report["statistics"]["mean_intensity_ks"]["drifted"]


def test_a_changed_class_mix_is_drift_of_the_predictions(data, reference):
    labels = np.full(1000, 3)  # every prediction a dress
    report = drift_report(reference, window_of(data.x_test[5000:6000], probabilities_for(labels)), Thresholds())
    assert report["statistics"]["predicted_class_chi2"]["drifted"] and report["drifted"]


def test_an_empty_window_has_no_verdict(reference):
    report = drift_report(reference, RollingWindow(1000), Thresholds())
    assert report["verdict"] == "too few predictions" and report["statistics"] == {} and report["window"]["size"] == 0


def test_no_verdict_below_min_samples(data, reference):
    images = apply_shift("inverted", data.x_test[:50])
    report = drift_report(reference, window_of(images, probabilities_for(data.y_test[:50])), Thresholds(min_samples=200))
    assert report["verdict"] == "too few predictions" and not report["drifted"]
    assert report["window"] == {"size": 50, "capacity": 1000, "min_samples": 200, "predictions_seen": 50}


def test_confident_predictions_match_their_rounded_reference(data):
    """The reference stores confidences to 5 decimals; live ones just below 1.0 must not look drifted."""
    labels = data.y_test[:2000]
    probabilities = np.full((2000, 10), 0.4e-6)
    probabilities[np.arange(2000), labels] = 1 - 3.6e-6  # 0.9999964: rounds to 1.0 in the reference
    reference = build_reference(data.x_test[:2000], probabilities)
    report = drift_report(reference, window_of(data.x_test[:1000], probabilities[:1000]), Thresholds())
    assert not report["statistics"]["confidence_ks"]["drifted"], report["statistics"]["confidence_ks"]
