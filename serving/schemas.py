"""Every JSON answer's schema, in pydantic, grouped by protocol; the prediction body the course's routes
and the typed APIs answer, and the typed APIs' shapes.

Sized by no model: the published OpenAPI document (serving/openapi.py) publishes each answer's
schema as a component and narrows it per model from its card. Enums come from the registries and
maps they describe: the datatypes from ``TENSOR_CODECS``, the engines from ``ENGINES``, the states
from ``VersionState``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model, model_validator

from models.card import ModelCard, Name
from models.engines import ENGINES
from serving.codecs.tensors import TENSOR_CODECS
from serving.core import VersionState

# strict: JSON true/false are not numbers (pydantic would read them as 1 and 0).
Number = Annotated[float, Field(allow_inf_nan=False, strict=True)]
# One example as JSON: a vector, an H x W grey image, or an H x W x C image (the card says which).
Example = list[Number] | list[list[Number]] | list[list[list[Number]]]


class Prediction(BaseModel):
    class_id: int | None = Field(ge=0, description="null when the model abstained")
    label: str | None = Field(description="null when the model abstained")
    confidence: float = Field(ge=0, le=1)
    ood_score: float | None = Field(None, description="how unlike the held-out data the example is (the model's ood.score; higher is less familiar)")
    abstained: bool | None = Field(None, description="true: its ood_score was past the model's ood.abstain_above, so no label is given")
    step: str | None = Field(None, description="a cascade: the step (model:version) that answered the example")


class RegressionPrediction(BaseModel):
    values: dict[str, float] = Field(description="each target's value, by its name (the card gives units)")


class MultilabelPrediction(BaseModel):
    labels: list[str] = Field(description="the labels whose probability reached its threshold")
    scores: dict[str, float] = Field(description="each label's probability")


class PredictResponse(BaseModel):
    model: Name
    version: Name
    result: list[Any] | dict[str, list[Any]] = Field(
        description="one row per example, as model.predict(...).tolist(): a classifier's class probabilities, a regressor's values, ...; "
        "a model with several named outputs: each output's rows by its name"
    )
    predictions: list[Prediction] | list[RegressionPrediction] | list[MultilabelPrediction] | None = Field(
        None, description="each example read by the model's task: its class, its values by target, its labels; null for embeddings and plain tensors"
    )


def prediction_body(card: ModelCard, probabilities: np.ndarray, ood_scores: np.ndarray | None = None, abstained: np.ndarray | None = None, steps: np.ndarray | None = None) -> dict:
    """The JSON body for a prediction: the course's ``result`` plus readable predictions, each with its
    out-of-distribution score when the version has one; an example past the model's ``ood.abstain_above``
    is an abstention (no class, no label). A model of another task answers its values in ``result`` and
    reads them by target or label where it can."""
    if not card.is_classifier:
        return {"model": card.name, "version": card.version, "result": probabilities.tolist(), "predictions": readings(card, probabilities)}
    rows = probabilities.tolist()
    labels = card.labels
    # Python's floats of the rows: a third of the time NumPy's indexing took for one image.
    predictions = [{"class_id": c, "label": labels[c], "confidence": row[c]} for row, c in zip(rows, probabilities.argmax(axis=1).tolist(), strict=True)]
    if ood_scores is not None:
        for prediction, score in zip(predictions, ood_scores.tolist(), strict=True):
            prediction["ood_score"] = round(score, 6)
    if steps is not None:
        names = card.training["pipeline"]["steps"]
        for prediction, step in zip(predictions, steps.tolist(), strict=True):
            prediction["step"] = names[step]
    if abstained is not None:
        for prediction, abstains in zip(predictions, abstained.tolist(), strict=True):
            prediction["abstained"] = abstains
            if abstains:
                prediction["class_id"] = prediction["label"] = None
    return {"model": card.name, "version": card.version, "result": rows, "predictions": predictions}


def named_prediction_body(card: ModelCard, outputs: dict[str, np.ndarray]) -> dict:
    """The JSON body for a model with several named outputs: each output's rows by its name."""
    return {"model": card.name, "version": card.version, "result": {spec.name: outputs[spec.name].tolist() for spec in card.outputs}, "predictions": None}


