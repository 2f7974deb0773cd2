"""training/datasets/idx.py: gzip-compressed IDX files of unsigned bytes, checked on read."""

import gzip
import struct

import numpy as np
import pytest

from training.datasets import DatasetError, sha256_of
from training.datasets.idx import read_idx


def write_idx(path, array: np.ndarray):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 28, 28), (2, 32, 32, 3)])
def test_round_trip_of_any_shape(tmp_path, shape):
    array = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    write_idx(tmp_path / "a.gz", array)
    read = read_idx(tmp_path / "a.gz")
    assert read.dtype == np.uint8 and read.shape == shape
    np.testing.assert_array_equal(read, array)


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, 8, 1) + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(DatasetError, match="header says 10 values, file holds 3"):
        read_idx(path)


@pytest.mark.parametrize("content", [b"\x01\x02\x03\x04\x05", struct.pack(">HBB", 0, 0x0D, 1) + struct.pack(">I", 1) + b"\x00" * 4], ids=["garbage", "float-idx"])
def test_not_idx_of_bytes_is_refused(tmp_path, content):
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(content)
    with pytest.raises(DatasetError, match="not an IDX file of unsigned bytes"):
        read_idx(path)


def test_too_short_for_a_header(tmp_path):
    with gzip.open(tmp_path / "x.gz", "wb") as f:
        f.write(b"\x00")
    with pytest.raises(DatasetError, match="too short"):
        read_idx(tmp_path / "x.gz")


def test_sha256_of(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert sha256_of(tmp_path / "f") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
