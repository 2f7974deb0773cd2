"""The clothes classifier as a BentoML service: one entry service for HTTP, one runner per version.

    bentoml serve                      # reads bentofile.yaml; settings come from configuration.yaml
    curl localhost:3000/models/clothes/v1
    curl -X POST localhost:3000/models/clothes/v1 -H 'content-type: application/json' -d '{"image": [[0, ...], ...]}'

- ``ClothesRunner`` (one service per served version, ``clothes-v1``, ``clothes-v2``, ...): its own
  loaded model, adaptive-batching queue, workers and settings (``services.clothes-<version>`` in
  ``configuration.yaml``). Runners listen on internal sockets only; clients never reach them.
- ``Clothes`` (the entry service): routes, decoding, validation, errors, metrics. It groups
  concurrent requests per version and dispatches them to that version's runner.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import logging
import os
import re
from pathlib import Path
from typing import Annotated

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import bentoml  # noqa: E402
import numpy as np  # noqa: E402
from bentoml.validators import ContentType  # noqa: E402
from pydantic import Field  # noqa: E402

from lifecycle.reference import REFERENCE_FILE  # noqa: E402
from lifecycle.report import REPORT_FILE  # noqa: E402
from models import store  # noqa: E402
from models.preprocessing import Invert, check_pixels, pixels_from_image  # noqa: E402
from models.specs import MODEL_NAME, NAME_PATTERN  # noqa: E402
from serving import monitoring, ordered_stop  # noqa: E402
from serving.auth import ApiToken  # noqa: E402
from serving.dispatch import Batcher  # noqa: E402
from serving.errors import NotFound, PayloadTooLarge, Unavailable, as_serving_error  # noqa: E402
from serving.middleware import BodyLimit, ConcurrencyLimit, Cors, ErrorEnvelope, TypedContentTypes, TypedFormFields  # noqa: E402
from serving.openapi import OpenAPIDocument  # noqa: E402
from serving.routes import ModelRoutes  # noqa: E402
from serving.runner_health import RunnerHealth  # noqa: E402
from serving.schemas import ImageRows, PredictResponse, predict_response  # noqa: E402
from serving.settings import load_settings, runner_name  # noqa: E402

log = logging.getLogger("clothes")
SETTINGS = load_settings()
ordered_stop.install()  # `bentoml serve` stops the entry service before its runners
GC_YOUNG_THRESHOLD = 20_000  # allocations between young collections (Python's default: 700)


class StartupRefused(RuntimeError):
    """Strict readiness: a served version cannot be served, so `bentoml serve` must not start."""


def runner_service(version: str):
    """The runner service of one served version.

    A version missing from the store gets no BentoModel declaration (BentoML refuses to start on a
    missing one): its runner reports it unavailable. With ``clothes.strict_readiness`` a missing or
    visibly broken model stops start-up here, at import in `bentoml serve`, before anything listens.
    """
    if SETTINGS.strict_readiness:
        try:
            store.check(version)
        except store.ModelStoreError as exc:
            raise StartupRefused(f"{exc} (clothes.strict_readiness is true: not starting)") from None
    in_store = SETTINGS.strict_readiness or store.exists(version)
    batching = SETTINGS.runner_batching[version]
    # The entry already groups requests per version; BentoML's dispatcher on top is optional
    # (configuration.yaml says why it is off by default).
    dispatcher = (
        {"batchable": True, "max_batch_size": batching["max_batch_size"], "max_latency_ms": batching["max_latency_ms"]}
        if batching["enabled"]
        else {}
    )

    @bentoml.service(name=runner_name(version), **SETTINGS.service_options(runner_name(version)))
    class ClothesRunner:
        # `bentoml build` packs the models declared here (`make build` trains missing versions first).
        model_ref = bentoml.models.BentoModel(store.tag(version)) if in_store else None

        def __init__(self) -> None:
            self.version = version
            self.failure: str | None = None
            if self.model_ref is None:
                self.failure = store.not_in_store(version)
                log.error(self.failure)
                return
            from models.inference import Predictor

            try:
                model, _ = store.load(version, self.model_ref)
                self.predictor = Predictor(model)
                self.predictor.warm_up()
                freeze_startup_heap()
            except Exception as exc:  # reported by status() and predict(); the other versions keep serving
                self.failure = f"{store.tag(version)} failed to load: {exc}"
                log.error(self.failure)

        def __is_ready__(self) -> bool:
            return self.failure is None

        @bentoml.api(**dispatcher)
        def predict(self, pixels: np.ndarray) -> np.ndarray:
            if self.failure:
                raise bentoml.exceptions.ServiceUnavailable(self.failure)
            return self.predictor(pixels)

        @bentoml.api
        def status(self) -> dict:
            return {"status": "unavailable" if self.failure else "ready", "reason": self.failure}

    return ClothesRunner


def freeze_startup_heap() -> None:
    """Keep the garbage collector's full collections rare and short (docs/benchmarks.md).

    TensorFlow, BentoML and their imports leave millions of long-lived objects, and BentoML's timeout
    middleware keeps a timer alive per request for the whole ``traffic.timeout``: each full
    collection walked them all and stalled every request in flight for 70 to 230 ms (the p99 at
    2,500 req/s). Frozen, the start-up heap is never walked again; the higher thresholds make full
    collections of what remains rare.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 100)


