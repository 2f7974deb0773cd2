"""The model card: what a stored model is, written at training or import time, read by everything else.

A card travels in the model's BentoML metadata (``metadata["card"]``, a JSON document). Serving, monitoring,
reports, the published OpenAPI document and the promotion gate take every fact about a model from
it (its input shape and channels, how client values become model inputs, its labels and output
kind, its preprocessing), so no module outside a model's own recipe names a model, a shape or a
class count.

    >>> card = ModelCard.from_metadata(bentoml.models.get("clothes:v1").info.metadata)
    >>> card.input.shape, card.output.labels[:2], card.classes
    ((28, 28, 1), ('T-shirt/top', 'Trouser'), 10)
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_serializer, model_validator

# Model names and versions appear in URLs, store tags and service names: BentoML's tag alphabet.
NAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$")
Name = Annotated[str, Field(pattern=NAME_PATTERN.pattern)]
CARD_FORMAT = 1  # bumped when what a card holds changes


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# The datatypes a named tensor may have, as the Open Inference Protocol names them, and NumPy's (little-endian, as raw tensor bytes are).
DATATYPES = {
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
    "INT8": "i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "BOOL": "?",
    "BYTES": "O",  # each value one string of bytes (UTF-8 text for ONNX Runtime), at most the spec's max_bytes
}
LENGTH_BYTES = 4  # a packed BYTES value: its length (little-endian uint32), then max_bytes bytes, zero-padded
ITEM_BYTES = {name: 1 if dtype == "?" else int(dtype[-1]) for name, dtype in DATATYPES.items() if dtype != "O"}
DYNAMIC = -1  # a dimension each request chooses, as ONNX, TensorFlow and the Open Inference Protocol write it
DIM_BYTES = 4  # a packed example's size of one dynamic dimension (little-endian uint32), before its values
TENSOR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:/-]{0,63}$")  # graph names as Keras, ONNX and TensorFlow write them


class TensorSpec(_Frozen):
    """One named input or output of a model with several: its datatype and one example's shape. The batch
    axis, first, is dynamic; an input may have other dynamic dimensions (-1), each bounded by ``max_shape``
    so that a packed example keeps a fixed width."""

    name: Annotated[str, Field(pattern=TENSOR_NAME.pattern)]
    datatype: Literal["FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "BOOL", "BYTES"]
    shape: tuple[Annotated[int, Field(ge=DYNAMIC)], ...] = Field(description="one example's shape, e.g. [8]; [] for one value per example; -1: a dynamic dimension")
    max_shape: tuple[PositiveInt, ...] | None = Field(None, description="with dynamic dimensions only: the largest example taken, e.g. [64, 3] for the shape [-1, 3]")
    min_shape: tuple[PositiveInt, ...] | None = Field(None, description="with dynamic dimensions: the smallest example taken (a convolution needs its kernel's size); null: size 1")
    max_bytes: PositiveInt | None = Field(None, le=2**20, description="BYTES only: the longest value taken, in bytes (a packed row has a fixed width)")

    @model_validator(mode="after")
    def _bounds(self):
        if (self.datatype == "BYTES") != (self.max_bytes is not None):
            raise ValueError(f"{self.name}: max_bytes is given for a BYTES tensor, and only for one")
        if 0 in self.shape:
            raise ValueError(f"{self.name}: a dimension is positive, or -1 for a dynamic one; got {list(self.shape)}")
        if (DYNAMIC in self.shape) != (self.max_shape is not None):
            raise ValueError(f"{self.name}: max_shape bounds the dynamic (-1) dimensions of a shape, and is given only with them")
        for field in ("max_shape", "min_shape"):
            bounds = getattr(self, field)
            if bounds is not None and (len(bounds) != len(self.shape) or any(dim not in (DYNAMIC, bound) for dim, bound in zip(self.shape, bounds, strict=True))):
                raise ValueError(f"{self.name}: {field} {list(bounds)} must be the shape {list(self.shape)} with each -1 replaced by its bound")
        if self.min_shape is not None and (self.max_shape is None or any(low > high for low, high in zip(self.min_shape, self.max_shape, strict=True))):
            raise ValueError(f"{self.name}: min_shape {list(self.min_shape)} goes with dynamic dimensions, each at most its max_shape")
        return self

    @model_serializer(mode="wrap")
    def _without_bounds(self, handler):
        # A fixed numeric tensor's spec reads as it did before strings and dynamic dimensions were served.
        data = handler(self)
        for field in ("max_bytes", "max_shape", "min_shape"):
            if data.get(field) is None:
                data.pop(field, None)
        return data

    def __str__(self) -> str:
        """``tokens INT64 [-1] (sizes [1] to [64])``: how imports and messages name it."""
        sizes = f" (sizes {list(self.smallest)} to {list(self.bound)})" if self.dynamic else ""
        return f"{self.name} {self.datatype} {list(self.shape)}{sizes}"

    @property
    def dynamic(self) -> tuple[int, ...]:
        """The axes (of one example) whose size each request chooses."""
        return tuple(axis for axis, dim in enumerate(self.shape) if dim == DYNAMIC)

    @property
    def bound(self) -> tuple[int, ...]:
        """The largest example's shape: ``shape`` itself when every dimension is fixed."""
        return self.max_shape if self.max_shape is not None else self.shape

    @property
    def smallest(self) -> tuple[int, ...]:
        """The smallest example's shape: ``min_shape``, or each dynamic dimension of size 1."""
        return self.min_shape if self.min_shape is not None else tuple(1 if dim == DYNAMIC else dim for dim in self.shape)

    def fits(self, shape: tuple[int, ...]) -> bool:
        """One example's shape as a request gives it: fixed dimensions equal, dynamic ones within their bounds."""
        return len(shape) == len(self.shape) and all(low <= size <= high for size, low, high in zip(shape, self.smallest, self.bound, strict=True))

    @property
    def size(self) -> int:
        """Values per example (of the largest example, with dynamic dimensions)."""
        size = 1
        for dim in self.bound:
            size *= dim
        return size

    @property
    def nbytes(self) -> int:
        """Bytes per packed example: each dynamic dimension's size, then the values (padded to the bound)."""
        cell = LENGTH_BYTES + self.max_bytes if self.max_bytes is not None else ITEM_BYTES[self.datatype]
        return len(self.dynamic) * DIM_BYTES + self.size * cell


