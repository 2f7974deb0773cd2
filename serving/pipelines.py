"""Pipelines: models whose answers are composed from served versions' answers (``pipelines`` in configuration.yaml).

Three combinators. Two over classifiers that take the same input and answer the same labels:

- ``ensemble``: the weighted mean of every step's class probabilities;
- ``cascade``: each example is answered by the first step whose top probability reaches ``threshold``,
  the others go on to the next step, and the last step answers what is left. Its answers say which
  step answered each example (the ``step`` output; ``step`` in the course's predictions).

And one over any models, whose tensors are wired by name:

- ``graph``: steps run in order; each input of a step takes an earlier step's output or one of the
  pipeline's own inputs (``wiring``, or by name: the latest earlier output of the input's name, else
  the pipeline's input of that name). The pipeline takes what no step produces (one model's input
  and preprocessing as they are, when that is all it takes; named tensors otherwise) and answers the
  last step's outputs. Shapes and datatypes must match along every wire (checked when composing).

A pipeline is served at its own URL and through every protocol like any other model, with one version
(``version``, v1 by default). Its :class:`PipelineHandle` stands where a version's handle stands: the
data plane resolves it and calls ``infer``, which calls each step's version through that version's own
batcher and runner, so a step runs where its version runs (its runner process, or in process) and
counts as that version's traffic. A step names a version or an alias (``clothes:stable`` follows the
alias at each call). The card is composed from the steps' cards at each change of them (their input,
preprocessing and labels; an incompatible step makes the pipeline unavailable, saying why); its
metrics are the pipeline metrics record's (``pipeline_metrics``, written by ``python -m
bench.pipelines``), shown only while the steps' cards are the ones they were measured with. An error
in a step comes back as that step's error (its status), its message naming the step.

    >>> add_pipelines(registry, config)              # serving its configured pipelines beside the models
    >>> answers, scores, extra = await registry.resolve("clothes-cascade", "v1").infer(values)
    >>> extra["step"]                                  # the step that answered each example (cascade)
    array([0, 0, 1], dtype=int32)
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import hashlib
import json
import logging

import numpy as np

from config import Config
from config.settings import PipelineSettings
from models.card import InputSpec, ModelCard, TensorSpec
from models.preprocessing import check_values
from models.tensors import checked, pack, unpack
from serving.core import INPUT, VersionState
from serving.errors import ServingError, Unavailable
from serving.registry import RETRY_MISSING_SECONDS, ModelRegistry, ServedModel

log = logging.getLogger(__name__)
STEP_OUTPUT = "step"  # a cascade's output: the index of the step that answered each example


class _NoHealth:
    """A pipeline has no runner to probe or watch: its state is its steps'."""

    async def watch(self) -> None:
        return None

    async def probe(self) -> dict:
        return {}

    def update(self, status: dict) -> None:
        return None