# A version or alias as the typed APIs take it: malformed names are refused (422) before any lookup.
VersionName = Annotated[str, Field(pattern=NAME_PATTERN.pattern, description="a served version or alias")]


def dependency_name(version: str) -> str:
    return "runner_" + re.sub(r"\W", "_", version)


class Clothes:
    """Fashion-MNIST clothes classifier: the course's /models/clothes/{version} API, versioned runners."""

    def __init__(self) -> None:
        self.settings = SETTINGS
        self.runners = {v: getattr(self, dependency_name(v)) for v in SETTINGS.versions}
        self.batchers = {
            v: Batcher(
                functools.partial(self._call_runner, v), SETTINGS.runner_batching[v]["max_batch_size"], SETTINGS.max_queue_images
            )
            for v in SETTINGS.versions
        }
        self.health = {v: RunnerHealth(v, functools.partial(self._runner_status, v)) for v in SETTINGS.versions}
        self.infos: dict[str, dict] = {}
        self.reports: dict[str, bytes | None] = {}
        self.monitors: dict[str, monitoring.VersionMonitor] = {}
        self.missing: dict[str, str] = {}
        for version in SETTINGS.versions:
            reference = None
            try:
                stored = bentoml.models.get(store.tag(version))
                self.infos[version] = store.model_info(version, stored)
                self.reports[version] = store.read_file(stored, REPORT_FILE)
                reference = json.loads(store.read_file(stored, REFERENCE_FILE) or "null")
            except bentoml.exceptions.NotFound:
                self.missing[version] = store.not_in_store(version)
            self.monitors[version] = monitoring.VersionMonitor(version, reference, SETTINGS.monitoring)
        freeze_startup_heap()

    async def _call_runner(self, version: str, pixels: np.ndarray) -> np.ndarray:
        # Looked up per call: BentoML connects the runner clients after __init__.
        return await self.health[version].call(self.runners[version].to_async.predict, pixels)

    async def _runner_status(self, version: str) -> dict:
        return await self.runners[version].to_async.status()

    @bentoml.on_startup
    async def watch_runners(self) -> None:
        """Probe every runner from now on: a dead one fails its calls at once (serving/runner_health.py)."""
        loop = asyncio.get_running_loop()
        self.watches = [loop.create_task(health.watch()) for health in self.health.values()]

    @bentoml.on_shutdown
    async def stop_watching_runners(self) -> None:
        for task in getattr(self, "watches", []):
            task.cancel()

    def resolve(self, requested: str) -> str:
        version = self.settings.resolve(requested)
        if version is None:
            known = ", ".join([*self.settings.versions, *self.settings.aliases])
            raise NotFound(f"unknown version {requested!r} of model {MODEL_NAME}; available: {known}")
        return version

    async def infer(self, version: str, pixels: np.ndarray) -> np.ndarray:
        """Class probabilities; a version that cannot answer now raises Unavailable (503) with its reason."""
        probabilities = await self.batchers[version].submit(pixels)
        self.monitors[version].observe(pixels, probabilities)
        return probabilities

    def model_info(self, version: str) -> dict:
        if version in self.missing:
            raise Unavailable(self.missing[version], retry_after=30)
        if self.health[version].status["status"] == "unavailable":  # its model failed to load
            raise Unavailable(self.health[version].status["reason"], retry_after=30)
        base = f"/models/{MODEL_NAME}/{version}"
        return {
            **self.infos[version],
            "aliases": self.settings.aliases_of(version),
            "endpoints": {"predict": base, "report": f"{base}/report", "drift": f"{base}/drift"},
        }

    def report(self, version: str) -> bytes:
        """The evaluation report stored with the version (HTML)."""
        if version in self.missing:
            raise Unavailable(self.missing[version], retry_after=30)
        if not self.reports.get(version):
            raise NotFound(f"{store.tag(version)} has no evaluation report; retrain it with train_and_save.py --version {version} --force")
        return self.reports[version]

    def drift(self, version: str) -> dict:
        """Drift of the version's recent traffic against its training reference."""
        if not self.settings.monitoring.enabled:
            raise NotFound("drift monitoring is disabled (clothes.monitoring.enabled in the configuration)")
        report = self.monitors[version].drift()
        if report is None:
            raise NotFound(f"{store.tag(version)} has no reference statistics; retrain it with train_and_save.py --version {version} --force")
        return {"model": MODEL_NAME, "version": version, **report}

    async def version_statuses(self) -> list[dict]:
        """Each version's runner status, as last probed: ready, loading (not answering) or unavailable."""
        return [{"version": v, "aliases": self.settings.aliases_of(v), **h.status} for v, h in self.health.items()]

    async def __is_ready__(self) -> bool:
        """Ready when every runner has loaded its model and answered its warm-up inference.

        Without ``clothes.strict_readiness``, a version whose model is missing or failed to load does
        not hold the others back (it answers 503 itself); at least one version must be ready. A runner
        that does not answer (loading, killed, restarting) always makes the service unready.
        Replaces BentoML's runner probe (``runner_probe``), which waits ~35 s on a loading runner.
        """
        states = [h.status["status"] for h in self.health.values()]
        tolerated = {"ready"} if self.settings.strict_readiness else {"ready", "unavailable"}
        return "ready" in states and all(state in tolerated for state in states)

    @bentoml.api(route="/classify")
    async def classify(
        self,
        images: Annotated[list[ImageRows], Field(min_length=1, description="28x28 images of 0..255 intensities")],
        version: VersionName = SETTINGS.default_version,
    ) -> PredictResponse:
        """Classify a batch of 28x28 images (BentoML's typed API; the generated clients use it)."""
        try:
            resolved = self.resolve(version)
            if len(images) > self.settings.max_batch_images:
                raise PayloadTooLarge(f"images: {len(images)} images exceed the limit of {self.settings.max_batch_images} per request")
            pixels = check_pixels(np.asarray(images, dtype=np.float32), field="images")
            return PredictResponse(**predict_response(MODEL_NAME, resolved, await self.infer(resolved, pixels)))
        except Exception as exc:
            return _error(exc)

    @bentoml.api(route="/classify_image")
    async def classify_image(
        self,
        image: Annotated[Path, ContentType("image/*")],
        version: VersionName = SETTINGS.default_version,
        invert: Invert = Invert.AUTO,
    ) -> PredictResponse:
        """Classify one image file of any size, colour or grey (BentoML's typed API)."""
        try:
            resolved = self.resolve(version)
            pixels = pixels_from_image(image.read_bytes(), field="image", invert=invert)
            return PredictResponse(**predict_response(MODEL_NAME, resolved, await self.infer(resolved, pixels)))
        except Exception as exc:
            return _error(exc)


