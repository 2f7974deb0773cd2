"""Bring your own model: check a ``.keras`` file trained elsewhere and write its card.

The file is loaded with the pinned Keras; its input and output shapes are read from the model and
checked against the labels given (one output unit per label, or one sigmoid unit for two labels);
one inference on a probe batch must give probabilities. Any mismatch raises :class:`ImportRefused`
naming what is wrong, before anything is saved.

    >>> model, card = inspect_keras("net.keras", name="shapes", version="v1", labels=["circle", "square", "star"])
    >>> card.input.shape, card.output.kind
    ((32, 32, 3), 'softmax')
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np

from models.card import NAME_PATTERN, ImagePreprocessing, InputSpec, ModelCard, OutputSpec
from models.inference import class_probabilities
from models.preprocessing import to_model_input
from training.datasets import sha256_of

PROBABILITY_TOLERANCE = 1e-3  # softmax rows sum to 1 within this


class ImportRefused(ValueError):
    """The file cannot be served as described; the message names what is wrong."""


def parse_labels(text: str) -> list[str]:
    """A comma-separated list, or the path of a file with one label per line."""
    path = Path(text)
    labels = path.read_text().splitlines() if path.is_file() else text.split(",")
    labels = [label.strip() for label in labels if label.strip()]
    if len(labels) < 2:
        raise ImportRefused(f"--labels: expected at least two labels (a comma-separated list or a file with one per line), got {labels}")
    if len(set(labels)) != len(labels):
        raise ImportRefused(f"--labels: labels must be distinct, got {labels}")
    return labels


def inspect_keras(
    path: str | Path,
    name: str,
    version: str,
    labels: list[str],
    divide_by: float | None = 255.0,
    description: str | None = None,
    kind: str | None = None,
    value_range: tuple[float, float] | None = None,
    resize: str = "bilinear",
    positive_label: str | None = None,
):
    """Load ``path`` and describe it: (keras model, card without metrics). Raises ImportRefused."""
    import keras

    path = Path(path)
    for what, value in (("--name", name), ("--version", version)):
        if not NAME_PATTERN.fullmatch(value):
            raise ImportRefused(f"{what} {value!r}: names are 1 to 63 characters of a-z, 0-9, '.', '_', '-', starting and ending with a letter or digit")
    if not path.is_file():
        raise ImportRefused(f"{path}: no such file")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise ImportRefused(f"{path} is not a Keras model this Keras ({keras.__version__}) can load: {exc}") from None
    dims = _single_shape(model.inputs, "input")
    out = _single_shape(model.outputs, "output")
    if None in dims or not dims:
        raise ImportRefused(f"the model's input shape {[None, *dims]} must be fixed apart from the batch axis")
    if len(out) != 1:
        raise ImportRefused(f"the model's output shape {[None, *out]} is not one vector of class scores per example")
    is_image = kind == "image" or (kind is None and len(dims) == 3 and dims[2] in (1, 3))
    if is_image and not (len(dims) == 3 and dims[2] in (1, 3)):
        raise ImportRefused(f"an image input has the shape [height, width, 1 or 3]; the model takes {list(dims)}")
    units = out[0]
    if units == len(labels):
        output = OutputSpec(kind="softmax", labels=tuple(labels))
    elif units == 1 and len(labels) == 2:
        positive = positive_label or labels[1]
        if positive not in labels:
            raise ImportRefused(f"--positive-label {positive!r} is not one of the labels {labels}")
        output = OutputSpec(kind="sigmoid", labels=tuple(labels), positive_label=positive)
    else:
        raise ImportRefused(f"the model's output has {units} unit(s), but {len(labels)} labels were given (one unit per label, or one sigmoid unit for two labels)")
    if is_image:
        spec = InputSpec(kind="image", shape=tuple(dims), value_range=(0, 255), divide_by=divide_by)
        preprocessing = ImagePreprocessing(colour_mode="RGB" if dims[2] == 3 else "L", aspect="pad", resize=resize, invert="never")
    else:
        spec = InputSpec(kind="tensor", shape=tuple(dims), value_range=value_range, divide_by=divide_by)
        preprocessing = None
    _check_probabilities(model, spec, output)
    card = ModelCard(
        name=name,
        version=version,
        description=description or f"{model.name}, imported from {path.name}",
        task="image-classification" if is_image else "classification",
        input=spec,
        preprocessing=preprocessing,
        output=output,
        architecture=model.name,
        number_of_parameters=int(model.count_params()),
        metrics=None,
        training={"imported_from": path.name, "imported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")},
        data={"source": None, "sha256": {path.name: sha256_of(path)}},
        framework_versions={"tensorflow": _version("tensorflow"), "keras": keras.__version__},
        engines={"tensorflow": {"file": "model.keras"}},
    )
    return model, card


def _single_shape(tensors, what: str) -> tuple:
    if len(tensors) != 1:
        raise ImportRefused(f"the model has {len(tensors)} {what}s; one {what} tensor is served")
    return tuple(tensors[0].shape[1:])


def _check_probabilities(model, spec: InputSpec, output: OutputSpec) -> None:
    """One inference on a probe batch: finite probabilities, rows of a softmax summing to 1."""
    low, high = spec.value_range or (0.0, 1.0)
    probe = np.stack([np.full(spec.shape, low, np.float32), np.full(spec.shape, (low + high) / 2, np.float32), np.full(spec.shape, high, np.float32)])
    try:
        raw = np.asarray(model.predict(to_model_input(probe, spec), verbose=0))
    except Exception as exc:
        raise ImportRefused(f"one inference on a probe batch failed: {exc}") from None
    probabilities = class_probabilities(raw, output)
    if not np.isfinite(probabilities).all() or probabilities.min() < 0 or probabilities.max() > 1:
        raise ImportRefused("the model's outputs on a probe batch are not probabilities in 0..1 (end it with a softmax or sigmoid layer)")
    if output.kind == "softmax" and np.abs(raw.sum(axis=1) - 1).max() > PROBABILITY_TOLERANCE:
        raise ImportRefused("the model's outputs on a probe batch do not sum to 1 (logits?): end it with a softmax layer")


def load_evaluation(path: str | Path, card: ModelCard) -> tuple[np.ndarray, np.ndarray]:
    """Held-out examples for an imported model: an ``.npz`` with ``x`` (client values) and ``y`` (label indices)."""
    from models.preprocessing import InvalidInput, check_values

    try:
        with np.load(path, allow_pickle=False) as arrays:
            x, y = arrays["x"], arrays["y"]
    except (OSError, ValueError, KeyError) as exc:
        raise ImportRefused(f"--eval-data {path}: expected an .npz with arrays x and y: {exc}") from None
    try:
        x = check_values(x, card, "--eval-data x", batch=True)
    except InvalidInput as exc:
        raise ImportRefused(str(exc)) from None
    if y.shape != (len(x),) or y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() >= card.classes)):
        raise ImportRefused(f"--eval-data y: expected {len(x)} label indices in 0..{card.classes - 1}")
    return x, y


def _version(package: str) -> str:
    from importlib import metadata

    for name in (package, f"{package}-cpu"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"
