"""TensorFlow: a version's Keras model (``model.keras``), which every version has. TensorFlow and Keras
are imported when an engine is loaded, never with this module."""

from __future__ import annotations

import logging

import numpy as np

from models.card import DYNAMIC, ModelCard
from models.engines import register
from models.engines.base import Engine, EngineInputError
from models.inference import class_probabilities
from models.preprocessing import to_model_input
from models.tensors import TooLong, by_shape, dtype_of, pack

log = logging.getLogger(__name__)


@register
class TensorFlowEngine(Engine):
    """A Keras model behind a ``tf.function`` with a fixed signature: ``model.predict`` costs tens of
    milliseconds per call whatever the batch size, this well under one for one image."""

    name = "tensorflow"
    title = "TensorFlow"
    packages = ("requirements-tensorflow.txt",)
    fallback = "onnxruntime"  # a version imported as an ONNX file (or converted from scikit-learn) has no Keras model

    def __init__(self, model, card: ModelCard, threads: int | None = None):
        import tensorflow as tf

        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:  # TensorFlow already ran something in this process: its pools are fixed
                log.warning("TensorFlow's thread pools were already set up; threads=%d not applied", threads)
        self.model = model
        self.card = card
        if card.inputs:  # a list in the card's order, which is the model's (training/importing.py)
            signature = [
                [
                    tf.TensorSpec([None, *(None if dim == DYNAMIC else dim for dim in spec.shape)], tf.string if spec.datatype == "BYTES" else tf.as_dtype(dtype_of(spec)))
                    for spec in card.inputs
                ]
            ]
        else:
            signature = [tf.TensorSpec([None, *card.input.shape], tf.float32)]
        self._forward = tf.function(lambda x: model(x, training=False), input_signature=signature, reduce_retracing=True)

    @classmethod
    def load(cls, stored, card: ModelCard, threads: int = 1) -> TensorFlowEngine:
        from models import store

        return cls(store.load_keras(card.name, card.version, stored), card, threads)

    def infer(self, values: np.ndarray) -> np.ndarray:
        card = self.card
        if card.inputs:
            return by_shape(card.inputs, values, lambda tensors: self._answers(list(tensors.values())))
        return self._answers(to_model_input(values, card.input))

    def _answers(self, x) -> np.ndarray:
        """Examples of one shape: packed named outputs, or the output as the card's answer."""
        import tensorflow as tf

        card = self.card
        try:
            outputs = self._forward(x)
        except tf.errors.InvalidArgumentError as exc:  # the values, not the engine (an embedding index out of range)
            raise EngineInputError(f"the model refused the values: {exc.message.splitlines()[0]}") from None
        if card.outputs:
            if isinstance(outputs, dict):
                outputs = [outputs[spec.name] for spec in card.outputs]
            elif len(card.outputs) == 1:  # one named output (a string one): the model answers it alone
                outputs = [outputs]
            try:
                return pack(card.outputs, {spec.name: np.asarray(output) for spec, output in zip(card.outputs, outputs, strict=True)})
            except TooLong as exc:  # this request's answer, not the engine: its own 422
                raise EngineInputError(f"the model answered {exc} (--max-bytes at import)") from None
        return class_probabilities(np.asarray(outputs), card.output)
