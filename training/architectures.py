"""Network builders, sized by the card's input and output: a recipe picks one by name for each version.

    >>> model = build("lenet5", card.input, card.output)

Keras is imported on first use, not at package import.
"""

from __future__ import annotations

from collections.abc import Callable

from models.card import InputSpec, OutputSpec


def _head(output: OutputSpec):
    from keras import layers

    return layers.Dense(output.units, activation="softmax" if output.kind == "softmax" else "sigmoid")


def lenet5(spec: InputSpec, output: OutputSpec):
    """The course's LeNet-5: two 5x5 convolutions with average pooling, three dense layers
    (44,426 parameters on 28x28x1 with ten classes)."""
    from keras import Input, Sequential, layers

    return Sequential(
        [
            Input(shape=spec.shape),
            layers.Conv2D(6, kernel_size=5, activation="relu"),
            layers.AveragePooling2D(pool_size=2),
            layers.Conv2D(16, kernel_size=5, activation="relu"),
            layers.AveragePooling2D(pool_size=2),
            layers.Flatten(),
            layers.Dense(120, activation="relu"),
            layers.Dense(84, activation="relu"),
            _head(output),
        ],
        name="lenet5",
    )


def small_vgg(spec: InputSpec, output: OutputSpec):
    """Three conv-BN-ReLU-pool blocks (32, 64, 128 filters) and a dropout-regularised head."""
    from keras import Input, Sequential, layers

    def block(filters: int) -> list:
        return [
            layers.Conv2D(filters, kernel_size=3, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.Activation("relu"),
            layers.MaxPooling2D(pool_size=2),
            layers.Dropout(0.1),
        ]

    return Sequential(
        [
            Input(shape=spec.shape),
            *block(32),
            *block(64),
            *block(128),
            layers.Flatten(),
            layers.Dropout(0.2),
            layers.Dense(256, activation="relu"),
            layers.Dropout(0.2),
            _head(output),
        ],
        name="small_vgg",
    )


def alternate_lenet5(spec: InputSpec, output: OutputSpec):
    """The "alternate LeNet-5" of Cao and Choe (arXiv 1807.01688, Table 1): four 3x3 convolutions
    (32, 64, 128, 128) with max pooling, dropout 0.5, a dense layer of 512."""
    from keras import Input, Sequential, layers

    convolutions = []
    for filters in (32, 64, 128, 128):
        convolutions += [layers.Conv2D(filters, kernel_size=3, activation="relu"), layers.MaxPooling2D(pool_size=2)]
    return Sequential(
        [
            Input(shape=spec.shape),
            *convolutions,
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(512, activation="relu"),
            _head(output),
        ],
        name="alternate_lenet5",
    )


def small_resnet(spec: InputSpec, output: OutputSpec, widths: tuple[int, ...] = (32, 64, 128, 256), dropout: float = 0.3):
    """A strided 3x3 stem, one residual block per width (each after the first halves the resolution),
    global average pooling, dropout."""
    from keras import Input, Model, layers

    def conv_bn(x, filters: int, strides: int = 1, relu: bool = True):
        x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        return layers.ReLU()(x) if relu else x

    def block(x, filters: int, strides: int):
        shortcut = x
        y = conv_bn(conv_bn(x, filters, strides), filters, relu=False)
        if strides != 1 or shortcut.shape[-1] != filters:
            shortcut = layers.BatchNormalization()(layers.Conv2D(filters, 1, strides=strides, use_bias=False)(shortcut))
        return layers.ReLU()(layers.Add()([y, shortcut]))

    inputs = Input(shape=spec.shape)
    x = conv_bn(inputs, widths[0], strides=2)
    for index, filters in enumerate(widths):
        x = block(x, filters, 1 if index == 0 else 2)
    x = layers.Dropout(dropout)(layers.GlobalAveragePooling2D()(x))
    return Model(inputs, _head(output)(x), name="small_resnet")


ARCHITECTURES: dict[str, Callable] = {
    "lenet5": lenet5,
    "small_vgg": small_vgg,
    "alternate_lenet5": alternate_lenet5,
    "small_resnet": small_resnet,
}


def build(architecture: str, spec: InputSpec, output: OutputSpec):
    try:
        builder = ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}") from None
    return builder(spec, output)
