"""The protocol-neutral inference request and response: what every protocol adapter translates to and from.

A protocol (REST or gRPC) reads its body into an :class:`InferenceRequest`: the model, how the client
named the version (a :data:`Selector`), the caller's traffic key, and named inputs as the protocol
received them. ``DataPlane.infer(request)`` resolves the version, turns each input into values checked
against that version's card, runs it, and answers an :class:`InferenceResponse`: named outputs and the
version that answered. The protocol renders that in its own body, and errors with its own statuses.

    >>> request = InferenceRequest("clothes", Named("stable"), {INPUT: JsonExamples(pixels, field="image")}, traffic_key="user-42")
    >>> response = await plane.infer(request)
    >>> response.version, response.outputs[OUTPUT].shape
    ('v1', (1, 10))
"""

from __future__ import annotations

import abc
import dataclasses
import enum
from typing import Any, TypedDict

import numpy as np

from models.card import ModelCard
from models.preprocessing import Invert, check_values, leaf_types, values_from_image, values_from_json
from serving.errors import BadRequest, InvalidInput, PayloadTooLarge, Unavailable

# The one input and output tensor of a served version, named alike in every protocol.
INPUT, OUTPUT = "input", "probabilities"
# Outputs besides it, where the version has them (models.<name>.ood): each example's score, and whether it abstained.
OOD_OUTPUT, ABSTAINED_OUTPUT = "ood_score", "abstained"


class VersionState(enum.StrEnum):
    """Whether a served version can answer now."""

    READY = "ready"
    LOADING = "loading"  # its runner does not answer yet, or hosts another version
    UNAVAILABLE = "unavailable"  # missing from the store, or failed to load: with the reason


class VersionStatus(TypedDict):
    """A served version's status (``VersionHandle.status``, ``RunnerHealth.status``): listed as is by
    ``GET /models/<name>`` and the repository index, so its values serialise as the plain strings."""

    status: VersionState
    reason: str | None  # why it is not ready (None when it is)
    engine: str | None  # the engine its runner runs it on; None until the runner has loaded it


def version_status(answer: dict) -> VersionStatus:
    """A runner's ``status`` answer (plain strings over the wire) as a typed status; an unknown state is
    taken as loading (the runner answers, but not in a way the entry knows)."""
    try:
        state = VersionState(answer["status"])
    except (KeyError, ValueError):
        state = VersionState.LOADING
    return {"status": state, "reason": answer.get("reason"), "engine": answer.get("engine")}


# --- how a request names a version ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Named:
    """A version or an alias by name (the course's routes, v2, the typed APIs)."""

    name: str


@dataclasses.dataclass(frozen=True)
class Default:
    """The model's ``default_version`` (v2 and the typed APIs without a version)."""


@dataclasses.dataclass(frozen=True)
class Number:
    """TF Serving's version number: a version named ``v<n>`` or ``<n>``."""

    number: int


@dataclasses.dataclass(frozen=True)
class Label:
    """TF Serving's version label: an alias (a split too), or a version without a number."""

    label: str


@dataclasses.dataclass(frozen=True)
class Latest:
    """TF Serving without a version: the highest number that is ready."""


Selector = Named | Default | Number | Label | Latest


# --- inputs: as received, turned into values against the answering version's card -----------------------


class Input(abc.ABC):
    """One named input as a protocol received it. The data plane calls :meth:`values` once the version
    is resolved, so the same request can be checked against whichever version a split picks."""

    @abc.abstractmethod
    async def values(self, card: ModelCard, max_examples: int) -> np.ndarray:
        """(N, *card.input.shape) values in the card's range, at most ``max_examples`` of them, or an error naming the field."""

    async def tensors(self, card: ModelCard, max_examples: int) -> dict[str, tuple[np.ndarray, str]]:
        """For a model with named inputs (``card.inputs``): each tensor the client sent, by name, with the
        field it came in. The data plane checks them against the card (models/tensors.py)."""
        raise BadRequest(
            f"{card.tag} takes named inputs ({', '.join(spec.name for spec in card.inputs)}): send each by its name "
            '(POST /models/<name>/<version> with {"inputs": {...}}, OIP v2 or TF Serving)'
        )


def check_batch(count: int, max_examples: int, field: str) -> None:
    if count > max_examples:
        raise PayloadTooLarge(f"{field}: {count} examples exceed the limit of {max_examples} per request")


@dataclasses.dataclass(frozen=True)
class Tensor(Input):
    """A typed tensor, batch first (v2 and gRPC): a grey image may leave out its channel axis."""

    array: np.ndarray
    field: str

    async def tensors(self, card: ModelCard, max_examples: int) -> dict[str, tuple[np.ndarray, str]]:
        return {INPUT: (self.array, self.field)}

    async def values(self, card: ModelCard, max_examples: int) -> np.ndarray:
        if self.array.ndim == 0:
            raise BadRequest(f"{self.field}: expected a batch of examples, got a single number")
        if self.array.dtype.kind in "bO":
            raise BadRequest(f"{self.field}: datatype {'BOOL' if self.array.dtype.kind == 'b' else 'BYTES'} is not accepted; {card.tag} takes numbers")
        values = check_values(self.array, card, self.field, batch=True)
        check_batch(len(values), max_examples, self.field)
        return values


