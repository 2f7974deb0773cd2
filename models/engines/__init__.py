"""Inference engines: run a stored version on ONNX Runtime (its verified export) or on TensorFlow.

One registry of engine classes (``ENGINES``, name -> class); configuration (``runners.engine``), the
runners, the benchmarks and scripts/bentofile.py all read it. Every engine implements
``models.engines.base.Engine``: loaded, it takes client values (N, *card.input.shape) and answers one
probability per label. Importing this package imports no engine's library: ONNX Runtime and
TensorFlow are imported when an engine is loaded.

    >>> engine = load(stored, card, preferred="onnxruntime", threads=1)
    >>> engine.name, engine(values).shape
    ('onnxruntime', (N, card.classes))
    >>> choose(card, "onnxruntime")           # "tensorflow" when the version has no verified ONNX export

Adding an engine is one module and one line here:

    # models/engines/torchscript.py
    from models.engines import register
    from models.engines.base import Engine

    @register
    class TorchScriptEngine(Engine):
        name, title = "torchscript", "TorchScript"
        packages = ("requirements-torch.txt",)   # what the Bento installs for it (scripts/bentofile.py)

        @classmethod
        def load(cls, stored, card, threads=1): ...   # e.g. stored.path_of(cls.artefact(card))
        def infer(self, values): ...

    # below, with the other engines:
    from models.engines.torchscript import TorchScriptEngine  # noqa: E402,F401

and ``engine: torchscript`` in configuration.yaml is then accepted.
"""

from __future__ import annotations

import logging

from models.card import ModelCard
from models.engines.base import Engine

log = logging.getLogger(__name__)

ENGINES: dict[str, type[Engine]] = {}  # name -> engine class, in registration order
DEFAULT = "onnxruntime"  # the engine a runner uses unless configured otherwise


def register(cls: type[Engine]) -> type[Engine]:
    """Make ``cls`` an engine configuration can name (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Engine)) or not isinstance(getattr(cls, "name", None), str) or not cls.name:
        raise TypeError(f"{cls!r} is not an Engine subclass with a name")
    if ENGINES.get(cls.name, cls) is not cls:
        raise ValueError(f"engine {cls.name!r} is already registered by {ENGINES[cls.name].__qualname__}")
    ENGINES[cls.name] = cls
    return cls


def get(name: str) -> type[Engine]:
    """The engine class registered as ``name``; ValueError naming the known engines otherwise."""
    try:
        return ENGINES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}") from None


# The engines: each module registers its class.
from models.engines.onnxruntime import OnnxRuntimeEngine  # noqa: E402
from models.engines.tensorflow import TensorFlowEngine  # noqa: E402
from models.store import ONNX_FILE  # noqa: E402


def can_run(card: ModelCard, engine: str) -> bool:
    """The version has a stored, verified file for ``engine``."""
    return get(engine).can_run(card)


def choose(card: ModelCard, preferred: str) -> str:
    """The engine a runner uses: the configured one, or its fallback when the version has no verified
    file for it (ONNX Runtime -> TensorFlow: a version trained or imported before there were exports,
    or whose export disagreed; TensorFlow -> ONNX Runtime: a version imported as ONNX or from scikit-learn)."""
    engine = get(preferred)
    if engine.fallback and not engine.can_run(card):
        fallback = get(engine.fallback)
        why = card.engines.get(engine.name, {}).get("reason", f"it has no file for {engine.title}")
        log.warning("%s runs on %s: %s", card.tag, fallback.title, why)
        return fallback.name
    return preferred


def load(stored, card: ModelCard, preferred: str = DEFAULT, threads: int = 1) -> Engine:
    """The engine for a stored version (BentoML's stored model), warmed up."""
    engine = get(choose(card, preferred)).load(stored, card, threads)
    engine.warm_up()
    return engine


__all__ = ["DEFAULT", "ENGINES", "ONNX_FILE", "Engine", "OnnxRuntimeEngine", "TensorFlowEngine", "can_run", "choose", "get", "load", "register"]
