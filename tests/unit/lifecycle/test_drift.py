"""lifecycle/drift.py: the rolling window of live predictions against the reference, for grey, colour and
tensor cards."""

import json

import numpy as np
import pytest

from config import DriftThresholds
from lifecycle.drift import RollingWindow, drift_report, pooled_snapshot, psi, report_of, window_counts
from lifecycle.reference import build_reference, build_regression_reference
from lifecycle.slices import apply_shift
from tests.unit.cards import clothes_card, colour_card, regression_card, tensor_card
from training.recipes.clothes import RECIPE, load_data

CLOTHES = clothes_card()
STATISTICS = {"intensity_psi", "mean_intensity_ks", "confidence_ks", "predicted_class_chi2"}


def probabilities_for(labels: np.ndarray, classes: int = 10, seed: int = 0) -> np.ndarray:
    """A plausible classifier's output: mostly right, with varied confidence."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1, (len(labels), classes))
    logits[np.arange(len(labels)), labels] += 3.0
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    data = load_data(allow_download=False)
    return data.x_test[..., None], data.y_test  # (N, 28, 28, 1) uint8, as clients' images arrive


@pytest.fixture(scope="module")
def reference(data):
    x, y = data
    return build_reference(x[:5000], probabilities_for(y[:5000]), CLOTHES)


def window_of(images, probabilities, card=CLOTHES, capacity=1000):
    window = RollingWindow(capacity, card)
    window.add(np.asarray(images), probabilities.max(axis=1), probabilities.argmax(axis=1))
    return window


def test_rolling_window_keeps_only_the_latest():
    window = RollingWindow(5, CLOTHES)
    for value in range(8):
        window.add(np.full((1, 28, 28, 1), value, dtype=np.uint8), np.array([0.5]), np.array([value % 10]))
    assert window.count == 5 and window.seen == 8
    assert sorted(window.snapshot()["means"]) == [3, 4, 5, 6, 7]
    window.add(np.zeros((12, 28, 28, 1), dtype=np.uint8), np.full(12, 0.9), np.zeros(12, dtype=int))  # larger than the window
    assert window.count == 5 and window.seen == 20 and window.snapshot()["class_counts"][0] == 5


def test_the_window_takes_float_json_values_and_grey_images_without_a_channel_axis():
    window = RollingWindow(10, CLOTHES)
    window.add(np.full((2, 28, 28), 17.5, dtype=np.float32), np.array([0.5, 0.6]), np.array([1, 2]))
    window.add(np.full((1, 28, 28, 1), 300.0, dtype=np.float32), np.array([0.5]), np.array([3]))  # clipped, never wrapped
    assert window.snapshot()["means"].tolist() == [17.0, 17.0, 255.0]


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift():
    base = np.full(10, 0.1)
    assert psi(base, base) == pytest.approx(0.0)
    small, large = psi(base, [0.12, 0.08] + [0.1] * 8), psi(base, [0.5, 0.0] + [0.0625] * 8)
    assert 0 < small < 0.02 < 0.2 < large


def test_clean_held_out_images_raise_no_drift(data, reference):
    x, y = data
    report = drift_report(reference, window_of(x[5000:6000], probabilities_for(y[5000:6000], seed=1)), DriftThresholds())
    assert report["verdict"] == "no drift" and not report["drifted"], report["statistics"]
    assert set(report["statistics"]) == STATISTICS


@pytest.mark.parametrize("shift", ["inverted", "brightness", "occlusion"])
def test_shifted_images_raise_drift(data, reference, shift):
    x, y = data
    images = apply_shift(RECIPE.shifts[shift], x[5000:6000])
    report = drift_report(reference, window_of(images, probabilities_for(y[5000:6000], seed=1)), DriftThresholds())
    assert report["drifted"] and report["verdict"] == "drift"
    assert report["statistics"]["mean_intensity_ks"]["drifted"]


def test_a_changed_class_mix_is_drift_of_the_predictions(data, reference):
    x, _ = data
    report = drift_report(reference, window_of(x[5000:6000], probabilities_for(np.full(1000, 3))), DriftThresholds())  # every one a dress
    assert report["statistics"]["predicted_class_chi2"]["drifted"] and report["drifted"]
    assert report["class_shares"]["window"][3] > 0.9


def test_an_empty_window_has_no_verdict(reference):
    report = drift_report(reference, RollingWindow(1000, CLOTHES), DriftThresholds())
    assert report["verdict"] == "too few predictions" and report["statistics"] == {} and report["window"]["size"] == 0


def test_no_verdict_below_min_samples(data, reference):
    x, y = data
    images = apply_shift(RECIPE.shifts["inverted"], x[:50])
    report = drift_report(reference, window_of(images, probabilities_for(y[:50])), DriftThresholds(min_samples=200))
    assert report["verdict"] == "too few predictions" and not report["drifted"]
    assert report["window"] == {"size": 50, "capacity": 1000, "min_samples": 200, "predictions_seen": 50}


def test_confident_predictions_match_their_rounded_reference(data):
    """The reference stores confidences to 5 decimals; live ones just below 1.0 must not look drifted."""
    x, y = data
    probabilities = np.full((2000, 10), 0.4e-6)
    probabilities[np.arange(2000), y[:2000]] = 1 - 3.6e-6  # 0.9999964: rounds to 1.0 in the reference
    reference = build_reference(x[:2000], probabilities, CLOTHES)
    report = drift_report(reference, window_of(x[:1000], probabilities[:1000]), DriftThresholds())
    assert not report["statistics"]["confidence_ks"]["drifted"], report["statistics"]["confidence_ks"]


def test_colour_images_drift_when_inverted():
    card = colour_card()
    rng = np.random.default_rng(2)

    def scenes(n):  # dark backgrounds with a bright blob of a random colour
        images = rng.integers(0, 40, (n, 32, 32, 3)).astype(np.uint8)
        images[:, 8:24, 8:24] = rng.integers(150, 256, (n, 1, 1, 3))
        return images

    labels = rng.integers(0, 3, 2000)
    reference = build_reference(scenes(1000), probabilities_for(labels[:1000], 3), card)
    assert len(reference["intensity"]["shares"]) == 16 and len(reference["pixels"]["mean"]) == 32
    clean = drift_report(reference, window_of(scenes(500), probabilities_for(labels[1000:1500], 3, seed=1), card), DriftThresholds())
    assert clean["verdict"] == "no drift", clean["statistics"]
    inverted = 255 - scenes(500)
    drifted = drift_report(reference, window_of(inverted, probabilities_for(labels[1500:], 3, seed=2), card), DriftThresholds())
    assert drifted["verdict"] == "drift" and drifted["statistics"]["intensity_psi"]["drifted"]


def test_a_tensor_card_without_a_range_has_no_intensity_psi():
    card = tensor_card()
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 2000)
    reference = build_reference(rng.normal(0, 1, (1000, 4)), probabilities_for(labels[:1000], 3), card)
    assert reference["intensity"]["shares"] is None
    clean = drift_report(reference, window_of(rng.normal(0, 1, (500, 4)).astype(np.float32), probabilities_for(labels[1000:1500], 3, seed=1), card), DriftThresholds())
    assert set(clean["statistics"]) == STATISTICS - {"intensity_psi"} and clean["verdict"] == "no drift"
    moved = drift_report(reference, window_of(rng.normal(3, 1, (500, 4)).astype(np.float32), probabilities_for(labels[1500:], 3, seed=2), card), DriftThresholds())
    assert moved["statistics"]["mean_intensity_ks"]["drifted"] and moved["verdict"] == "drift"


@pytest.mark.parametrize("shift", [None, "inverted"])
def test_replicas_counts_pooled_give_the_drift_of_their_windows_pooled(data, reference, shift):
    """The fleet's drift (GET /fleet) from each replica's exported counts equals the drift of one window
    holding every replica's predictions."""
    x, y = data
    images = apply_shift(RECIPE.shifts[shift], x[5000:5900]) if shift else x[5000:5900]
    probabilities = probabilities_for(y[5000:5900], seed=3)
    parts = [window_of(images[i::3], probabilities[i::3]) for i in range(3)]  # three replicas' windows
    counts = [json.loads(json.dumps(window_counts(window))) for window in parts]  # as they travel through the backend
    pooled = report_of(reference, pooled_snapshot(counts), 3000, 900, DriftThresholds())
    whole = drift_report(reference, window_of(images, probabilities), DriftThresholds())
    assert pooled["window"]["size"] == whole["window"]["size"] == 900
    assert pooled["verdict"] == whole["verdict"] == ("drift" if shift else "no drift")
    for name, row in whole["statistics"].items():
        assert pooled["statistics"][name]["value"] == pytest.approx(row["value"], abs=1e-6), name
        if "p_value" in row:
            assert pooled["statistics"][name]["p_value"] == pytest.approx(row["p_value"], rel=1e-6, abs=1e-300), name