@dataclasses.dataclass(frozen=True)
class Tensors(Input):
    """Tensors a protocol received by name (v2, TF Serving): ``input`` alone is the one input of most
    models; any names are the named inputs of a model that has them (``card.inputs``)."""

    named: dict[str, Tensor]
    one_input: str  # what a model with one input answers to other names: the protocol's own message

    async def values(self, card: ModelCard, max_examples: int) -> np.ndarray:
        if set(self.named) != {INPUT}:
            raise BadRequest(self.one_input)
        return await self.named[INPUT].values(card, max_examples)

    async def tensors(self, card: ModelCard, max_examples: int) -> dict[str, tuple[np.ndarray, str]]:
        return {name: (tensor.array, tensor.field) for name, tensor in self.named.items()}


@dataclasses.dataclass(frozen=True)
class JsonExamples(Input):
    """Nested JSON lists: one example, or a batch when ``batch`` (the course's ``image``/``images``)."""

    value: object
    field: str
    batch: bool = False
    booleans: bool = True  # whether the body may hold true or false, which are not numbers
    limit_field: str | None = None  # the field the batch limit names (default: ``field``)

    async def values(self, card: ModelCard, max_examples: int) -> np.ndarray:
        values = values_from_json(self.value, card, field=self.field, batch=self.batch)
        if self.booleans and holds_booleans(self.value):
            raise InvalidInput(f"{self.field}: expected numbers, got true or false")
        check_batch(len(values), max_examples, self.limit_field or self.field)
        return values


@dataclasses.dataclass(frozen=True)
class ImageFiles(Input):
    """Encoded image files (PNG, JPEG, ...), decoded as the card's preprocessing says; counted before decoding."""

    files: tuple[bytes, ...]
    fields: tuple[str, ...]  # one per file, for error messages
    field: str  # the field the batch limit names
    invert: Invert | str = Invert.AUTO

    async def values(self, card: ModelCard, max_examples: int) -> np.ndarray:
        check_batch(len(self.files), max_examples, self.field)
        return np.concatenate([values_from_image(data, card, field=field, invert=self.invert) for data, field in zip(self.files, self.fields, strict=True)])


def holds_booleans(rows: object) -> bool:
    """Whether regular nested lists (already known to be numbers of one depth) hold a boolean: NumPy
    reads true and false among numbers as 1 and 0."""
    if not isinstance(rows, list):
        return isinstance(rows, bool)
    types = leaf_types(rows)
    return types is not None and bool in types


# --- the request and the response ------------------------------------------------------------------------


@dataclasses.dataclass
class InferenceRequest:
    model: str
    version: Selector
    inputs: dict[str, Input]
    outputs: tuple[str, ...] | None = None  # the outputs asked for; None: every output
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    traffic_key: str | None = None  # a split alias answers the same key with the same version
    id: str | None = None


@dataclasses.dataclass
class InferenceResponse:
    model: str
    version: str  # the version that answered (an alias or a split resolved to one)
    card: ModelCard
    outputs: dict[str, np.ndarray]
    alias: str | None = None  # the alias the request named, if any
    id: str | None = None
    timings: dict[str, float] = dataclasses.field(default_factory=dict)  # milliseconds: decode, infer
    ood_scores: np.ndarray | None = None  # each example's out-of-distribution score (lifecycle/ood.py), when the version has one
    abstained: np.ndarray | None = None  # each example past the model's ood.abstain_above, when it has one

    @property
    def probabilities(self) -> np.ndarray:
        return self.outputs[OUTPUT]

    @property
    def answers(self) -> np.ndarray:
        """The model's output tensor: a classifier's probabilities, a regressor's values, an embedding, ..."""
        return self.outputs[self.card.output.tensor]


@dataclasses.dataclass(frozen=True)
class VersionView:
    """What a protocol may know of a served version: for metadata, status and readiness answers."""

    model: str
    version: str
    number: int | None  # TF Serving's number (v<n> or <n>), unique within the model, else None
    state: VersionState
    reason: str | None
    engine: str | None
    card: ModelCard | None  # None when the version is missing from the store
    aliases: tuple[str, ...] = ()
    outputs: tuple[str, ...] = (OUTPUT,)  # its output tensors: the probabilities, then OOD_OUTPUT and ABSTAINED_OUTPUT where it has them

    @property
    def tag(self) -> str:
        return f"{self.model}:{self.version}"

    @property
    def available_card(self) -> ModelCard:
        """The card of a version that can answer (``DataPlane.describe(..., available=True)``, ``DataPlane.prepare``)."""
        if self.card is None:
            raise Unavailable(f"{self.tag} is missing from the store")
        return self.card
