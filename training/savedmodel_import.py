"""Bring a TensorFlow SavedModel directory (``model.export(...)``, ``tf.saved_model.save``, what TF Serving
loads): one signature converted to ONNX at import time (tf2onnx), verified against the signature itself.

The signature (``serving_default`` unless named) must take one float tensor, fixed apart from the batch
axis, and answer one tensor (or the one named with ``output``), which is what ``task`` says
(training/tasks.py). The conversion is run with ONNX Runtime on the evaluation examples (or generated
ones) against the signature run by TensorFlow, and kept only within the export tolerance (relative to
the values' size for outputs that are not probabilities); the figures go on the card. The stored
version is the ONNX file alone: the server needs no TensorFlow for it. A graph tf2onnx cannot convert
(an operator it lacks) is refused naming it.

    >>> card, content, predict = inspect_savedmodel("export/shapes/1", name="shapes", version="v1", labels=["circle", "square"])
    >>> card.engines["onnxruntime"]["verification"]["against"]
    'the SavedModel signature'
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from models.card import ImagePreprocessing, InputSpec, ModelCard
from models.inference import class_probabilities
from models.preprocessing import to_model_input
from models.store import ONNX_FILE
from training.datasets import sha256_of
from training.export import ONNX_TOLERANCE, probe_examples
from training.importing import ImportRefused, check_names, package_version
from training.tasks import card_task, output_for

ONNX_OPSET = 17


def inspect_savedmodel(
    path: str | Path,
    name: str,
    version: str,
    labels: list[str] | None,
    signature: str = "serving_default",
    output: str | None = None,
    task: str = "classification",
    targets=None,
    threshold: float = 0.5,
    kind: str | None = None,
    value_range: tuple[float, float] | None = None,
    divide_by: float | None = None,
    positive_label: str | None = None,
    description: str | None = None,
    evaluation: np.ndarray | None = None,
) -> tuple[ModelCard, bytes, Callable[[np.ndarray], np.ndarray]]:
    """Load, convert and verify: (card without metrics, the ONNX file, the signature's answers on client values). Raises ImportRefused."""
    import tensorflow as tf

    check_names(name, version)
    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        raise ImportRefused(f"{path}: not a SavedModel directory (no saved_model.pb in it)")
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        raise ImportRefused(f"{path} is not a SavedModel this TensorFlow ({tf.__version__}) can load: {type(exc).__name__}: {exc}") from None
    if signature not in loaded.signatures:
        raise ImportRefused(f"--signature {signature!r}: the SavedModel's signatures are {', '.join(loaded.signatures) or 'none'}")
    function = loaded.signatures[signature]
    inputs = function.structured_input_signature[1]
    if len(inputs) != 1 or function.structured_input_signature[0]:
        raise ImportRefused(f"signature {signature} takes {len(inputs)} named inputs ({', '.join(inputs)}); one input tensor is served")
    (input_name, spec), outputs = next(iter(inputs.items())), function.structured_outputs
    if not spec.dtype.is_floating:
        raise ImportRefused(f"input {input_name!r} is {spec.dtype.name}; a float input is served")
    dims = tuple(spec.shape.as_list()[1:])
    if not dims or None in dims:
        raise ImportRefused(f"input {input_name!r} has the shape {spec.shape.as_list()}: every dimension but the batch must be fixed")
    chosen = output or (next(iter(outputs)) if len(outputs) == 1 else None)
    if chosen is None or chosen not in outputs:
        raise ImportRefused(f"signature {signature} answers {', '.join(outputs)}: name the one to serve with --output")
    output_spec = output_for(task, tuple(outputs[chosen].shape.as_list()[1:]), labels, targets, threshold, positive_label)
    is_image = kind == "image" or (kind is None and len(dims) == 3 and dims[2] in (1, 3))
    if is_image:
        input_spec = InputSpec(kind="image", shape=dims, value_range=value_range or (0, 255), divide_by=divide_by)
        preprocessing = ImagePreprocessing(colour_mode="RGB" if dims[2] == 3 else "L", aspect="pad", resize="bilinear", invert="never")
    else:
        input_spec, preprocessing = InputSpec(kind="tensor", shape=dims, value_range=value_range, divide_by=divide_by), None

    def predict(values: np.ndarray) -> np.ndarray:
        raw = function(**{input_name: tf.constant(to_model_input(np.asarray(values), input_spec), dtype=spec.dtype)})[chosen].numpy()
        return class_probabilities(raw, output_spec)

    content = _convert(tf, function, input_name, chosen, spec)
    fits = evaluation is not None and np.asarray(evaluation).shape[1:] == dims  # a wrong shape is refused later, by the evaluation's check
    examples = np.asarray(evaluation) if fits else probe_examples(SimpleNamespace(input=input_spec))
    verification = _verify(content, examples, input_spec, output_spec, predict)
    card = ModelCard(
        name=name,
        version=version,
        description=description or f"the SavedModel {path.name}, signature {signature}",
        task=card_task(output_spec, is_image),
        input=input_spec,
        preprocessing=preprocessing,
        output=output_spec,
        architecture=f"savedmodel:{path.name}",
        number_of_parameters=max(sum(int(np.prod(v.shape)) for v in getattr(loaded, "variables", [])), 1),
        metrics=None,
        training={
            "imported_from": path.name,
            "framework": "tensorflow-savedmodel",
            "signature": signature,
            "converted_with": f"tf2onnx {package_version('tf2onnx')}, opset {ONNX_OPSET}",
            "imported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        },
        data={"source": None, "sha256": {"saved_model.pb": sha256_of(path / "saved_model.pb")}},
        framework_versions={"tensorflow": package_version("tensorflow"), "tf2onnx": package_version("tf2onnx")},
        engines={"onnxruntime": {"file": ONNX_FILE, "input": "input", "sha256": hashlib.sha256(content).hexdigest(), "verification": verification}},
    )
    return card, content, predict


def _convert(tf, function, input_name: str, output: str, spec) -> bytes:
    """The signature as an ONNX graph of one input, ``input``, and one output."""
    import tf2onnx

    signature = [tf.TensorSpec(spec.shape, spec.dtype, name="input")]
    wrapped = tf.function(lambda x: function(**{input_name: x})[output], input_signature=signature, autograph=False)
    try:
        model, _ = tf2onnx.convert.from_function(wrapped, input_signature=signature, opset=ONNX_OPSET)
    except Exception as exc:  # an operator tf2onnx cannot convert, a graph it cannot read
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ImportRefused(f"tf2onnx cannot convert the signature to ONNX: {type(exc).__name__}: {first}. Export the model to ONNX yourself and import the .onnx") from None
    return model.SerializeToString()


def _verify(content: bytes, examples: np.ndarray, input_spec: InputSpec, output_spec, predict) -> dict:
    """The conversion on ONNX Runtime against the signature on TensorFlow: the figures, or ImportRefused."""
    import onnxruntime

    session = onnxruntime.InferenceSession(content, providers=["CPUExecutionProvider"])
    values = np.asarray(examples)
    converted = class_probabilities(session.run(None, {"input": to_model_input(values, input_spec)})[0], output_spec)
    expected = predict(values)
    difference = np.abs(converted - expected)
    relative = not output_spec.labels
    judged = float((difference / np.maximum(np.abs(expected), 1.0)).max() if relative else difference.max())
    figures = {
        "examples": int(len(values)),
        "max_abs_diff": float(difference.max()),
        **({"max_rel_diff": judged} if relative else {}),
        "tolerance": ONNX_TOLERANCE,
        "onnxruntime": onnxruntime.__version__,
        "against": "the SavedModel signature",
    }
    if not judged <= ONNX_TOLERANCE:
        raise ImportRefused(
            f"the ONNX conversion disagrees with the SavedModel on {len(values)} examples: max {'relative ' if relative else ''}|difference| {judged:.3g} (tolerance {ONNX_TOLERANCE})"
        )
    return figures
