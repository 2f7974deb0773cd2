"""lifecycle/reference.py: the feature view and statistics that training and serving share."""

import numpy as np
import pytest

from lifecycle.reference import INTENSITY_BINS, build_reference, feature_view, image_features, view_grid
from tests.unit.cards import clothes_card, colour_card, make_card, tensor_card


def test_image_features_match_numpy():
    card = clothes_card()
    images = np.random.default_rng(0).integers(0, 256, (50, 28, 28, 1)).astype(np.uint8)
    means, histograms = image_features(feature_view(images, card), card)
    np.testing.assert_allclose(means, images.reshape(50, -1).mean(axis=1))
    for image, row in zip(images, histograms, strict=True):
        np.testing.assert_array_equal(row, np.histogram(image, bins=INTENSITY_BINS, range=(0, 256))[0])


def test_small_images_are_viewed_whole_and_large_ones_on_a_32x32_grid():
    card = colour_card()
    images = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3)).astype(np.uint8)
    np.testing.assert_array_equal(feature_view(images, card), images.reshape(3, -1))
    assert view_grid(card) == (32, 32, 3) and view_grid(clothes_card()) == (28, 28, 1)
    large = make_card("large", "v1", card.input.model_copy(update={"shape": (128, 96, 3)}), card.preprocessing, card.output)
    images = np.random.default_rng(2).integers(0, 256, (2, 128, 96, 3)).astype(np.uint8)
    view = feature_view(images, large)
    assert view_grid(large) == (32, 24, 3) and view.shape == (2, 32 * 24 * 3) and view.dtype == np.uint8
    np.testing.assert_array_equal(view.reshape(2, 32, 24, 3), images[:, ::4, ::4])


def test_float_values_are_clipped_to_levels_in_the_view():
    view = feature_view(np.array([[[[-5.0]] * 28] * 28, [[[300.5]] * 28] * 28], dtype=np.float32), clothes_card())
    assert view.dtype == np.uint8 and view[0].max() == 0 and view[1].min() == 255


def test_a_tensor_view_samples_at_most_1024_values():
    card = tensor_card()
    values = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(feature_view(values, card), values)
    long = make_card("long", "v1", card.input.model_copy(update={"shape": (3000,)}), None, card.output)
    assert feature_view(np.zeros((2, 3000), np.float32), long).shape == (2, 1000)
    means, histograms = image_features(feature_view(values, card), card)
    assert histograms is None and means.tolist() == [1.5, 5.5]


def test_build_reference():
    card = colour_card()
    rng = np.random.default_rng(4)
    values = rng.integers(0, 256, (20, 32, 32, 3)).astype(np.uint8)
    probabilities = rng.dirichlet(np.ones(3), 20)
    reference = build_reference(values, probabilities, card)
    assert reference["images"] == 20 and reference["classes"]["names"] == list(card.labels)
    assert sum(reference["intensity"]["shares"]) == pytest.approx(1, abs=1e-5) and len(reference["intensity"]["mean_per_image"]) == 20
    assert np.asarray(reference["pixels"]["mean"]).shape == (32, 32, 3)
    np.testing.assert_allclose(reference["pixels"]["mean"], (values.mean(axis=0) / 255).round(4))
    assert reference["classes"]["shares"] == pytest.approx(np.bincount(probabilities.argmax(axis=1), minlength=3) / 20)
    assert reference["confidence"]["values"] == pytest.approx(probabilities.max(axis=1), abs=1e-5)


@pytest.mark.parametrize("value_range", [(0.0, 1.0), (-1.0, 1.0)])
def test_images_of_another_range_are_mapped_onto_the_levels_not_clipped(value_range):
    """An image model taking 0..1 or -1..1 values: clipping them to 0..255 and truncating to uint8 left
    two levels (0 and 1) of 256, so brightness and contrast could not move a statistic. They are mapped
    linearly onto 0..255 instead, and the intensity histogram is taken over those levels."""
    low, high = value_range
    card = clothes_card(name="unit-range").model_copy(update={"input": clothes_card().input.model_copy(update={"value_range": value_range, "divide_by": None})})
    levels = np.random.default_rng(5).integers(0, 256, (40, 28, 28, 1))
    values = (low + levels / 255 * (high - low)).astype(np.float32)  # the same images in the card's range
    view = feature_view(values, card)
    assert view.dtype == np.uint8
    np.testing.assert_array_equal(view, levels.reshape(40, -1))  # every level kept, exactly
    means, histograms = image_features(view, card)
    np.testing.assert_allclose(means, levels.reshape(40, -1).mean(axis=1))
    for image, row in zip(levels, histograms, strict=True):
        np.testing.assert_array_equal(row, np.histogram(image, bins=INTENSITY_BINS, range=(0, 256))[0])
    outside = feature_view(np.array([[[[low - 5]] * 28] * 28, [[[high + 5]] * 28] * 28], dtype=np.float32), card)
    assert outside[0].max() == 0 and outside[1].min() == 255  # out of range: clipped to the end levels


