"""What the model saw at training time: reference statistics that production traffic is compared with.

The same :func:`image_features` summarises test images at training time and client images at
serving time, so the drift statistics compare like with like.

    >>> reference = build_reference(x_test, probabilities)      # stored as reference.json
    >>> means, histograms = image_features(pixels)               # per image: mean, 16-bin histogram
"""

from __future__ import annotations

import numpy as np

from models.specs import CLASS_NAMES, IMAGE_HEIGHT, IMAGE_WIDTH, PIXEL_MAX

REFERENCE_FILE = "reference.json"
INTENSITY_BINS = 16  # 0..255 in bins of 16 intensities
_BIN_SHIFT = 4  # value >> 4 is its bin
CONFIDENCE_EDGES = np.linspace(0.0, 1.0, 11)
# Stored precision of the per-image values; drift tests round live values alike, since a KS test
# would otherwise see the reference's 0.999996 -> 1.0 as a difference of distributions.
MEAN_DECIMALS = 3
CONFIDENCE_DECIMALS = 5


def image_features(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image of (N, 28, 28) intensities in 0..255: the mean intensity and a 16-bin histogram."""
    flat = np.asarray(pixels).reshape(len(pixels), IMAGE_HEIGHT * IMAGE_WIDTH)
    means = flat.mean(axis=1, dtype=np.float64)
    bins = np.clip(flat, 0, PIXEL_MAX).astype(np.intp) >> _BIN_SHIFT
    bins += (np.arange(len(flat), dtype=np.intp) * INTENSITY_BINS)[:, None]
    histograms = np.bincount(bins.ravel(), minlength=len(flat) * INTENSITY_BINS).reshape(len(flat), INTENSITY_BINS)
    return means, histograms


def build_reference(images: np.ndarray, probabilities: np.ndarray) -> dict:
    """Reference statistics of the held-out images and the model's outputs on them (JSON-able)."""
    images = np.asarray(images, dtype=np.float32)
    means, histograms = image_features(images)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    pixel_counts = histograms.sum(axis=0)
    return {
        "images": int(len(images)),
        "intensity": {
            "bins": INTENSITY_BINS,
            "shares": _shares(pixel_counts),
            "mean_per_image": [round(float(v), MEAN_DECIMALS) for v in means],
        },
        "pixels": {
            "mean": np.round(images.mean(axis=0) / PIXEL_MAX, 4).tolist(),
            "std": np.round(images.std(axis=0) / PIXEL_MAX, 4).tolist(),
        },
        "classes": {
            "names": list(CLASS_NAMES),
            "shares": _shares(np.bincount(predicted, minlength=len(CLASS_NAMES))),
        },
        "confidence": {
            "edges": CONFIDENCE_EDGES.round(2).tolist(),
            "shares": _shares(np.histogram(confidence, bins=CONFIDENCE_EDGES)[0]),
            "values": [round(float(v), CONFIDENCE_DECIMALS) for v in confidence],
        },
    }


def _shares(counts: np.ndarray) -> list[float]:
    counts = np.asarray(counts, dtype=np.float64)
    return (counts / max(counts.sum(), 1.0)).round(6).tolist()