# --- a regressor: its inputs one by one and its predicted values per target --------------------------------

HOUSE = regression_card()
WEIGHTS = np.array([[40_000.0, 2.0], [-1_000.0, 0.5], [-5_000.0, -1.0], [60_000.0, 0.1]])


def house_inputs(n: int, seed: int, shift: dict[int, float] | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.normal([3, 30, 5, 4], [1, 10, 2, 1.5], (n, 4))
    for column, by in (shift or {}).items():
        values[:, column] += by
    return values.astype(np.float32)


def house_model(values: np.ndarray) -> np.ndarray:
    return (values.astype(np.float64) @ WEIGHTS + [100_000, 20]).astype(np.float32)  # (N, price and area), as a runner answers


@pytest.fixture(scope="module")
def house_reference():
    values = house_inputs(2000, seed=10)
    return json.loads(json.dumps(build_regression_reference(values, house_model(values), HOUSE)))  # as stored and read back


def house_window(values, predicted=None, capacity=1000):
    window = RollingWindow(capacity, HOUSE)
    window.add_values(values, house_model(values) if predicted is None else predicted)
    return window


def test_a_regressors_clean_traffic_raises_no_drift(house_reference):
    report = drift_report(house_reference, house_window(house_inputs(1000, seed=11)), DriftThresholds())
    assert report["verdict"] == "no drift" and not report["drifted"], report["statistics"]
    assert list(report["statistics"]) == [
        "mean_intensity_ks",
        *(f"input_ks[{name}]" for name in HOUSE.input.names),
        "predicted_value_ks[price]",
        "predicted_value_ks[area]",
    ]
    assert "class_shares" not in report and "confidence_ks" not in report["statistics"]
    assert report["drifted_inputs"] == [] and report["drifted_targets"] == []
    price = report["statistics"]["predicted_value_ks[price]"]
    assert price["target"] == "price" and price["test"] == "ks_2samp" and price["correction"] == {"method": "bonferroni", "tests": 2}
    assert report["statistics"]["input_ks[age]"]["input"] == "age"
    assert set(report["predicted_values"]) == {"price", "area"} and report["predicted_values"]["price"]["unit"] == "USD"
    assert report["predicted_values"]["price"]["window"]["mean"] == pytest.approx(report["predicted_values"]["price"]["reference"]["mean"], rel=0.05)
    assert report["reference_images"] == 2000 and report["window"] == {"size": 1000, "capacity": 1000, "min_samples": 200, "predictions_seen": 1000}


def test_a_shifted_input_is_named_and_so_is_the_target_it_moves(house_reference):
    report = drift_report(house_reference, house_window(house_inputs(1000, seed=12, shift={3: 1.5})), DriftThresholds())  # income up
    assert report["verdict"] == "drift" and report["drifted"]
    assert report["drifted_inputs"] == ["income"] and report["drifted_targets"] == ["price"]  # area barely depends on income
    assert report["statistics"]["input_ks[income]"]["p_value"] < 1e-10


def test_predicted_values_drift_alone_when_the_model_answers_otherwise(house_reference):
    """Inputs as in the reference, answers moved (a changed model, a broken feature pipeline inside it)."""
    values = house_inputs(1000, seed=13)
    report = drift_report(house_reference, house_window(values, house_model(values) * [1.0, 1.3]), DriftThresholds())
    assert report["drifted_inputs"] == [] and report["drifted_targets"] == ["area"] and report["verdict"] == "drift"


def test_each_familys_p_values_are_bonferroni_adjusted(house_reference):
    """The per-input and per-target KS p-values are scipy's times the tests of their family, at most 1."""
    from scipy import stats

    from lifecycle.reference import significant

    values = house_inputs(600, seed=14, shift={1: 2.0})
    report = drift_report(house_reference, house_window(values), DriftThresholds())
    raw = stats.ks_2samp(significant(values[:, 1]), house_reference["inputs"]["values"][1], method="asymp").pvalue
    assert report["statistics"]["input_ks[age]"]["p_value"] == pytest.approx(min(raw * 4, 1.0), rel=1e-9)
    raw = stats.ks_2samp(significant(house_model(values)[:, 0]), house_reference["targets"]["values"][0], method="asymp").pvalue
    assert report["statistics"]["predicted_value_ks[price]"]["p_value"] == pytest.approx(min(raw * 2, 1.0), rel=1e-9)


def test_a_regressors_window_below_min_samples_has_no_verdict(house_reference):
    report = drift_report(house_reference, house_window(house_inputs(50, seed=15, shift={0: 5})), DriftThresholds())
    assert report["verdict"] == "too few predictions" and not report["drifted"] and report["drifted_inputs"] == []
    assert drift_report(house_reference, RollingWindow(1000, HOUSE), DriftThresholds())["statistics"] == {}


def test_a_regressors_non_finite_answers_are_left_out(house_reference):
    values = house_inputs(400, seed=16)
    predicted = house_model(values)
    predicted[:100, 1] = np.nan
    predicted[100:110, 1] = np.inf
    report = drift_report(house_reference, house_window(values, predicted), DriftThresholds())
    assert report["verdict"] == "no drift", report["statistics"]
    assert report["predicted_values"]["area"]["window"]["mean"] is not None


@pytest.mark.parametrize("shift", [None, {3: 1.5}])
def test_a_regressors_replica_counts_pooled_give_the_drift_of_their_windows_pooled(house_reference, shift):
    values = house_inputs(900, seed=17, shift=shift)
    parts = [house_window(values[i::3], capacity=300) for i in range(3)]
    counts = [json.loads(json.dumps(window_counts(window))) for window in parts]  # as the replicas' reports carry them
    pooled = report_of(house_reference, pooled_snapshot(counts), 900, 900, DriftThresholds())
    whole = drift_report(house_reference, house_window(values, capacity=900), DriftThresholds())
    assert pooled["statistics"] == whole["statistics"] and pooled["verdict"] == whole["verdict"]
    assert pooled["drifted_inputs"] == (["income"] if shift else [])


def test_a_regressors_windows_of_several_workers_merge(house_reference):
    first, second = RollingWindow(4, HOUSE), RollingWindow(4, HOUSE)
    values = house_inputs(6, seed=18)
    for i in range(6):
        (first if i % 2 == 0 else second).add_values(values[i : i + 1], np.array([[i, -i]]))
    merged = RollingWindow.merged([first.rows(), second.rows()], 4, HOUSE)
    assert merged.count == 4 and merged.seen == 6
    assert sorted(merged.outputs[:4, 0].tolist()) == [2, 3, 4, 5] and set(first.rows()) == {"images", "outputs", "times", "seen"}


def test_an_image_regressor_has_no_per_input_tests():
    card = regression_card(names=None, targets=("age:years",)).model_copy(
        update={"input": clothes_card().input, "preprocessing": clothes_card().preprocessing, "task": "regression"}
    )
    rng = np.random.default_rng(19)
    images = rng.integers(0, 200, (600, 28, 28, 1)).astype(np.uint8)
    ages = images.reshape(600, -1).mean(axis=1, keepdims=True) / 3
    reference = build_regression_reference(images[:400], ages[:400], card)
    assert "inputs" not in reference
    window = RollingWindow(1000, card)
    window.add_values(images[400:], ages[400:])
    report = drift_report(reference, window, DriftThresholds(min_samples=100))
    assert list(report["statistics"]) == ["intensity_psi", "mean_intensity_ks", "predicted_value_ks[age]"] and report["verdict"] == "no drift"
