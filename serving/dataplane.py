"""The data plane: one inference core under every protocol; it knows no HTTP and no gRPC.

``infer(request)`` takes a protocol-neutral :class:`~serving.core.InferenceRequest` and does everything
between a protocol's body and the engine: it resolves the version the request names (a version, an
alias, a weighted split, sticky per traffic key, a TF Serving number or label, the default or latest
version), turns each input into values checked against that version's card, sends them through the
version's batcher and runner (which record predictions and drift), feeds a shadowed alias' candidate
after the answer, and answers an :class:`~serving.core.InferenceResponse`. It also answers listings,
model info, status, reports, drift, readiness and the admin operations, as plain values and
:class:`~serving.core.VersionView` s. Errors are ``serving.errors`` exceptions carrying their status.

A request's :class:`Caller` (a context variable the protocols set) carries its traffic key in, and
the version that answered out, for the response's ``X-Model-Version`` and the metrics.

    >>> plane = DataPlane(registry, config)
    >>> response = await plane.infer(InferenceRequest("clothes", Named("stable"), {INPUT: Tensor(values, "inputs[0]")}))
    >>> response.version, response.probabilities.shape
    >>> plane.describe("clothes", Label("stable")).card.labels
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import re
import time
from typing import TYPE_CHECKING

import numpy as np

from config import Config
from lifecycle.outcomes import Proportion, live_report, proportion, regression_report
from lifecycle.reference import drift_card
from models.card import ModelCard
from models.tensors import as_text, checked, pack, unpack
from serving.core import (
    ABSTAINED_OUTPUT,
    INPUT,
    OOD_OUTPUT,
    OUTPUT,
    Default,
    InferenceRequest,
    InferenceResponse,
    Label,
    Latest,
    Named,
    Number,
    Selector,
    VersionState,
    VersionView,
    check_batch,
)
from serving.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, ServingError, Unavailable
from serving.feedback import SLICE, Item, Journal, label_name, truth_of, values_of
from serving.fleet.rollouts import VersionStats
from serving.live import IndexRow, ServingState
from serving.monitoring import record_abstentions
from serving.registry import RETRY_MISSING_SECONDS, ModelRegistry, ServedModel, VersionHandle

if TYPE_CHECKING:
    from serving.fleet.replica import Fleet
    from serving.live import LiveModels

NUMBER = re.compile(r"0|[1-9][0-9]{0,17}")  # a version number as TF Serving takes it (int64), written canonically
VERSION_NUMBER = re.compile(rf"v?({NUMBER.pattern})")


@dataclasses.dataclass
class Caller:
    key: str | None = None  # the request's traffic key (live.traffic_key_header)
    request_id: str | None = None  # the request's id (serving/request_ids.py): in its answer and its data-log records
    truth: str | None = None  # the request's own ground truth (feedback.label_header): one label per example
    slice: str | None = None  # the request's slice (feedback.slice_header), for live accuracy per slice
    alias: str | None = None  # the alias the request named, if it named one
    resolved: VersionHandle | None = None  # the version the request resolved to
    answered: VersionHandle | None = None  # the version that answered


CALLER: contextvars.ContextVar[Caller] = contextvars.ContextVar("caller")


def caller() -> Caller:
    """This request's caller; outside a request (tests, tools), a fresh one."""
    try:
        return CALLER.get()
    except LookupError:
        current = Caller()
        CALLER.set(current)
        return current


def version_number(version: str) -> int | None:
    """The number of a version named ``v<n>`` or ``<n>`` (TF Serving's versions are numbers), else None."""
    found = VERSION_NUMBER.fullmatch(version)
    return int(found.group(1)) if found else None


def numbered(model: ServedModel) -> dict[int, str]:
    """A served model's versions by number; a number two versions share (``v1`` and ``1``) is left out."""
    by_number: dict[int, list[str]] = {}
    for version in model.handles:
        number = version_number(version)
        if number is not None:
            by_number.setdefault(number, []).append(version)
    return {number: names[0] for number, names in by_number.items() if len(names) == 1}


def labels(model: ServedModel) -> set[str]:
    """TF Serving labels of a served model: its aliases, and its versions that have no number."""
    return {version for version in model.handles if version_number(version) is None} | set(model.aliases)


