"""training/datasets/image_folder.py: images decoded as serving decodes them, split without leaking a place."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from models.card import ImagePreprocessing, InputSpec
from models.preprocessing import decode_image
from training.datasets import DatasetError
from training.datasets.image_folder import load_image_folder
from training.recipes.damage import coordinates

SPEC = InputSpec(kind="image", shape=(8, 8, 3), value_range=(0, 255), divide_by=255)
PREP = ImagePreprocessing(colour_mode="RGB", aspect="crop", resize="bilinear")
LABELS = ("no_damage", "damage")


def jpeg(level: int, size: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), level, dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def folder(tmp_path):
    """80 places on a line 200 m apart; place 0 is in both folders, places 1 and 2 are 30 m apart, and
    two files are byte-identical."""
    for i in range(80):
        longitude = -95.0 + i * 0.002  # about 190 m apart at this latitude
        if i == 2:
            longitude = -95.0 + 0.002 + 0.0003  # about 30 m from place 1
        label = LABELS[i % 2]
        (tmp_path / label).mkdir(exist_ok=True)
        (tmp_path / label / f"{longitude:.6f}_29.600000.jpeg").write_bytes(jpeg(10 + 3 * i))  # every file its own level
    (tmp_path / "damage" / "-95.000000_29.600000.jpeg").write_bytes(jpeg(5))  # place 0 again, other pixels
    (tmp_path / "no_damage" / "-90.000000_20.000000.jpeg").write_bytes((tmp_path / "damage" / "-94.998000_29.600000.jpeg").read_bytes())
    return tmp_path


def load(folder, **kwargs):
    options = dict(coordinates=coordinates, link_radius_m=80, test_share=0.25, validation_share=0.25, seed=3)
    return load_image_folder(folder, LABELS, SPEC, PREP, **{**options, **kwargs})


def test_files_of_one_place_or_one_content_never_straddle_a_split(folder):
    data = load(folder)
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 82
    assert data.x_train.shape[1:] == (8, 8, 3) and data.x_train.dtype == np.uint8
    # place 0 twice; place 1, place 2 (30 m away) and a byte-identical copy of place 1: 82 files in 79 groups
    assert data.split["groups"] == 79 and data.split["largest_group"] == 3


def test_the_same_decoding_as_serving(folder):
    data = load(folder)
    files = sorted((folder / "damage").iterdir()) + sorted((folder / "no_damage").iterdir())
    decoded = {decode_image(f.read_bytes(), SPEC, PREP).tobytes() for f in files}
    assert all(image.tobytes() in decoded for image in np.concatenate([data.x_train, data.x_val, data.x_test]))


def test_splits_are_seeded_stratified_and_shuffled(folder):
    first, again, other = load(folder), load(folder), load(folder, seed=4)
    np.testing.assert_array_equal(first.y_test, again.y_test)
    np.testing.assert_array_equal(first.x_test, again.x_test)
    assert first.fingerprint == again.fingerprint == other.fingerprint
    assert not np.array_equal(first.y_train, other.y_train) or not np.array_equal(first.y_test, other.y_test)
    for part in ("train", "validation", "test"):
        assert 0.3 <= first.split[part]["shares"]["damage"] <= 0.7
    assert set(first.y_test[:6]) == {0, 1}  # a prefix holds both labels


def test_without_a_radius_only_identical_files_are_grouped(folder):
    assert load(folder, link_radius_m=0).split["groups"] == 81


def test_a_missing_label_folder_is_named(folder):
    with pytest.raises(DatasetError, match="maybe: missing"):
        load_image_folder(folder, ("damage", "maybe"), SPEC, PREP)


def test_coordinates_come_from_the_file_name():
    assert coordinates("-93.528502_30.987438.jpeg") == (-93.528502, 30.987438)
    assert coordinates("not-a-place.jpeg") is None
