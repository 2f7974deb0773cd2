"""Bring your own model: check a ``.keras`` file trained elsewhere and write its card.

The file is loaded with the pinned Keras; its input and output shapes are read from the model and
checked against the labels given (one output unit per label, or one sigmoid unit for two labels);
one inference on a probe batch must give probabilities. Any mismatch raises :class:`ImportRefused`
naming what is wrong, before anything is saved.

Nothing is guessed silently. How client values are scaled (``--scale``) comes from the flag, the
model's first layer (a Rescaling or Normalization layer: the model scales itself) or accuracy on the
evaluation data, and is refused for a tensor input when none of them tells; the card's value range
follows the choice. The label order is checked on the evaluation data (refused when another order
scores much better), or a warning says when it is not alphabetical, as Keras' folder loader numbers
classes. Each decision is said, and recorded in the card's ``training``.

    >>> model, card = inspect_keras("net.keras", name="shapes", version="v1", labels=["circle", "square", "star"])
    scaling: --scale 255: the model has no Rescaling or Normalization layer at its input, ...
    >>> card.input.shape, card.output.kind
    ((32, 32, 3), 'softmax')
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Collection
from pathlib import Path

import numpy as np

from models.card import DATATYPES, DYNAMIC, NAME_PATTERN, TENSOR_NAME, ImagePreprocessing, InputSpec, ModelCard, OutputSpec, TensorSpec
from models.inference import class_probabilities, keras_input, predict_probabilities
from models.preprocessing import to_model_input
from models.tensors import TooLong, numbers_of
from training.datasets import sha256_of

PROBABILITY_TOLERANCE = 1e-3  # softmax rows sum to 1 within this


class ImportRefused(ValueError):
    """The file cannot be served as described; the message names what is wrong."""


def parse_labels(text: str) -> list[str]:
    """A comma-separated list, or the path of a file with one label per line."""
    path = Path(text)
    labels = path.read_text().splitlines() if path.is_file() else text.split(",")
    labels = [label.strip() for label in labels if label.strip()]
    if len(labels) < 2:
        raise ImportRefused(f"--labels: expected at least two labels (a comma-separated list or a file with one per line), got {labels}")
    if len(set(labels)) != len(labels):
        raise ImportRefused(f"--labels: labels must be distinct, got {labels}")
    return labels


DEFAULT_MAX_BYTES = 4096  # the longest string a BYTES input takes unless --max-bytes says otherwise
MAX_DIM = 65536  # the largest bound --max-dim takes for a dynamic dimension
MAX_EXAMPLE_BYTES = 16 * 2**20  # one packed example of an input at its bound: what every batch slot of the runner reserves
SCALES = {"255": 255.0, "none": None}  # --scale: what the server divides client values by
LEVELS = (0.0, 255.0)  # the values of an image's pixels, as image files hold them
SCALE_MARGIN = 0.1  # accuracy on --eval-data by which one --scale must beat the other to decide it
ORDER_MARGIN = 0.2  # accuracy on --eval-data by which another label order must beat the given one to refuse it
# Layers that leave the scale of their input as it is: a scaling layer after them still sees client values.
PASS_THROUGH = ("InputLayer", "Resizing", "CenterCrop", "Reshape", "Flatten", "Permute", "Dropout", "Cropping1D", "Cropping2D", "ZeroPadding1D", "ZeroPadding2D")
SCALE_HELP = (
    "--scale 255 (clients send 0..255 and the server divides by 255: a model trained on values divided by 255) "
    "or --scale none (clients send the values the model takes, as they are: a model trained on raw values, or one that rescales itself)"
)


def inspect_keras(
    path: str | Path,
    name: str,
    version: str,
    labels: list[str],
    scale: str | None = None,
    description: str | None = None,
    kind: str | None = None,
    value_range: tuple[float, float] | None = None,
    resize: str = "bilinear",
    positive_label: str | None = None,
    aspect: str | None = None,
    evaluation: tuple[np.ndarray, np.ndarray] | None = None,
    say: Callable[[str], None] = print,
    task: str = "classification",
    targets=None,
    threshold: float = 0.5,
    output: str | None = None,
    dim_range: tuple[int, int] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
):
    """Load ``path`` and describe it: (keras model, card without metrics). Raises ImportRefused.

    ``task`` (training/tasks.py) says what the output is: classification (``labels``), multilabel
    (``labels``, ``threshold``), regression (``targets``), embedding or tensor. ``output`` names the one
    output of a model with several that is served (the stored model is the model up to it).

    ``scale`` is ``"255"``, ``"none"`` or None: decided from the model's first layer and from
    ``evaluation`` (x, y), or refused for a tensor input. Each decision and warning goes to ``say``.
    """
    import keras

    path = Path(path)
    check_names(name, version)
    if scale is not None and scale not in SCALES:
        raise ImportRefused(f"--scale {scale!r}: expected {SCALE_HELP}")
    if not path.is_file():
        raise ImportRefused(f"{path}: no such file")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise ImportRefused(f"{path} is not a Keras model this Keras ({keras.__version__}) can load: {exc}") from None
    model = _one_output(keras, model, output) if output is not None else model
    strings = _string_outputs(model, dim_range)
    if strings and task != "tensor":
        raise ImportRefused(f"the output {sorted(strings)[0]} is strings: serve it as a named tensor with --task tensor, or serve another output with --output")
    if len(model.inputs) > 1 or (len(model.outputs) > 1 and task == "tensor") or strings or model.inputs[0].dtype != "float32" or None in model.inputs[0].shape[1:]:
        if scale not in (None, "none") or kind == "image" or aspect or value_range:
            raise ImportRefused(
                "a model with several inputs (or one that is not float32, or has dynamic dimensions) takes named tensors as clients send them: "
                "--scale, --kind image, --aspect and --range apply to a model with one float input"
            )
        card = _named_card(model, path, name, version, description, task, labels, targets, threshold, positive_label, dim_range, max_bytes, strings)
        say(f"named tensors: inputs {_described(card.inputs)}; " + (f"outputs {_described(card.outputs)}" if card.outputs else f"output {card.output.kind}"))
        return model, card
    dims = _single_shape(model.inputs, "input")
    model = _one_output(keras, model, None) if len(model.outputs) > 1 else model  # refused, naming them
    out = _single_shape(model.outputs, "output")
    if not dims:  # (dynamic dimensions made it named tensors above)
        raise ImportRefused(f"the model's input shape {[None, *dims]} has no dimension per example: a float input has at least one")
    is_image = kind == "image" or (kind is None and len(dims) == 3 and dims[2] in (1, 3))
    if is_image and not (len(dims) == 3 and dims[2] in (1, 3)):
        raise ImportRefused(f"an image input has the shape [height, width, 1 or 3]; the model takes {list(dims)}")
    if aspect is not None and not is_image:
        raise ImportRefused(f"--aspect {aspect}: aspect handling applies to image inputs; this model takes a tensor {list(dims)}")
    from training.tasks import card_task, output_for

    output = output_for(task, tuple(out), labels, targets, threshold, positive_label)
    if evaluation is not None and not output.single_label:
        evaluation = None if output.kind in ("embedding", "tensor") else evaluation

    def card_of(spec: InputSpec, training: dict | None = None) -> ModelCard:
        preprocessing = ImagePreprocessing(colour_mode="RGB" if dims[2] == 3 else "L", aspect=aspect or "pad", resize=resize, invert="never") if is_image else None
        return ModelCard(
            name=name,
            version=version,
            description=description or f"{model.name}, imported from {path.name}",
            task=card_task(output, is_image),
            input=spec,
            preprocessing=preprocessing,
            output=output,
            architecture=model.name,
            number_of_parameters=int(model.count_params()),
            metrics=None,
            training={"imported_from": path.name, "imported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), **(training or {})},
            data={"source": None, "sha256": {path.name: sha256_of(path)}},
            framework_versions={"tensorflow": package_version("tensorflow"), "keras": keras.__version__},
            engines={"tensorflow": {"file": "model.keras"}},
        )

    kind_name = "image" if is_image else "tensor"
    if evaluation is not None:  # its shape checked before it decides anything
        evaluation = check_evaluation(*evaluation, card_of(InputSpec(kind=kind_name, shape=tuple(dims), value_range=None, divide_by=None)))
    # Accuracy decides the scaling and checks the label order: a classifier's evaluation data only.
    scale, scaling, takes_levels = _decide_scale(model, kind_name, tuple(dims), output, scale, evaluation if output.single_label else None, say)
    value_range = _value_range(is_image, scale, value_range, takes_levels)
    spec = InputSpec(kind=kind_name, shape=tuple(dims), value_range=value_range, divide_by=SCALES[scale])
    _check_probabilities(model, spec, output)
    card = card_of(spec, {"scaling": scaling})
    if is_image:
        say(
            f"image input: clients send {_range_words(value_range)}; files are converted to {card.preprocessing.colour_mode}, {_ASPECTS[card.preprocessing.aspect]} and resized with {resize}"
        )
    if not output.single_label:
        return model, card
    if evaluation is None:
        if list(labels) != sorted(labels):
            say(
                f"warning: the labels {','.join(labels)} are not in alphabetical order. Keras' folder loader (image_dataset_from_directory) numbers "
                f"classes alphabetically: if the model was trained with it, its order is {','.join(sorted(labels))}. --eval-data would verify the order"
            )
        return model, card.model_copy(update={"training": {**card.training, "label_order": "not checked (no evaluation data)"}})
    x, y = check_evaluation(*evaluation, card)
    order = _check_label_order(_probabilities(model, x, spec, output), y, output)
    return model, card.model_copy(update={"training": {**card.training, "label_order": order}})


_ASPECTS = {"pad": "padded to the input's proportions", "stretch": "stretched to the input's proportions", "crop": "centre-cropped to the input's proportions"}


def _range_words(value_range: tuple[float, float] | None) -> str:
    return "any finite number" if value_range is None else f"values in {value_range[0]:g}..{value_range[1]:g}"


def _decide_scale(model, kind: str, dims: tuple, output: OutputSpec, given: str | None, evaluation, say) -> tuple[str, str, bool]:
    """(--scale, why, whether the model takes 0..255 pixel levels as they are): from ``given``, the
    model's first layer and the evaluation data. Refused when nothing decides it for a tensor input."""
    layer, layer_scale, takes_levels = _input_scaling(model, kind)
    scores = None
    if evaluation is not None:
        x, y = evaluation
        scores = {
            choice: _best_order_accuracy(_probabilities(model, x, InputSpec(kind=kind, shape=dims, value_range=None, divide_by=SCALES[choice]), output), y, output)
            for choice in SCALES
        }
    measured = scores is not None and abs(scores["255"] - scores["none"]) >= SCALE_MARGIN
    better = max(scores, key=scores.__getitem__) if measured else None
    if better == "none" and kind == "image" and float(np.max(evaluation[0])) > 1:
        takes_levels = True  # the model answers best on the data's 0..255 levels as they are
    figures = f"accuracy on --eval-data {scores['255']:.4f} with --scale 255, {scores['none']:.4f} with --scale none" if scores else ""
    if given is not None:
        if better is not None and better != given:
            raise ImportRefused(f"--scale {given}: {figures}. Pass --scale {better}, or check --eval-data's x (the values clients send)")
        if better is None and layer_scale is not None and layer_scale != given:
            say(f"warning: --scale {given}, although the model's first layer ({layer}) suggests --scale {layer_scale}; --eval-data would check which is right")
        why = f"--scale {given}, as given" + (f" ({figures})" if scores else "")
        return given, why, takes_levels if given == "none" else False
    if better is not None:
        why = f"--scale {better}, from --eval-data: {figures}" + (f" (the model's first layer is {layer})" if layer else "")
        say(f"scaling: {why}")
        return better, why, takes_levels
    if layer_scale is not None:
        why = f"--scale {layer_scale}: the model's first layer is {layer}" + (
            ", so it takes pixel levels 0..255 as they are" if takes_levels else (", for values in 0..1" if kind == "image" else ", so it scales its inputs itself")
        )
        say(f"scaling: {why}" + (f" ({figures})" if scores else ""))
        return layer_scale, why, takes_levels
    if kind == "image":
        why = "--scale 255: the model has no Rescaling or Normalization layer at its input, so the server divides 0..255 levels by 255 (a model trained on values in 0..1)"
        say(f"scaling: {why}" + (f" ({figures})" if scores else "") + "; pass --scale none if it was trained on other values (with --range of those values)")
        return "255", why, False
    raise ImportRefused(
        "--scale: how client values become the model's input cannot be read from this model (no Rescaling or Normalization layer at its input)"
        + (f", and --eval-data does not tell ({figures})" if scores else "")
        + f": pass {SCALE_HELP}, or --eval-data to decide it from accuracy"
    )


