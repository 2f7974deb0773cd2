"""Bring a TensorFlow SavedModel directory (``model.export(...)``, ``tf.saved_model.save``, what TF Serving
loads): one signature converted to ONNX at import time (tf2onnx), verified against the signature itself.

The signature (``serving_default`` unless named) takes one float32 tensor, fixed apart from the batch
axis, and answers one tensor (or the one named with ``output``), which is what ``task`` says
(training/tasks.py); or it takes several named inputs (or one that is not float32), and answers one
output by ``task`` or, with ``task="tensor"``, all of its outputs: named tensors, taken and answered as
clients send them (models/tensors.py), in the order of their names (a signature's tensors are a map,
in no order TensorFlow keeps from one load to the next), with the ONNX graph's own names of them in the card's
``engines.onnxruntime`` entry (``inputs``, ``outputs``: tf2onnx names an output ``Identity:0``). The
conversion is run with ONNX Runtime (the server's engine) on the evaluation examples (or generated ones)
against the signature run by TensorFlow, and kept only within the export tolerance (relative to the
values' size for outputs that are not probabilities); the figures go on the card. The stored version is
the ONNX file alone: the server needs no TensorFlow for it. A graph tf2onnx cannot convert (an operator
it lacks) is refused naming it.

    >>> card, content, predict = inspect_savedmodel("export/shapes/1", name="shapes", version="v1", labels=["circle", "square"])
    >>> card.engines["onnxruntime"]["verification"]["against"]
    'the SavedModel signature'
    >>> card, _, _ = inspect_savedmodel("export/pair/1", name="pair", version="v1", labels=None, task="tensor")
    >>> [spec.name for spec in card.inputs], card.engines["onnxruntime"]["outputs"]
    (['codes', 'features'], ['Identity:0', 'Identity_1:0'])
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from models.card import ImagePreprocessing, InputSpec, ModelCard, OutputSpec, TensorSpec
from models.inference import class_probabilities
from models.preprocessing import to_model_input
from models.store import ONNX_FILE
from models.tensors import by_shape, numbers_of, pack
from training.datasets import sha256_of
from training.export import ONNX_TOLERANCE, probe_examples
from training.importing import ImportRefused, check_names, package_version, tensor_spec
from training.tasks import card_task, output_for

ONNX_OPSET = 17
PLACEHOLDER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # a signature's input name the ONNX graph keeps as its own


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
    dim_range: tuple[int, int] | None = None,
) -> tuple[ModelCard, bytes, Callable[[np.ndarray], np.ndarray]]:
    """Load, convert and verify: (card without metrics, the ONNX file, the signature's answers on client
    values: packed rows for named inputs); an input's dynamic dimensions take sizes in ``dim_range`` (smallest, largest).
    Raises ImportRefused."""
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
    positional, inputs = function.structured_input_signature
    outputs = function.structured_outputs
    if positional or not inputs:
        raise ImportRefused(f"signature {signature} takes {len(positional)} positional and {len(inputs)} named inputs; a signature's inputs are named tensors")
    if not isinstance(outputs, dict) or not outputs:
        raise ImportRefused(f"signature {signature} answers no named outputs; a signature answers a dictionary of tensors")
    common = SimpleNamespace(tf=tf, loaded=loaded, function=function, path=path, name=name, version=version, signature=signature, description=description, dim_range=dim_range)
    (input_name, spec), *others = inputs.items()
    dynamic = spec.shape.rank is not None and None in spec.shape.as_list()[1:]
    if others or spec.dtype != tf.float32 or dynamic or (len(outputs) > 1 and output is None and task == "tensor"):
        if kind == "image" or value_range is not None or divide_by is not None:
            raise ImportRefused(
                "a signature with several inputs (or one that is not float32, or has dynamic dimensions), or all of whose outputs are served (--task tensor), takes named tensors as clients send them: "
                "--scale, --kind image and --range apply to a signature with one float input answering one output"
            )
        return _named(common, output, task, labels, targets, threshold, positive_label)
    dims = tuple(_dims(spec, "input", input_name))
    chosen = output or (next(iter(outputs)) if len(outputs) == 1 else None)
    if chosen is None:
        raise ImportRefused(
            f"signature {signature} answers {len(outputs)} outputs ({', '.join(outputs)}): serve one with --output, or all of them as named tensors with --task tensor"
        )
    if chosen not in outputs:
        raise ImportRefused(f"--output {chosen!r}: signature {signature} answers {', '.join(outputs)}")
    output_spec = output_for(task, tuple(_dims(outputs[chosen], "output", chosen)), labels, targets, threshold, positive_label)
    is_image = kind == "image" or (kind is None and len(dims) == 3 and dims[2] in (1, 3))
    if is_image:
        if not (len(dims) == 3 and dims[2] in (1, 3)):
            raise ImportRefused(f"an image input has the shape [height, width, 1 or 3]; signature {signature} takes {list(dims)}")
        input_spec = InputSpec(kind="image", shape=dims, value_range=value_range or (0, 255), divide_by=divide_by)
        preprocessing = ImagePreprocessing(colour_mode="RGB" if dims[2] == 3 else "L", aspect="pad", resize="bilinear", invert="never")
    else:
        input_spec, preprocessing = InputSpec(kind="tensor", shape=dims, value_range=value_range, divide_by=divide_by), None

    def predict(values: np.ndarray) -> np.ndarray:
        raw = function(**{input_name: tf.constant(to_model_input(np.asarray(values), input_spec), dtype=spec.dtype)})[chosen].numpy()
        return class_probabilities(raw, output_spec)

    content, _, _ = _convert(tf, function, {input_name: "input"}, [chosen])
    card = _card(common, content, input_spec, preprocessing, output_spec, is_image, {"input": "input"})
    fits = evaluation is not None and np.asarray(evaluation).shape[1:] == dims  # a wrong shape is refused later, by the evaluation's check
    examples = np.asarray(evaluation) if fits else probe_examples(card)
    return _verified(card, content, examples, predict), content, predict


def _named(common, output: str | None, task: str, labels, targets, threshold: float, positive_label) -> tuple[ModelCard, bytes, Callable[[np.ndarray], np.ndarray]]:
    """A signature taking several named inputs (or one that is not float32), answering one output by
    ``task`` or every output as named tensors (``--task tensor``): converted, and verified on probe examples."""
    tf, function, signature = common.tf, common.function, common.signature
    given, answered = function.structured_input_signature[1], function.structured_outputs
    # A signature's tensors are a map (in no order TensorFlow keeps from one load to the next): the card takes them by name.
    inputs = tuple(_tensor_spec(name, given[name], "input", common.dim_range) for name in sorted(given))
    outputs: tuple[TensorSpec, ...] = ()
    chosen = output or (next(iter(answered)) if len(answered) == 1 else None)
    if chosen is not None:
        if chosen not in answered:
            raise ImportRefused(f"--output {chosen!r}: signature {signature} answers {', '.join(answered)}")
        output_spec = output_for(task, tuple(_dims(answered[chosen], "output", chosen)), labels, targets, threshold, positive_label)
    elif task != "tensor":
        raise ImportRefused(
            f"signature {signature} answers {len(answered)} outputs ({', '.join(answered)}): serve one with --output, or all of them as named tensors with --task tensor"
        )
    else:
        outputs = tuple(_tensor_spec(name, answered[name], "output") for name in sorted(answered))
        output_spec = OutputSpec.packed(outputs)
    served = [spec.name for spec in outputs] or [chosen]
    # The graph's placeholders keep the signature's names where TensorFlow takes them as names.
    placeholders = {spec.name: spec.name if PLACEHOLDER.fullmatch(spec.name) else f"input_{i}" for i, spec in enumerate(inputs)}
    content, graph_inputs, graph_outputs = _convert(tf, function, placeholders, served)
    if len(graph_inputs) != len(inputs) or len(graph_outputs) != len(served):
        raise ImportRefused(f"the ONNX conversion has the inputs {graph_inputs} and outputs {graph_outputs}; the signature {len(inputs)} inputs and {len(served)} outputs served")
    names = {"inputs": graph_inputs, **({"outputs": graph_outputs} if outputs else {"output": graph_outputs[0]})}
    packed = InputSpec.packed(inputs)
    card = _card(common, content, packed, None, output_spec, False, names, inputs=inputs, outputs=outputs, scaling="none: named tensors are passed as sent")

    def answers_of(tensors: dict[str, np.ndarray]) -> np.ndarray:
        answers = function(**{name: tf.constant(tensors[name], dtype=given[name].dtype) for name in given})
        if outputs:
            return pack(outputs, {spec.name: answers[spec.name].numpy() for spec in outputs})
        return class_probabilities(answers[chosen].numpy(), output_spec)

    def predict(rows: np.ndarray) -> np.ndarray:
        return by_shape(inputs, rows, answers_of)

    return _verified(card, content, probe_examples(card), predict), content, predict


def _dims(spec, what: str, name: str) -> list[int]:
    """One example's dimensions of a signature's tensor (after the batch axis): fixed, or ImportRefused."""
    if spec.shape.rank is None or spec.shape.rank == 0:
        raise ImportRefused(f"the {what} {name} has {'an unknown shape' if spec.shape.rank is None else 'no batch axis (a scalar)'}: a tensor of one row per example is served")
    dims = spec.shape.as_list()
    if dims[0] is not None:
        raise ImportRefused(f"the {what} {name} has the shape {dims}: its first axis must be the batch axis, of any size (None), not {dims[0]}")
    if what == "input" and len(dims) == 1:  # (dynamic dimensions made it named tensors)
        raise ImportRefused(f"the {what} {name} has the shape {['N']}: a float input has at least one dimension per example")
    return dims[1:]


def _tensor_spec(name: str, spec, what: str, dim_range: tuple[int, int] | None = None) -> TensorSpec:
    """A signature's tensor as the card's named tensor (training/importing.tensor_spec's refusals)."""
    if spec.shape.rank is None or spec.shape.rank == 0:
        return tensor_spec(name, spec.dtype.name, [None], what)  # refused, naming it
    dims = spec.shape.as_list()
    if dims[0] is not None:
        _dims(spec, what, name)
    return tensor_spec(name, spec.dtype.name, dims[1:], what, dim_range=dim_range)


def _card(
    common, content: bytes, input_spec: InputSpec, preprocessing, output_spec: OutputSpec, is_image: bool, names: dict[str, Any], scaling: str | None = None, **named
) -> ModelCard:
    """The card of the converted signature (``named``: its inputs and outputs), its ONNX entry naming the
    graph's tensors; not yet verified."""
    path = common.path
    return ModelCard(
        name=common.name,
        version=common.version,
        description=common.description or f"the SavedModel {path.name}, signature {common.signature}",
        task=card_task(output_spec, is_image),
        input=input_spec,
        preprocessing=preprocessing,
        output=output_spec,
        **named,
        architecture=f"savedmodel:{path.name}",
        number_of_parameters=max(sum(int(np.prod(v.shape)) for v in _variables(common)), 1),
        metrics=None,
        training={
            "imported_from": path.name,
            "framework": "tensorflow-savedmodel",
            "signature": common.signature,
            "converted_with": f"tf2onnx {package_version('tf2onnx')}, opset {ONNX_OPSET}",
            "imported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            **({"scaling": scaling} if scaling else {}),
        },
        data={"source": None, "sha256": {"saved_model.pb": sha256_of(path / "saved_model.pb")}},
        framework_versions={"tensorflow": package_version("tensorflow"), "tf2onnx": package_version("tf2onnx")},
        engines={"onnxruntime": {"file": ONNX_FILE, **names, "sha256": hashlib.sha256(content).hexdigest()}},
    )


def _variables(common) -> list:
    """The variables the signature captures (a restored tf.Module has no ``variables`` of its own), or the SavedModel's."""
    return list(getattr(common.function, "variables", None) or getattr(common.loaded, "variables", None) or [])


def _convert(tf, function, inputs: dict[str, str], outputs: list[str]) -> tuple[bytes, list[str], list[str]]:
    """The signature as an ONNX graph taking ``inputs`` (signature name -> placeholder name) and answering
    ``outputs``, in their order: (the file, the graph's input names, its output names)."""
    import tf2onnx

    given = function.structured_input_signature[1]
    signature = [tf.TensorSpec(given[name].shape, given[name].dtype, name=placeholder) for name, placeholder in inputs.items()]
    names = list(inputs)

    def call(*tensors):
        answers = function(**dict(zip(names, tensors, strict=True)))
        return [answers[name] for name in outputs] if len(outputs) > 1 else answers[outputs[0]]

    wrapped = tf.function(call, input_signature=signature, autograph=False)
    try:
        model, _ = tf2onnx.convert.from_function(wrapped, input_signature=signature, opset=ONNX_OPSET)
    except Exception as exc:  # an operator tf2onnx cannot convert, a graph it cannot read
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ImportRefused(f"tf2onnx cannot convert the signature to ONNX: {type(exc).__name__}: {first}. Export the model to ONNX yourself and import the .onnx") from None
    initializers = {tensor.name for tensor in model.graph.initializer}
    graph_inputs = [tensor.name for tensor in model.graph.input if tensor.name not in initializers]
    return model.SerializeToString(), graph_inputs, [tensor.name for tensor in model.graph.output]


def _verified(card: ModelCard, content: bytes, examples: np.ndarray, predict) -> ModelCard:
    """The conversion on ONNX Runtime (the server's engine) against the signature on TensorFlow: the card
    with the figures, or ImportRefused."""
    import onnxruntime

    from models.engines.onnxruntime import OnnxRuntimeEngine

    values = np.asarray(examples)
    try:
        converted = numbers_of(card, OnnxRuntimeEngine(content, card, threads=1)(values))
    except Exception as exc:  # a conversion ONNX Runtime cannot load or run
        raise ImportRefused(f"ONNX Runtime {onnxruntime.__version__} cannot run the conversion on {len(values)} examples: {type(exc).__name__}: {exc}") from None
    try:
        expected = numbers_of(card, predict(values))
    except Exception as exc:  # the signature itself fails on the examples
        raise ImportRefused(
            f"the SavedModel signature failed on {len(values)} examples: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        ) from None
    if converted.shape != expected.shape:
        raise ImportRefused(f"the ONNX conversion answers {list(converted.shape)} for {len(values)} examples, the SavedModel {list(expected.shape)}")
    difference = np.abs(converted - expected)
    relative = not card.output.labels
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
    entry = card.engines["onnxruntime"]
    return card.model_copy(update={"engines": {"onnxruntime": {**entry, "verification": figures}}})
