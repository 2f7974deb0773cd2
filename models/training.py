"""Train one version from its recipe, evaluate it on the test set, and describe it for the store."""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np

from models import architectures, evaluation
from models.data import Dataset
from models.preprocessing import to_model_input
from models.specs import CLASS_NAMES, MODEL_NAME, NUM_CLASSES, RECIPES, Recipe, input_spec

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainingRun:
    model: object
    recipe: Recipe
    metrics: dict
    history: dict
    settings: dict
    images: np.ndarray  # the held-out test images it was evaluated on, with their labels
    labels: np.ndarray
    probabilities: np.ndarray


def recipe_for(version: str, **overrides) -> Recipe:
    if version not in RECIPES:
        raise ValueError(f"no recipe for version {version!r}; known: {sorted(RECIPES)}")
    return dataclasses.replace(RECIPES[version], **{k: v for k, v in overrides.items() if v is not None})


def train(data: Dataset, recipe: Recipe, train_limit: int | None = None, test_limit: int | None = None, verbose: int = 1) -> TrainingRun:
    """Fit ``recipe``'s network on the training images and evaluate it on the test images."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(recipe.seed)
    tf.config.experimental.enable_op_determinism()

    x_train, y_train = data.x_train[:train_limit], data.y_train[:train_limit]
    x_test, y_test = data.x_test[:test_limit], data.y_test[:test_limit]

    model = architectures.build(recipe.architecture)
    learning_rate = recipe.learning_rate
    if recipe.cosine_decay:
        steps = recipe.epochs * -(-int(len(x_train) * (1 - recipe.validation_split)) // recipe.batch_size)
        learning_rate = keras.optimizers.schedules.CosineDecay(recipe.learning_rate, decay_steps=steps)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    started = time.perf_counter()
    fit = model.fit(
        to_model_input(x_train),
        keras.utils.to_categorical(y_train, NUM_CLASSES),
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        validation_split=recipe.validation_split,
        verbose=verbose,
    )
    seconds = time.perf_counter() - started
    probabilities = predict_probabilities(model, x_test)
    settings = {
        **dataclasses.asdict(recipe),
        "optimizer": "adam",
        "loss": "categorical_crossentropy",
        "train_images": int(len(x_train)),
        "training_seconds": round(seconds, 1),
    }
    history = {key: [round(float(v), 6) for v in values] for key, values in fit.history.items()}
    return TrainingRun(model, recipe, evaluation.evaluate(y_test, probabilities), history, settings, x_test, y_test, probabilities)


def predict_probabilities(model, images: np.ndarray) -> np.ndarray:
    """Class probabilities of (N, 28, 28) images in 0..255, in batches (memory stays bounded)."""
    return model.predict(to_model_input(images), batch_size=1024, verbose=0)


def metadata(run: TrainingRun, data: Dataset, slices: dict) -> dict:
    """Everything the store keeps about a version (framework versions are added on save)."""
    return {
        "name": MODEL_NAME,
        "description": run.recipe.description,
        "architecture": run.recipe.architecture,
        "class_names": list(CLASS_NAMES),
        "input_spec": input_spec(),
        "number_of_parameters": int(run.model.count_params()),
        "metrics": run.metrics,
        "slices": slices,
        "training": run.settings,
        "history": run.history,
        "data": {"source": data.source, "sha256": data.fingerprint},
    }


