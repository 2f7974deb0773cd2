"""Model cards for the unit tests: a few kinds of model, built in one place.

    >>> from tests.unit.cards import clothes_card, colour_card, sigmoid_card, tensor_card, regression_card, keras_model_for
    >>> clothes_card().input.shape, colour_card().classes, sigmoid_card().output.kind, tensor_card().is_image
    ((28, 28, 1), 3, 'sigmoid', False)

Each builder takes keyword overrides of the card's top-level fields (``version="v9"``, ``metrics=None``).
"""

from __future__ import annotations

from models.card import ImagePreprocessing, InputSpec, ModelCard, OutputSpec, Target, TensorSpec

CLOTHES_LABELS = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
COLOUR_LABELS = ("red", "green", "blue")
SIGMOID_LABELS = ("no_damage", "damage")
NAMED_INPUTS = (TensorSpec(name="x", datatype="FP32", shape=(2, 2)), TensorSpec(name="k", datatype="INT64", shape=()), TensorSpec(name="on", datatype="BOOL", shape=(3,)))


def make_card(name: str, version: str, input: InputSpec, preprocessing: ImagePreprocessing | None, output: OutputSpec, **fields) -> ModelCard:
    """A complete card with plausible bookkeeping fields; ``fields`` override any of them."""
    values = dict(
        name=name,
        version=version,
        description=f"{name} for the unit tests",
        task="image-classification" if input.kind == "image" else "classification",
        input=input,
        preprocessing=preprocessing,
        output=output,
        architecture="test-net",
        number_of_parameters=1234,
        metrics={"accuracy": 0.5},
        training={"epochs": 1},
        data={"source": "tests", "sha256": {}},
        framework_versions={"tensorflow": "2.21.0", "keras": "3.15.0"},
    )
    values.update(fields)
    return ModelCard(**values)


def clothes_card(**fields) -> ModelCard:
    """Like the shipped clothes model: grey 28x28x1 images in 0..255 scaled by 255, ten softmax classes,
    padded and resized with Lanczos, light backgrounds inverted (invert=auto)."""
    return make_card(
        fields.pop("name", "clothes"),
        fields.pop("version", "v1"),
        InputSpec(kind="image", shape=(28, 28, 1), value_range=(0, 255), divide_by=255),
        ImagePreprocessing(colour_mode="L", aspect="pad", resize="lanczos", invert="auto"),
        OutputSpec(kind="softmax", labels=CLOTHES_LABELS),
        **fields,
    )


def colour_card(aspect: str = "pad", invert: str = "never", resize: str = "bilinear", **fields) -> ModelCard:
    """Colour 32x32x3 images in 0..255 scaled by 255, three softmax classes."""
    return make_card(
        fields.pop("name", "colours"),
        fields.pop("version", "v1"),
        InputSpec(kind="image", shape=(32, 32, 3), value_range=(0, 255), divide_by=255),
        ImagePreprocessing(colour_mode="RGB", aspect=aspect, resize=resize, invert=invert),
        OutputSpec(kind="softmax", labels=COLOUR_LABELS),
        **fields,
    )


def sigmoid_card(positive_label: str = "damage", **fields) -> ModelCard:
    """Grey 16x16x1 images, one sigmoid unit for two labels (``damage`` positive by default)."""
    return make_card(
        fields.pop("name", "damage"),
        fields.pop("version", "v1"),
        InputSpec(kind="image", shape=(16, 16, 1), value_range=(0, 255), divide_by=255),
        ImagePreprocessing(colour_mode="L", aspect="stretch", resize="bilinear", invert="never"),
        OutputSpec(kind="sigmoid", labels=SIGMOID_LABELS, positive_label=positive_label),
        **fields,
    )


def tensor_card(value_range: tuple[float, float] | None = None, **fields) -> ModelCard:
    """A plain vector of 4 floats (any finite number unless ``value_range``), three softmax classes."""
    return make_card(
        fields.pop("name", "vector"),
        fields.pop("version", "v1"),
        InputSpec(kind="tensor", shape=(4,), value_range=value_range, divide_by=None),
        None,
        OutputSpec(kind="softmax", labels=("x", "y", "z")),
        **fields,
    )


def regression_card(names: tuple[str, ...] | None = ("rooms", "age", "distance", "income"), targets: tuple[str, ...] = ("price:USD", "area:m2"), **fields) -> ModelCard:
    """A regressor of a vector of ``len(names)`` floats (4 without names), any finite number, answering
    one value per target (``name:unit``)."""
    return make_card(
        fields.pop("name", "house"),
        fields.pop("version", "v1"),
        InputSpec(kind="tensor", shape=(len(names) if names else 4,), value_range=None, divide_by=None, names=names),
        None,
        OutputSpec(kind="regression", targets=tuple(Target(name=t.split(":")[0], unit=t.split(":")[1] if ":" in t else None) for t in targets)),
        **{"task": "regression", "metrics": None, **fields},
    )


ALL_CARDS = {"clothes": clothes_card, "colour": colour_card, "sigmoid": sigmoid_card, "tensor": tensor_card}


def keras_model_for(card: ModelCard, seed: int = 0):
    """A tiny Keras network that takes the card's input and gives its output (Keras imported here)."""
    import keras

    keras.utils.set_random_seed(seed)
    units, activation = card.output.units, "softmax" if card.output.kind == "softmax" else "sigmoid"
    return keras.Sequential(
        [keras.Input(shape=card.input.shape), keras.layers.Flatten(), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(units, activation=activation)],
        name="tiny",
    )


def named_card(inputs: tuple[TensorSpec, ...] = NAMED_INPUTS, outputs: tuple[TensorSpec, ...] = (), output: OutputSpec | None = None, **changes) -> ModelCard:
    """A model of named tensors (``inputs``; ``outputs`` answered by name, else a tensor of 2 values)."""
    fields = {
        "name": "multi",
        "version": "v1",
        "description": "tests",
        "task": "tensors",
        "input": changes.pop("input", None) or InputSpec.packed(inputs),
        "inputs": inputs,
        "preprocessing": None,
        "output": output or (OutputSpec.packed(outputs) if outputs else OutputSpec(kind="tensor", shape=(2,))),
        "outputs": outputs,
        "architecture": "tests",
        "number_of_parameters": 1,
        "metrics": None,
        "training": {},
        "data": {},
        "framework_versions": {},
    }
    return ModelCard(**{**fields, **changes})