def _input_scaling(model, kind: str) -> tuple[str | None, str | None, bool]:
    """(the layer that first changes the scale of the model's input, the --scale it implies, whether
    it takes 0..255 levels): a Rescaling or Normalization layer means the model scales itself, unless
    on an image it expects values in 0..1 (Rescaling(2, offset=-1); a Normalization adapted on 0..1)."""
    layer = _first_layer(model)
    kind_of = type(layer).__name__ if layer is not None else None
    if kind_of == "Rescaling":
        span = float(np.max(np.abs(np.asarray(layer.scale, dtype=np.float64)))) * LEVELS[1]
        described = f"Rescaling(scale={float(np.max(np.asarray(layer.scale))):.4g}, offset={float(np.max(np.asarray(layer.offset))):.4g})"
        levels = span <= 2.5  # 0..255 becomes a span of a few units: it takes pixel levels
    elif kind_of == "Normalization" and not getattr(layer, "invert", False):
        from keras import ops

        mean = ops.convert_to_numpy(layer.mean) if layer.mean is not None else np.zeros(1)
        described = f"Normalization (mean {float(np.mean(mean)):.4g})"
        levels = float(np.max(np.abs(mean))) > 1.5  # adapted on levels, not on values in 0..1
    else:
        return None, None, False
    if kind == "image" and not levels:
        return described, "255", False
    return described, "none", kind == "image"


