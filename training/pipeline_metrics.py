"""A configured pipeline measured on evaluation data: the metrics its served card shows.

    python train_and_save.py measure-pipeline pair-chain --eval-data held.npz

Each step's stored version runs on ONNX Runtime (TensorFlow where it has no ONNX file), one thread, in
this process, and serving/pipelines.py's own PipelineHandle composes them: what is measured is what is
served, minus HTTP. The data is read as an import's ``--eval-data`` is, against the pipeline's composed
card (``x``, or an array per named input, and ``y``), and evaluated by its task (training/evaluation.py).
The entry goes into the pipeline metrics record (``pipeline_metrics`` in configuration.yaml) with each
step's card digest: the served card shows the metrics only while its steps are those cards.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import numpy as np

from config import Config
from models import engines, store
from models.card import ModelCard
from serving.core import VersionState
from serving.errors import ServingError
from serving.pipelines import STEP_OUTPUT, PipelineHandle, card_digest, read_measured
from training import evaluation
from training.importing import ImportRefused, load_evaluation

BATCH = 32  # a busy server's batch


class StoredStep:
    """A stored version's engine where the pipeline expects a served version's handle, its compute timed."""

    def __init__(self, name: str, version: str, engine, card: ModelCard):
        self.name, self.version, self.engine, self.card = name, version, engine, card
        self.tag = card.tag
        self.seconds = 0.0

    @classmethod
    def load(cls, name: str, version: str, preferred: str = "onnxruntime") -> StoredStep:
        stored = store.get(name, version)
        card = store.load_card(name, version, stored)
        return cls(name, version, engines.load(stored, card, preferred, threads=1), card)

    async def infer(self, values: np.ndarray, request_id: str | None = None):
        started = time.perf_counter()
        answers = self.engine(values)
        self.seconds += time.perf_counter() - started
        return answers, None, {}

    def available(self) -> ModelCard:
        return self.card

    @property
    def status(self) -> dict:
        return {"status": VersionState.READY, "reason": None, "engine": type(self.engine).__name__}


class StoredSteps:
    """The registry a measured pipeline resolves its steps in: versions by name, aliases as configured."""

    def __init__(self, config: Config, steps: dict[tuple[str, str], StoredStep] | None = None):
        self.config, self.steps = config, steps or {}

    def resolve(self, model: str, version_or_alias: str) -> StoredStep:
        settings = self.config.models.get(model)
        target = settings.aliases.get(version_or_alias, version_or_alias) if settings else version_or_alias
        if isinstance(target, dict):
            raise ImportRefused(f"step {model}:{version_or_alias} is split {target}: point the alias at one version to measure the pipeline")
        if (model, target) not in self.steps:
            try:
                self.steps[model, target] = StoredStep.load(model, target)
            except store.ModelStoreError as exc:
                raise ImportRefused(f"step {model}:{version_or_alias}: {exc}") from None
        return self.steps[model, target]


def run(pipeline: PipelineHandle, values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The pipeline's answers over ``values`` in batches, and the answering step of each example (a cascade's)."""
    answers, steps = [], []
    for start in range(0, len(values), BATCH):
        result, _, extra = asyncio.run(pipeline.infer(values[start : start + BATCH]))
        answers.append(result)
        if STEP_OUTPUT in extra:
            steps.append(extra[STEP_OUTPUT])
    return np.concatenate(answers), np.concatenate(steps) if steps else None


def measure(config: Config, name: str, values: np.ndarray, truth: np.ndarray, data: str, registry: StoredSteps | None = None, by: str | None = None) -> dict:
    """The pipeline metrics record's entry of pipeline ``name`` over checked ``values`` and ``truth``."""
    registry = registry or StoredSteps(config)
    settings = config.pipelines[name]
    pipeline = PipelineHandle(name, settings, registry)  # type: ignore[arg-type]  # StoredSteps resolves as the registry does
    card = pipeline.available()
    handles = [registry.resolve(model, version) for model, version in pipeline.steps]
    for handle in set(handles):
        handle.seconds = 0.0
    answers, steps = run(pipeline, values)
    metrics = evaluation.evaluate_by_task(card, truth, answers)
    metrics.update(
        examples=len(values),
        compute_us_per_example=round(sum(h.seconds for h in set(handles)) / len(values) * 1e6, 1),
        data=data,
        measured=time.strftime("%Y-%m-%d"),
        by=by or f"train_and_save.py measure-pipeline (one thread per step, batches of {BATCH})",
    )
    if steps is not None:
        metrics["answered_by_step"] = [round(float((steps == i).mean()), 4) for i in range(len(settings.steps))]
    return {"steps": {step: card_digest(handle.card) for step, handle in zip(settings.steps, handles, strict=True)}, "metrics": metrics}


def measure_file(config: Config, name: str, path: str | Path) -> dict:
    """Pipeline ``name`` measured on the ``--eval-data`` file at ``path``."""
    if name not in config.pipelines:
        raise ImportRefused(f"{name} is not a pipeline of {config.path} (pipelines: {', '.join(config.pipelines) or 'none'})")
    registry = StoredSteps(config)
    try:
        card = PipelineHandle(name, config.pipelines[name], registry).available()  # type: ignore[arg-type]
    except ServingError as exc:  # its steps do not compose, saying why
        raise ImportRefused(exc.message) from None
    values, truth = load_evaluation(path, card)
    return measure(config, name, values, truth, Path(path).name, registry)


def record(config: Config, name: str, entry: dict) -> Path:
    """``entry`` into the pipeline metrics record, beside the other pipelines' entries."""
    path = config.pipeline_metrics_path()
    if path is None:
        raise ImportRefused(f"{config.path} names no pipeline metrics record: set pipeline_metrics (for example pipelines.json)")
    path.write_text(json.dumps({**read_measured(config), name: entry}, indent=2, sort_keys=True) + "\n")
    return path
