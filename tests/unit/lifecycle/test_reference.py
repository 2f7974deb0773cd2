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
