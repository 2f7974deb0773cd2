"""Bring an ONNX model (exported from PyTorch, built with onnx's helper API, ...): checked, run and stored as it is.

The file must parse and pass onnx's checker. One float input of fixed dimensions (apart from the batch
axis) is a tensor or an image, as ``kind`` says; several inputs, one of another datatype, or one with
dynamic dimensions (bounded by ``dim_range``), are named tensors taken as clients send them, and with ``task="tensor"`` a graph's several
outputs are answered as named tensors too (models/tensors.py). Its output (named with ``output`` when the graph has several) is what ``task``
says (training/tasks.py): class probabilities, multi-label sigmoids, regression targets, an embedding
or a tensor. ONNX Runtime must load it (an unsupported operator is refused here, naming it) and answer
probe examples: finite values, probabilities for a classifier. The stored file is the imported one,
byte for byte, with its sha256 on the card.

    >>> card, content = inspect_onnx("net.onnx", name="shapes", version="v1", labels=["circle", "square"], value_range=None)
    >>> card.engines["onnxruntime"]["file"], card.input.kind
    ('model.onnx', 'tensor')
"""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from models.card import ImagePreprocessing, InputSpec, ModelCard, OutputSpec
from models.inference import class_probabilities
from models.preprocessing import to_model_input
from models.store import ONNX_FILE
from training.datasets import sha256_of
from training.importing import DEFAULT_MAX_BYTES, PROBABILITY_TOLERANCE, ImportRefused, check_names, package_version, tensor_spec
from training.tasks import card_task, output_for

FLOAT_TYPES = {1: "float32"}  # onnx.TensorProto.FLOAT: the one input type a card describes so far


def inspect_onnx(
    path: str | Path,
    name: str,
    version: str,
    labels: list[str] | None,
    output: str | None = None,
    task: str = "classification",
    targets=None,
    threshold: float = 0.5,
    kind: str | None = None,
    value_range: tuple[float, float] | None = None,
    divide_by: float | None = None,
    positive_label: str | None = None,
    description: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    dim_range: tuple[int, int] | None = None,
) -> tuple[ModelCard, bytes]:
    """Check and describe an ONNX file: (card without metrics, its bytes); a string input takes values of
    at most ``max_bytes``, a dynamic dimension sizes in ``dim_range`` (smallest, largest). Raises ImportRefused."""
    import onnx

    check_names(name, version)
    path = Path(path)
    if not path.is_file():
        raise ImportRefused(f"{path}: no such file")
    content = path.read_bytes()
    try:
        model = onnx.load_from_string(content)
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ImportRefused(f"{path} is not an ONNX model onnx {onnx.__version__} accepts: {type(exc).__name__}: {exc}") from None
    initializers = {tensor.name for tensor in model.graph.initializer}
    inputs = [tensor for tensor in model.graph.input if tensor.name not in initializers]
    several = task == "tensor" and ((len(model.graph.output) > 1 and output is None) or any(map(_is_strings, model.graph.output)))
    if len(inputs) > 1 or (inputs and (_shape(inputs[0])[1] not in FLOAT_TYPES or None in _shape(inputs[0])[0])) or several:
        if kind == "image" or value_range is not None or divide_by is not None:
            raise ImportRefused(
                "a graph with several inputs (or one that is not float32, or has dynamic dimensions) takes named tensors as clients send them: "
                "--kind image, --range and --scale apply to one float input"
            )
        card = _named_card(model, content, path, name, version, output, task, labels, targets, threshold, positive_label, description, max_bytes, dim_range)
        return card, content
    if len(inputs) != 1:
        raise ImportRefused(f"the graph takes {len(inputs)} inputs ({', '.join(t.name for t in inputs)}); one input tensor is served")
    graph_input = inputs[0]
    dims, elem_type = _shape(graph_input)
    if elem_type not in FLOAT_TYPES:
        raise ImportRefused(f"input {graph_input.name!r} is of ONNX type {onnx.TensorProto.DataType.Name(elem_type)}; a float (float32) input is served")
    if not dims:  # (dynamic dimensions made it named tensors above)
        raise ImportRefused(f"input {graph_input.name!r} has the shape {['N', *dims]}: a float input has at least one dimension per example")
    outputs = {tensor.name: tensor for tensor in model.graph.output}
    chosen = output or (next(iter(outputs)) if len(outputs) == 1 else None)
    if chosen is None:
        raise ImportRefused(f"the graph has {len(outputs)} outputs ({', '.join(outputs)}): name the class probabilities with --output")
    if chosen not in outputs:
        raise ImportRefused(f"--output {chosen!r}: the graph's outputs are {', '.join(outputs)}")
    output_spec = output_for(task, tuple(_numeric(outputs[chosen])), labels, targets, threshold, positive_label)
    is_image = kind == "image" or (kind is None and len(dims) == 3 and dims[2] in (1, 3))
    if is_image:
        if not (len(dims) == 3 and dims[2] in (1, 3)):
            raise ImportRefused(f"an image input has the shape [height, width, 1 or 3]; the graph takes {list(dims)}")
        spec = InputSpec(kind="image", shape=tuple(dims), value_range=value_range or (0, 255), divide_by=divide_by)
        preprocessing = ImagePreprocessing(colour_mode="RGB" if dims[2] == 3 else "L", aspect="pad", resize="bilinear", invert="never")
    else:
        spec = InputSpec(kind="tensor", shape=tuple(dims), value_range=value_range, divide_by=divide_by)
        preprocessing = None
    verification = _run(content, graph_input.name, chosen, spec, output_spec)
    card = ModelCard(
        **_graph_facts(model, path, name, version, description),
        task=card_task(output_spec, is_image),
        input=spec,
        preprocessing=preprocessing,
        output=output_spec,
        engines={"onnxruntime": {"file": ONNX_FILE, "input": graph_input.name, "output": chosen, "sha256": hashlib.sha256(content).hexdigest(), "verification": verification}},
    )
    return card, content


