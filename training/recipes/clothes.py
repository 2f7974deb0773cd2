"""clothes: the course's Fashion-MNIST classifier (28x28 grey garments, ten classes).

Data: the four original IDX ``.gz`` files, from an explicit directory (``--data-dir`` or
``FASHION_MNIST_DIR``), Debian's ``dataset-fashion-mnist`` package, then Keras' downloader.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from models.card import ImagePreprocessing, InputSpec, OutputSpec
from training.datasets import Dataset, DatasetError, sha256_of
from training.datasets.idx import read_idx
from training.recipes import Recipe, Training

log = logging.getLogger(__name__)

LABELS = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
IMAGE_SHAPE = (28, 28)
DATA_ENV = "FASHION_MNIST_DIR"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
INSTALL_HINT = "sudo apt-get install dataset-fashion-mnist"
FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}


def load_data(data_dir: str | os.PathLike | None = None, allow_download: bool = True) -> Dataset:
    """Fashion-MNIST from the first place that has all four files, checked: (N, 28, 28) uint8 images."""
    tried = []
    for candidate in [Path(d) for d in (data_dir, os.environ.get(DATA_ENV)) if d] + [DEBIAN_DIR]:
        if all((candidate / name).is_file() for name in FILES.values()):
            log.info("Loading Fashion-MNIST from %s", candidate)
            paths = {key: candidate / name for key, name in FILES.items()}
            arrays = {key: read_idx(path) for key, path in paths.items()}
            return _validate(Dataset(**arrays, source=str(candidate), fingerprint={p.name: sha256_of(p) for p in paths.values()}))
        tried.append(str(candidate))
    if allow_download:
        try:
            return _validate(_from_keras())
        except Exception as exc:  # any download failure ends in the same advice
            tried.append(f"keras downloader ({type(exc).__name__}: {exc})")
    raise DatasetError("Fashion-MNIST not found. Tried: " + "; ".join(tried) + f". Install it with: {INSTALL_HINT}")


def _from_keras() -> Dataset:
    import keras

    (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / "fashion-mnist"
    fingerprint = {p.name: sha256_of(p) for p in sorted(cache.glob("*.gz"))} if cache.is_dir() else {}
    return Dataset(x_train, y_train, x_test, y_test, source="keras.datasets.fashion_mnist", fingerprint=fingerprint)


def _validate(data: Dataset) -> Dataset:
    for images, labels, split in ((data.x_train, data.y_train, "train"), (data.x_test, data.y_test, "test")):
        if images.dtype != np.uint8 or labels.dtype != np.uint8:
            raise DatasetError(f"{split}: expected uint8 arrays, got {images.dtype} and {labels.dtype}")
        if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
            raise DatasetError(f"{split}: expected images of shape (N, 28, 28), got {images.shape}")
        if labels.shape != (images.shape[0],):
            raise DatasetError(f"{split}: {images.shape[0]} images but labels of shape {labels.shape}")
        if labels.size and int(labels.max()) >= len(LABELS):
            raise DatasetError(f"{split}: label {int(labels.max())} outside 0..{len(LABELS) - 1}")
    return data


RECIPE = Recipe(
    name="clothes",
    description="Fashion-MNIST garments: which of ten kinds of clothing a 28x28 grey image shows.",
    task="image-classification",
    input=InputSpec(kind="image", shape=(*IMAGE_SHAPE, 1), value_range=(0, 255), divide_by=255),
    # Fashion-MNIST garments are light on black: photos of dark garments on light backgrounds are inverted.
    preprocessing=ImagePreprocessing(colour_mode="L", aspect="pad", resize="lanczos", invert="auto"),
    output=OutputSpec(kind="softmax", labels=LABELS),
    load_data=load_data,
    versions={
        "v1": Training(
            architecture="lenet5",
            description="LeNet-5 as in the course: two 5x5 convolutions with average pooling, three dense layers.",
            epochs=20,
            batch_size=128,
        ),
        "v2": Training(
            architecture="small_vgg",
            description="Three 3x3 convolution blocks with batch normalisation, max pooling and dropout, one dense layer; trained with a cosine learning-rate decay.",
            epochs=20,
            batch_size=128,
            learning_rate=0.002,
            cosine_decay=True,
        ),
    },
    shifts={
        "brightness": {"kind": "brightness", "delta": 60, "about": "every pixel +60 (a lighter photo)"},
        "contrast": {"kind": "contrast", "factor": 0.5, "about": "every pixel x0.5 (a dim, low-contrast photo)"},
        "inverted": {"kind": "inverted", "about": "255 - pixel (dark garment on a light background, sent without inversion)"},
        "translation": {"kind": "translation", "max_pixels": 3, "about": "moved by up to 3 px in each direction"},
        "rotation": {"kind": "rotation", "max_degrees": 15, "about": "rotated by up to 15 degrees"},
        "noise": {"kind": "noise", "sigma": 25, "about": "Gaussian noise, sigma 25"},
        "occlusion": {"kind": "occlusion", "size": 12, "margin": 4, "about": "a black 12x12 patch over the garment (the course's 'mask')"},
    },
)
