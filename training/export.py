"""Exports of a trained Keras model for other engines, each verified before it is stored.

:func:`onnx_export` writes the ONNX export (Keras' ``model.export(format="onnx")``, tf2onnx) and
runs it with ONNX Runtime on the model's own evaluation examples: it is kept only if its outputs
match Keras' within :data:`ONNX_TOLERANCE` and every example gets the same top class. The card
records the figures either way (``engines.onnxruntime``), and the file only when it passed.

    >>> content, entry = onnx_export(keras_model, card, x_test)
    >>> entry
    {'file': 'model.onnx', 'verification': {'examples': 10000, 'max_abs_diff': 7.5e-08, 'top1_agreement': 1.0, ...}}

:func:`tfserving_export` writes the SavedModel layout TensorFlow Serving loads, ``<dir>/<name>/<n>/``,
whose signature takes the values clients send this server (scaling inside it), so one request body
works against both: ``tfserving_export(keras_model, card, "export", 1)``.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path

import numpy as np

from models.card import ModelCard
from models.engines import ONNX_FILE, OnnxRuntimeEngine
from models.inference import predict_probabilities
from models.store import MODEL_FILE
from models.tensors import dtype_of, numbers_of, pack, unpack

log = logging.getLogger(__name__)

ONNX_TOLERANCE = 1e-4  # largest absolute difference of a probability allowed between ONNX Runtime and Keras
PROBE_EXAMPLES = 256  # examples to verify on when the model came without evaluation data


def probe_examples(card: ModelCard, count: int = PROBE_EXAMPLES, seed: int = 0) -> np.ndarray:
    """Random examples in the card's value range (or standard normal values without one)."""
    rng = np.random.default_rng(seed)
    if getattr(card, "inputs", ()):  # several named tensors: each in a range its datatype holds, packed
        if not any(spec.dynamic for spec in card.inputs):
            return pack(card.inputs, _probe_arrays(card.inputs, count, rng, lambda spec: spec.shape))
        # Dynamic dimensions: a third of the examples at their bound, a third at their smallest, a third half-way.
        groups = []
        for part, pick in enumerate((lambda low, high: high, lambda low, high: low, lambda low, high: (low + high) // 2)):
            size = count // 3 + (1 if part < count % 3 else 0)
            shapes = lambda spec, pick=pick: tuple(pick(low, high) for low, high in zip(spec.smallest, spec.bound, strict=True))  # noqa: E731
            groups.append(pack(card.inputs, _probe_arrays(card.inputs, size, rng, shapes)))
        return np.concatenate(groups)
    if card.input.value_range is None:
        return rng.standard_normal((count, *card.input.shape)).astype(np.float32)
    low, high = card.input.value_range
    return rng.uniform(low, high, (count, *card.input.shape)).astype(np.float32)


def _probe_arrays(specs, count: int, rng, shape_of) -> dict[str, np.ndarray]:
    arrays = {}
    for spec in specs:
        dtype = dtype_of(spec)
        shape = (count, *shape_of(spec))
        if dtype.kind == "f":
            arrays[spec.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            arrays[spec.name] = rng.integers(0, 2, shape).astype(bool)
        elif spec.max_bytes is not None:  # text: empty, one word, a few
            arrays[spec.name] = np.array([[b"", b"probe", b"probe text of words"][i % 3][: spec.max_bytes] for i in range(np.prod(shape))], dtype=object).reshape(shape)
        else:  # 0 or 1: valid indices into any embedding table, and counts
            arrays[spec.name] = rng.integers(0, 2, shape).astype(dtype)
    return arrays


@contextlib.contextmanager
def _quiet(logger: str):
    """A library's logger silenced for a while (its level restored after)."""
    log_of = logging.getLogger(logger)
    level = log_of.level
    log_of.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        log_of.setLevel(level)


def onnx_export(model, card: ModelCard, examples: np.ndarray) -> tuple[bytes | None, dict]:
    """The verified ONNX export of ``model`` and its ``engines.onnxruntime`` entry, or (None, the reason).

    Every step of the conversion and of running it is inside the fallback: a model the exporter or
    ONNX Runtime cannot handle (an adapted ``Normalization`` layer's constants become graph inputs)
    gets a reason, never an exception."""
    examples = np.asarray(examples).reshape(len(examples), *card.input.shape)
    graph: dict = {}  # a model with named tensors: the graph's names of its inputs and outputs, in the card's order
    with tempfile.TemporaryDirectory(prefix="onnx-export-") as directory:
        path = Path(directory) / ONNX_FILE
        try:
            import onnxruntime

            model(
                list(unpack(card.inputs, examples[:1]).values()) if card.inputs else np.zeros((1, *card.input.shape), dtype=np.float32)
            )  # a loaded model must have been called once
            with _quiet("tf2onnx"):  # an op it cannot convert is logged with a traceback; the reason below says it once
                model.export(str(path), format="onnx", verbose=False)
            if card.inputs:
                session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                graph = {"inputs": [i.name for i in session.get_inputs()], "outputs": [o.name for o in session.get_outputs()] if card.outputs else None}
                card = card.model_copy(update={"engines": {**card.engines, "onnxruntime": {key: value for key, value in graph.items() if value}}})
            engine = OnnxRuntimeEngine(str(path), card, threads=2)
            exported = np.concatenate([engine(examples[i : i + 256]) for i in range(0, len(examples), 256)])
            if exported.shape != (len(examples), *card.output.answer_shape):
                raise ValueError(f"it answers {list(exported.shape)} for {len(examples)} examples of {list(card.output.answer_shape)}")
        except Exception as exc:  # any failure of the exporter or ONNX Runtime: serve with TensorFlow
            reason = f"the ONNX export failed: {type(exc).__name__}: {str(exc).rstrip('.')}"
            log.debug("%s: %s", card.tag, reason)  # with_onnx prints it: said once
            return None, {"reason": reason}
        expected = predict_probabilities(model, examples, card)
        verification, disagreement = agreement(card, exported, expected)
        verification["onnxruntime"] = onnxruntime.__version__
        if disagreement:
            reason = f"the ONNX export disagrees with Keras: {disagreement}"
            log.debug("%s: %s; not stored", card.tag, reason)
            return None, {"reason": reason, "verification": verification}
        return path.read_bytes(), {"file": ONNX_FILE, **{key: value for key, value in graph.items() if value}, "verification": verification}


def agreement(card: ModelCard, exported: np.ndarray, expected: np.ndarray) -> tuple[dict, str | None]:
    """The verification figures of an export's answers against Keras', and what disagrees (None: they agree).
    Probabilities: absolute differences and the same top class; other values: relative to their size
    (float32 holds about seven digits); strings of named outputs: equal."""
    strings_differ = []
    if card.outputs:  # packed bytes: compared as the numbers they hold, and the strings as they are
        texts = tuple(spec.name for spec in card.outputs if spec.max_bytes is not None)
        ours, theirs = unpack(card.outputs, exported, only=texts), unpack(card.outputs, expected, only=texts)
        strings_differ = [name for name in texts if not np.array_equal(ours[name], theirs[name])]
        exported, expected = numbers_of(card, exported), numbers_of(card, expected)
    difference = np.abs(exported - expected)
    largest = float(difference.max()) if difference.size else 0.0  # a model answering strings alone has no numbers
    verification: dict = {"examples": int(len(exported)), "max_abs_diff": largest, "tolerance": ONNX_TOLERANCE}
    if card.output.labels:
        verification["top1_agreement"] = float((exported.argmax(axis=1) == expected.argmax(axis=1)).mean())
        agrees = largest <= ONNX_TOLERANCE and verification["top1_agreement"] == 1.0  # NaN disagrees too
        figures = f"max |difference| {largest:.3g}, top class agreement {verification['top1_agreement']:.4f}"
    else:
        verification["max_rel_diff"] = float((difference / np.maximum(np.abs(expected), 1.0)).max()) if difference.size else 0.0
        agrees = verification["max_rel_diff"] <= ONNX_TOLERANCE
        figures = f"max |difference| {largest:.3g}, relative {verification['max_rel_diff']:.3g}"
    if strings_differ:
        verification["strings_differ"] = strings_differ
        return verification, f"{figures}; other strings in {', '.join(strings_differ)}"
    return verification, None if agrees else figures


def with_onnx(card: ModelCard, model, examples: np.ndarray, files: dict) -> ModelCard:
    """The card with its engines after an ONNX export of ``model`` (added to ``files`` when verified)."""
    content, entry = onnx_export(model, card, examples)
    if content is not None:
        files[ONNX_FILE] = content
        check = entry["verification"]
        agreement = f", top class agreement {check['top1_agreement']:.4f}" if "top1_agreement" in check else f", relative {check['max_rel_diff']:.2g}"
        print(f"ONNX export verified on {check['examples']:,} examples: max |difference| {check['max_abs_diff']:.2g}{agreement}")
    else:
        print(f"ONNX export not stored ({entry['reason']}); {card.tag} serves with TensorFlow")
    return card.model_copy(update={"engines": {"tensorflow": {"file": MODEL_FILE}, "onnxruntime": entry}})


# The signature's tensors, named as serving/protocols/tfserving.py describes them (and v2.py names them).
SIGNATURE, SIGNATURE_INPUT, SIGNATURE_OUTPUT = "serving_default", "input", "probabilities"


def tfserving_export(model, card: ModelCard, directory: str | Path, number: int) -> Path:
    """``<directory>/<card.name>/<number>/`` (saved_model.pb, variables/): a SavedModel whose
    ``serving_default`` signature takes the card's raw values, ``input`` float32 [-1, *shape], and
    answers ``probabilities`` float32 [-1, classes], what this server's routes answer.

    The card's scaling and the sigmoid's two columns are the graph's versions of
    ``models.preprocessing.to_model_input`` and ``models.inference.class_probabilities``: TF Serving
    runs the graph alone.
    """
    import tensorflow as tf

    divide_by = card.input.divide_by
    output = card.output
    positive_first = output.kind == "sigmoid" and output.labels.index(output.positive_label) == 0

    class Serving(tf.Module):
        def __init__(self, keras_model):
            super().__init__()
            self.model = keras_model

        @tf.function(input_signature=[tf.TensorSpec([None, *card.input.shape], tf.float32, name=SIGNATURE_INPUT)])
        def serve(self, input):  # noqa: A002 - the argument's name is the signature's input name
            x = input / divide_by if divide_by else input
            y = tf.cast(self.model(x, training=False), tf.float32)
            if output.kind == "sigmoid":
                positive = tf.reshape(y, [-1, 1])
                y = tf.concat([positive, 1.0 - positive] if positive_first else [1.0 - positive, positive], axis=1)
            return {SIGNATURE_OUTPUT: y}

    path = Path(directory) / card.name / str(number)
    if path.exists():
        raise FileExistsError(f"{path} exists; TF Serving loads each version directory once: remove it first")
    module = Serving(model)
    tf.saved_model.save(module, str(path), signatures={SIGNATURE: module.serve})
    return path