def _first_layer(model):
    """The first layer after the input that can change the scale of values (inside a nested model, such
    as a data augmentation block, too), or None."""
    for layer in model.layers:
        if isinstance(getattr(layer, "layers", None), list):  # a nested Sequential or functional model
            inner = _first_layer(layer)
            if inner is not None:
                return inner
        elif not (type(layer).__name__ in PASS_THROUGH or type(layer).__name__.startswith("Random")):
            return layer
    return None


def _value_range(is_image: bool, scale: str, given: tuple[float, float] | None, takes_levels: bool) -> tuple[float, float] | None:
    """The range of values clients send, as the card declares it: true to --scale, --range when given."""
    if not is_image:
        return given if given is not None else (LEVELS if scale == "255" else None)
    if scale == "255":
        if given is not None and tuple(given) != LEVELS:
            raise ImportRefused(
                f"--range {given[0]:g},{given[1]:g}: with --scale 255 clients send 0..255 pixel levels; for a model that takes other values pass --scale none --range LOW,HIGH"
            )
        return LEVELS
    if given is not None:
        return tuple(given)
    if takes_levels:
        return LEVELS
    raise ImportRefused(
        "--scale none on an image input: which values the model takes cannot be read from it: pass --range LOW,HIGH "
        "(0,1 for a model trained on levels divided by 255, -1,1 for levels / 127.5 - 1, 0,255 for levels as they are); "
        "image files are mapped from their 0..255 levels into that range"
    )


