"""Training and evaluation data, as arrays of client values (what a client would send) and label indices.

>>> data = recipe.load_data()                 # a Dataset, from the recipe's own source
>>> data.x_train.shape, data.y_test[:3]
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np


class DatasetError(RuntimeError):
    """The data set is missing or does not look as its recipe expects."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray  # held out: training never sees it
    y_test: np.ndarray
    source: str
    fingerprint: dict[str, str]  # file -> sha256, or a digest of the files
    x_val: np.ndarray | None = None  # a validation split of its own; else training takes a share of x_train
    y_val: np.ndarray | None = None
    split: dict | None = None  # how the held-out split was made, when the data did not come split


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
