import gzip
import struct

import numpy as np
import pytest

from models import data as data_module
from models.data import FILES, DatasetError, load_fashion_mnist, read_idx


def write_idx(path, array: np.ndarray):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


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
    loaded = load_fashion_mnist(tmp_path, allow_download=False)
    assert loaded.x_train.shape == (12, 28, 28) and loaded.x_train.dtype == np.uint8
    np.testing.assert_array_equal(loaded.x_test, arrays["x_test"])
    np.testing.assert_array_equal(loaded.y_train, arrays["y_train"])
    assert loaded.source == str(tmp_path)
    assert set(loaded.fingerprint) == set(FILES.values()) and all(len(h) == 64 for h in loaded.fingerprint.values())


def test_explicit_directory_comes_before_environment(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    write_dataset(tmp_path / "a", n_train=5)
    write_dataset(tmp_path / "b", n_train=7)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "b"))
    assert len(load_fashion_mnist(tmp_path / "a", allow_download=False).x_train) == 5
    assert len(load_fashion_mnist(None, allow_download=False).x_train) == 7


def test_labels_out_of_range_are_refused(tmp_path):
    write_dataset(tmp_path, labels_max=10)
    with pytest.raises(DatasetError, match="label 10 outside 0..9"):
        load_fashion_mnist(tmp_path, allow_download=False)


def test_wrong_image_shape_is_refused(tmp_path):
    write_dataset(tmp_path, image_shape=(32, 32))
    with pytest.raises(DatasetError, match=r"\(N, 28, 28\)"):
        load_fashion_mnist(tmp_path, allow_download=False)


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, 8, 1) + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(DatasetError, match="header says 10 values"):
        read_idx(path)


def test_not_idx_is_refused(tmp_path):
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\x01\x02\x03\x04\x05")
    with pytest.raises(DatasetError, match="not an IDX file"):
        read_idx(path)


def test_nothing_found_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "DEBIAN_DIR", tmp_path / "missing")
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "empty", allow_download=False)