def _probabilities(model, x: np.ndarray, spec: InputSpec, output: OutputSpec) -> np.ndarray:
    return class_probabilities(model.predict(to_model_input(x, spec), batch_size=256, verbose=0), output)


def _confusion(probabilities: np.ndarray, y: np.ndarray, classes: int) -> np.ndarray:
    """counts[true index, predicted output column]."""
    counts = np.zeros((classes, classes), np.int64)
    np.add.at(counts, (y, probabilities.argmax(axis=1)), 1)
    return counts


def _best_order_accuracy(probabilities: np.ndarray, y: np.ndarray, output: OutputSpec) -> float:
    """Accuracy with the output columns given the labels that suit them best (whatever the order given)."""
    from scipy.optimize import linear_sum_assignment

    counts = _confusion(probabilities, y, len(output.labels))
    rows, columns = linear_sum_assignment(-counts)
    return float(counts[rows, columns].sum() / max(len(y), 1))


def _check_label_order(probabilities: np.ndarray, y: np.ndarray, output: OutputSpec) -> str:
    """Refuse labels in an order much worse than another on the evaluation data, naming the better order;
    otherwise what the card says of the order."""
    from scipy.optimize import linear_sum_assignment

    labels = list(output.labels)
    counts = _confusion(probabilities, y, len(labels))
    accuracy = float(np.trace(counts) / max(len(y), 1))
    rows, columns = linear_sum_assignment(-counts)
    best = float(counts[rows, columns].sum() / max(len(y), 1))
    if best - accuracy < ORDER_MARGIN:
        return f"checked on the evaluation data: accuracy {accuracy:.4f} in the order given"
    order = [labels[row] for row, _ in sorted(zip(rows, columns, strict=True), key=lambda pair: pair[1])]  # the label of each output column
    figures = f"accuracy on --eval-data is {accuracy:.4f} with the labels in the order given, {best:.4f} in the order {','.join(order)}"
    if output.kind == "sigmoid":
        other = next(label for label in labels if label != output.positive_label)
        raise ImportRefused(f"--labels: {figures}: the sigmoid unit gives the probability of {other!r}; pass --positive-label {other}, or check --eval-data's y")
    alphabetical = " (alphabetical: the order Keras' folder loader numbers classes in)" if order == sorted(labels) else ""
    raise ImportRefused(f"--labels: {figures}{alphabetical}. Pass --labels {','.join(order)}, or check --eval-data's y (label indices in the order of --labels)")