def readings(card: ModelCard, answers: np.ndarray) -> list[dict] | None:
    """Each example of a model of another task than one class, read: values by target, labels past their thresholds."""
    output = card.output
    if output.kind == "regression":
        names = [target.name for target in output.targets]
        return [{"values": dict(zip(names, row, strict=True))} for row in answers.tolist()]
    if output.kind == "multilabel":
        given = answers >= np.asarray(output.thresholds, dtype=answers.dtype)
        return [
            {"labels": [label for label, on in zip(output.labels, flags, strict=True) if on], "scores": dict(zip(output.labels, row, strict=True))}
            for row, flags in zip(answers.tolist(), given.tolist(), strict=True)
        ]
    return None


# --- the answers' schemas, written once: the OpenAPI document (serving/openapi.py) publishes each as a
# component, ``Model.model_json_schema(ref_template=...)``, and narrows it per served model from its card.
# Nothing here builds an answer: the handlers write their JSON, and these describe it.


def enum_of(values: Iterable[Any], **extra: Any) -> Any:
    """A field whose values are those of a registry or map (read when the module loads)."""
    return Field(json_schema_extra={"enum": list(values)}, **extra)


Unit = Annotated[float, Field(ge=0, le=1)]
Count = Annotated[int, Field(ge=0)]
# An alias points at a version, or splits between versions by weight (serving/live.py).
AliasTarget = str | dict[str, Annotated[int, Field(ge=0, le=100)]]
TFSERVING_STATES = {VersionState.READY: "AVAILABLE", VersionState.LOADING: "LOADING", VersionState.UNAVAILABLE: "END"}
V2_STATES = {VersionState.READY: "READY", VersionState.LOADING: "LOADING", VersionState.UNAVAILABLE: "UNAVAILABLE"}
V2_INDEX_STATES = [*V2_STATES.values(), "UNLOADING"]  # a version being unloaded is in the index too
V2_CLASSIFICATION = "BYTES"  # the classification extension's output datatype


class Error(BaseModel):
    """Every error: the field that is wrong and what was expected."""

    model_config = ConfigDict(extra="forbid")
    error: str = Field(min_length=1)


# --- the course's routes --------------------------------------------------------------------------------


class ModelEntry(BaseModel):
    name: Name
    versions: list[str]
    aliases: dict[str, AliasTarget]
    default_version: str


class ModelList(BaseModel):
    models: list[ModelEntry]


class VersionEntry(BaseModel):
    version: str
    aliases: list[str]
    status: VersionState
    reason: str | None
    engine: str | None = enum_of([*ENGINES, None])


class Shadow(BaseModel):
    alias: Name
    candidate: Name
    share: float = Field(gt=0, le=1)


class VersionList(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)
    name: Name
    versions: list[VersionEntry]
    aliases: dict[str, AliasTarget]
    default_version: str
    shadow: Shadow | None = None


class Endpoints(BaseModel):
    predict: str
    report: str
    drift: str


def _named_tensors_optional(schema: dict) -> None:
    """A card writes ``inputs`` and ``outputs`` only for a model with named tensors (models/card.py)."""
    schema["required"] = [name for name in schema.get("required", []) if name not in ("inputs", "outputs")]


# The card's fields, written once in models/card.py, with what the store and the served model add.
ModelInfo = create_model(
    "ModelInfo",
    # model_dump writes every field, but inputs and outputs
    __config__=ConfigDict(json_schema_serialization_defaults_required=True, json_schema_extra=_named_tensors_optional),
    __doc__="The version's card from the model store, with its tag, aliases and endpoints.",
    **{name: (field.annotation, field) for name, field in ModelCard.model_fields.items()},  # type: ignore[call-overload]
    tag=(str, ...),
    created=(datetime.datetime, ...),
    aliases=(list[str], ...),
    endpoints=(Endpoints, ...),
)


class DriftWindow(BaseModel):
    size: Count
    capacity: Count
    min_samples: Count
    predictions_seen: Count