def row_bytes(specs: tuple[TensorSpec, ...]) -> int:
    """One example's bytes of several named tensors, packed in order (models/tensors.py)."""
    return sum(spec.nbytes for spec in specs)


def _check_named(specs: tuple[TensorSpec, ...], what: str) -> None:
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"{what} names must be distinct, got {names}")


class InputSpec(_Frozen):
    """What a client sends per example, and how it becomes the model's input."""

    kind: Literal["image", "tensor", "tensors"] = Field(
        description="an image (height x width x channels), a plain tensor, or several named tensors (the card's inputs; shape is then one example's packed bytes)"
    )
    shape: tuple[PositiveInt, ...] = Field(description="one example as the model takes it, e.g. [28, 28, 1]")
    dtype: Literal["float32", "uint8"] = Field("float32", description="float32; uint8 for several named tensors, packed")
    value_range: tuple[float, float] | None = Field(description="the values clients send, e.g. [0, 255]; null: any finite number")
    divide_by: float | None = Field(description="the server divides client values by this (255: intensities to 0..1); null: the model rescales itself")
    names: tuple[str, ...] | None = Field(None, description="a vector input: each value's name (a scikit-learn model's feature_names_in_, or --input-names)")

    @model_validator(mode="after")
    def _image_shape(self):
        if self.kind == "image" and (len(self.shape) != 3 or self.shape[2] not in (1, 3)):
            raise ValueError(f"an image input has the shape [height, width, 1 or 3], got {list(self.shape)}")
        if self.value_range is not None and self.value_range[0] >= self.value_range[1]:
            raise ValueError(f"value_range must be [low, high] with low < high, got {list(self.value_range)}")
        if (self.kind == "tensors") != (self.dtype == "uint8") or (self.kind == "tensors" and (len(self.shape) != 1 or self.value_range or self.divide_by)):
            raise ValueError("several named tensors are one uint8 row of their packed bytes, with no value_range or divide_by; other inputs are float32")
        if self.names is not None and (self.kind != "tensor" or len(self.shape) != 1 or len(self.names) != self.shape[0] or len(set(self.names)) != len(self.names)):
            raise ValueError(f"names: one distinct name per value of a vector input ({list(self.shape)}), got {len(self.names)}")
        return self

    @model_serializer(mode="wrap")
    def _without_names(self, handler):
        # A card of an input without names reads as it did before they existed.
        data = handler(self)
        if data.get("names") is None:
            data.pop("names", None)
        return data

    @classmethod
    def packed(cls, inputs: tuple[TensorSpec, ...]) -> InputSpec:
        """The input of a model taking named tensors: one uint8 row of their packed bytes per example."""
        return cls(kind="tensors", shape=(row_bytes(inputs),), dtype="uint8", value_range=None, divide_by=None)

    @property
    def channels(self) -> int | None:
        return self.shape[2] if self.kind == "image" else None