def _one_output(keras, model, output: str | None):
    """The model itself when it has one output (``output``, if given, must name it); the model up to the
    output named, when it has several; refused otherwise, naming them."""
    names = _output_names(model)
    if output is None:
        if len(model.outputs) > 1:
            raise ImportRefused(f"the model has {len(model.outputs)} outputs ({', '.join(names)}): serve one with --output, or all of them as named tensors with --task tensor")
        return model
    if output not in names:
        raise ImportRefused(f"--output {output!r}: the model's outputs are {', '.join(names)}")
    if len(model.outputs) == 1:
        return model
    return keras.Model(inputs=model.inputs, outputs=model.outputs[names.index(output)], name=f"{model.name}_{output}")


def _output_names(model) -> list[str]:
    """A functional model's output names; a Sequential model has none, so its tensors' names."""
    return list(getattr(model, "output_names", None) or [getattr(tensor, "name", None) or f"output_{i}" for i, tensor in enumerate(model.outputs)])


KERAS_DATATYPES = {np.dtype(dtype).name: name for name, dtype in DATATYPES.items()}  # "float32" -> "FP32", ..., "bool" -> "BOOL", "object" -> "BYTES"


def dynamic_range(smallest: int | None, largest: int | None) -> tuple[int, int] | None:
    """--min-dim and --max-dim as the sizes a dynamic dimension takes, or None without --max-dim."""
    if largest is None:
        if smallest is not None:
            raise ImportRefused("--min-dim goes with --max-dim: the sizes a dynamic dimension takes")
        return None
    low = 1 if smallest is None else smallest
    if not 1 <= low <= largest <= MAX_DIM:
        raise ImportRefused(f"--min-dim {low} and --max-dim {largest}: expected 1 <= min <= max <= {MAX_DIM}")
    return low, largest


