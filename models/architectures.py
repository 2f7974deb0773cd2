"""The networks each version trains. Keras is imported on first use, not at package import."""

from __future__ import annotations

from models.specs import INPUT_SHAPE, NUM_CLASSES


def lenet5():
    """The course's LeNet-5 on 28x28x1: 44,426 parameters."""
    from keras import Input, Sequential, layers

    return Sequential(
        [
            Input(shape=INPUT_SHAPE),
            layers.Conv2D(6, kernel_size=5, activation="relu"),
            layers.AveragePooling2D(pool_size=2),
            layers.Conv2D(16, kernel_size=5, activation="relu"),
            layers.AveragePooling2D(pool_size=2),
            layers.Flatten(),
            layers.Dense(120, activation="relu"),
            layers.Dense(84, activation="relu"),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="lenet5",
    )


def small_vgg():
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
            Input(shape=INPUT_SHAPE),
            *block(32),
            *block(64),
            *block(128),
            layers.Flatten(),
            layers.Dropout(0.2),
            layers.Dense(256, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="small_vgg",
    )


ARCHITECTURES = {"lenet5": lenet5, "small_vgg": small_vgg}


def build(architecture: str):
    try:
        return ARCHITECTURES[architecture]()
    except KeyError:
        raise ValueError(f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}") from None
