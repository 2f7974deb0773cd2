"""What the model saw at training time: reference statistics that production traffic is compared with.

The same :func:`image_features` summarises test images at training time and client images at
serving time, so the drift statistics compare like with like.

    >>> reference = build_reference(x_test, probabilities, card)  # a classifier's, stored as reference.json
    >>> reference = build_regression_reference(x_test, predicted_values, card)  # a regressor's
    >>> means, histograms = image_features(feature_view(values, card), card)   # per example: mean, histogram

A regressor's reference holds, besides the input statistics every reference has, the values of each
input of a vector input (:func:`feature_names`) and the predicted values of each target on the
held-out examples: the samples its per-input and per-target drift tests compare the window with.

A model of named inputs is watched on one vector of their numeric values (:func:`drift_card`,
:func:`drift_values`): ``features[0]``, ``counts[2]``, ... (strings and inputs of dynamic shape are left out).
"""

from __future__ import annotations

import numpy as np

from models.card import InputSpec, ModelCard, OutputSpec, Target
from models.tensors import unpack

REFERENCE_FILE = "reference.json"
INTENSITY_BINS = 16  # the value range in 16 bins (8-bit levels: bins of 16 levels)
FEATURE_SIDE = 32
CONFIDENCE_EDGES = np.linspace(0.0, 1.0, 11)
# Stored precision of the per-example values; drift tests round live values alike, since a KS test
# would otherwise see the reference's 0.999996 -> 1.0 as a difference of distributions.
MEAN_DECIMALS = 3
CONFIDENCE_DECIMALS = 5
# A regressor's inputs and predicted values have any scale: stored (and compared) to significant digits.
SIGNIFICANT_DIGITS = 6
MAX_FEATURE_TESTS = 64  # a vector input of at most this many values gets a drift test per value
MAX_REFERENCE_SAMPLE = 2000  # held-out examples whose input values a regressor's reference keeps (evenly spaced)
LEVELS = (0, 255)  # what an image's feature view holds: 8-bit levels, whatever range its values come in


def drift_card(card: ModelCard) -> ModelCard | None:
    """The card drift reads a version by. Its inputs: the version's own for one input tensor; for named
    inputs, one vector of their numeric values, each named after its input (None when every input is text
    or has dynamic dimensions). Its answers: a multi-label tagger's probabilities are watched as a
    regressor's predicted values, one target per label (the same per-target tests, window and reports)."""
    watched = card
    if card.named_inputs:
        names = tuple(spec.name if spec.size == 1 else f"{spec.name}[{i}]" for spec in _watched(card) for i in range(spec.size))
        if not names:
            return None
        vector = InputSpec(kind="tensor", shape=(len(names),), dtype="float32", value_range=None, divide_by=None, names=names)
        watched = card.model_copy(update={"input": vector, "preprocessing": None})
    if card.output.kind == "multilabel":
        # Labels are any text (a target's name is at most 64 characters): taken as they are.
        targets = tuple(Target.model_construct(name=label, unit="probability") for label in card.labels)
        watched = watched.model_copy(
            update={"output": OutputSpec.model_construct(kind="regression", labels=(), targets=targets, shape=None, thresholds=None, positive_label=None), "task": "regression"}
        )
    return watched


def drift_values(values: np.ndarray, card: ModelCard) -> np.ndarray:
    """Examples as :func:`drift_card` takes them: named inputs' packed rows as their numeric values, float32."""
    if not card.named_inputs:
        return values
    watched = _watched(card)
    arrays = unpack(card.inputs, values, only=tuple(spec.name for spec in watched))
    return np.concatenate([np.asarray(arrays[spec.name], np.float32).reshape(len(values), -1) for spec in watched], axis=1)


def _watched(card: ModelCard) -> tuple:
    """The named inputs drift reads: numbers of a fixed shape (not strings, not sequences of any length)."""
    return tuple(spec for spec in card.inputs if spec.max_bytes is None and not spec.dynamic)