class DriftStatistic(BaseModel):
    test: str
    value: float
    p_value: Unit | None = None
    drifted: bool


class ClassShares(BaseModel):
    window: list[Unit]
    reference: list[Unit]


class DriftReport(BaseModel):
    model: Name
    version: Name
    window: DriftWindow
    drifted: bool
    verdict: str
    statistics: dict[str, DriftStatistic]
    class_shares: ClassShares
    reference_images: Count


class Correction(BaseModel):
    """How a test's p-value was adjusted for the family of tests it belongs to (each input's, each target's)."""

    method: Literal["bonferroni"]
    tests: Count


class FamilyStatistic(DriftStatistic):
    """A regressor's statistic: one of its inputs' (``input``) or targets' (``target``) KS tests, its p-value
    adjusted for the family, or one of the input statistics every model has (neither)."""

    input: str | None = None
    target: str | None = None
    correction: Correction | None = None


class ValueSummary(BaseModel):
    mean: float | None
    p10: float | None
    p50: float | None
    p90: float | None


class PredictedValues(BaseModel):
    """One target's predicted values in the window and on the held-out examples."""

    unit: str | None
    window: ValueSummary
    reference: ValueSummary


class RegressionDriftReport(BaseModel):
    """A regressor's drift: its inputs' statistics, a KS test per input (``input_ks[<input>]``) and per target
    (``predicted_value_ks[<target>]``), what drifted by name, and each target's predicted values."""

    model: Name
    version: Name
    window: DriftWindow
    drifted: bool
    verdict: str
    statistics: dict[str, FamilyStatistic]
    drifted_inputs: list[str]
    drifted_targets: list[str]
    predicted_values: dict[str, PredictedValues]
    reference_images: Count


# --- ground truth and live accuracy -------------------------------------------------------------------

RequestId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$", description="the X-Request-Id of the answer (gRPC: trailing x-request-id)")]
LabelValue = Annotated[str, Field(min_length=1, max_length=256)] | Annotated[int, Field(ge=0, strict=True)]
SliceName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]


TrueValue = Number | Annotated[list[Number], Field(min_length=1, max_length=64)]


class FeedbackItem(BaseModel):
    """One answered request's ground truth: ``label`` for one example (``example``, default 0), or ``labels``
    for each; a regressor's: ``value`` (a number, or one per target) or ``values``."""

    model_config = ConfigDict(extra="forbid")
    id: RequestId
    label: LabelValue | None = Field(None, description="the true label's name, or its class index")
    labels: list[LabelValue] | None = Field(None, min_length=1, description="every example's true label, in order")
    value: TrueValue | None = Field(None, description="a regressor's true value of the example (a list: one per target)")
    values: list[TrueValue] | None = Field(None, min_length=1, description="a regressor's true values of every example, in order")
    example: int = Field(0, ge=0, le=1_000_000, description="the example ``label`` or ``value`` is for (``labels`` and ``values`` start here)")
    slice: SliceName | None = Field(None, description="a slice to count it under (overrides the request's X-Slice)")

    @model_validator(mode="after")
    def _one_of(self):
        if sum(given is not None for given in (self.label, self.labels, self.value, self.values)) != 1:
            raise ValueError("give one of label, labels, value or values")
        return self


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    feedback: list[FeedbackItem] = Field(min_length=1)


class FeedbackAnswer(BaseModel):
    model: Name
    accepted: Count = Field(description="labelled examples received")
    joined: Count = Field(description="of those, joined to a prediction this server answered (within feedback.window_seconds)")
    unknown: list[str] = Field(description="up to 20 ids no entry worker of this replica answered (expired, or never answered here)")
    unknown_ids: Count
    shared: bool = Field(description="sent on to every other replica of the fleet (a Redis state backend), which join the answers they gave")


class LiveProportion(BaseModel):
    value: Unit | None
    low: Unit | None = Field(description="the 95% Wilson interval")
    high: Unit | None
    examples: Count
    correct: Count


class LiveClass(BaseModel):
    label: str
    recall: Unit | None
    low: Unit | None
    high: Unit | None
    examples: Count


class CalibrationBin(BaseModel):
    low: Unit
    high: Unit
    examples: Count
    confidence: Unit
    accuracy: Unit


