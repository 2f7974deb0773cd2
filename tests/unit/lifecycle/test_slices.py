"""lifecycle/slices.py: seeded shifts of held-out images, and accuracy per class and per shift."""

import numpy as np
import pytest

from lifecycle.slices import KINDS, apply_shift, default_shifts, evaluate_slices
from training.recipes.clothes import LABELS, RECIPE, load_data

ALL_KINDS = {
    **RECIPE.shifts,
    "blur": {"kind": "blur", "sigma": 1.5},
    "jpeg": {"kind": "jpeg", "quality": 10},
}


@pytest.fixture(scope="module")
def test_images():
    data = load_data(allow_download=False)
    return data.x_test[:300, :, :, None].astype(np.float32), data.y_test[:300]


@pytest.fixture(scope="module")
def colour_images():
    """Random blocks of colour, 32x32x3, on a black border."""
    rng = np.random.default_rng(5)
    images = np.zeros((40, 32, 32, 3), np.float32)
    images[:, 4:-4, 4:-4] = np.kron(rng.integers(0, 256, (40, 3, 3, 3)), np.ones((1, 8, 8, 1)))
    return images


def test_every_kind_is_exercised():
    assert {spec["kind"] for spec in ALL_KINDS.values()} == set(KINDS)


@pytest.mark.parametrize("name", sorted(ALL_KINDS))
def test_every_shift_keeps_shape_range_and_is_deterministic(test_images, colour_images, name):
    for images in (test_images[0], colour_images):
        shifted = apply_shift(ALL_KINDS[name], images)
        assert shifted.shape == images.shape and shifted.dtype == np.float32
        assert shifted.min() >= 0 and shifted.max() <= 255
        np.testing.assert_array_equal(shifted, apply_shift(ALL_KINDS[name], images))
        assert not np.array_equal(shifted, images)
    assert not np.array_equal(apply_shift(ALL_KINDS[name], images, seed=1), apply_shift(ALL_KINDS[name], images, seed=2)) or name in (
        "brightness",
        "contrast",
        "inverted",
        "blur",
        "jpeg",
    )  # the deterministic kinds ignore the seed


def test_shifts_do_what_they_say(test_images):
    images, _ = test_images
    np.testing.assert_array_equal(apply_shift(RECIPE.shifts["inverted"], images), 255 - images)
    assert apply_shift(RECIPE.shifts["brightness"], images).mean() > images.mean() + 40
    assert apply_shift(RECIPE.shifts["contrast"], images).max() <= 128
    spec = RECIPE.shifts["occlusion"]
    occluded = apply_shift(spec, images)
    blacked = (occluded == 0) & (images > 0)
    assert blacked.reshape(len(images), -1).sum(axis=1).max() <= spec["size"] ** 2
    assert blacked.any(axis=(1, 2, 3)).mean() > 0.9  # nearly every garment loses part of itself
    margin = spec["margin"]
    edges = np.ones((28, 28), bool)
    edges[margin:-margin, margin:-margin] = False
    assert not blacked[:, edges].any()  # the patch keeps its margin from the edges


def test_occlusion_on_a_colour_image_blacks_every_channel(colour_images):
    spec = default_shifts((32, 32, 3))["occlusion"]
    occluded = apply_shift(spec, np.full_like(colour_images, 200))
    patch = (occluded == 0).all(axis=3)
    assert ((occluded == 0).any(axis=3) == patch).all()  # all channels or none
    assert (patch.reshape(len(patch), -1).sum(axis=1) == spec["size"] ** 2).all()


def test_default_shifts_are_sized_by_the_image():
    shifts = default_shifts((32, 32, 3))
    assert {s["kind"] for s in shifts.values()} <= set(KINDS) and "inverted" not in shifts
    assert shifts["occlusion"]["size"] == 13 and shifts["occlusion"]["margin"] == 4
    assert default_shifts((128, 96, 1))["occlusion"]["size"] == 38


def test_slices_of_a_perfect_and_a_constant_classifier(test_images):
    images, labels = test_images

    def perfect(x):  # right on the original images only: every shift then counts as a failure
        known = labels if np.array_equal(x, images) else (labels + 1) % 10
        return np.eye(10)[known]

    result = evaluate_slices(perfect, images, labels, LABELS, RECIPE.shifts, (28, 28, 1))
    assert result["overall"] == 1.0 and all(v == 1.0 for v in result["classes"].values())
    assert set(result["shifts"]) == set(RECIPE.shifts) and all(v == 0.0 for v in result["shifts"].values())
    assert result["worst"]["accuracy"] == 0.0 and result["worst"]["slice"].startswith("shift:")
    assert result["images"] == 300 and result["shift_specs"] == RECIPE.shifts

    bag = LABELS.index("Bag")
    always_bag = evaluate_slices(lambda x: np.tile(np.eye(10)[bag], (len(x), 1)), images, labels, LABELS, RECIPE.shifts, (28, 28, 1))
    assert always_bag["classes"]["Bag"] == 1.0 and always_bag["classes"]["Trouser"] == 0.0
    assert always_bag["overall"] == pytest.approx(float(np.mean(labels == bag)), abs=1e-6)
    assert always_bag["worst"]["accuracy"] == 0.0 and always_bag["worst_class"] != "Bag"


def test_slices_without_shifts_and_of_grey_images_without_a_channel_axis(test_images):
    images, labels = test_images
    flat = images[..., 0]  # (N, 28, 28): reshaped to the card's shape
    result = evaluate_slices(lambda x: np.eye(10)[labels] if x.shape == images.shape else None, flat, labels, LABELS, {}, (28, 28, 1))
    assert result["overall"] == 1.0 and result["shifts"] == {} and result["worst_shift"] is None
    assert result["worst"]["slice"].startswith("class:")


def test_a_class_without_test_images_is_not_the_worst_slice():
    """An imported model's --eval-data may lack a class: that is no evidence of a 0% slice."""
    images = np.zeros((4, 2, 2, 1), np.float32)
    result = evaluate_slices(lambda x: np.eye(3)[[0, 0, 1, 1]], images, np.array([0, 0, 1, 1]), ("a", "b", "c"), {}, (2, 2, 1))
    assert result["overall"] == 1.0
    assert result["worst"]["slice"] != "class:c" and result["worst_class"] != "c", result
