"""training/recipes/clothes.py: the clothes recipe and its Fashion-MNIST loader."""

import numpy as np
import pytest

from lifecycle.slices import KINDS
from tests.unit.cards import clothes_card
from tests.unit.training.datasets.test_idx import write_idx
from training.architectures import ARCHITECTURES
from training.datasets import DatasetError
from training.recipes import clothes
from training.recipes.clothes import FILES, LABELS, RECIPE, load_data


def write_dataset(directory, n_train=12, n_test=6, labels_max=9, image_shape=(28, 28)):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, *image_shape)),
        "y_train": np.arange(n_train) % (labels_max + 1),
        "x_test": rng.integers(0, 256, (n_test, *image_shape)),
        "y_test": np.arange(n_test) % (labels_max + 1),
    }
    for key, name in FILES.items():
        write_idx(directory / name, arrays[key])
    return arrays


def test_reads_idx_files_written_here(tmp_path):
    arrays = write_dataset(tmp_path)
    loaded = load_data(tmp_path, allow_download=False)
    assert loaded.x_train.shape == (12, 28, 28) and loaded.x_train.dtype == np.uint8
    np.testing.assert_array_equal(loaded.x_test, arrays["x_test"])
    np.testing.assert_array_equal(loaded.y_train, arrays["y_train"])
    assert loaded.source == str(tmp_path) and loaded.x_val is None and loaded.split is None
    assert set(loaded.fingerprint) == set(FILES.values()) and all(len(h) == 64 for h in loaded.fingerprint.values())


def test_explicit_directory_comes_before_environment(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    write_dataset(tmp_path / "a", n_train=5)
    write_dataset(tmp_path / "b", n_train=7)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "b"))
    assert len(load_data(tmp_path / "a", allow_download=False).x_train) == 5
    assert len(load_data(None, allow_download=False).x_train) == 7


def test_a_directory_missing_a_file_is_skipped(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    write_dataset(tmp_path / "a", n_train=5)
    (tmp_path / "a" / FILES["y_test"]).unlink()
    write_dataset(tmp_path / "b", n_train=7)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "b"))
    assert len(load_data(tmp_path / "a", allow_download=False).x_train) == 7


def test_labels_out_of_range_are_refused(tmp_path):
    write_dataset(tmp_path, labels_max=10)
    with pytest.raises(DatasetError, match="label 10 outside 0..9"):
        load_data(tmp_path, allow_download=False)


def test_wrong_image_shape_is_refused(tmp_path):
    write_dataset(tmp_path, image_shape=(32, 32))
    with pytest.raises(DatasetError, match=r"\(N, 28, 28\)"):
        load_data(tmp_path, allow_download=False)


def test_nothing_found_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(clothes, "DEBIAN_DIR", tmp_path / "missing")
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist") as error:
        load_data(tmp_path / "empty", allow_download=False)
    assert str(tmp_path / "empty") in str(error.value) and str(tmp_path / "missing") in str(error.value)


def test_the_real_data_set():
    data = load_data(allow_download=False)
    assert data.x_train.shape == (60_000, 28, 28) and data.x_test.shape == (10_000, 28, 28)
    assert np.bincount(data.y_test).tolist() == [1000] * 10
    assert data.source == str(clothes.DEBIAN_DIR) or data.source.endswith("fashion-mnist")


def test_the_recipe_describes_the_courses_model():
    card = clothes_card()
    assert RECIPE.name == "clothes" and RECIPE.load_data is load_data
    assert (RECIPE.input, RECIPE.preprocessing, RECIPE.output) == (card.input, card.preprocessing, card.output)
    assert RECIPE.output.labels == LABELS and len(LABELS) == 10
    assert {v: t.architecture for v, t in RECIPE.versions.items()} == {"v1": "lenet5", "v2": "small_vgg"}
    assert all(t.architecture in ARCHITECTURES for t in RECIPE.versions.values())


def test_every_shift_of_the_recipe_is_a_known_kind():
    assert {spec["kind"] for spec in RECIPE.shifts.values()} <= set(KINDS)
    assert RECIPE.shifts["occlusion"] == {"kind": "occlusion", "size": 12, "margin": 4, "about": RECIPE.shifts["occlusion"]["about"]}
