"""Gzip-compressed IDX files of unsigned bytes (the MNIST family's format), checked on read.

>>> images = read_idx(Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"))
>>> images.shape
(10000, 28, 28)
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from training.datasets import DatasetError

_IDX_UBYTE = 0x08


def read_idx(path: Path) -> np.ndarray:
    """Read one gzip-compressed IDX file of unsigned bytes into an array of its declared shape."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4:
        raise DatasetError(f"{path}: too short for an IDX header")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != _IDX_UBYTE:
        raise DatasetError(f"{path}: not an IDX file of unsigned bytes")
    header_end = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:header_end])
    expected = int(np.prod(shape))
    if len(raw) - header_end != expected:
        raise DatasetError(f"{path}: header says {expected} values, file holds {len(raw) - header_end}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_end).reshape(shape)