class Calibration(BaseModel):
    ece: Unit | None = Field(description="expected calibration error")
    bins: list[CalibrationBin]


class LivePoint(LiveProportion):
    start: float = Field(description="the bucket's start (epoch seconds of the predictions)")


class LiveReport(BaseModel):
    model: Name
    version: Name
    offline: dict[str, float | None] = Field(description="the card's held-out accuracy, for comparison")
    window_seconds: float
    examples: Count
    accuracy: LiveProportion
    classes: list[LiveClass]
    calibration: Calibration
    aliases: dict[str, LiveProportion]
    slices: dict[str, LiveProportion]
    series: list[LivePoint]
    first: float | None
    last: float | None


class ErrorInterval(BaseModel):
    value: float | None
    low: float | None = Field(description="the 95% interval (normal approximation)")
    high: float | None


class TargetErrors(BaseModel):
    examples: Count
    mae: ErrorInterval
    rmse: ErrorInterval
    bias: float | None = Field(description="the mean of predicted - true")


class LiveTarget(TargetErrors):
    name: str
    unit: str | None


class LiveErrorPoint(BaseModel):
    start: float = Field(description="the bucket's start (epoch seconds of the predictions)")
    examples: Count
    mae: dict[str, float | None] = Field(description="each target's MAE in the bucket")


class RegressionLiveReport(BaseModel):
    """A regressor's live error: MAE, RMSE and bias per target, per alias and per slice."""

    model: Name
    version: Name
    task: Literal["regression"]
    offline: dict[str, float | None] = Field(description="the card's held-out MAE and RMSE, the means over its targets (each target's: the card's metrics.per_target)")
    window_seconds: float
    examples: Count
    targets: list[LiveTarget]
    aliases: dict[str, dict[str, TargetErrors]]
    slices: dict[str, dict[str, TargetErrors]]
    series: list[LiveErrorPoint]
    first: float | None
    last: float | None


# --- rollouts (serving/fleet/rollouts.py) -----------------------------------------------------------------


