"""Model recipes: each module here is one model family, the only place that names it, its data, its
input shape, its labels and how each version is trained.

A recipe module defines ``RECIPE``, a :class:`Recipe`. Adding a model is adding a module here (its
networks come from ``training.architectures``), training it (``train_and_save.py train NAME VERSION``)
and listing it in ``configuration.yaml``.

    >>> recipe = get("clothes")
    >>> recipe.versions["v1"].architecture, recipe.output.labels[0]
    ('lenet5', 'T-shirt/top')
    >>> names()
    ['clothes', ...]
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable

from models.card import ImagePreprocessing, InputSpec, OutputSpec
from training.datasets import Dataset


@dataclasses.dataclass(frozen=True)
class Training:
    """How one version is trained."""

    architecture: str  # a name in training.architectures
    description: str
    epochs: int
    batch_size: int
    learning_rate: float = 0.001
    cosine_decay: bool = False  # decay the learning rate to zero over the run
    warmup_epochs: int = 0  # with cosine_decay: rise linearly from 0 to learning_rate over these first epochs
    weight_decay: float = 0.0  # above 0: AdamW with this decoupled weight decay, else Adam
    validation_split: float = 0.2  # the share of the training data held for validation, when the data has no split of its own
    label_smoothing: float = 0.0
    # Random changes per example, training only (training/fit.py): "flip_lr", "flip_ud", "rot90" (a quarter
    # turn), "brightness:0.3" (a gain in 0.7..1.3), "contrast:0.3" (around the example's mean), "cutout:0.25"
    # (half the examples get a black square of up to a quarter of the side).
    augment: tuple[str, ...] = ()
    restore_best: bool = False  # keep the weights of the epoch with the best validation accuracy, not the last
    mixed_precision: str | None = None  # e.g. "mixed_bfloat16": trained so, stored as float32
    seed: int = 42


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    task: str
    input: InputSpec
    preprocessing: ImagePreprocessing | None
    output: OutputSpec
    versions: dict[str, Training]
    load_data: Callable[..., Dataset]  # load_data(data_dir=None, allow_download=True) -> Dataset
    # Slices: shift name -> the shift's kind and parameters (lifecycle/slices.py applies them).
    shifts: dict[str, dict] = dataclasses.field(default_factory=dict)

    def training(self, version: str, **overrides) -> Training:
        if version not in self.versions:
            raise ValueError(f"no recipe for {self.name}:{version}; known versions: {', '.join(sorted(self.versions))}")
        return dataclasses.replace(self.versions[version], **{k: v for k, v in overrides.items() if v is not None})


def names() -> list[str]:
    return sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))


def get(name: str) -> Recipe:
    if name not in names():
        raise ValueError(f"no recipe for model {name!r}; known: {', '.join(names())} (training/recipes/)")
    return importlib.import_module(f"{__name__}.{name}").RECIPE
