"""Fashion-MNIST from the four original IDX `.gz` files, checked on load.

Search order: an explicit directory (flag or ``FASHION_MNIST_DIR``), the Debian package's
``/usr/share/datasets/fashion-mnist``, then Keras' downloader as the last resort.

    >>> data = load_fashion_mnist()
    >>> data.x_train.shape, data.x_test.shape
    ((60000, 28, 28), (10000, 28, 28))
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import logging
import os
import struct
from pathlib import Path

import numpy as np

from models.specs import IMAGE_SHAPE, NUM_CLASSES

log = logging.getLogger(__name__)

ENV_VAR = "FASHION_MNIST_DIR"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
INSTALL_HINT = "sudo apt-get install dataset-fashion-mnist"
FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
_IDX_UBYTE = 0x08


class DatasetError(RuntimeError):
    """The data set is missing or does not look like Fashion-MNIST."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    fingerprint: dict[str, str]


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


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _candidate_dirs(directory: str | os.PathLike | None) -> list[Path]:
    dirs = [Path(d) for d in (directory, os.environ.get(ENV_VAR)) if d]
    return [*dirs, DEBIAN_DIR]


def _from_directory(directory: Path) -> Dataset:
    paths = {key: directory / name for key, name in FILES.items()}
    arrays = {key: read_idx(path) for key, path in paths.items()}
    fingerprint = {path.name: sha256_of(path) for path in paths.values()}
    return Dataset(**arrays, source=str(directory), fingerprint=fingerprint)


def _from_keras() -> Dataset:
    import keras

    (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / "fashion-mnist"
    fingerprint = {p.name: sha256_of(p) for p in sorted(cache.glob("*.gz"))} if cache.is_dir() else {}
    return Dataset(x_train, y_train, x_test, y_test, source="keras.datasets.fashion_mnist", fingerprint=fingerprint)


def validate(data: Dataset) -> Dataset:
    """Check shapes, dtypes and label ranges; raise DatasetError on the first problem."""
    for images, labels, split in ((data.x_train, data.y_train, "train"), (data.x_test, data.y_test, "test")):
        if images.dtype != np.uint8 or labels.dtype != np.uint8:
            raise DatasetError(f"{split}: expected uint8 arrays, got {images.dtype} and {labels.dtype}")
        if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
            raise DatasetError(f"{split}: expected images of shape (N, 28, 28), got {images.shape}")
        if labels.shape != (images.shape[0],):
            raise DatasetError(f"{split}: {images.shape[0]} images but labels of shape {labels.shape}")
        if labels.size and int(labels.max()) >= NUM_CLASSES:
            raise DatasetError(f"{split}: label {int(labels.max())} outside 0..{NUM_CLASSES - 1}")
    return data


def load_fashion_mnist(directory: str | os.PathLike | None = None, allow_download: bool = True) -> Dataset:
    """Load and validate Fashion-MNIST from the first place that has all four files."""
    tried = []
    for candidate in _candidate_dirs(directory):
        if all((candidate / name).is_file() for name in FILES.values()):
            log.info("Loading Fashion-MNIST from %s", candidate)
            return validate(_from_directory(candidate))
        tried.append(str(candidate))
    if allow_download:
        try:
            return validate(_from_keras())
        except Exception as exc:  # any download failure ends in the same advice
            tried.append(f"keras downloader ({type(exc).__name__}: {exc})")
    raise DatasetError(
        "Fashion-MNIST not found. Tried: " + "; ".join(tried) + f". Install it with: {INSTALL_HINT}"
    )