class RolloutGates(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_error_rate: float | None = Field(0.01, ge=0, le=1, description="the candidate's share of failed (5xx) requests in a step")
    max_p99_ms: float | None = Field(None, gt=0, description="the candidate's 99th percentile latency in a step")
    max_accuracy_drop: float | None = Field(0.02, ge=0, le=1, description="how much lower the candidate's live accuracy may be (its 95% upper bound against the baseline's)")
    min_labelled: int = Field(0, ge=0, description="labelled examples of each version a step needs (0: accuracy is not gated)")
    max_ood_increase: float | None = Field(None, ge=0, description="how much higher the candidate's mean OOD score may be")
    min_shadow_agreement: float | None = Field(
        None, ge=0, le=1, description="the candidate's least share of the same top class as the baseline, on the baseline's requests mirrored to it (null: not gated)"
    )
    min_shadow_examples: int = Field(100, ge=1, description="compared examples a step needs before agreement lets it advance")
    shadow_share: float = Field(0.2, gt=0, le=1, description="the share of the baseline's requests mirrored to the candidate while agreement is gated")


class RolloutPlan(BaseModel):
    """A rollout to start: the candidate's share of the alias's requests goes up ``steps`` while the gates hold."""

    model_config = ConfigDict(extra="forbid")
    alias: Name = Field("stable", description="an alias serving one version: the baseline")
    candidate: Name
    steps: list[Annotated[int, Field(ge=1, le=100)]] = Field([5, 25, 50, 100], min_length=1, description="percentages, rising, ending at 100")
    min_dwell_seconds: float = Field(30, ge=0)
    min_requests: int = Field(100, ge=1, description="the candidate's requests a step needs before it may advance")
    gates: RolloutGates = RolloutGates()

    @model_validator(mode="after")
    def _rising(self):
        if any(b <= a for a, b in zip(self.steps, self.steps[1:], strict=False)) or self.steps[-1] != 100:
            raise ValueError("steps must rise and end at 100")
        return self


class RolloutEvent(BaseModel):
    action: Literal["start", "advance", "complete", "rollback", "pause", "resume", "abort"]
    step: Count
    share: int = Field(ge=0, le=100)
    reason: str
    gates: dict[str, Any]
    time: float
    generation: Count


class Rollout(BaseModel):
    alias: Name
    candidate: Name
    baseline: Name
    steps: list[int]
    step: Count
    status: Literal["running", "paused", "completed", "rolled_back", "aborted"]
    min_dwell_seconds: float
    min_requests: int
    gates: dict[str, Any]
    step_started: float
    events: list[RolloutEvent]


class RolloutAnswer(Rollout):
    model: Name
    generation: Count


class AdminAccess(BaseModel):
    allowed: bool = Field(description="whether this caller may start, pause, resume and abort rollouts here")
    reason: str | None = Field(description="why not, when not")


class RolloutList(BaseModel):
    model: Name
    rollouts: list[Rollout]
    admin: AdminAccess


class InferenceResponse(PredictResponse):
    """Project 3's answer: the prediction body with ``prediction``, the label (a list of them for several examples)."""

    prediction: str | list[str]


# --- admin: traffic, shadows, live versions --------------------------------------------------------------


class AliasAnswer(BaseModel):
    model: Name
    alias: Name
    target: AliasTarget
    generation: int = Field(ge=0, description="the desired state's generation this change made (If-Match takes it)")


class ShadowAnswer(BaseModel):
    model: Name
    shadow: Shadow | None
    generation: int = Field(ge=0)


class PromotionAnswer(BaseModel):
    """A promotion or rollback, as recorded in the desired state."""

    model: Name
    action: Literal["promote", "rollback"]
    alias: Name
    version: str
    previous: AliasTarget | None
    time: float
    generation: int = Field(ge=0)
    undoes: int | None = Field(None, description="a rollback: the generation of the promotion it undid")


class ReplicaReport(BaseModel):
    replica: str
    generation: int = Field(ge=0, description="the desired generation it applied")
    in_sync: bool = Field(description="it applied the current generation and serves all of it")
    ready: bool | None
    models: dict[str, dict]
    failures: dict[str, str]
    divergence: list[str]
    drift: dict = Field(description="per model and version: this replica's drift verdict and window size")
    live: dict = Field(default_factory=dict, description="per model and version: [correct, labelled] of the feedback this replica joined")
    time: float
    age_seconds: float


class FleetStatus(BaseModel):
    """The desired state and what every replica reports serving (GET /fleet)."""

    backend: str
    generation: int = Field(ge=0)
    desired: dict
    replicas: list[ReplicaReport]
    drift: dict = Field(description="per model and version: drift over every replica's window, from their counts")
    live: dict = Field(default_factory=dict, description="per model and version: live accuracy over every replica's joined feedback, with its 95% interval")


class Latency(BaseModel):
    p50: float = Field(ge=0)
    p99: float = Field(ge=0)


class ShadowSummary(BaseModel):
    """The shadow setting and what its candidate did so far (all but ``shadow`` only while one is set)."""

    shadow: Shadow | None
    requests: Count | None = None
    examples: Count | None = None
    agreement: Unit | None = None
    errors: Count | None = None
    skipped: Count | None = None
    latency_ms: Latency | None = None


class LoadAnswer(BaseModel):
    """A load: ``loaded`` false when the version was loaded already (with its state then)."""

    model: Name
    version: Name
    state: str
    loaded: bool
    runner: str | None = None
    seconds: float | None = Field(None, ge=0)
    generation: int = Field(ge=0)


class UnloadAnswer(BaseModel):
    model: Name
    version: Name
    state: Literal["unloaded"]
    runner: str | None = Field(description="the runner slot it left here (None: it did not serve here)")
    generation: int = Field(ge=0)


# --- TensorFlow Serving's REST API --------------------------------------------------------------------

VersionNumber = Annotated[str, Field(pattern=r"^[0-9]+$")]  # an int64 as TF Serving writes one in JSON


class TFServingErrorStatus(BaseModel):
    error_code: str = enum_of(["OK", "NOT_FOUND", "UNKNOWN"])
    error_message: str


class TFServingVersionStatus(BaseModel):
    version: VersionNumber
    state: str = enum_of(TFSERVING_STATES.values())
    status: TFServingErrorStatus


class TFServingStatus(BaseModel):
    model_version_status: list[TFServingVersionStatus]


class TFServingModelSpec(BaseModel):
    name: Name
    signature_name: Literal[""]
    version: VersionNumber


class TFServingMetadata(BaseModel):
    model_spec: TFServingModelSpec
    metadata: dict[str, Any] = Field(description='{"signature_def": {"signature_def": {"serving_default": <the SignatureDef>}}}')


class TFServingRows(BaseModel):
    model_config = ConfigDict(extra="forbid")
    predictions: list[list[Unit]] = Field(min_length=1, description="one row of class probabilities per example")


class TFServingColumns(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outputs: list[list[Unit]] = Field(min_length=1, description="one row of class probabilities per example")


class TFServingPredictResponse(RootModel[TFServingRows | TFServingColumns]):
    """The row format answers ``predictions``, the columnar ``outputs``."""


class TFServingClassifyResponse(BaseModel):
    results: list[list[tuple[str, Unit]]] = Field(min_length=1, description="per example, [label, score] of every class")


# --- the Open Inference Protocol (v2) -------------------------------------------------------------------


class V2ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class V2Live(BaseModel):
    live: Literal[True]


class V2Ready(BaseModel):
    ready: Literal[True]


class V2ModelReady(BaseModel):
    name: Name
    ready: Literal[True]


class V2TensorMetadata(BaseModel):
    name: str
    datatype: str = enum_of(list(TENSOR_CODECS))
    shape: list[Annotated[int, Field(ge=-1)]]


class V2ModelMetadata(BaseModel):
    name: Name
    versions: list[str]
    platform: str
    inputs: list[V2TensorMetadata]
    outputs: list[V2TensorMetadata]


class V2OutputParameters(BaseModel):
    binary_data_size: Count | None = None


class V2Output(BaseModel):
    """An output: its data in JSON, or its byte count when it follows the JSON as binary data."""

    name: str
    datatype: str = enum_of(dict.fromkeys([*TENSOR_CODECS, V2_CLASSIFICATION]))
    shape: list[Annotated[int, Field(ge=1)]]
    data: list[Annotated[float, Field(ge=0)] | bool | Annotated[str, Field(pattern=r"^[^:]+:\d+:")]] | None = Field(
        None, description='numbers (ood_score: any non-negative one), booleans (abstained), or with the classification parameter "<score>:<index>:<label>"'
    )
    parameters: V2OutputParameters | None = None


class V2InferResponse(BaseModel):
    model_name: Name
    model_version: Name
    id: str | None = Field(None, description="the request's id, when it had one")
    outputs: list[V2Output] = Field(min_length=1)


class V2IndexEntry(BaseModel):
    name: Name
    version: Name
    state: str = enum_of(V2_INDEX_STATES)
    reason: str


class V2RepositoryIndex(RootModel[list[V2IndexEntry]]):
    """Every served version with its state (``ready``: only those ready for inference)."""


# Every answer's schema, in the components of the document.
RESPONSES: tuple[type[BaseModel], ...] = (
    Error,
    ModelList,
    VersionList,
    ModelInfo,
    PredictResponse,
    InferenceResponse,
    DriftReport,
    RegressionDriftReport,
    FeedbackRequest,  # a request body, published beside the answers
    FeedbackAnswer,
    LiveReport,
    RegressionLiveReport,
    AliasAnswer,
    ShadowAnswer,
    PromotionAnswer,
    RolloutPlan,  # a request body, published beside the answers
    RolloutAnswer,
    RolloutList,
    FleetStatus,
    ShadowSummary,
    LoadAnswer,
    UnloadAnswer,
    TFServingStatus,
    TFServingMetadata,
    TFServingPredictResponse,
    TFServingClassifyResponse,
    V2ServerMetadata,
    V2Live,
    V2Ready,
    V2ModelReady,
    V2ModelMetadata,
    V2InferResponse,
    V2RepositoryIndex,
)
