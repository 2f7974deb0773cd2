"""What the model saw at training time: reference statistics that production traffic is compared with.

The same :func:`image_features` summarises test images at training time and client images at
serving time, so the drift statistics compare like with like.

    >>> reference = build_reference(x_test, probabilities, card)  # stored as reference.json
    >>> means, histograms = image_features(feature_view(values, card), card)   # per example: mean, histogram
"""

from __future__ import annotations

import numpy as np

from models.card import ModelCard

REFERENCE_FILE = "reference.json"
INTENSITY_BINS = 16  # the value range in 16 bins (8-bit levels: bins of 16 levels)
FEATURE_SIDE = 32
CONFIDENCE_EDGES = np.linspace(0.0, 1.0, 11)
# Stored precision of the per-example values; drift tests round live values alike, since a KS test
# would otherwise see the reference's 0.999996 -> 1.0 as a difference of distributions.
MEAN_DECIMALS = 3
CONFIDENCE_DECIMALS = 5


def feature_view(values: np.ndarray, card: ModelCard) -> np.ndarray:
    """What drift statistics look at, per example: its values, flattened, on a grid of at most
    ``FEATURE_SIDE`` x ``FEATURE_SIDE`` pixels (every pixel of a small image, every 4th of a
    128x128 one), as uint8 for images. Kept in the live window and the data log; the reference is
    computed from the same view, so the two compare like with like."""
    values = np.asarray(values).reshape(len(values), *card.input.shape)
    if card.is_image:
        stride = _stride(card)
        view = values[:, ::stride, ::stride, :]
        return (view if view.dtype == np.uint8 else np.clip(view, 0, 255).astype(np.uint8)).reshape(len(values), -1)
    flat = values.reshape(len(values), -1)
    return flat[:, :: -(-flat.shape[1] // FEATURE_SIDE**2)].astype(np.float32)


def view_grid(card: ModelCard) -> tuple[int, int, int]:
    """The (height, width, channels) of an image's feature view."""
    height, width, channels = card.input.shape
    stride = _stride(card)
    return -(-height // stride), -(-width // stride), channels


def _stride(card: ModelCard) -> int:
    return -(-max(card.input.shape[:2]) // FEATURE_SIDE)


def image_features(view: np.ndarray, card: ModelCard) -> tuple[np.ndarray, np.ndarray | None]:
    """Per example of a :func:`feature_view`: the mean value, and a histogram of its values over the
    card's range in ``INTENSITY_BINS`` bins (None when the card gives no range)."""
    view = np.asarray(view)
    flat = view.reshape(len(view), int(np.prod(view.shape[1:])))  # an empty window has no -1 to infer
    means = flat.mean(axis=1, dtype=np.float64)
    if card.input.value_range is None:
        return means, None
    low, high = card.input.value_range
    width = (high - low + (1 if card.is_image else 0)) / INTENSITY_BINS  # images: integer levels, 256 of them
    bins = np.clip(((np.clip(flat, low, high) - low) / width).astype(np.intp), 0, INTENSITY_BINS - 1)
    bins += (np.arange(len(flat), dtype=np.intp) * INTENSITY_BINS)[:, None]
    histograms = np.bincount(bins.ravel(), minlength=len(flat) * INTENSITY_BINS).reshape(len(flat), INTENSITY_BINS)
    return means, histograms


def build_reference(values: np.ndarray, probabilities: np.ndarray, card: ModelCard) -> dict:
    """Reference statistics of the held-out examples and the model's outputs on them (JSON-able)."""
    values = np.asarray(values, dtype=np.float32).reshape(len(values), *card.input.shape)
    means, histograms = image_features(feature_view(values, card), card)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    scale = card.input.value_range[1] if card.input.value_range else 1.0
    return {
        "images": int(len(values)),
        "intensity": {
            "bins": INTENSITY_BINS,
            "shares": _shares(histograms.sum(axis=0)) if histograms is not None else None,
            "mean_per_image": [round(float(v), MEAN_DECIMALS) for v in means],
        },
        "pixels": {
            "mean": np.round(values.mean(axis=0) / scale, 4).tolist(),
            "std": np.round(values.std(axis=0) / scale, 4).tolist(),
        },
        "classes": {
            "names": list(card.labels),
            "shares": _shares(np.bincount(predicted, minlength=card.classes)),
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