class ImagePreprocessing(_Frozen):
    """How an image file becomes the model's input (PIL): colour mode, aspect, resize, inversion."""

    colour_mode: Literal["L", "RGB"] = Field(description="PIL mode the file is converted to: L (grey) or RGB")
    aspect: Literal["pad", "stretch", "crop"] = Field(description="pad to a square with the border colour, stretch, or centre-crop to a square")
    resize: Literal["nearest", "box", "bilinear", "hamming", "bicubic", "lanczos"] = Field(description="PIL resampling filter")
    invert: Literal["auto", "never"] = Field("never", description="auto: invert the levels when the image's border is light (the model was trained on dark backgrounds)")


class Target(_Frozen):
    """One value a regressor answers per example."""

    name: str = Field(min_length=1, max_length=64)
    unit: str | None = Field(None, max_length=32, description="e.g. USD, kg, degrees C; null: none")


OUTPUT_TENSORS = {
    "softmax": "probabilities",
    "sigmoid": "probabilities",
    "multilabel": "probabilities",
    "regression": "values",
    "embedding": "embedding",
    "tensor": "output",
    "tensors": "outputs",  # several named outputs (the card's outputs): each protocol answers them by their names
}


class OutputSpec(_Frozen):
    """What the model answers per example, by task: one class (a softmax over the labels, or one sigmoid
    unit for the positive label), several labels at once (one sigmoid per label, each with its
    threshold), regression targets, an embedding, or a tensor as it is."""

    kind: Literal["softmax", "sigmoid", "multilabel", "regression", "embedding", "tensor", "tensors"]
    labels: tuple[str, ...] = Field((), description="softmax, sigmoid, multilabel: the labels, in the order of the model's units")
    positive_label: str | None = Field(None, description="sigmoid: the label its output is the probability of")
    thresholds: tuple[float, ...] | None = Field(None, description="multilabel: each label is given when its probability reaches its threshold")
    targets: tuple[Target, ...] = Field((), description="regression: what each output unit is, with its unit")
    shape: tuple[PositiveInt, ...] | None = Field(None, description="embedding and tensor: one example's output shape; tensors: one example's packed bytes of the card's outputs")

    @model_validator(mode="after")
    def _consistent(self):
        kind = self.kind
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels must be distinct, got {list(self.labels)}")
        if kind in ("softmax", "sigmoid") and len(self.labels) < 2:
            raise ValueError(f"a {kind} output has at least two labels")
        if kind == "multilabel" and (not self.labels or self.thresholds is None or len(self.thresholds) != len(self.labels) or not all(0 < t < 1 for t in self.thresholds)):
            raise ValueError("a multilabel output has labels and one threshold in (0, 1) per label")
        if kind not in ("softmax", "sigmoid", "multilabel") and self.labels:
            raise ValueError(f"a {kind} output has no labels")
        if kind != "multilabel" and self.thresholds is not None:
            raise ValueError("thresholds apply to a multilabel output only")
        if kind == "sigmoid":
            if len(self.labels) != 2 or self.positive_label not in self.labels:
                raise ValueError("a sigmoid output has two labels, one of them the positive_label")
        elif self.positive_label is not None:
            raise ValueError("positive_label applies to a sigmoid output only")
        if (kind == "regression") != bool(self.targets):
            raise ValueError("a regression output has its targets, other outputs none")
        if len({t.name for t in self.targets}) != len(self.targets):
            raise ValueError("target names must be distinct")
        if (kind in ("embedding", "tensor", "tensors")) != (self.shape is not None) or (kind in ("embedding", "tensors") and len(self.shape or ()) != 1):
            raise ValueError("an embedding output has a shape [size], a tensor output its shape, several named outputs [packed bytes], other outputs none")
        return self

    @model_serializer(mode="wrap")
    def _without_other_tasks(self, handler):
        # A classifier's card reads as it did before other tasks existed: their fields only where they apply.
        data = handler(self)
        for field, empty in (("thresholds", None), ("targets", []), ("shape", None)):
            if field in data and data[field] in (empty, ()):
                del data[field]
        return data

    @classmethod
    def packed(cls, outputs: tuple[TensorSpec, ...]) -> OutputSpec:
        """The output of a model answering named tensors: one row of their packed bytes per example."""
        return cls(kind="tensors", shape=(row_bytes(outputs),))

    @property
    def units(self) -> int:
        """Width of the network's last layer."""
        if self.kind == "sigmoid":
            return 1
        if self.kind == "regression":
            return len(self.targets)
        if self.shape is not None:
            size = 1
            for dim in self.shape:
                size *= dim
            return size
        return len(self.labels)

    @property
    def answer_shape(self) -> tuple[int, ...]:
        """One example's answer as the server gives it: a sigmoid unit becomes two probabilities."""
        if self.kind == "sigmoid":
            return (2,)
        return self.shape if self.kind in ("tensor", "tensors") and self.shape is not None else (self.units,)

    @property
    def tensor(self) -> str:
        """The output tensor's name in every protocol: probabilities, values, embedding or output."""
        return OUTPUT_TENSORS[self.kind]

    @property
    def single_label(self) -> bool:
        """One class per example (softmax or sigmoid): labels, top-k, OOD scores, drift of classes, live accuracy."""
        return self.kind in ("softmax", "sigmoid")


