"""Inference engines: run a stored version on ONNX Runtime (its verified export) or on TensorFlow.

Both take client values (N, *card.input.shape), apply the card's preprocessing with the function
training used (``models.preprocessing.to_model_input``) and answer one probability per label.
``OnnxRuntimeEngine`` never imports TensorFlow: a runner on it starts in a fraction of the time and
memory.

    >>> engine = load(stored, card, preferred="onnxruntime", threads=1)
    >>> engine.name, engine(values).shape
    ('onnxruntime', (N, card.classes))
"""

from __future__ import annotations

import logging

import numpy as np

from models.card import ModelCard
from models.inference import class_probabilities, warm_up
from models.preprocessing import to_model_input

log = logging.getLogger(__name__)

ENGINES = ("onnxruntime", "tensorflow")
ONNX_FILE = "model.onnx"


class OnnxRuntimeEngine:
    name = "onnxruntime"

    def __init__(self, path: str, card: ModelCard, threads: int = 1):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # one runner must not take every core of the machine
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.card = card

    def __call__(self, values: np.ndarray) -> np.ndarray:
        outputs = self.session.run(None, {self.input_name: to_model_input(values, self.card.input)})[0]
        return class_probabilities(outputs, self.card.output)

    def warm_up(self) -> np.ndarray:
        return warm_up(self, self.card)


class TensorFlowEngine:
    """A Keras model behind a ``tf.function`` with a fixed signature: ``model.predict`` costs tens of
    milliseconds per call whatever the batch size, this well under one for one image."""

    name = "tensorflow"

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
        self._forward = tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec([None, *card.input.shape], tf.float32)],
            reduce_retracing=True,
        )

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return class_probabilities(self._forward(to_model_input(values, self.card.input)).numpy(), self.card.output)

    def warm_up(self) -> np.ndarray:
        return warm_up(self, self.card)


def can_run(card: ModelCard, engine: str) -> bool:
    """The version has a stored, verified file for ``engine``."""
    return "file" in card.engines.get(engine, {})


def choose(card: ModelCard, preferred: str) -> str:
    """The engine a runner uses: the configured one, or TensorFlow when the version has no verified
    ONNX export (trained or imported before there were exports, or one that disagreed)."""
    if preferred not in ENGINES:
        raise ValueError(f"unknown engine {preferred!r}; known: {', '.join(ENGINES)}")
    if preferred == "onnxruntime" and not can_run(card, "onnxruntime"):
        why = card.engines.get("onnxruntime", {}).get("reason", "it has no ONNX export")
        log.warning("%s runs on TensorFlow: %s", card.tag, why)
        return "tensorflow"
    return preferred


def load(stored, card: ModelCard, preferred: str = "onnxruntime", threads: int = 1):
    """The engine for a stored version (BentoML's stored model), warmed up."""
    engine = choose(card, preferred)
    if engine == "onnxruntime":
        runner = OnnxRuntimeEngine(stored.path_of(card.engines["onnxruntime"]["file"]), card, threads)
    else:
        from models import store

        runner = TensorFlowEngine(store.load_keras(card.name, card.version, stored), card, threads)
    runner.warm_up()
    return runner