class PipelineHandle:
    """What the data plane calls for a pipeline's one version (the subset of VersionHandle it uses)."""

    monitor = None  # a pipeline's traffic is its steps' traffic: they monitor it
    ood = None
    slot = None
    report = None
    reference = None
    failure = None
    created = None
    health = _NoHealth()

    def __init__(self, name: str, settings: PipelineSettings, registry: ModelRegistry, measured: dict | None = None):
        self.name, self.version, self.settings, self.registry = name, settings.version, settings, registry
        self.measured = measured  # its entry in the pipeline metrics record: the metrics, and the steps' cards they were measured with
        self.steps = [tuple(step.split(":")) for step in settings.steps]
        weights = np.asarray(settings.weights or [1.0] * len(self.steps), dtype=np.float32)
        self.weights = weights / weights.sum()
        self.in_flight = 0
        self._composed: tuple[tuple, ModelCard | None, str | None, list] | None = None  # (the steps' cards, the card, why none, a graph's plan)

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def outputs(self) -> tuple[str, ...]:
        return (STEP_OUTPUT,) if self.settings.combine == "cascade" else ()

    def _handles(self):
        return [self.registry.resolve(model, version) for model, version in self.steps]

    @property
    def card(self) -> ModelCard | None:
        return self._compose()[0]

    def _compose(self) -> tuple[ModelCard | None, str | None]:
        """The composed card, or None and why not; recomposed when a step resolves to another card."""
        handles = []
        for model, version in self.steps:
            try:
                handles.append(self.registry.resolve(model, version))
            except ServingError as exc:
                return None, f"{self.tag}: step {model}:{version} does not serve: {exc.message}"
        cards = tuple(handle.card for handle in handles)
        if self._composed is not None and len(self._composed[0]) == len(cards) and all(a is b for a, b in zip(self._composed[0], cards, strict=True)):
            return self._composed[1], self._composed[2]
        steps = [f"{model}:{version}" for model, version in self.steps]
        plan: list[dict[str, Feed]] = []
        if self.settings.combine == "graph":
            card, plan, reason = compose_graph(self.name, self.settings, steps, list(cards))
        else:
            card, reason = compose(self.name, self.settings, steps, list(cards))
        if card is not None and self.measured is not None and self.measured.get("steps") == {step: card_digest(c) for step, c in zip(steps, cards, strict=True) if c is not None}:
            card = card.model_copy(update={"metrics": self.measured["metrics"]})  # measured with exactly these steps' cards
        self._composed = (cards, card, reason, plan)
        return card, reason

    @property
    def status(self) -> dict:
        card, reason = self._compose()
        if card is None:
            return {"status": VersionState.UNAVAILABLE, "reason": reason, "engine": None}
        for (model, version), handle in zip(self.steps, self._handles(), strict=True):
            status = handle.status
            if status["status"] != VersionState.READY:
                return {"status": status["status"], "reason": f"step {model}:{version}: {status['reason'] or status['status'].value}", "engine": None}
        return {"status": VersionState.READY, "reason": None, "engine": f"{self.settings.combine} of {len(self.steps)} steps"}

    def available(self) -> ModelCard:
        card, reason = self._compose()
        if card is None:
            raise Unavailable(reason or f"{self.tag} cannot compose its steps", retry_after=RETRY_MISSING_SECONDS)
        return card

    async def infer(self, values: np.ndarray, request_id: str | None = None) -> tuple[np.ndarray, None, dict[str, np.ndarray]]:
        """The composed class probabilities, no OOD score, and the cascade's answering step per example."""
        card = self.available()
        plan = self._composed[3] if self._composed is not None else []  # a graph's wires, composed with that card
        self.in_flight += 1
        try:
            handles = self._handles()
            if self.settings.combine == "graph":
                return await self._graph(card, plan, handles, values, request_id)
            if self.settings.combine == "ensemble":
                answers = await asyncio.gather(*(self._step(index, handle, values, request_id) for index, handle in enumerate(handles)))
                return np.tensordot(self.weights, np.stack(answers), axes=1).astype(np.float32), None, {}
            return await self._cascade(handles, values, request_id)
        finally:
            self.in_flight -= 1

    async def _cascade(self, handles, values: np.ndarray, request_id: str | None):
        threshold = self.settings.threshold
        probabilities: np.ndarray | None = None
        steps = np.zeros(len(values), dtype=np.int32)
        pending = np.arange(len(values))
        for index, handle in enumerate(handles):
            answers = await self._step(index, handle, values[pending], request_id)
            if probabilities is None:
                probabilities = np.empty((len(values), answers.shape[1]), dtype=np.float32)
            sure = answers.max(axis=1) >= threshold if index < len(handles) - 1 else np.ones(len(pending), dtype=bool)
            probabilities[pending[sure]] = answers[sure]
            steps[pending[sure]] = index
            pending = pending[~sure]
            if not len(pending):
                break
        return probabilities, None, {STEP_OUTPUT: steps}

    async def _graph(self, card: ModelCard, plan: list[dict[str, Feed]], handles, values: np.ndarray, request_id: str | None):
        """Each step on its wired inputs (``plan``), in order; the last step's answers."""
        given = unpack(card.inputs, values) if card.inputs else {INPUT: values}
        produced: dict[tuple[int, str], np.ndarray] = {}
        answers = values
        for index, (handle, feeds) in enumerate(zip(handles, plan, strict=True)):
            step = handle.available()
            arrays = {name: given[feed.name] if feed.step is None else produced[feed.step, feed.name] for name, feed in feeds.items()}
            where = f"step {index + 1} of {self.tag}, {handle.tag}"
            if step.inputs:
                step_values = pack(step.inputs, checked(step.inputs, {name: (array, f"{where}: {name}") for name, array in arrays.items()}, step.name))
            else:
                step_values = check_values(arrays[INPUT], step, f"{where}: {INPUT}", batch=True)
            answers = await self._step(index, handle, step_values, request_id)
            for name, array in (unpack(step.outputs, answers) if step.outputs else {step.output.tensor: answers}).items():
                produced[index, name] = array
        return answers, None, {}

    async def _step(self, index: int, handle, values: np.ndarray, request_id: str | None) -> np.ndarray:
        try:
            answers, _, _ = await handle.infer(values, request_id)
        except ServingError as exc:
            named = copy.copy(exc)
            named.message = f"step {index + 1} of {self.tag}, {handle.tag}: {exc.message}"
            named.args = (named.message,)
            raise named from None
        return answers


