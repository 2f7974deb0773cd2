"""The interface every inference engine implements (models/engines/__init__.py keeps the registry).

An engine runs one stored version: it takes client values (N, *card.input.shape), applies the card's
preprocessing with the function training used (``models.preprocessing.to_model_input``) and answers
one probability per label (``models.inference.class_probabilities``).

What the rest of the project asks of an engine class, without loading anything:

    name        the name configuration.yaml uses (``runners.engine``) and the card's ``engines`` key
    title       how messages name it ("ONNX Runtime")
    packages    requirement files (from the project root) a Bento needs to run it beyond
                requirements.txt; () when requirements.txt is enough (scripts/bentofile.py)
    fallback    the engine a version runs on when it has no verified file for this one, or None
    artefact(card)   the stored file it runs, or None;  can_run(card)   whether there is one

and of a loaded engine: ``infer(values)`` (also ``engine(values)``) and ``warm_up()``.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np

from models.card import ModelCard
from models.inference import warm_up


class EngineInputError(ValueError):
    """The model refused the values it was given (an index past an embedding's rows, ...): the client's
    error, not the engine's. Engines raise it for their library's invalid-argument errors; it leaves a
    runner as a 400 and reaches the client as a 422 (serving/dispatch.py)."""


class Engine(abc.ABC):
    name: ClassVar[str]
    title: ClassVar[str]
    packages: ClassVar[tuple[str, ...]] = ()
    fallback: ClassVar[str | None] = None

    card: ModelCard

    @classmethod
    def artefact(cls, card: ModelCard) -> str | None:
        """The stored file this engine runs for the version (``card.engines[name]["file"]``), or None
        when there is none (never exported, or its export failed verification)."""
        return card.engines.get(cls.name, {}).get("file")

    @classmethod
    def can_run(cls, card: ModelCard) -> bool:
        """The version has a stored, verified file for this engine."""
        return cls.artefact(card) is not None

    @classmethod
    @abc.abstractmethod
    def load(cls, stored, card: ModelCard, threads: int = 1) -> Engine:
        """The engine on a stored version (BentoML's stored model), not yet warmed up."""

    @abc.abstractmethod
    def infer(self, values: np.ndarray) -> np.ndarray:
        """The answers, shape (N, *card.output.answer_shape), float32: one probability per label for a classifier."""

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return self.infer(values)

    def warm_up(self) -> np.ndarray:
        """One inference on a blank example, checked: the first client request pays no tracing cost."""
        return warm_up(self, self.card)
