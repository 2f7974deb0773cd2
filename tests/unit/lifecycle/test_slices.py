import numpy as np
import pytest

from lifecycle.slices import OCCLUSION_SIZE, SHIFTS, apply_shift, evaluate_slices
from models.data import load_fashion_mnist
from models.specs import CLASS_NAMES


@pytest.fixture(scope="module")
def test_images():
    data = load_fashion_mnist(allow_download=False)
    return data.x_test[:300].astype(np.float32), data.y_test[:300]


@pytest.mark.parametrize("name", sorted(SHIFTS))
def test_every_shift_keeps_shape_range_and_is_deterministic(test_images, name):
    images, _ = test_images
    shifted = apply_shift(name, images)
    assert shifted.shape == images.shape and shifted.dtype == np.float32
    assert shifted.min() >= 0 and shifted.max() <= 255
    np.testing.assert_array_equal(shifted, apply_shift(name, images))
    assert not np.array_equal(shifted, images)


def test_shifts_do_what_they_say(test_images):
    images, _ = test_images
    np.testing.assert_array_equal(apply_shift("inverted", images), 255 - images)
    assert apply_shift("brightness", images).mean() > images.mean() + 40
    assert apply_shift("contrast", images).max() <= 128
    occluded = apply_shift("occlusion", images)
    blacked = (occluded == 0) & (images > 0)
    assert blacked.reshape(len(images), -1).sum(axis=1).max() <= OCCLUSION_SIZE**2
    assert blacked.any(axis=(1, 2)).mean() > 0.9  # nearly every garment loses part of itself


def test_slices_of_a_perfect_and_a_constant_classifier(test_images):
    images, labels = test_images
    def perfect(x):  # right on the original images only: every shift then counts as a failure
        known = labels if np.array_equal(x, images) else (labels + 1) % 10
        return np.eye(10)[known]

    result = evaluate_slices(perfect, images, labels)
    assert result["overall"] == 1.0 and all(v == 1.0 for v in result["classes"].values())
    assert all(v == 0.0 for v in result["shifts"].values())
    assert result["worst"]["accuracy"] == 0.0 and result["worst"]["slice"].startswith("shift:")
    assert result["images"] == 300

    always_bag = evaluate_slices(lambda x: np.tile(np.eye(10)[CLASS_NAMES.index("Bag")], (len(x), 1)), images, labels)
    assert always_bag["classes"]["Bag"] == 1.0 and always_bag["classes"]["Trouser"] == 0.0
    assert always_bag["overall"] == pytest.approx(float(np.mean(labels == CLASS_NAMES.index("Bag"))), abs=1e-6)
    assert always_bag["worst"]["accuracy"] == 0.0
