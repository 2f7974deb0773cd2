"""Train one version from its recipe, evaluate it on the held-out data, and write its card.

>>> run = train(recipe, "v1", recipe.load_data())
>>> card = card_for(recipe, run, data, slices)
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np

from models.card import ModelCard
from models.inference import predict_probabilities
from models.preprocessing import to_model_input
from training import architectures, evaluation
from training.datasets import Dataset
from training.recipes import Recipe, Training

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainingRun:
    version: str
    model: object
    training: Training
    metrics: dict
    history: dict
    settings: dict
    images: np.ndarray  # the held-out examples it was evaluated on, with their labels
    labels: np.ndarray
    probabilities: np.ndarray


def targets(labels: np.ndarray, recipe: Recipe) -> np.ndarray:
    """What the network is fitted to: one-hot rows for a softmax, 0/1 for a sigmoid's positive label."""
    import keras

    if recipe.output.kind == "sigmoid":
        return (np.asarray(labels) == recipe.output.labels.index(recipe.output.positive_label)).astype(np.float32)
    return keras.utils.to_categorical(labels, len(recipe.output.labels))


def train(recipe: Recipe, version: str, data: Dataset, train_limit: int | None = None, test_limit: int | None = None, verbose: int = 1, **overrides) -> TrainingRun:
    """Fit the version's network on the training data and evaluate it on the held-out data."""
    import keras
    import tensorflow as tf

    settings = recipe.training(version, **overrides)
    keras.utils.set_random_seed(settings.seed)
    tf.config.experimental.enable_op_determinism()

    x_train, y_train = data.x_train[:train_limit], data.y_train[:train_limit]
    x_test, y_test = data.x_test[:test_limit], data.y_test[:test_limit]
    if settings.mixed_precision:
        keras.mixed_precision.set_global_policy(settings.mixed_precision)
    model = architectures.build(settings.architecture, recipe.input, recipe.output)
    has_validation = data.x_val is not None
    steps_per_epoch = -(-int(len(x_train) * (1 if has_validation else 1 - settings.validation_split)) // settings.batch_size)
    learning_rate = settings.learning_rate
    if settings.cosine_decay:
        warmup = min(settings.warmup_epochs, settings.epochs - 1) * steps_per_epoch  # a short run (tests) skips it
        learning_rate = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else settings.learning_rate,
            decay_steps=settings.epochs * steps_per_epoch - warmup,
            warmup_target=settings.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    loss = (
        keras.losses.BinaryCrossentropy(label_smoothing=settings.label_smoothing)
        if recipe.output.kind == "sigmoid"
        else keras.losses.CategoricalCrossentropy(label_smoothing=settings.label_smoothing)
    )
    optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=settings.weight_decay) if settings.weight_decay else keras.optimizers.Adam(learning_rate=learning_rate)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    started = time.perf_counter()
    x, y = to_model_input(x_train, recipe.input), targets(y_train, recipe)
    if has_validation:
        validation = {"validation_data": (to_model_input(data.x_val, recipe.input), targets(data.y_val, recipe))}
    elif settings.augment:  # Keras splits arrays only: hold out the same last share by hand
        held = int(len(x) * settings.validation_split)
        validation, x, y = {"validation_data": (x[len(x) - held :], y[len(y) - held :])}, x[: len(x) - held], y[: len(y) - held]
    else:
        validation = {"validation_split": settings.validation_split}
    callbacks = []
    if settings.restore_best:
        callbacks.append(keras.callbacks.EarlyStopping("val_accuracy", mode="max", patience=settings.epochs, restore_best_weights=True))
    if settings.augment:
        scaled = [v / (recipe.input.divide_by or 1) for v in recipe.input.value_range or (-np.inf, np.inf)]
        fit = model.fit(_augmented(x, y, settings, scaled), epochs=settings.epochs, verbose=verbose, shuffle=False, callbacks=callbacks, **validation)
    else:
        fit = model.fit(x, y, epochs=settings.epochs, batch_size=settings.batch_size, verbose=verbose, callbacks=callbacks, **validation)
    seconds = time.perf_counter() - started
    if settings.mixed_precision:  # stored and served in float32: the same weights in a float32 network
        keras.mixed_precision.set_global_policy("float32")
        trained, model = model, architectures.build(settings.architecture, recipe.input, recipe.output)
        model.set_weights([np.asarray(w, dtype=np.float32) for w in trained.get_weights()])
    probabilities = predict_probabilities(model, x_test, recipe)
    run_settings = {
        **dataclasses.asdict(settings),
        "optimizer": "adamw" if settings.weight_decay else "adam",
        "loss": loss.name,
        "train_images": int(len(x_train)),
        "validation_images": int(len(data.x_val)) if has_validation else int(len(x_train) * settings.validation_split),
        "training_seconds": round(seconds, 1),
    }
    history = {key: [round(float(v), 6) for v in values] for key, values in fit.history.items()}
    if settings.restore_best:
        run_settings["best_epoch"] = int(np.argmax(history["val_accuracy"]) + 1)
    metrics = evaluation.evaluate(y_test, probabilities, recipe.output.labels)
    return TrainingRun(version, model, settings, metrics, history, run_settings, x_test, y_test, probabilities)


