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
from models.specs import MODEL_NAME  # noqa: E402
from serving import monitoring  # noqa: E402
from serving.dispatch import Batcher  # noqa: E402
from serving.errors import NotFound, Overloaded, Unavailable, as_serving_error  # noqa: E402
from serving.middleware import BodyLimit, ErrorEnvelope  # noqa: E402
from serving.routes import ModelRoutes  # noqa: E402
from serving.schemas import ImageRows, PredictResponse, predict_response  # noqa: E402
from serving.settings import load_settings, runner_name  # noqa: E402

log = logging.getLogger("clothes")
SETTINGS = load_settings()
RUNNER_PROBE_SECONDS = 2.0
GC_YOUNG_THRESHOLD = 20_000  # allocations between young collections (Python's default: 700)


def runner_service(version: str):
    """The runner service of one served version."""
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
        model_ref = bentoml.models.BentoModel(store.tag(version))

        def __init__(self) -> None:
            from models.inference import Predictor

            self.version = version
            self.failure: str | None = None
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
                self.missing[version] = f"{store.tag(version)} is not in the model store"
            self.monitors[version] = monitoring.VersionMonitor(version, reference, SETTINGS.monitoring)
        freeze_startup_heap()

    async def _call_runner(self, version: str, pixels: np.ndarray) -> np.ndarray:
        # Looked up per call: BentoML connects the runner clients after __init__.
        return await self.runners[version].to_async.predict(pixels)

    def resolve(self, requested: str) -> str:
        version = self.settings.resolve(requested)
        if version is None:
            known = ", ".join([*self.settings.versions, *self.settings.aliases])
            raise NotFound(f"unknown version {requested!r} of model {MODEL_NAME}; available: {known}")
        return version

    async def infer(self, version: str, pixels: np.ndarray) -> np.ndarray:
        try:
            probabilities = await self.batchers[version].submit(pixels)
        except Overloaded:
            raise
        except Unavailable as exc:
            raise Unavailable(await self._failure_reason(version) or exc.message, retry_after=5) from None
        self.monitors[version].observe(pixels, probabilities)
        return probabilities

    async def _failure_reason(self, version: str) -> str | None:
        """Why a runner failed, in its own words (BentoML hides 5xx messages in transit)."""
        try:
            return (await self.runners[version].to_async.status())["reason"]
        except Exception:
            return None

    def model_info(self, version: str) -> dict:
        if version in self.missing:
            raise Unavailable(self.missing[version], retry_after=30)
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
        statuses = await asyncio.gather(*(self._runner_status(v) for v in self.runners))
        return [{"version": v, "aliases": self.settings.aliases_of(v), **s} for v, s in zip(self.runners, statuses)]

    async def _runner_status(self, version: str) -> dict:
        # A runner still loading accepts connections but answers nothing; don't wait for it.
        try:
            return await asyncio.wait_for(self.runners[version].to_async.status(), RUNNER_PROBE_SECONDS)
        except Exception as exc:
            return {"status": "loading", "reason": f"runner not answering: {type(exc).__name__}"}

    async def __is_ready__(self) -> bool:
        """Ready when every runner has loaded its model and answered its warm-up inference.

        Replaces BentoML's runner probe (``runner_probe``), which waits ~35 s on a loading runner.
        """
        return all(s["status"] == "ready" for s in await self.version_statuses())

    @bentoml.api(route="/classify")
    async def classify(
        self,
        images: Annotated[list[ImageRows], Field(min_length=1, description="28x28 images of 0..255 intensities")],
        version: str = SETTINGS.default_version,
    ) -> PredictResponse:
        """Classify a batch of 28x28 images (BentoML's typed API; the generated clients use it)."""
        try:
            resolved = self.resolve(version)
            pixels = check_pixels(np.asarray(images, dtype=np.float32), field="images")
            return PredictResponse(**predict_response(MODEL_NAME, resolved, await self.infer(resolved, pixels)))
        except Exception as exc:
            return _error(exc)

    @bentoml.api(route="/classify_image")
    async def classify_image(
        self,
        image: Annotated[Path, ContentType("image/*")],
        version: str = SETTINGS.default_version,
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
Clothes.add_asgi_middleware(ErrorEnvelope)
Clothes.add_asgi_middleware(BodyLimit, max_bytes=SETTINGS.max_body_bytes)
Clothes.add_asgi_middleware(ModelRoutes)