def compose(name: str, settings: PipelineSettings, steps: list[str], cards: list[ModelCard | None]) -> tuple[ModelCard | None, str | None]:
    """The pipeline's card from its steps' cards, or None and why they do not compose."""
    missing = [step for step, card in zip(steps, cards, strict=True) if card is None]
    if missing:
        return None, f"{name}: step {missing[0]} has no card (not in the model store)"
    first = cards[0]
    assert first is not None
    for step, card in zip(steps[1:], cards[1:], strict=True):
        assert card is not None
        if not card.is_classifier or card.labels != first.labels:
            return None, f"{name}: step {step} answers {list(card.labels) or card.task}, step {steps[0]} {list(first.labels)}: a {settings.combine} needs the same labels"
        if (card.input, card.inputs, card.preprocessing) != (first.input, first.inputs, first.preprocessing):
            return None, f"{name}: step {step} takes other input than step {steps[0]} ({card.input.shape} {card.input.value_range}): a {settings.combine} needs the same"
    if not first.is_classifier:
        return None, f"{name}: step {steps[0]} answers {first.task}; a {settings.combine} combines classifiers"
    how = f"threshold {settings.threshold}" if settings.combine == "cascade" else f"weights {settings.weights or 'equal'}"
    card = first.model_copy(
        update={
            "name": name,
            "version": settings.version,
            "description": f"a {settings.combine} of {', '.join(steps)} ({how})",
            "architecture": f"{settings.combine}({', '.join(steps)})",
            "number_of_parameters": sum(card.number_of_parameters for card in cards if card is not None),
            "metrics": None,
            "slices": None,
            "history": None,
            "training": {"pipeline": {"combine": settings.combine, "steps": steps, "threshold": settings.threshold, "weights": settings.weights}},
            "data": {"source": None, "steps": {step: card.data for step, card in zip(steps, cards, strict=True) if card is not None}},
            "engines": {},
            "files": (),
        }
    )
    return card, None


@dataclasses.dataclass(frozen=True)
class Feed:
    """Where a graph step's input comes from: an earlier step's output (``step``: its index), or the pipeline's input (``step`` None)."""

    step: int | None
    name: str


Tensor = tuple[str, tuple[int, ...]]  # (datatype, one example's shape)


def tensors_in(card: ModelCard) -> dict[str, Tensor]:
    """A version's inputs by name: its named tensors, or its one input (``input``, float32 values)."""
    return {spec.name: (spec.datatype, spec.shape) for spec in card.inputs} if card.inputs else {INPUT: ("FP32", card.input.shape)}


def tensors_out(card: ModelCard) -> dict[str, Tensor]:
    """A version's outputs by name: its named tensors, or its one answer (probabilities, values, ...)."""
    return {spec.name: (spec.datatype, spec.shape) for spec in card.outputs} if card.outputs else {card.output.tensor: ("FP32", card.output.answer_shape)}


def _shown(tensor: Tensor) -> str:
    return f"{tensor[0]} {list(tensor[1])}"