def _augmented(x: np.ndarray, y: np.ndarray, settings: Training, value_range: list[float]):
    """A shuffled, batched tf.data pipeline with the recipe's random changes (Training.augment), applied
    per example to the model's input; values stay within the card's (scaled) range."""
    import tensorflow as tf

    changes = dict(entry.partition(":")[::2] for entry in settings.augment)
    low, high = value_range

    def augment(image, label):
        if "flip_lr" in changes:
            image = tf.image.random_flip_left_right(image)
        if "flip_ud" in changes:
            image = tf.image.random_flip_up_down(image)
        if "rot90" in changes:
            image = tf.image.rot90(image, tf.random.uniform([], 0, 4, dtype=tf.int32))
        if "brightness" in changes:
            amount = float(changes["brightness"])
            image = image * tf.random.uniform([], 1 - amount, 1 + amount)
        if "contrast" in changes:
            amount, mean = float(changes["contrast"]), tf.reduce_mean(image)
            image = (image - mean) * tf.random.uniform([], 1 - amount, 1 + amount) + mean
        image = tf.clip_by_value(image, low, high)
        if "cutout" in changes:
            image = _cutout(image, float(changes["cutout"]), low)
        return image, label

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=settings.seed, reshuffle_each_iteration=True)
    return dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE).batch(settings.batch_size).prefetch(tf.data.AUTOTUNE)


def _cutout(image, fraction: float, fill: float):
    """Half the time, a square of up to ``fraction`` of the side, at a random place, set to ``fill``."""
    import tensorflow as tf

    height, width = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.cast(tf.random.uniform([]) * fraction * tf.cast(height, tf.float32), tf.int32)
    top = tf.random.uniform([], 0, tf.maximum(height - side, 1), dtype=tf.int32)
    left = tf.random.uniform([], 0, tf.maximum(width - side, 1), dtype=tf.int32)
    rows, columns = tf.range(height)[:, None], tf.range(width)[None, :]
    inside = (rows >= top) & (rows < top + side) & (columns >= left) & (columns < left + side)
    keep = tf.logical_or(tf.random.uniform([]) >= 0.5, tf.logical_not(inside))[..., None]
    return tf.where(keep, image, tf.cast(fill, image.dtype))


def card_for(recipe: Recipe, run: TrainingRun, data: Dataset, slices: dict | None, engines: dict | None = None) -> ModelCard:
    """The card of a trained version: what it takes and answers (the recipe's), how it was made and how it does."""
    from models.store import MODEL_FILE, framework_versions

    return ModelCard(
        name=recipe.name,
        version=run.version,
        description=f"{recipe.description} {run.training.description}",
        task=recipe.task,
        input=recipe.input,
        preprocessing=recipe.preprocessing,
        output=recipe.output,
        architecture=run.training.architecture,
        number_of_parameters=int(run.model.count_params()),
        metrics=run.metrics,
        slices=slices,
        training=run.settings,
        history=run.history,
        data={"source": data.source, "sha256": data.fingerprint, **({"split": data.split} if data.split else {})},
        framework_versions=framework_versions(),
        engines=engines or {"tensorflow": {"file": MODEL_FILE}},
    )