def _error(exc: Exception):
    error = as_serving_error(exc)
    if error.status >= 500:
        log.error("classification failed: %s: %s", type(exc).__name__, exc)
    return error.to_response()


for _version in SETTINGS.versions:
    setattr(Clothes, dependency_name(_version), bentoml.depends(runner_service(_version)))

Clothes = bentoml.service(name=MODEL_NAME, **SETTINGS.service_options(MODEL_NAME))(Clothes)
# The first added is the outermost (BentoML hands the list to Starlette in order).
Clothes.add_asgi_middleware(ConcurrencyLimit, max_requests=SETTINGS.max_requests_in_flight)
Clothes.add_asgi_middleware(ErrorEnvelope)
Clothes.add_asgi_middleware(Cors)
Clothes.add_asgi_middleware(ApiToken, security=SETTINGS.security)
Clothes.add_asgi_middleware(BodyLimit, max_bytes=SETTINGS.max_body_bytes, max_seconds=SETTINGS.body_timeout_seconds)
Clothes.add_asgi_middleware(TypedContentTypes, accepted={api.route: api.input_spec.mime_type() for api in Clothes.apis.values()})
Clothes.add_asgi_middleware(TypedFormFields, file_fields={api.route: frozenset(api.input_spec.multipart_fields) for api in Clothes.apis.values() if api.input_spec.multipart_fields})
Clothes.add_asgi_middleware(ModelRoutes)
Clothes.add_asgi_middleware(OpenAPIDocument, service=Clothes, settings=SETTINGS)
