"""Model outputs as the server's answers, by the card: shared by the engines (models/engines/),
training, evaluation and import. A classifier's answer is one probability per label (a sigmoid unit
becomes two columns); any other output is the model's own values, one row per example.

    >>> class_probabilities(sigmoid_outputs, card.output).shape       # one column per label
    (N, 2)
    >>> predict_probabilities(keras_model, values, card)              # many examples, with Keras
"""

from __future__ import annotations

import numpy as np

from models.card import ModelCard, OutputSpec
from models.preprocessing import to_model_input
from models.tensors import blank, by_shape, pack


def class_probabilities(outputs: np.ndarray, output: OutputSpec) -> np.ndarray:
    """The network's outputs as the answer: a sigmoid unit becomes two columns (one probability per
    label); any other output is its values, shaped (N, *output.answer_shape)."""
    outputs = np.asarray(outputs, dtype=np.float32)
    if output.kind != "sigmoid":
        return outputs.reshape(len(outputs), *output.answer_shape)
    positive = outputs.reshape(len(outputs), 1)
    columns = [1.0 - positive, positive] if output.labels.index(output.positive_label) == 1 else [positive, 1.0 - positive]
    return np.concatenate(columns, axis=1)


def warm_up(forward, card: ModelCard) -> np.ndarray:
    """One inference on a blank example, checked: the first client request pays no tracing cost."""
    low = card.input.value_range[0] if card.input.value_range else 0
    answers = forward(blank(card.inputs) if card.named_inputs else np.full((1, *card.input.shape), low, dtype=np.float32))
    expected = (1, *card.output.answer_shape)
    if answers.shape != expected or (answers.dtype.kind == "f" and not np.isfinite(answers).all()):
        raise RuntimeError(f"warm-up inference returned shape {answers.shape} (expected {expected}) or non-finite values")
    return answers


def keras_input(tensor: np.ndarray):
    """BYTES values (an object array) as the string tensor Keras' predict takes; other tensors as they are."""
    if tensor.dtype != object:
        return tensor
    import tensorflow as tf  # a Keras model with a string input runs on TensorFlow

    return tf.constant(tensor.tolist(), dtype=tf.string, shape=tensor.shape)


def predict_probabilities(model, values: np.ndarray, card) -> np.ndarray:
    """Class probabilities of many examples with Keras' ``predict`` (training and evaluation), in batches.

    ``card`` is anything with ``input`` and ``output`` specs (a card or a recipe).
    """
    if getattr(card, "inputs", ()):  # several named tensors, packed (models/tensors.py): Keras takes them as a list in the card's order

        def answers(tensors: dict[str, np.ndarray]) -> np.ndarray:
            outputs = model.predict([keras_input(tensor) for tensor in tensors.values()], batch_size=256, verbose=0)
            if card.outputs:
                outputs = outputs.values() if isinstance(outputs, dict) else outputs if len(card.outputs) > 1 else [outputs]
                return pack(card.outputs, {spec.name: np.asarray(output) for spec, output in zip(card.outputs, outputs, strict=True)})
            return class_probabilities(outputs, card.output)

        return by_shape(card.inputs, values, answers)
    return class_probabilities(model.predict(to_model_input(values, card.input), batch_size=256, verbose=0), card.output)
