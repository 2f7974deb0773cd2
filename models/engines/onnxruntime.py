"""ONNX Runtime: a version's verified ONNX export (training/export.py), or the ONNX file it was imported as
(an ONNX model, a converted scikit-learn estimator: training/onnx_import.py, training/sklearn_import.py).
Never imports TensorFlow: a runner on it starts in a fraction of the time and memory. ONNX Runtime
itself is imported when an engine is made, not with this module.

The card's ``engines.onnxruntime`` entry may name the graph's ``input`` and ``output`` (the class
probabilities of a converted classifier are its second output, after the labels); the first of each
otherwise. A model with several named inputs or outputs (``card.inputs``, ``card.outputs``) takes and
answers them packed (models/tensors.py); its entry's ``inputs`` and ``outputs`` list the graph's names
in the card's order, the card's own names otherwise."""

from __future__ import annotations

import numpy as np

from models.card import ModelCard
from models.engines import register
from models.engines.base import Engine, EngineInputError
from models.inference import class_probabilities
from models.preprocessing import to_model_input
from models.tensors import TooLong, by_shape, pack


def _as_text(name: str, values: np.ndarray) -> np.ndarray:
    """BYTES values as the str objects ONNX Runtime's string tensors take (bytes objects it would read as their repr)."""
    text = np.empty(values.shape, dtype=object)
    try:
        text.flat[:] = [value.decode() for value in values.flat]
    except UnicodeDecodeError as exc:
        raise EngineInputError(f"{name}: the model takes UTF-8 text; got bytes that are not ({exc.reason} at byte {exc.start})") from None
    return text


@register
class OnnxRuntimeEngine(Engine):
    name = "onnxruntime"
    title = "ONNX Runtime"
    packages = ()  # requirements.txt has onnxruntime
    fallback = "tensorflow"  # a version without a verified ONNX export runs on its Keras model

    def __init__(self, path: str | bytes, card: ModelCard, threads: int = 1):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # one runner must not take every core of the machine
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        entry = card.engines.get(self.name, {})
        self.input_name = entry.get("input") or self.session.get_inputs()[0].name
        self.outputs = [entry.get("output") or self.session.get_outputs()[0].name]
        self.input_names = dict(zip((spec.name for spec in card.inputs), entry.get("inputs") or [spec.name for spec in card.inputs], strict=True))
        if card.outputs:
            self.outputs = list(entry.get("outputs") or [spec.name for spec in card.outputs])
        self.card = card

    @classmethod
    def load(cls, stored, card: ModelCard, threads: int = 1) -> OnnxRuntimeEngine:
        return cls(stored.path_of(cls.artefact(card)), card, threads)

    def infer(self, values: np.ndarray) -> np.ndarray:
        card = self.card
        if card.inputs:
            return by_shape(card.inputs, values, self._run_named)
        return class_probabilities(self._run({self.input_name: to_model_input(values, card.input)})[0], card.output)

    def _run_named(self, tensors: dict[str, np.ndarray]) -> np.ndarray:
        """Examples of one shape of named inputs: their answers, packed named outputs or class probabilities."""
        card = self.card
        outputs = self._run({self.input_names[name]: _as_text(name, tensor) if tensor.dtype == object else tensor for name, tensor in tensors.items()})
        if card.outputs:
            try:
                return pack(card.outputs, {spec.name: output for spec, output in zip(card.outputs, outputs, strict=True)})
            except TooLong as exc:  # this request's answer, not the engine: its own 422
                raise EngineInputError(f"the model answered {exc} (--max-bytes at import)") from None
        return class_probabilities(outputs[0], card.output)

    def _run(self, feeds: dict[str, np.ndarray]) -> list:
        try:
            return self.session.run(self.outputs, feeds)
        except Exception as exc:  # ONNX Runtime's InvalidArgument: the values, not the engine (a Gather index out of range)
            if type(exc).__name__ != "InvalidArgument":
                raise
            raise EngineInputError(f"the model refused the values: {str(exc).split(' : ')[-1].strip()}") from None