class ModelCard(_Frozen):
    name: Name
    version: Name
    description: str
    task: Literal["image-classification", "classification", "multilabel-classification", "regression", "embedding", "tensors"]
    input: InputSpec
    inputs: tuple[TensorSpec, ...] = Field((), description="a model with several inputs (or one that is not float32): each named tensor, in the order they are packed")
    preprocessing: ImagePreprocessing | None = Field(description="image inputs only")
    output: OutputSpec
    outputs: tuple[TensorSpec, ...] = Field((), description="a model with several outputs: each named tensor, in the order they are packed")
    architecture: str
    number_of_parameters: PositiveInt
    metrics: dict[str, Any] | None = Field(description="held-out evaluation; null when the model was imported without evaluation data")
    slices: dict[str, Any] | None = None
    training: dict[str, Any] = Field(description="how the model was made: recipe settings, or what was imported")
    history: dict[str, list[float]] | None = None
    data: dict[str, Any] = Field(description="where the training or evaluation data came from, with fingerprints")
    framework_versions: dict[str, str]
    engines: dict[str, dict[str, Any]] = Field(default_factory=dict, description="engines this version can run on, with their verification")
    files: tuple[str, ...] = ()
    format: int = CARD_FORMAT

    @model_validator(mode="after")
    def _image_preprocessing(self):
        if (self.input.kind == "image") != (self.preprocessing is not None):
            raise ValueError("image inputs need preprocessing settings, other inputs none")
        if self.preprocessing and (self.preprocessing.colour_mode == "RGB") != (self.input.channels == 3):
            raise ValueError(f"colour mode {self.preprocessing.colour_mode} does not match {self.input.channels} input channel(s)")
        return self

    @model_validator(mode="after")
    def _named_tensors(self):
        _check_named(self.inputs, "input")
        _check_named(self.outputs, "output")
        if any(spec.dynamic for spec in self.outputs):
            raise ValueError("outputs have fixed shapes: only inputs have dynamic dimensions besides the batch axis")
        if (self.input.kind == "tensors") != bool(self.inputs) or (self.inputs and self.input.shape != (row_bytes(self.inputs),)):
            raise ValueError("named inputs go with an input of kind tensors whose shape is their packed bytes per example, and only with it")
        if (self.output.kind == "tensors") != bool(self.outputs) or (self.outputs and self.output.shape != (row_bytes(self.outputs),)):
            raise ValueError("named outputs go with an output of kind tensors whose shape is their packed bytes per example, and only with it")
        return self

    @model_serializer(mode="wrap")
    def _without_named_tensors(self, handler):
        # A card of a model with one input and one output reads as it did before named tensors existed.
        data = handler(self)
        for field in ("inputs", "outputs"):
            if not data.get(field):
                data.pop(field, None)
        return data

    @model_validator(mode="after")
    def _task(self):
        expected = {"multilabel": "multilabel-classification", "regression": "regression", "embedding": "embedding", "tensor": "tensors", "tensors": "tensors"}.get(
            self.output.kind
        )
        if expected is not None and self.task != expected:
            raise ValueError(f"a {self.output.kind} output is the task {expected}, not {self.task}")
        if expected is None and self.task not in ("image-classification", "classification"):
            raise ValueError(f"a {self.output.kind} output is a classification task, not {self.task}")
        return self

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def labels(self) -> tuple[str, ...]:
        return self.output.labels

    @property
    def classes(self) -> int:
        return len(self.output.labels)

    @property
    def is_classifier(self) -> bool:
        """Answers one class per example: what labels, top-k, OOD scores, class drift and live accuracy need."""
        return self.output.single_label

    @property
    def named_inputs(self) -> bool:
        """Takes several named tensors (``inputs``), checked and packed by models/tensors.py."""
        return self.input.kind == "tensors"

    @property
    def is_image(self) -> bool:
        return self.input.kind == "image"

    @property
    def example_bytes(self) -> int:
        """Bytes of one example as raw uint8 values (images)."""
        size = 1
        for dim in self.input.shape:
            size *= dim
        return size

    def to_metadata(self) -> dict:
        # As a JSON document: BentoML's metadata takes no nulls, and a card has meaningful ones.
        return {"card": self.model_dump_json(), "card_format": self.format}

    @classmethod
    def from_metadata(cls, metadata: dict) -> ModelCard:
        if "card" not in metadata:
            raise ValueError("the stored model has no card (saved by an older train_and_save.py); retrain or re-import it")
        return cls.model_validate_json(metadata["card"])