def tensor_spec(name: str, dtype: str, shape, what: str, max_bytes: int | None = None, dim_range: tuple[int, int] | None = None) -> TensorSpec:
    """A graph's named tensor as the card describes it; ImportRefused for what a card cannot hold.
    Strings (NumPy's object, as ONNX's STRING reads) are of at most ``max_bytes`` each; an input's
    dynamic dimensions (None) besides the batch axis take sizes in ``dim_range`` (smallest, largest)."""
    if not TENSOR_NAME.fullmatch(name or ""):
        raise ImportRefused(f"the {what} name {name!r} is not one a card can hold (letters, digits and _.:/-, starting with a letter or _)")
    if dtype not in KERAS_DATATYPES or (dtype == "object" and max_bytes is None):
        raise ImportRefused(
            f"the {what} {name} is {dtype}: strings are served as inputs of Keras models, ONNX graphs and scikit-learn text pipelines, and as outputs of Keras models and ONNX graphs (--task tensor); "
            "other non-numeric tensors are not"
        )
    dims = tuple(shape)
    if any(d is not None and (not isinstance(d, int) or d < 1) for d in dims):
        raise ImportRefused(f"the {what} {name} has the shape {['N', *dims]}: a dimension is a positive size, or dynamic")
    if None in dims and what != "input":
        raise ImportRefused(f"the {what} {name} has the shape {['N', *dims]}: outputs are served with fixed shapes (only the batch axis dynamic)")
    if None in dims and dim_range is None:
        raise ImportRefused(
            f"the input {name} has the shape {['N', *dims]}: a dynamic dimension besides the batch axis needs a bound, so that examples of "
            "different sizes can share a batch; import with --max-dim SIZE (the largest size taken; larger examples are refused with 422), "
            "and --min-dim SIZE when the model needs more than 1 (a convolution's kernel)"
        )
    datatype = KERAS_DATATYPES[dtype]
    bounded: dict = {"shape": dims}
    if None in dims:
        assert dim_range is not None
        low, high = dim_range
        bounded = {
            "shape": tuple(DYNAMIC if d is None else d for d in dims),
            "max_shape": tuple(high if d is None else d for d in dims),
            "min_shape": tuple(low if d is None else d for d in dims) if low > 1 else None,
        }
    spec = TensorSpec(name=name, datatype=datatype, **bounded, max_bytes=max_bytes if datatype == "BYTES" else None)
    if spec.nbytes > MAX_EXAMPLE_BYTES:
        raise ImportRefused(
            f"the {what} {name} takes {spec.nbytes:,} bytes per example at its bound {list(spec.bound)}; at most {MAX_EXAMPLE_BYTES:,} are served: lower --max-dim or --max-bytes"
        )
    return spec


def _described(specs) -> str:
    return ", ".join(map(str, specs))


def _named_card(
    model,
    path: Path,
    name: str,
    version: str,
    description,
    task: str,
    labels,
    targets,
    threshold: float,
    positive_label,
    dim_range: tuple[int, int] | None,
    max_bytes: int,
    strings: Collection[str] = (),
) -> ModelCard:
    """The card of a Keras model taking several named inputs (or one that is not float32), answering one
    output by ``task`` or every output as named tensors (``--task tensor``). A string input (a
    TextVectorization layer's) takes values of at most ``max_bytes``; so does each output named in
    ``strings`` (a StringLookup's with ``invert=True``) answer them."""
    import keras

    from training.tasks import card_task, output_for

    inputs = tuple(tensor_spec(tensor.name, "object" if tensor.dtype == "string" else tensor.dtype, tensor.shape[1:], "input", max_bytes, dim_range) for tensor in model.inputs)
    outputs: tuple[TensorSpec, ...] = ()
    if len(model.outputs) == 1 and not strings:
        output = output_for(task, tuple(model.outputs[0].shape[1:]), labels, targets, threshold, positive_label)
    else:
        if task != "tensor":
            raise ImportRefused(
                f"the model has {len(model.outputs)} outputs ({', '.join(_output_names(model))}): serve one with --output, or all of them as named tensors with --task tensor"
            )
        outputs = tuple(
            tensor_spec(out, "object", tensor.shape[1:], "output", max_bytes) if out in strings else tensor_spec(out, tensor.dtype, tensor.shape[1:], "output")
            for out, tensor in zip(_output_names(model), model.outputs, strict=True)
        )
        output = OutputSpec.packed(outputs)
    card = ModelCard(
        name=name,
        version=version,
        description=description or f"{model.name}, imported from {path.name}",
        task=card_task(output, False),
        input=InputSpec.packed(inputs),
        inputs=inputs,
        preprocessing=None,
        output=output,
        outputs=outputs,
        architecture=model.name,
        number_of_parameters=int(model.count_params()),
        metrics=None,
        training={
            "imported_from": path.name,
            "imported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "scaling": "none: named tensors are passed as sent",
        },
        data={"source": None, "sha256": {path.name: sha256_of(path)}},
        framework_versions={"tensorflow": package_version("tensorflow"), "keras": keras.__version__},
        engines={"tensorflow": {"file": "model.keras"}},
    )
    from training.export import probe_examples

    try:
        answers = predict_probabilities(model, probe_examples(card, 3), card)
    except TooLong as exc:
        raise ImportRefused(f"a probe example's answer {exc}: import with a larger --max-bytes (answers past it are refused with 422)") from None
    except Exception as exc:
        sized = [f"{spec.name} {list(spec.smallest)} to {list(spec.bound)}" for spec in inputs if spec.dynamic]
        sizes = f" (examples of the smallest and largest shapes: {', '.join(sized)}; --min-dim and --max-dim set them)" if sized else ""
        raise ImportRefused(f"one inference on a probe batch failed{sizes}: {_plain(exc)}") from None
    values = numbers_of(card, answers)
    if not np.isfinite(values).all():
        raise ImportRefused("the model's outputs on a probe batch are not finite numbers (NaN or infinity)")
    if output.labels and (values.min() < 0 or values.max() > 1):
        raise ImportRefused("the model's outputs on a probe batch are not probabilities in 0..1 (end it with a softmax or sigmoid layer)")
    return card


