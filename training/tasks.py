"""What an imported model's output is, from its shape and what the user says of it (``--task``).

Every importer (Keras, ONNX, scikit-learn) describes the output with :func:`output_for`, so a task
means the same whatever the framework:

==============  ===============================================  ==================================
--task          the output                                       also needs
==============  ===============================================  ==================================
classification  one unit per label (softmax), or one sigmoid     --labels (--positive-label)
                unit for two labels
multilabel      one sigmoid unit per label, each given past      --labels (--threshold, 0.5)
                its threshold
regression      one unit per target                              --targets name[:unit],...
embedding       a vector                                         nothing
tensor          any shape, answered as it is                     nothing
==============  ===============================================  ==================================

    >>> output_for("regression", (2,), targets=parse_targets("price:USD,area:m2")).targets[1].unit
    'm2'
"""

from __future__ import annotations

from models.card import OutputSpec, Target
from training.importing import ImportRefused

TASKS = ("classification", "multilabel", "regression", "embedding", "tensor")
CARD_TASKS = {"multilabel": "multilabel-classification", "regression": "regression", "embedding": "embedding", "tensor": "tensors", "tensors": "tensors"}


def parse_targets(text: str) -> tuple[Target, ...]:
    """``name[:unit],...``: a regressor's targets in the order of its output units."""
    targets = []
    for part in (p.strip() for p in text.split(",")):
        name, _, unit = part.partition(":")
        if not name.strip():
            raise ImportRefused(f"--targets: expected name[:unit],..., got {text!r}")
        targets.append(Target(name=name.strip(), unit=unit.strip() or None))
    if len({t.name for t in targets}) != len(targets):
        raise ImportRefused(f"--targets: names must be distinct, got {text!r}")
    return tuple(targets)


def output_for(
    task: str,
    shape: tuple[int | None, ...],
    labels: list[str] | None = None,
    targets: tuple[Target, ...] | None = None,
    threshold: float = 0.5,
    positive_label: str | None = None,
) -> OutputSpec:
    """The card's output for a model answering ``shape`` per example (after the batch axis) as ``task``; ImportRefused naming what is wrong."""
    if task not in TASKS:
        raise ImportRefused(f"--task {task!r}: expected one of {', '.join(TASKS)}")
    if None in shape:
        raise ImportRefused(f"the output's shape {['N', *shape]} must be fixed apart from the batch axis")
    if task == "tensor":
        return OutputSpec(kind="tensor", shape=tuple(shape) or (1,))
    if len(shape) > 1 or not shape:
        raise ImportRefused(f"the output's shape {['N', *shape]} is not one vector per example; a {task} output is [N, units] (--task tensor answers any shape)")
    units = shape[0]
    if task == "embedding":
        return OutputSpec(kind="embedding", shape=(units,))
    if task == "regression":
        targets = targets or tuple(Target(name="value" if units == 1 else f"value_{i}") for i in range(units))
        if len(targets) != units:
            raise ImportRefused(f"the model's output has {units} unit(s), but {len(targets)} targets were given (--targets, one per unit)")
        return OutputSpec(kind="regression", targets=targets)
    if not labels:
        raise ImportRefused(f"--labels: a {task} model needs its labels (a comma-separated list or a file with one per line)")
    if task == "multilabel":
        if units != len(labels):
            raise ImportRefused(f"the model's output has {units} unit(s), but {len(labels)} labels were given (one sigmoid unit per label)")
        if not 0 < threshold < 1:
            raise ImportRefused(f"--threshold {threshold}: expected a probability between 0 and 1")
        return OutputSpec(kind="multilabel", labels=tuple(labels), thresholds=(threshold,) * units)
    if units == len(labels):
        return OutputSpec(kind="softmax", labels=tuple(labels))
    if units == 1 and len(labels) == 2:
        positive = positive_label or labels[1]
        if positive not in labels:
            raise ImportRefused(f"--positive-label {positive!r} is not one of the labels {labels}")
        return OutputSpec(kind="sigmoid", labels=tuple(labels), positive_label=positive)
    raise ImportRefused(f"the model's output has {units} unit(s), but {len(labels)} labels were given (one unit per label, or one sigmoid unit for two labels)")


def card_task(output: OutputSpec, is_image: bool) -> str:
    """The card's task for an output: image-classification, classification, regression, ..."""
    if output.single_label:
        return "image-classification" if is_image else "classification"
    return CARD_TASKS[output.kind]
