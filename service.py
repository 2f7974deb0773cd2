"""The model server as BentoML services: one entry service for HTTP and gRPC, and each served version's engine
inside it or in a runner process of its own.

    bentoml serve                      # reads bentofile.yaml; what it serves comes from configuration.yaml
    curl localhost:3000/models
    curl localhost:3000/models/clothes/v1
    curl -X POST localhost:3000/models/clothes/v1 -H 'content-type: application/json' -d '{"image": [[0, ...], ...]}'

- A runner slot per served version (``<model>-<version>``: ``clothes-v1``, ``clothes-v2``, ...) with its
  settings (``runners`` in ``configuration.yaml``, overridable per version). ``placement: inprocess``
  puts its engine in every entry worker (serving/inprocess.py: no hop); ``placement: process`` in a
  BentoML runner service of its own, listening on internal sockets only.
- ``ModelServer`` (the entry service): the protocols' routes, decoding, validation, errors, metrics,
  over one data plane (serving/dataplane.py). It groups concurrent requests per version and
  dispatches them to that version's engine.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
from pathlib import Path
from typing import Annotated

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# glibc's malloc keeps an arena per thread that allocates (event loop, engines, loaders, followers):
# two bound what they hold. Read when a process starts: `bentoml serve` sets it here for the workers
# it starts (32 MiB less PSS over the tree, docs/benchmarks.md); the image sets it for every process.
os.environ.setdefault("MALLOC_ARENA_MAX", "2")

import bentoml  # noqa: E402
import numpy as np  # noqa: E402
from bentoml.validators import ContentType  # noqa: E402
from pydantic import BeforeValidator, Field  # noqa: E402

from config import Placement, load_config  # noqa: E402
from models import store  # noqa: E402
from models.card import NAME_PATTERN  # noqa: E402
from models.engines.base import EngineInputError  # noqa: E402
from models.preprocessing import Invert  # noqa: E402
from serving import app, inprocess, ordered_stop, slots  # noqa: E402
from serving.core import INPUT, Default, ImageFiles, InferenceRequest, Input, JsonExamples, Named  # noqa: E402
from serving.dataplane import DataPlane  # noqa: E402
from serving.errors import as_serving_error  # noqa: E402
from serving.feedback import Journal  # noqa: E402
from serving.fleet.backends import open_backend  # noqa: E402
from serving.fleet.replica import Fleet  # noqa: E402
from serving.live import LiveModels, SlotRef  # noqa: E402
from serving.monitoring import LiveGauges  # noqa: E402
from serving.pipelines import STEP_OUTPUT, add_pipelines  # noqa: E402
from serving.registry import ModelRegistry  # noqa: E402
from serving.schemas import Example, PredictResponse, prediction_body  # noqa: E402
from serving.shadow import Shadows  # noqa: E402
from serving.slots import Slot, SlotState, SlotWorker, runtime_dir  # noqa: E402

log = logging.getLogger("model_server")
CONFIG = load_config()
RUNTIME = runtime_dir()  # made by `bentoml serve` as it imports this file; its workers inherit it
ordered_stop.install()  # `bentoml serve` stops the entry service before its runners
GC_YOUNG_THRESHOLD = 20_000  # allocations between young collections (Python's default: 700)


class StartupRefused(RuntimeError):
    """Strict readiness: a served version cannot be served, so `bentoml serve` must not start."""


def declared_model(slot: Slot):
    """The BentoModel a slot's initial version is declared as (`bentoml build` packs it), or None.

    A configured version missing from the store gets no declaration (BentoML refuses to start on a
    missing one): its slot reports why. With ``strict_readiness`` a missing or visibly broken model
    stops start-up here, at import in `bentoml serve`, before anything listens.
    """
    if slot.initial is None:
        return None
    model, version = slot.initial
    if CONFIG.strict_readiness:
        try:
            store.check(model, version)
        except store.ModelStoreError as exc:
            raise StartupRefused(f"{exc} (strict_readiness is true: not starting)") from None
    if CONFIG.strict_readiness or store.exists(model, version):
        return bentoml.models.BentoModel(store.tag(model, version))
    return None


def runner_service(slot: Slot):
    """The runner service of a ``process`` slot: a configured version's (loaded at start), or a spare (empty).

    The version a slot hosts can change while serving (serving/slots.py: every worker follows the
    slot's desired state).
    """
    declared = declared_model(slot)
    # The entry already groups requests per version; BentoML's dispatcher on top is optional
    # (configuration.yaml says why it is off by default).
    batching = slot.settings.batching
    dispatcher = {"batchable": True, "max_batch_size": batching.max_batch_size, "max_latency_ms": batching.max_latency_ms} if batching.enabled else {}

    @bentoml.service(name=slot.name, **slot.settings.bentoml_options())
    class Runner:
        # `bentoml build` packs the models declared here (`make build` puts missing versions in the store first).
        stored = declared

        def __init__(self) -> None:
            self.slot = SlotWorker(slot, load_engine)
            freeze_startup_heap()

        @bentoml.api(**dispatcher)
        def predict(self, values: np.ndarray) -> np.ndarray:
            engine = self.slot.engine
            if engine is None:
                raise bentoml.exceptions.ServiceUnavailable(self.slot.status["reason"] or f"runner {slot.name} is {self.slot.status['state']}")
            try:
                return engine(values)
            except EngineInputError as exc:  # the values, not the runner: a 400, which RunnerClient turns back into the error
                raise bentoml.exceptions.InvalidArgument(str(exc)) from None

        @bentoml.api
        def status(self) -> dict:
            return dict(self.slot.describe())  # BentoML serialises a plain dict (its values: plain strings over the wire)

    return Runner


def load_engine(model: str, version: str, engine: str, threads: int):
    """A stored version on its engine, warmed up (in a runner worker)."""
    from models import engines

    stored = store.get(model, version)
    return engines.load(stored, store.load_card(model, version, stored), engine, threads)


def freeze_startup_heap() -> None:
    """Keep the garbage collector's full collections rare and short (docs/benchmarks.md).

    TensorFlow, BentoML and their imports leave millions of long-lived objects, and BentoML's timeout
    middleware keeps a timer alive per request for the whole ``traffic.timeout``: each full
    collection walked them all and stalled every request in flight for 70 to 230 ms (the p99 at
    2,500 req/s). Frozen, the start-up heap is never walked again; the higher thresholds make full
    collections of what remains rare.
    """
    gc.freeze()  # no collection first: at this point it found a few dozen objects and took 40 to 100 ms of the start
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 100)


def in_process(slot: Slot) -> bool:
    return slot.settings.placement == Placement.INPROCESS


def entry_workers() -> int:
    workers = CONFIG.entry.get("workers", 1)
    return os.cpu_count() or 1 if workers == "cpu_count" else int(workers)


def dependency_name(slot: str) -> str:
    return "runner_" + re.sub(r"\W", "_", slot)


class RunnerClient:
    """A version's runner as the registry calls it (serving/registry.py)."""

    def __init__(self, dependency):
        self.dependency = dependency

    # Looked up per call: BentoML connects the runner clients after the entry's __init__.
    async def predict(self, values: np.ndarray) -> np.ndarray:
        try:
            return await self.dependency.to_async.predict(values)
        except bentoml.exceptions.InvalidArgument as exc:  # the runner's EngineInputError
            raise EngineInputError(runner_message(exc)) from None

    async def status(self) -> dict:
        return await self.dependency.to_async.status()


def runner_message(exc: Exception) -> str:
    """The message of a runner's error answer: BentoML's client gives its body as the text (``[{"error": ...}]``)."""
    text = str(exc)
    try:
        body = json.loads(text)
        return str((body[0] if isinstance(body, list) else body)["error"])
    except (ValueError, KeyError, TypeError, IndexError):
        return text


def form_text(value):
    """A multipart field as its text: BentoML reads every form field as JSON when it can, so a version
    "1" arrives as the number 1, "false" as a boolean, "null" as None (the default)."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if isinstance(value, (int, float)) else value


# A model, version or alias as the typed APIs take them: malformed names are refused (422) before any lookup.
ModelName = Annotated[str, BeforeValidator(form_text), Field(pattern=NAME_PATTERN.pattern, description="a served model")]
VersionName = Annotated[
    Annotated[str, BeforeValidator(form_text), Field(pattern=NAME_PATTERN.pattern)] | None,
    Field(description="a served version or alias; default: the model's default_version"),
]
InvertChoice = Annotated[Invert, BeforeValidator(form_text)]


class ModelServer:
    """Keras models by configuration, every version side by side in its own runner, behind the course's routes."""

    def __init__(self) -> None:
        self.local = local = {slot.name: inprocess.InProcessRunner(slot, load_engine) for slot in SLOTS if in_process(slot)}
        inprocess.start(local.values())
        slots = {
            slot.name: SlotRef(slot, SlotState(RUNTIME, slot.name), local[slot.name], entry_workers())
            if slot.name in local
            else SlotRef(slot, SlotState(RUNTIME, slot.name), RunnerClient(getattr(self, dependency_name(slot.name))))
            for slot in SLOTS
        }
        self.registry = ModelRegistry({})
        self.live = LiveModels(CONFIG, self.registry, slots)
        self.live.build()
        add_pipelines(self.registry, CONFIG)
        self.plane = DataPlane(self.registry, CONFIG, Shadows(CONFIG.live.shadow_max_in_flight))
        self.plane.live = self.live
        self.plane.fleet = self.fleet = Fleet(CONFIG, self.live, open_backend(CONFIG, RUNTIME), RUNTIME)
        self.fleet.ready_check, self.fleet.drift_counts = self.plane.ready, self.plane.drift_counts
        self.fleet.stats = self.plane.stats
        if CONFIG.feedback.enabled:
            self.fleet.journal = self.plane.journal = Journal(CONFIG.feedback, RUNTIME, labels_of=self.registry.labels_of, targets_of=self.registry.targets_of)
            self.plane.journal.on_outcomes.append(LiveGauges(self.plane.journal, self.registry, CONFIG.monitoring.refresh_seconds))
        freeze_startup_heap()

    @bentoml.on_startup
    async def watch_runners(self) -> None:
        """Probe every runner from now on (a dead one fails its calls at once: serving/runner_health.py),
        follow the serving state and the desired state, and watch the store for the models that ask for it."""
        self.live.start(self.registry.handles())
        if self.plane.journal is not None:
            self.plane.journal.start()
        await self.fleet.start()
        # Imported here, in the workers: `bentoml serve` imports this file too, and needs no gRPC (130 ms).
        from serving.protocols.grpc import server as grpc_server

        self.grpc = await grpc_server.start(self.plane, CONFIG) if CONFIG.grpc.enabled else None

    @bentoml.on_shutdown
    async def stop_watching_runners(self) -> None:
        """Drain gRPC calls in flight (HTTP's are drained by uvicorn), then stop following the runners."""
        if self.grpc is not None:
            await self.grpc.stop(CONFIG.grpc.grace_seconds)
        self.live.stop()
        await self.fleet.stop()
        if self.plane.journal is not None:
            self.plane.journal.stop()
        for runner in self.local.values():
            runner.stop()

    async def __is_ready__(self) -> bool:
        """Replaces BentoML's runner probe (``runner_probe``), which waits ~35 s on a loading runner."""
        return self.plane.ready()

    @bentoml.api(route="/classify")
    async def classify(
        self,
        images: Annotated[list[Example], Field(min_length=1, description="examples in the model card's shape and range (images: H x W grey or H x W x 3)")],
        model: ModelName,
        ctx: bentoml.Context,
        version: VersionName = None,
    ) -> PredictResponse:
        """Classify a batch of examples (BentoML's typed API; the generated clients use it)."""
        examples = JsonExamples(images, field="images", batch=True, booleans=False)  # pydantic refused booleans already
        return await self._classify(ctx, model, version, examples)

    @bentoml.api(route="/classify_image")
    async def classify_image(
        self,
        image: Annotated[Path, ContentType("image/*")],
        model: ModelName,
        ctx: bentoml.Context,
        version: VersionName = None,
        invert: InvertChoice = Invert.AUTO,
    ) -> PredictResponse:
        """Classify one image file of any size, colour or grey (BentoML's typed API)."""
        return await self._classify(ctx, model, version, ImageFiles((image.read_bytes(),), ("image",), "image", invert))

    async def _classify(self, ctx: bentoml.Context, model: str, version: str | None, examples: Input) -> PredictResponse:
        """The typed APIs over the data plane, with the caller's traffic key in and the answering version out, as every route."""
        try:
            key = ctx.request.headers.get(CONFIG.live.traffic_key_header)
            response = await self.plane.infer(InferenceRequest(model, Named(version) if version else Default(), {INPUT: examples}, traffic_key=key))
            # built here: an answer the schema refuses is our 500, where BentoML would answer its ValidationError as a 400
            body = PredictResponse(**prediction_body(response.card, response.answers, response.ood_scores, response.abstained, response.outputs.get(STEP_OUTPUT)))
        except Exception as exc:
            response = _error(exc)
            ctx.response.status_code = response.status_code  # BentoML answers with the context's status when the API takes one
            return response
        ctx.response.headers.update({"X-Model-Name": response.model, "X-Model-Version": response.version})
        return body


def _error(exc: Exception):
    error = as_serving_error(exc)
    if error.status >= 500:
        log.error("classification failed: %s: %s", type(exc).__name__, exc)
    return error.to_response()


SLOTS = slots.plan(CONFIG)
for _slot in SLOTS:
    if in_process(_slot):  # its engine lives in the entry, which declares its model for `bentoml build`
        setattr(ModelServer, "model_" + dependency_name(_slot.name), declared_model(_slot))
    else:
        setattr(ModelServer, dependency_name(_slot.name), bentoml.depends(runner_service(_slot)))

ModelServer = bentoml.service(name="model-server", **CONFIG.entry_options())(ModelServer)  # type: ignore[misc]  # BentoML's Service wraps the class under its name
app.install(ModelServer, CONFIG)  # every protocol's routes and the middleware, in one declared order (serving/app.py)