def _string_outputs(model, dim_range: tuple[int, int] | None) -> set[str]:
    """The outputs that answer strings, found by running the model once on one example of zeros (empty
    strings for a string input; a dynamic dimension at its smallest size): Keras declares a
    StringLookup's inverted output as int64. Empty when that run fails (the import's probe names why)."""
    smallest = dim_range[0] if dim_range else 1
    example = [
        np.full((1, *(smallest if d is None else d for d in tensor.shape[1:])), "" if tensor.dtype == "string" else 0, dtype=object if tensor.dtype == "string" else tensor.dtype)
        for tensor in model.inputs
    ]
    try:
        answers = model.predict([keras_input(array) for array in example] if len(example) > 1 else keras_input(example[0]), verbose=0)
    except Exception:  # noqa: BLE001 - the probe reports it
        return set()
    if not isinstance(answers, dict):
        answers = dict(zip(_output_names(model), answers if isinstance(answers, list | tuple) else [answers], strict=True))
    return {out for out, answer in answers.items() if np.asarray(answer).dtype.kind in "OSU"}


def _single_shape(tensors, what: str) -> tuple:
    if len(tensors) != 1:
        raise ImportRefused(f"the model has {len(tensors)} {what}s; one {what} tensor is served")
    return tuple(tensors[0].shape[1:])


def _plain(exc: Exception) -> str:
    """An exception's message on one line, without the terminal colours Keras puts in it."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).split())


def _check_probabilities(model, spec: InputSpec, output: OutputSpec) -> None:
    """One inference on a probe batch: finite probabilities, rows of a softmax summing to 1."""
    low, high = spec.value_range or (0.0, 1.0)
    probe = np.stack([np.full(spec.shape, low, np.float32), np.full(spec.shape, (low + high) / 2, np.float32), np.full(spec.shape, high, np.float32)])
    try:
        raw = np.asarray(model.predict(to_model_input(probe, spec), verbose=0))
    except Exception as exc:
        raise ImportRefused(f"one inference on a probe batch failed: {exc}") from None
    probabilities = class_probabilities(raw, output)
    if not np.isfinite(probabilities).all():
        raise ImportRefused("the model's outputs on a probe batch are not finite numbers (NaN or infinity)")
    if not output.labels:
        return
    if probabilities.min() < 0 or probabilities.max() > 1:
        raise ImportRefused(
            f"the model's outputs on a probe batch are not probabilities in 0..1 (end it with a {'sigmoid' if output.kind == 'multilabel' else 'softmax or sigmoid'} layer)"
        )
    if output.kind == "softmax" and np.abs(raw.sum(axis=1) - 1).max() > PROBABILITY_TOLERANCE:
        raise ImportRefused("the model's outputs on a probe batch do not sum to 1 (logits?): end it with a softmax layer")


def read_evaluation(path: str | Path) -> tuple[np.ndarray | dict[str, np.ndarray], np.ndarray]:
    """The arrays ``x`` (client values) and ``y`` (label indices) of an ``.npz``, unchecked; for a model of
    named inputs, an array per input instead of ``x`` (returned as a dict by name; one may be named x)."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            given = {name: arrays[name] for name in arrays.files if name != "y"}
            return (given["x"] if set(given) == {"x"} else given), arrays["y"]
    except (OSError, ValueError, KeyError) as exc:
        raise ImportRefused(f"--eval-data {path}: expected an .npz with arrays x (or one per named input) and y: {exc}") from None