def _graph_facts(model, path: Path, name: str, version: str, description: str | None) -> dict:
    """What a card says of an imported graph whatever its inputs: its name, size, provenance and files."""
    return {
        "name": name,
        "version": version,
        "description": description or f"{model.graph.name or 'an ONNX graph'}, imported from {path.name}",
        "architecture": model.graph.name or "onnx",
        "number_of_parameters": max(sum(int(np.prod(t.dims)) for t in model.graph.initializer), 1),
        "metrics": None,
        "training": {
            "imported_from": path.name,
            "framework": "onnx",
            "producer": f"{model.producer_name} {model.producer_version}".strip() or None,
            "opset": {entry.domain or "ai.onnx": entry.version for entry in model.opset_import},
            "imported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        },
        "data": {"source": None, "sha256": {path.name: sha256_of(path)}},
        "framework_versions": {"onnx": package_version("onnx")},
    }


def _named_card(
    model,
    content: bytes,
    path: Path,
    name: str,
    version: str,
    output,
    task,
    labels,
    targets,
    threshold,
    positive_label,
    description,
    max_bytes: int,
    dim_range: tuple[int, int] | None,
) -> ModelCard:
    """The card of a graph taking several named inputs (or one that is not float32), answering one output
    by ``task`` or every output as named tensors (``--task tensor``); run on probe examples."""
    import onnxruntime

    from models.engines.onnxruntime import OnnxRuntimeEngine
    from models.tensors import numbers_of
    from training.export import probe_examples

    initializers = {tensor.name for tensor in model.graph.initializer}
    inputs = tuple(_spec(tensor, "input", max_bytes, dim_range) for tensor in model.graph.input if tensor.name not in initializers)
    graph_outputs = {tensor.name: tensor for tensor in model.graph.output}
    named_outputs: tuple = ()
    chosen = output or (next(iter(graph_outputs)) if len(graph_outputs) == 1 else None)
    if chosen is not None and chosen not in graph_outputs:
        raise ImportRefused(f"--output {chosen!r}: the graph's outputs are {', '.join(graph_outputs)}")
    if chosen is not None and not (task == "tensor" and _is_strings(graph_outputs[chosen])):
        output_spec = output_for(task, tuple(_numeric(graph_outputs[chosen])), labels, targets, threshold, positive_label)
    elif task != "tensor":
        raise ImportRefused(f"the graph has {len(graph_outputs)} outputs ({', '.join(graph_outputs)}): serve one with --output, or all of them as named tensors with --task tensor")
    else:  # every output, or the one chosen of strings: named tensors (strings of at most max_bytes)
        named_outputs = tuple(_spec(tensor, "output", max_bytes) for tensor in ([graph_outputs[chosen]] if chosen else graph_outputs.values()))
        output_spec = OutputSpec.packed(named_outputs)
    entry = {"file": ONNX_FILE, **({"output": chosen} if chosen else {}), "sha256": hashlib.sha256(content).hexdigest()}
    card = ModelCard(
        **_graph_facts(model, path, name, version, description),
        task=card_task(output_spec, False),
        input=InputSpec.packed(inputs),
        inputs=inputs,
        preprocessing=None,
        output=output_spec,
        outputs=named_outputs,
        engines={"onnxruntime": entry},
    )
    try:
        engine = OnnxRuntimeEngine(content, card, threads=1)
    except Exception as exc:
        raise ImportRefused(f"ONNX Runtime {onnxruntime.__version__} cannot load the graph: {exc}") from None
    examples = probe_examples(card)
    try:
        answers = numbers_of(card, engine(examples))
    except Exception as exc:
        raise ImportRefused(f"one inference on {len(examples)} probe examples failed in ONNX Runtime: {exc}") from None
    if not np.isfinite(answers).all():
        raise ImportRefused("the graph answered values that are not finite (NaN or infinity) on probe examples")
    if output_spec.labels and (answers.min() < 0 or answers.max() > 1):
        raise ImportRefused(f"output {chosen!r} is not probabilities in 0..1 on probe examples (end the graph with a Softmax or Sigmoid)")
    verification = {"examples": int(len(examples)), "onnxruntime": onnxruntime.__version__, "against": "the imported file itself (stored unchanged)"}
    return card.model_copy(update={"engines": {"onnxruntime": {**entry, "verification": verification}}})


def _numeric(output) -> list[int | None]:
    """The dimensions of the output served, which must hold numbers (a classifier's label strings do not: serve its probabilities)."""
    import onnx

    dims, elem_type = _shape(output)
    if elem_type == onnx.TensorProto.STRING:
        raise ImportRefused(f"the output {output.name} is strings: serve it as a named tensor with --task tensor, or serve another output with --output")
    return dims


def _is_strings(output) -> bool:
    import onnx

    return _shape(output)[1] == onnx.TensorProto.STRING


def _spec(value_info, what: str, max_bytes: int | None = None, dim_range: tuple[int, int] | None = None):
    """A graph input or output as a card's named tensor."""
    from onnx.helper import tensor_dtype_to_np_dtype

    dims, elem_type = _shape(value_info)
    try:
        dtype = tensor_dtype_to_np_dtype(elem_type).name
    except KeyError:
        dtype = f"ONNX type {elem_type}"
    return tensor_spec(value_info.name, dtype, dims, what, max_bytes, dim_range)


def _shape(value_info) -> tuple[list[int | None], int]:
    """A tensor's dimensions after the batch axis (None: dynamic) and its element type."""
    tensor = value_info.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    return dims[1:], tensor.elem_type


def _run(content: bytes, input_name: str, output: str, spec: InputSpec, output_spec: OutputSpec) -> dict:
    """Load it in ONNX Runtime and answer probe examples: the figures, or ImportRefused naming the cause."""
    import onnxruntime

    from training.export import probe_examples

    try:
        session = onnxruntime.InferenceSession(content, providers=["CPUExecutionProvider"])
    except Exception as exc:  # an operator or opset this ONNX Runtime lacks, a type it cannot run
        raise ImportRefused(f"ONNX Runtime {onnxruntime.__version__} cannot load the graph: {exc}") from None
    examples = probe_examples(SimpleNamespace(input=spec))
    try:
        raw = session.run([output], {input_name: to_model_input(examples, spec)})[0]
    except Exception as exc:
        raise ImportRefused(f"one inference on {len(examples)} probe examples failed in ONNX Runtime: {exc}") from None
    expected = (len(examples), *(output_spec.shape if output_spec.kind == "tensor" and output_spec.shape else (output_spec.units,)))
    if raw.shape != expected:
        raise ImportRefused(f"output {output!r} answered the shape {list(raw.shape)} for {len(examples)} examples; expected {list(expected)}")
    answers = class_probabilities(raw, output_spec)
    if not np.isfinite(answers).all():
        raise ImportRefused(f"output {output!r} answered values that are not finite (NaN or infinity) on probe examples")
    if not output_spec.labels:
        return {"examples": int(len(examples)), "onnxruntime": onnxruntime.__version__, "against": "the imported file itself (stored unchanged)"}
    if answers.min() < 0 or answers.max() > 1:
        raise ImportRefused(f"output {output!r} is not probabilities in 0..1 on probe examples (end the graph with a Softmax or Sigmoid)")
    if output_spec.kind == "softmax" and np.abs(raw.sum(axis=1) - 1).max() > PROBABILITY_TOLERANCE:
        raise ImportRefused(f"output {output!r} does not sum to 1 on probe examples (logits?): end the graph with a Softmax")
    return {"examples": int(len(examples)), "onnxruntime": onnxruntime.__version__, "against": "the imported file itself (stored unchanged)"}