def fleet_live(replicas: list[dict]) -> dict[str, dict[str, Proportion]]:
    """Live accuracy per model and version over every replica's joined feedback (their reports' tallies)."""
    totals: dict[str, dict[str, list[int]]] = {}
    for replica in replicas:
        for model, versions in (replica.get("live") or {}).items():
            for version, (correct, labelled) in versions.items():
                total = totals.setdefault(model, {}).setdefault(version, [0, 0])
                total[0], total[1] = total[0] + correct, total[1] + labelled
    return {model: {version: proportion(*total) for version, total in versions.items()} for model, versions in totals.items()}


def outputs_of(handle: VersionHandle) -> tuple[str, ...]:
    """A version's output tensors: its answer (the probabilities of a classifier), its OOD score and abstentions where it has them."""
    card = handle.card
    named = tuple(spec.name for spec in card.outputs) if card is not None and card.outputs else (card.output.tensor if card is not None else OUTPUT,)
    answer = (*named, *getattr(handle, "outputs", ()))
    if handle.ood is None:
        return answer
    return (*answer, OOD_OUTPUT, *((ABSTAINED_OUTPUT,) if handle.ood.abstain_above is not None else ()))


def _listed(values) -> str:
    return ", ".join(map(str, values)) or "none"


class DataPlane:
    def __init__(self, registry: ModelRegistry, config: Config, shadows=None):
        self.registry = registry
        self.config = config
        self.shadows = shadows  # serving.shadow.Shadows, or None
        self.live: LiveModels | None = None  # set by the entry service
        self.fleet: Fleet | None = None  # the desired state's side of this replica: admin operations go through it
        self.journal: Journal | None = None  # answered predictions, for feedback (serving/feedback.py); None: not recorded
        self.stats = VersionStats()  # this worker's answers per version, for rollouts' gates (serving/fleet/rollouts.py)
        if shadows is not None:
            shadows.version_stats = self.stats

    # --- resolution -------------------------------------------------------------------------------------

    def _resolve(self, name: str, selector: Selector) -> VersionHandle:
        """The handle a selector names now: a split alias picks by its weights (the caller's key keeps
        its pick); the caller records the alias, so that a shadowed alias feeds its candidate."""
        if self.fleet is not None and not self.fleet.caught_up():
            raise Unavailable("this replica is catching up with the desired state (serving/fleet/): not serving yet", retry_after=1)
        current = caller()
        model = self.registry.model(name)
        match selector:
            case Named(name=wanted):
                pass
            case Default():
                wanted = model.default_version
            case Label(label=wanted):
                if wanted not in labels(model):
                    number = version_number(wanted)
                    hint = f" ({wanted} is version {number}: /versions/{number})" if number is not None else ""
                    raise NotFound(f"unknown label {wanted!r} of model {name}{hint}; labels: {_listed(sorted(labels(model)))}")
            case Number(number=number):
                by_number = numbered(model)
                if number not in by_number:
                    raise NotFound(f"version {number} of model {name} is not served; versions: {_listed(sorted(by_number))}; labels: {_listed(sorted(labels(model)))}")
                wanted = by_number[number]
            case Latest():
                wanted = self._latest(model)
        current.alias = wanted if wanted in model.aliases else None
        current.resolved = model.resolve(wanted, current.key)
        return current.resolved

    @staticmethod
    def _latest(model: ServedModel) -> str:
        """TF Serving's latest version: the highest number that is ready, else the highest number (its
        503 says why); a model without numbered versions answers with its default version."""
        by_number = numbered(model)
        if not by_number:
            return model.default_version
        ready = [n for n, version in by_number.items() if model.handles[version].status["status"] == VersionState.READY]
        return by_number[max(ready or by_number)]

    def resolve(self, name: str, version_or_alias: str) -> VersionHandle:
        return self._resolve(name, Named(version_or_alias))

    def view(self, handle: VersionHandle) -> VersionView:
        status = handle.status
        model = self.registry.models.get(handle.name)
        number = version_number(handle.version)
        unique = model is not None and numbered(model).get(number) == handle.version if number is not None else False
        return VersionView(
            handle.name,
            handle.version,
            number if unique else None,
            status["status"],
            status["reason"],
            status["engine"],
            handle.card,
            tuple(model.aliases_of(handle.version)) if model else (),
            outputs_of(handle),
        )

    def describe(self, name: str, selector: Selector, available: bool = False) -> VersionView:
        """The version a selector names, for metadata and status answers (which say which version
        answered); ``available``: one that can answer now, else Unavailable (503) with the reason."""
        handle = self._resolve(name, selector)
        caller().answered = handle
        if available:
            handle.available()
        return self.view(handle)

    def numbered_versions(self, name: str) -> list[VersionView]:
        """Every version with a number, the highest first (TF Serving's model status)."""
        model = self.registry.model(name)
        views = [self.view(model.handles[version]) for _, version in sorted(numbered(model).items(), reverse=True)]
        if not views:
            raise NotFound(f"model {name} has no numbered versions; address its versions by label: {_listed(sorted(labels(model)))}")
        return views

    def versions(self, name: str) -> list[str]:
        return list(self.registry.model(name).handles)

    # --- inference --------------------------------------------------------------------------------------

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        """Resolve, check the inputs against the answering version's card, run, and feed a shadow."""
        current = caller()
        if request.traffic_key is not None:
            current.key = request.traffic_key
        handle, values, decoded_ms = await self._prepare(request)
        assert handle.card is not None  # available() found its card
        card = handle.card
        classifier, regressor = card.is_classifier, card.output.kind == "regression"
        truth: list | None = None
        if current.truth is not None:
            if regressor:
                truth = values_of(current.truth, len(card.output.targets), len(values), self.config.feedback.label_header)
            elif classifier:
                truth = truth_of(current.truth, card.labels, len(values), self.config.feedback.label_header)
            else:
                raise BadRequest(f"{self.config.feedback.label_header}: {handle.tag} answers {card.task}, neither classes nor values: its requests carry no ground truth")
        if current.slice is not None and not SLICE.fullmatch(current.slice):
            raise BadRequest(f"{self.config.feedback.slice_header}: a slice is 1 to 64 characters of letters, digits and '._:-', starting with a letter or digit")
        started = time.perf_counter()
        try:
            probabilities, ood_scores, extra = await handle.infer(values, current.request_id)
        except Exception as exc:
            if not isinstance(exc, ServingError) or exc.status >= 500:  # the version failed it (a rollout's error rate)
                self.stats.record(handle.name, handle.version, current.alias, False, time.perf_counter() - started)
            raise
        infer_ms = (time.perf_counter() - started) * 1000
        current.answered = handle
        abstained = handle.ood.abstained(ood_scores) if handle.ood is not None and ood_scores is not None else None
        if abstained is not None:
            record_abstentions(handle.name, handle.version, abstained)
        self.stats.record(handle.name, handle.version, current.alias, True, infer_ms / 1000, ood_scores)
        if self.journal is not None and (classifier or regressor):
            self.journal.record(handle.name, handle.version, current.alias, current.request_id, probabilities, truth, current.slice, regression=regressor)
        if self.shadows is not None and current.alias is not None and classifier:
            self.shadows.after_answer(self.registry.model(handle.name), current.alias, handle, values, probabilities)
        answer = as_text(unpack(card.outputs, probabilities)) if card.outputs else {card.output.tensor: probabilities}
        outputs = {**answer, **extra}
        if ood_scores is not None:
            outputs[OOD_OUTPUT] = ood_scores
        if abstained is not None:
            outputs[ABSTAINED_OUTPUT] = abstained
        if request.outputs is not None:
            unknown = [name for name in request.outputs if name not in outputs]
            if unknown:
                raise BadRequest(f"outputs: unexpected output {unknown[0][:64]!r} for {handle.tag}; its outputs: {', '.join(outputs)}")
        return InferenceResponse(
            handle.name,
            handle.version,
            handle.card,
            outputs,
            current.alias,
            request.id or current.request_id,
            {"decode_ms": decoded_ms, "infer_ms": infer_ms},
            ood_scores,
            abstained,
        )

    async def prepare(self, request: InferenceRequest) -> tuple[VersionView, np.ndarray]:
        """The version a request resolves to and its input values as the model will see them, without inference (the page's preview)."""
        handle, values, _ = await self._prepare(request)
        caller().answered = handle  # its card decoded them: X-Model-Version and the metrics name it
        return self.view(handle), values

    async def _prepare(self, request: InferenceRequest) -> tuple[VersionHandle, np.ndarray, float]:
        handle = self._resolve(request.model, request.version)
        card = handle.available()
        started = time.perf_counter()
        values = await self._values(request, card)
        return handle, values, (time.perf_counter() - started) * 1000

    async def _values(self, request: InferenceRequest, card: ModelCard) -> np.ndarray:
        limit = self.config.limits.max_batch_images
        if card.named_inputs:  # each named tensor checked against the card, then packed into one row per example
            given: dict[str, tuple[np.ndarray, str]] = {}
            for received in request.inputs.values():
                given.update(await received.tensors(card, limit))
            arrays = checked(card.inputs, given, card.name)
            check_batch(len(next(iter(arrays.values()))), limit, "inputs")
            return pack(card.inputs, arrays)
        unexpected = [name for name in request.inputs if name != INPUT]
        if unexpected or not request.inputs:
            shown = unexpected[0][:64] if unexpected else "none"
            raise BadRequest(f"inputs: unexpected input {shown!r} for model {card.name}; its input is {INPUT!r}")
        return await request.inputs[INPUT].values(card, limit)

    def list_models(self) -> dict:
        return {
            "models": [
                {"name": name, "versions": list(model.handles), "aliases": model.aliases, "default_version": model.default_version} for name, model in self.registry.models.items()
            ]
        }

    def list_versions(self, name: str) -> dict:
        """Every version with its status (a version whose load failed too, with the reason), the aliases
        (a split as its weights) and the shadow, if any."""
        model = self.registry.model(name)
        versions = [{"version": v, "aliases": model.aliases_of(v), **h.status} for v, h in model.handles.items()]
        versions += [
            {"version": v, "aliases": [], "status": VersionState.UNAVAILABLE, "reason": reason, "engine": None} for v, reason in model.failures.items() if v not in model.handles
        ]
        return {"name": name, "versions": versions, "aliases": model.aliases, "default_version": model.default_version, "shadow": model.shadow}

    def model_info(self, name: str, version_or_alias: str) -> dict:
        """The version's card with the store's facts, its aliases and its endpoints."""
        handle = self.resolve(name, version_or_alias)
        card = handle.available()
        base = f"/models/{handle.name}/{handle.version}"
        return {
            **card.model_dump(mode="json"),
            "tag": handle.tag,
            "created": handle.created,
            "aliases": self.registry.model(name).aliases_of(handle.version),
            "endpoints": {"predict": base, "report": f"{base}/report", "drift": f"{base}/drift"},
        }

    def report(self, name: str, version_or_alias: str) -> bytes:
        """The evaluation report stored with the version (HTML)."""
        handle = self.resolve(name, version_or_alias)
        if handle.failure:
            raise Unavailable(handle.failure, retry_after=RETRY_MISSING_SECONDS)
        if not handle.report:
            if handle.card is not None and handle.card.named_inputs:
                raise NotFound(f"{handle.tag} has no evaluation report: a model with named inputs is imported without evaluation data")
            raise NotFound(f"{handle.tag} has no evaluation report; retrain it, or import it with evaluation data")
        return handle.report

    def drift(self, name: str, version_or_alias: str) -> dict:
        """Drift of the version's recent traffic against its training reference."""
        handle = self.resolve(name, version_or_alias)
        if not self.config.monitoring.enabled:
            raise NotFound("drift monitoring is disabled (monitoring.enabled in the configuration)")
        if handle.failure:
            raise Unavailable(handle.failure, retry_after=RETRY_MISSING_SECONDS)
        if handle.card is not None and drift_card(handle.card) is None:
            raise NotFound(f"{handle.tag} takes only strings or inputs of dynamic shape: drift is monitored on numeric inputs of a fixed shape")
        if handle.card is not None and handle.monitor is None:
            raise NotFound(f"{handle.tag} answers {handle.card.output.kind}: drift is monitored for classifiers, regressors and multi-label taggers")
        report = handle.monitor.drift() if handle.monitor is not None else None
        if report is None:
            raise NotFound(f"{handle.tag} has no reference statistics; retrain it, or import it with evaluation data")
        return {"model": handle.name, "version": handle.version, **report}

    def ready(self) -> bool:
        """Ready when every version's runner has loaded its model and answered its warm-up inference.

        Without ``strict_readiness``, a version whose model is missing or failed to load does not hold
        the others back (it answers 503 itself); at least one version must be ready. A runner that
        does not answer (loading, killed, restarting) always makes the service unready.
        """
        if self.fleet is not None and not self.fleet.caught_up():
            return False  # it must serve the desired state first, not configuration.yaml
        states = [handle.status["status"] for handle in self.registry.handles()]
        tolerated = {VersionState.READY} if self.config.strict_readiness else {VersionState.READY, VersionState.UNAVAILABLE}
        return VersionState.READY in states and all(state in tolerated for state in states)

    def waiting(self) -> list[VersionView]:
        """The versions that are not ready, for a readiness answer that says why."""
        return [self.view(handle) for handle in self.registry.handles() if handle.status["status"] != VersionState.READY]

    def index(self) -> list[IndexRow]:
        """Every version with its state: what serves, loads, unloads, and what failed to load, with the reason."""
        if self.live is None:  # a plane without live versions (in-process tests): what the registry serves
            return [
                {"name": h.name, "version": h.version, "state": ServingState.SERVING, "status": h.status["status"], "reason": h.status["reason"], "runner": h.slot}
                for h in self.registry.handles()
            ]
        return self.live.index()

    def metric_labels(self, name: str | None, version_or_alias: str | None) -> tuple[str, str]:
        """Metric labels for a request: served names only, so clients cannot grow the label set."""
        return self.registry.label(name, version_or_alias)

    # --- ground truth and live accuracy ---------------------------------------------------------------

    async def feedback(self, name: str, given: list[dict]) -> dict:
        """Ground truth for answered requests, by request id: ``[{"id", "label" | "labels" | "value" | "values",
        "example"?, "slice"?}]`` (checked by serving/schemas.py); what joined, and the ids no worker knew."""
        journal = self._journal()
        model = self.registry.model(name)
        items: list[Item] = []
        known: tuple[str, ...] | None = None
        for index, entry in enumerate(given):
            field = f"feedback[{index}]"
            first = entry.get("example") or 0
            if entry.get("value") is not None or entry.get("values") is not None:
                rows = entry["values"] if entry.get("values") is not None else [entry["value"]]
                targets = self._targets(model, f"{field}.value{'s' if entry.get('values') is not None else ''}")
                for offset, row in enumerate(rows):
                    values = tuple(row) if isinstance(row, list) else (row,)
                    if len(values) != targets:
                        raise BadRequest(
                            f"{field}: {len(values)} value{'s' if len(values) != 1 else ''} for an example of {name}, which has {targets} target{'s' if targets != 1 else ''}"
                        )
                    items.append(Item(entry["id"], first + offset, None, entry.get("slice"), values))
            else:
                known = known or self._labels(model)
                labels = entry["labels"] if entry.get("labels") is not None else [entry["label"]]
                for offset, label in enumerate(labels):
                    items.append(Item(entry["id"], first + offset, label_name(label, known, f"{field}.label{'s' if entry.get('labels') is not None else ''}"), entry.get("slice")))
            if len(items) > self.config.feedback.max_items:
                raise PayloadTooLarge(f"feedback: more than {self.config.feedback.max_items} labels in one call (feedback.max_items)")
        answer = await asyncio.to_thread(journal.submit, name, items)
        answer["shared"] = await self.fleet.share_feedback(name, items) if self.fleet is not None else False
        return answer

    async def live_accuracy(self, name: str, version_or_alias: str) -> dict:
        """A version's live accuracy from the feedback joined so far, beside its offline accuracy (a regressor's live error)."""
        journal = self._journal()
        handle = self.resolve(name, version_or_alias)
        card = handle.available()
        settings = self.config.feedback
        if card.output.kind == "regression":
            residuals = await asyncio.to_thread(journal.residuals, handle.name, handle.version)
            targets = [target.model_dump() for target in card.output.targets]
            report = await asyncio.to_thread(regression_report, residuals, targets, settings.series_seconds)
            offline = {key: (card.metrics or {}).get(key) for key in ("mae", "rmse")}
            return {"model": handle.name, "version": handle.version, "offline": offline, "window_seconds": settings.window_seconds, **report}
        if not card.is_classifier:
            raise BadRequest(f"{handle.tag} answers {card.task}: live accuracy needs one class per example, live error a regressor")
        rows = await asyncio.to_thread(journal.outcomes, handle.name, handle.version)
        report = await asyncio.to_thread(live_report, rows, card.labels, self.config.feedback.series_seconds)
        accuracy = (card.metrics or {}).get("accuracy")
        return {"model": handle.name, "version": handle.version, "offline": {"accuracy": accuracy}, "window_seconds": settings.window_seconds, **report}

    @staticmethod
    def _labels(model: ServedModel) -> tuple[str, ...]:
        """The labels feedback may name: the default version's (class indices are read against them), then any other version's."""
        cards = [handle.card for handle in [model.handles.get(model.default_version), *model.handles.values()] if handle is not None and handle.card is not None]
        if not cards:
            raise Unavailable(f"no version of {model.name} can read labels now (none has a card)", retry_after=RETRY_MISSING_SECONDS)
        return tuple(dict.fromkeys(label for card in cards for label in card.labels))

    @staticmethod
    def _targets(model: ServedModel, field: str) -> int:
        """The number of targets values in feedback give: the default version's, when it is a regressor."""
        cards = [handle.card for handle in [model.handles.get(model.default_version), *model.handles.values()] if handle is not None and handle.card is not None]
        if not cards:
            raise Unavailable(f"no version of {model.name} can read values now (none has a card)", retry_after=RETRY_MISSING_SECONDS)
        if cards[0].output.kind != "regression":
            raise BadRequest(f"{field}: {model.name} answers {cards[0].task}, not values: send labels")
        return len(cards[0].output.targets)

    def _journal(self) -> Journal:
        if self.journal is None:
            raise NotFound("feedback is off (feedback.enabled in the configuration)")
        return self.journal

    # --- admin operations (the protocols check authorization first) -----------------------------------

    async def load(self, name: str, version: str | None, based_on: int | None = None) -> dict:
        return await self._fleet(name).load(name, version, based_on=based_on)

    async def unload(self, name: str, version: str, force: bool = False, based_on: int | None = None) -> dict:
        return await self._fleet(name).unload(name, version, force=force, based_on=based_on)

    async def set_alias(self, name: str, alias: str, target: str | dict[str, int], based_on: int | None = None) -> dict:
        return await self._fleet(name).set_alias(name, alias, target, based_on=based_on)

    async def set_shadow(self, name: str, shadow: dict | None, based_on: int | None = None) -> dict:
        return await self._fleet(name).set_shadow(name, shadow, based_on=based_on)

    async def promote(self, name: str, version: str, based_on: int | None = None) -> dict:
        return await self._fleet(name).promote(name, version, based_on=based_on)

    async def rollback(self, name: str, based_on: int | None = None) -> dict:
        return await self._fleet(name).rollback(name, based_on=based_on)

    async def start_rollout(self, name: str, plan: dict, based_on: int | None = None) -> dict:
        return await self._fleet(name).start_rollout(name, plan, based_on=based_on)

    async def rollout_action(self, name: str, alias: str, action: str, based_on: int | None = None) -> dict:
        return await self._fleet(name).rollout_action(name, alias, action, based_on=based_on)

    async def rollouts(self, name: str) -> dict:
        self.registry.model(name)  # 404 for a model this server does not serve
        return await self._fleet(name).rollouts(name)

    async def fleet_status(self) -> dict:
        """The desired state, every replica's report, and each version's drift over every replica's window."""
        status = await self._fleet().fleet()
        status["live"] = fleet_live(status["replicas"])
        counts = {r["replica"]: r.pop("drift") for r in status["replicas"]}  # the reports' transport, replaced by verdicts
        status["drift"] = {}
        for replica in status["replicas"]:
            replica["drift"] = {}
        for handle in self.registry.handles():
            if handle.monitor is None:
                continue
            parts = {name: held[handle.name][handle.version] for name, held in counts.items() if handle.version in held.get(handle.name, {})}
            report = handle.monitor.fleet_drift(list(parts.values()))
            if report is None:
                continue
            status["drift"].setdefault(handle.name, {})[handle.version] = {"replicas": len(parts), **report}
            for replica in status["replicas"]:
                if replica["replica"] in parts:
                    own = handle.monitor.fleet_drift([parts[replica["replica"]]]) or {}
                    replica["drift"].setdefault(handle.name, {})[handle.version] = {
                        "verdict": own.get("verdict"),
                        "drifted": own.get("drifted"),
                        "window": own.get("window", {}).get("size"),
                    }
        return status

    def drift_counts(self) -> dict:
        """Each monitored version's drift window as counts, for this replica's report."""
        counts: dict[str, dict] = {}
        for handle in self.registry.handles():
            window = handle.monitor.counts() if handle.monitor is not None else None
            if window is not None:
                counts.setdefault(handle.name, {})[handle.version] = window
        return counts

    def shadow_summary(self, name: str) -> dict:
        if self.shadows is None:
            raise NotFound("shadows are not offered by this server")
        return self.shadows.summary(self.registry.model(name))

    def _fleet(self, name: str | None = None) -> Fleet:
        """The replica's side of the desired state, for an admin operation on model ``name``."""
        if name is not None and name in self.config.pipelines:
            raise Conflict(f"{name} is a pipeline (configuration.yaml pipelines): it has no versions, aliases or rollouts of its own; change those of its steps' models")
        if self.fleet is None:
            raise Unavailable("versions cannot change while serving here (no live versions)")
        return self.fleet