def compose_graph(name: str, settings: PipelineSettings, steps: list[str], cards: list[ModelCard | None]) -> tuple[ModelCard | None, list[dict[str, Feed]], str | None]:
    """A graph's card and wires from its steps' cards, or None and why they do not compose."""
    missing = [step for step, card in zip(steps, cards, strict=True) if card is None]
    if missing:
        return None, [], f"{name}: step {missing[0]} has no card (not in the model store)"
    known: list[ModelCard] = [card for card in cards if card is not None]
    plan: list[dict[str, Feed]] = []
    taken: dict[str, tuple[Tensor, int, str]] = {}  # the pipeline's inputs: their tensor, and the first step taking each, by its input's name
    for index, card in enumerate(known):
        wiring = (settings.wiring or [{}] * len(known))[index]
        unknown = [target for target in wiring if target not in tensors_in(card)]
        if unknown:
            return None, [], f"{name}: wiring of step {index + 1} names {unknown[0]!r}, not an input of {steps[index]} ({', '.join(tensors_in(card))})"
        feeds: dict[str, Feed] = {}
        for target, tensor in tensors_in(card).items():
            source = wiring.get(target)
            if source is not None:
                origin, _, output = source.partition(".")
                feed = Feed(None if origin == "inputs" else int(origin) - 1, output)
            else:
                earlier = [i for i in range(index) if target in tensors_out(known[i])]
                feed = Feed(earlier[-1] if earlier else None, target)
            if feed.step is None:
                first = taken.setdefault(feed.name, (tensor, index, target))
                if first[0] != tensor:
                    return None, [], f"{name}: input {feed.name!r} goes to step {first[1] + 1} as {_shown(first[0])} and to step {index + 1} as {_shown(tensor)}"
            else:
                produced = tensors_out(known[feed.step]).get(feed.name)
                if produced is None:
                    return (
                        None,
                        [],
                        f"{name}: step {index + 1}'s {target!r} is wired to {feed.name!r} of step {feed.step + 1}, which answers {', '.join(tensors_out(known[feed.step]))}",
                    )
                if produced != tensor:
                    return None, [], f"{name}: step {index + 1} takes {target!r} as {_shown(tensor)}, but step {feed.step + 1}'s {feed.name!r} is {_shown(produced)}"
            feeds[target] = feed
        plan.append(feeds)
    last = known[-1]
    takers = [card for card, feeds in zip(known, plan, strict=True) if any(feed.step is None for feed in feeds.values())]
    entry: dict
    if set(taken) == {INPUT} and all(not card.inputs and (card.input, card.preprocessing) == (takers[0].input, takers[0].preprocessing) for card in takers):
        entry = {"input": takers[0].input, "inputs": (), "preprocessing": takers[0].preprocessing}  # one model's input as it is: its image files too
    else:
        # Each input as the first step taking it has it: its bounds (max_bytes, max_shape) too.
        specs = tuple(_taken_spec(known[index], target, input_name, tensor) for input_name, (tensor, index, target) in taken.items())
        entry = {"input": InputSpec.packed(specs), "inputs": specs, "preprocessing": None}
    wires = [{target: f"{'inputs' if feed.step is None else feed.step + 1}.{feed.name}" for target, feed in feeds.items()} for feeds in plan]
    card = last.model_copy(
        update={
            **entry,
            "name": name,
            "version": settings.version,
            "task": last.task if last.task != "image-classification" or entry["preprocessing"] is not None else "classification",
            "description": f"a graph of {', '.join(steps)}",
            "architecture": f"graph({', '.join(steps)})",
            "number_of_parameters": sum(card.number_of_parameters for card in known),
            "metrics": None,
            "slices": None,
            "history": None,
            "training": {"pipeline": {"combine": "graph", "steps": steps, "wiring": wires}},
            "data": {"source": None, "steps": {step: card.data for step, card in zip(steps, known, strict=True)}},
            "engines": {},
            "files": (),
        }
    )
    try:
        card = ModelCard.model_validate(card.model_dump())  # the composed card is checked as any card is
    except ValueError as exc:
        return None, [], f"{name}: its steps compose no valid card: {exc}"
    return card, plan, None


def _taken_spec(card: ModelCard, target: str, name: str, tensor: Tensor) -> TensorSpec:
    """A pipeline input as the step's input ``target`` it feeds is described, under the pipeline's name for it."""
    spec = next((spec for spec in card.inputs if spec.name == target), None)
    return spec.model_copy(update={"name": name}) if spec is not None else TensorSpec(name=name, datatype=tensor[0], shape=tensor[1])


def card_digest(card: ModelCard) -> str:
    """A step's card as the pipeline metrics record names it: metrics hold for exactly that card."""
    return hashlib.sha256(card.model_dump_json().encode()).hexdigest()[:16]


def read_measured(config: Config) -> dict:
    """The pipeline metrics record (``pipeline_metrics``): name -> {"steps": {step: card digest}, "metrics": {...}}; empty without one."""
    path = config.pipeline_metrics_path()
    if path is None or not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log.warning("%s: the pipeline metrics record cannot be read (%s); pipelines' cards have no metrics", path, exc)
        return {}


def add_pipelines(registry: ModelRegistry, config: Config) -> None:
    """Serve the configured pipelines beside the models: each a model of one version."""
    measured = read_measured(config)
    for name, settings in config.pipelines.items():
        handle = PipelineHandle(name, settings, registry, measured.get(name))
        registry.models[name] = ServedModel(name, {settings.version: handle}, {}, settings.version)  # type: ignore[dict-item]
