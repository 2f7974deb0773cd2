"""A compiled forward pass: client values in, class probabilities out, without Keras' per-call overhead.

``model.predict`` costs tens of milliseconds per call whatever the batch size; a ``tf.function``
with a fixed signature runs one image in well under a millisecond.

    >>> forward = Predictor(keras_model, card)
    >>> forward(values).shape             # values: (N, *card.input.shape) as clients send them
    (N, card.classes)
"""

from __future__ import annotations

import numpy as np

from models.card import ModelCard, OutputSpec
from models.preprocessing import to_model_input


def class_probabilities(outputs: np.ndarray, output: OutputSpec) -> np.ndarray:
    """The network's outputs as one probability per label: a sigmoid unit becomes two columns."""
    outputs = np.asarray(outputs, dtype=np.float32)
    if output.kind == "softmax":
        return outputs
    positive = outputs.reshape(len(outputs), 1)
    columns = [1.0 - positive, positive] if output.labels.index(output.positive_label) == 1 else [positive, 1.0 - positive]
    return np.concatenate(columns, axis=1)


def warm_up(forward, card: ModelCard) -> np.ndarray:
    """One inference on a blank example, checked: the first client request pays no tracing cost."""
    low = card.input.value_range[0] if card.input.value_range else 0
    probabilities = forward(np.full((1, *card.input.shape), low, dtype=np.float32))
    if probabilities.shape != (1, card.classes) or not np.isfinite(probabilities).all():
        raise RuntimeError(f"warm-up inference returned shape {probabilities.shape} (expected (1, {card.classes})) or non-finite values")
    return probabilities


class Predictor:
    """TensorFlow: a Keras model behind a ``tf.function``."""

    def __init__(self, model, card: ModelCard):
        import tensorflow as tf

        self.model = model
        self.card = card
        self._forward = tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec([None, *card.input.shape], tf.float32)],
            reduce_retracing=True,
        )

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return class_probabilities(self._forward(to_model_input(values, self.card.input)).numpy(), self.card.output)

    def warm_up(self) -> np.ndarray:
        return warm_up(self, self.card)


def predict_probabilities(model, values: np.ndarray, card) -> np.ndarray:
    """Class probabilities of many examples with Keras' ``predict`` (training and evaluation), in batches.

    ``card`` is anything with ``input`` and ``output`` specs (a card or a recipe).
    """
    return class_probabilities(model.predict(to_model_input(values, card.input), batch_size=256, verbose=0), card.output)