def test_a_range_of_0_to_1_drifts_when_brightened_and_not_when_clean():
    """The drift statistics of a 0..1 image model move with its images (before the fix every view was
    0s and 1s: a brightening by 0.2 left the mean-intensity KS and the PSI blind)."""
    from config import DriftThresholds
    from lifecycle.drift import RollingWindow, drift_report

    card = clothes_card(name="unit-unit").model_copy(update={"input": clothes_card().input.model_copy(update={"value_range": (0.0, 1.0), "divide_by": None})})
    rng = np.random.default_rng(6)

    def images(n):
        return np.clip(rng.beta(2, 5, (n, 28, 28, 1)), 0, 1).astype(np.float32)

    probabilities = rng.dirichlet(np.ones(10), 1500)
    reference = build_reference(images(1000), probabilities[:1000], card)
    assert len([s for s in reference["intensity"]["shares"] if s > 0.01]) >= 6  # the levels spread over the bins

    def report(values):
        window = RollingWindow(500, card)
        window.add(values, probabilities[1000:].max(axis=1), probabilities[1000:].argmax(axis=1))
        return drift_report(reference, window, DriftThresholds())

    clean = report(images(500))
    assert clean["verdict"] == "no drift", clean["statistics"]
    bright = report(np.clip(images(500) + 0.2, 0, 1))
    assert bright["statistics"]["mean_intensity_ks"]["drifted"] and bright["statistics"]["intensity_psi"]["drifted"]


def test_build_regression_reference():
    from lifecycle.reference import MAX_REFERENCE_SAMPLE, build_regression_reference, significant
    from tests.unit.cards import regression_card

    card = regression_card()
    rng = np.random.default_rng(7)
    values = (rng.normal(0, 1, (3000, 4)) * [1, 10, 1000, 1e-3]).astype(np.float32)
    predicted = np.stack([values[:, 0] * 100_000 + 250_000, values[:, 1] + 80], axis=1)
    predicted[5, 1] = np.nan  # a non-finite answer is left out
    reference = build_regression_reference(values, predicted, card)
    assert list(reference) == ["images", "intensity", "pixels", "inputs", "targets"] and "classes" not in reference
    assert reference["images"] == 3000 and reference["intensity"]["shares"] is None and len(reference["intensity"]["mean_per_image"]) == 3000
    assert reference["inputs"]["names"] == ["rooms", "age", "distance", "income"]
    assert [len(column) for column in reference["inputs"]["values"]] == [MAX_REFERENCE_SAMPLE] * 4  # evenly spaced rows
    np.testing.assert_allclose(reference["inputs"]["values"][3], significant(values[:, 3][np.linspace(0, 2999, MAX_REFERENCE_SAMPLE).round().astype(int)]), rtol=1e-12)
    assert reference["targets"]["names"] == ["price", "area"] and reference["targets"]["units"] == ["USD", "m2"]
    assert len(reference["targets"]["values"][0]) == 3000 and len(reference["targets"]["values"][1]) == 2999
    np.testing.assert_allclose(reference["targets"]["values"][0], predicted[:, 0], rtol=5e-6)  # six significant digits
    unnamed = build_regression_reference(values[:10], predicted[:10], regression_card(names=None))
    assert unnamed["inputs"]["names"] == ["x[0]", "x[1]", "x[2]", "x[3]"]
    with pytest.raises(ValueError, match="3 predicted values per example for 2 targets"):
        build_regression_reference(values[:10], np.zeros((10, 3)), card)


def test_significant_digits():
    from lifecycle.reference import significant

    np.testing.assert_array_equal(
        significant(np.array([123456789.0, 0.000123456789, -2.5, 0.0, np.inf, np.nan, 1e-310])), [123457000.0, 0.000123457, -2.5, 0.0, np.inf, np.nan, 1e-310]
    )


def test_only_a_short_vector_input_is_tested_input_by_input():
    from lifecycle.reference import MAX_FEATURE_TESTS, feature_names
    from tests.unit.cards import regression_card

    assert feature_names(regression_card(names=("a", "b"))) == ("a", "b")
    assert feature_names(regression_card(names=None)) == ("x[0]", "x[1]", "x[2]", "x[3]")
    long = regression_card(names=None).model_copy(update={"input": regression_card(names=None).input.model_copy(update={"shape": (MAX_FEATURE_TESTS + 1,)})})
    assert feature_names(long) is None and feature_names(clothes_card()) is None


def test_named_inputs_are_watched_as_one_vector_of_their_numeric_values():
    """A model of named tensors: drift reads their numbers, each value named after its input; text is left out."""
    from lifecycle.reference import drift_card, drift_values
    from models.card import InputSpec, TensorSpec
    from models.tensors import pack

    inputs = (
        TensorSpec(name="size", datatype="FP32", shape=(2,)),
        TensorSpec(name="note", datatype="BYTES", shape=(1,), max_bytes=8),
        TensorSpec(name="rooms", datatype="INT64", shape=(1,)),
        TensorSpec(name="lit", datatype="BOOL", shape=(1,)),
    )
    card = tensor_card().model_copy(update={"input": InputSpec.packed(inputs), "inputs": inputs})
    watched = drift_card(card)
    assert watched.input.kind == "tensor" and watched.input.shape == (4,) and watched.input.names == ("size[0]", "size[1]", "rooms", "lit")
    arrays = {
        "size": np.array([[0.5, -1.0], [2.0, 3.5]], np.float32),
        "note": np.array([[b"a"], [b"bb"]], dtype=object),
        "rooms": np.array([[3], [7]]),
        "lit": np.array([[True], [False]]),
    }
    np.testing.assert_array_equal(drift_values(pack(inputs, arrays), card), [[0.5, -1.0, 3, 1], [2.0, 3.5, 7, 0]])
    reference = build_reference(drift_values(pack(inputs, arrays), card), np.array([[0.9, 0.1], [0.2, 0.8]]), watched)
    assert reference["images"] == 2 and reference["pixels"]["mean"] == [1.25, 1.25, 5.0, 0.5]
    text = inputs[1:2]
    assert drift_card(card.model_copy(update={"input": InputSpec.packed(text), "inputs": text})) is None  # nothing numeric to watch
    assert drift_card(tensor_card()) == tensor_card()  # one input tensor: its own card
