"""What the clothes model is: one source of truth for names, classes, input spec and recipes.

Training, the store, the service and the tests read these values; none of them types a class
name, a shape or a hyper-parameter of its own.
"""

from __future__ import annotations

import dataclasses
import re

MODEL_NAME = "clothes"

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)

IMAGE_HEIGHT = 28
IMAGE_WIDTH = 28
CHANNELS = 1
IMAGE_SHAPE = (IMAGE_HEIGHT, IMAGE_WIDTH)
INPUT_SHAPE = (IMAGE_HEIGHT, IMAGE_WIDTH, CHANNELS)
PIXEL_MIN = 0
PIXEL_MAX = 255

# Versions and aliases appear in URLs and store tags: keep them to a safe alphabet.
NAME_PATTERN = re.compile(r"^[a-z0-9._-]{1,64}$")


def input_spec() -> dict:
    """The input contract recorded with every model and shown by the model info route."""
    return {
        "shape": list(INPUT_SHAPE),
        "dtype": "uint8 or float",
        "range": [PIXEL_MIN, PIXEL_MAX],
        "scaling": f"the server divides by {PIXEL_MAX}; clients send raw {PIXEL_MIN}..{PIXEL_MAX} intensities",
        "layout": "row-major 28x28, light garment on a dark background (as in Fashion-MNIST)",
    }


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How one version is trained."""

    architecture: str
    description: str
    epochs: int
    batch_size: int
    validation_split: float = 0.2
    learning_rate: float = 0.001
    cosine_decay: bool = False  # decay the learning rate to zero over the run
    seed: int = 42


RECIPES: dict[str, Recipe] = {
    "v1": Recipe(
        architecture="lenet5",
        description="LeNet-5 as in the course: two 5x5 convolutions with average pooling, three dense layers.",
        epochs=20,
        batch_size=128,
    ),
    "v2": Recipe(
        architecture="small_vgg",
        description="Three 3x3 convolution blocks with batch normalisation, max pooling and dropout, one dense layer; trained with a cosine learning-rate decay.",
        epochs=20,
        batch_size=128,
        learning_rate=0.002,
        cosine_decay=True,
    ),
}