def feature_view(values: np.ndarray, card: ModelCard) -> np.ndarray:
    """What drift statistics look at, per example: its values, flattened, on a grid of at most
    ``FEATURE_SIDE`` x ``FEATURE_SIDE`` pixels (every pixel of a small image, every 4th of a
    128x128 one), as uint8 levels for images (values of another range than 0..255, e.g. 0..1 or
    -1..1, mapped onto the 256 levels). Kept in the live window and the data log; the reference is
    computed from the same view, so the two compare like with like."""
    values = np.asarray(values).reshape(len(values), *card.input.shape)
    if card.is_image:
        stride = _stride(card)
        return _levels(values[:, ::stride, ::stride, :], card.input.value_range).reshape(len(values), -1)
    flat = values.reshape(len(values), -1)
    return flat[:, :: -(-flat.shape[1] // FEATURE_SIDE**2)].astype(np.float32)


def _levels(view: np.ndarray, value_range: tuple[float, float] | None) -> np.ndarray:
    """An image's values as 8-bit levels: 0..255 values (or no range) clipped, any other range mapped
    linearly onto 0..255 (clipping (0, 1) values to 0..255 would leave two levels of 256)."""
    if value_range is None or tuple(value_range) == LEVELS:
        return view if view.dtype == np.uint8 else np.clip(view, 0, 255).astype(np.uint8)
    low, high = value_range
    levels = (view.astype(np.float64) - low) * (255.0 / (high - low))
    return np.rint(np.clip(levels, 0, 255)).astype(np.uint8)


def view_grid(card: ModelCard) -> tuple[int, int, int]:
    """The (height, width, channels) of an image's feature view."""
    height, width, channels = card.input.shape
    stride = _stride(card)
    return -(-height // stride), -(-width // stride), channels


def _stride(card: ModelCard) -> int:
    return -(-max(card.input.shape[:2]) // FEATURE_SIDE)


def image_features(view: np.ndarray, card: ModelCard) -> tuple[np.ndarray, np.ndarray | None]:
    """Per example of a :func:`feature_view`: the mean value, and a histogram of its values over the
    card's range (an image's: its view's 0..255 levels) in ``INTENSITY_BINS`` bins (None when the card
    gives no range)."""
    view = np.asarray(view)
    flat = view.reshape(len(view), int(np.prod(view.shape[1:])))  # an empty window has no -1 to infer
    means = flat.mean(axis=1, dtype=np.float64)
    if card.input.value_range is None:
        return means, None
    low, high = LEVELS if card.is_image else card.input.value_range
    width = (high - low + (1 if card.is_image else 0)) / INTENSITY_BINS  # images: integer levels, 256 of them
    bins = np.clip(((np.clip(flat, low, high) - low) / width).astype(np.intp), 0, INTENSITY_BINS - 1)
    bins += (np.arange(len(flat), dtype=np.intp) * INTENSITY_BINS)[:, None]
    histograms = np.bincount(bins.ravel(), minlength=len(flat) * INTENSITY_BINS).reshape(len(flat), INTENSITY_BINS)
    return means, histograms


def build_reference(values: np.ndarray, probabilities: np.ndarray, card: ModelCard) -> dict:
    """Reference statistics of the held-out examples and the model's outputs on them (JSON-able)."""
    values = np.asarray(values, dtype=np.float32).reshape(len(values), *card.input.shape)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    return {
        **_input_statistics(values, card),
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


def build_regression_reference(values: np.ndarray, predicted: np.ndarray, card: ModelCard) -> dict:
    """A regressor's reference statistics (JSON-able): those of its inputs, each input's values (a vector
    input of at most ``MAX_FEATURE_TESTS`` values; up to ``MAX_REFERENCE_SAMPLE`` examples, evenly
    spaced), and each target's predicted values on the held-out examples (finite ones)."""
    values = np.asarray(values, dtype=np.float32).reshape(len(values), *card.input.shape)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(len(values), -1)
    names = [target.name for target in card.output.targets]
    if predicted.shape[1] != len(names):
        raise ValueError(f"{card.tag}: {predicted.shape[1]} predicted values per example for {len(names)} targets")
    reference = _input_statistics(values, card)
    inputs = feature_names(card)
    if inputs is not None:
        rows = np.unique(np.linspace(0, len(values) - 1, min(len(values), MAX_REFERENCE_SAMPLE)).round().astype(np.intp)) if len(values) else np.zeros(0, np.intp)
        view = feature_view(values[rows], card)
        reference["inputs"] = {"names": list(inputs), "values": [finite_values(column) for column in view.T]}
    reference["targets"] = {
        "names": names,
        "units": [target.unit for target in card.output.targets],
        "values": [finite_values(column) for column in predicted.T],
    }
    return reference


def feature_names(card: ModelCard) -> tuple[str, ...] | None:
    """The inputs a regressor's drift tests one by one: each value of a vector input of at most
    ``MAX_FEATURE_TESTS`` values, by its name on the card (else ``x[i]``); None for other inputs."""
    shape = card.input.shape
    if card.input.kind != "tensor" or len(shape) != 1 or shape[0] > MAX_FEATURE_TESTS:
        return None
    return card.input.names or tuple(f"x[{i}]" for i in range(shape[0]))


def significant(values: np.ndarray, digits: int = SIGNIFICANT_DIGITS) -> np.ndarray:
    """Values rounded to ``digits`` significant digits (float64): how a regressor's reference stores its
    input and predicted values, and how the drift tests round live ones alike."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = np.floor(np.log10(np.abs(values)))
    magnitude = np.where(np.isfinite(magnitude), magnitude, 0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        scale = 10.0 ** (digits - 1 - magnitude)
        rounded = np.round(values * scale) / scale
    return np.where(np.isfinite(rounded), rounded, values)


def finite_values(column: np.ndarray) -> list[float]:
    """A column's finite values, to ``SIGNIFICANT_DIGITS`` (JSON-able)."""
    column = significant(column)
    return column[np.isfinite(column)].tolist()


def _input_statistics(values: np.ndarray, card: ModelCard) -> dict:
    """What every reference holds of the held-out inputs: their count, the intensity statistics of their
    feature views and the mean and standard deviation of each value (over the top of the range)."""
    means, histograms = image_features(feature_view(values, card), card)
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
    }


def _shares(counts: np.ndarray) -> list[float]:
    counts = np.asarray(counts, dtype=np.float64)
    return (counts / max(counts.sum(), 1.0)).round(6).tolist()