def check_evaluation(x: np.ndarray, y: np.ndarray, card: ModelCard) -> tuple[np.ndarray, np.ndarray]:
    """``x`` in the card's shape and range, ``y`` one label index per example (a regressor's: its true
    values, one per target; a tagger's: 0 or 1 per label)."""
    from models.preprocessing import InvalidInput, check_values

    if card.named_inputs:
        return _check_named_evaluation(x, y, card)
    if isinstance(x, dict):
        raise ImportRefused(f"--eval-data: {card.tag} takes one input: expected an array x, got arrays {', '.join(x)}")
    try:
        x = check_values(np.asarray(x), card, "--eval-data x", batch=True)
    except InvalidInput as exc:
        raise ImportRefused(str(exc)) from None
    return x, _checked_truth(y, len(x), card)


def _check_named_evaluation(x, y, card: ModelCard) -> tuple[np.ndarray, np.ndarray]:
    """A model of named inputs: an array per input, checked as a request's would be and packed (models/tensors.py)."""
    from models.preprocessing import InvalidInput
    from models.tensors import checked, pack

    names = ", ".join(spec.name for spec in card.inputs)
    if not isinstance(x, dict) and len(card.inputs) == 1:  # one named input: x is its array
        x = {card.inputs[0].name: x}
    if not isinstance(x, dict):
        raise ImportRefused(f"--eval-data: {card.tag} takes named inputs: expected an array per input ({names}) and y, not x")
    try:
        arrays = checked(card.inputs, {name: (value, f"--eval-data {name}") for name, value in x.items()}, card.name)
    except InvalidInput as exc:
        raise ImportRefused(str(exc)) from None
    rows = pack(card.inputs, arrays)
    return rows, _checked_truth(y, len(rows), card)


def _checked_truth(y, count: int, card: ModelCard) -> np.ndarray:
    """``y`` for ``count`` examples: label indices, a regressor's true values, a tagger's zeros and ones."""
    y = np.asarray(y)
    output = card.output
    if output.kind in ("embedding", "tensor"):
        raise ImportRefused(f"--eval-data: a {output.kind} model has no true answers to be evaluated against; import it without --eval-data")
    if output.kind == "regression":
        y = y.reshape(len(y), -1) if y.ndim == 1 else y
        if y.shape != (count, output.units) or y.dtype.kind not in "iuf" or not np.isfinite(y).all():
            raise ImportRefused(f"--eval-data y: expected {count} rows of {output.units} finite true value(s), one per target")
        return y.astype(np.float64)
    if output.kind == "multilabel":
        if y.shape != (count, output.units) or not np.isin(y, (0, 1)).all():
            raise ImportRefused(f"--eval-data y: expected {count} rows of {output.units} zeros and ones, one per label")
        return y.astype(np.int64)
    if y.shape != (count,) or y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() >= card.classes)):
        raise ImportRefused(f"--eval-data y: expected {count} label indices in 0..{card.classes - 1}")
    return y


def load_evaluation(path: str | Path, card: ModelCard) -> tuple[np.ndarray, np.ndarray]:
    """Held-out examples for an imported model: an ``.npz`` with ``x`` (client values) and ``y`` (label indices)."""
    return check_evaluation(*read_evaluation(path), card)


def check_names(name: str, version: str) -> None:
    """--name and --version as BentoML's tag alphabet allows (every importer checks them first)."""
    for what, value in (("--name", name), ("--version", version)):
        if not NAME_PATTERN.fullmatch(value):
            raise ImportRefused(f"{what} {value!r}: names are 1 to 63 characters of a-z, 0-9, '.', '_', '-', starting and ending with a letter or digit")


def package_version(package: str) -> str:
    from importlib import metadata

    for name in (package, f"{package}-cpu"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"
