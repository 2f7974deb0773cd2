"""In-process serving: the entry's middleware and protocol routes over a data plane whose runners are fakes.

No `bentoml serve` and no model store: the registry holds handles built from cards, and each
runner is a :class:`FakeRunner` that answers a deterministic function of its input. What is under
test is everything the entry does around the runner: routing, decoding, errors, limits, metrics.
"""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
import yaml
from PIL import Image
from starlette.testclient import TestClient

from config import load_config
from models.card import ImagePreprocessing, InputSpec, ModelCard, OutputSpec
from serving.app import build, make_router
from serving.dataplane import DataPlane
from serving.monitoring import REQUESTS
from serving.registry import ModelRegistry, ServedModel, VersionHandle


def assert_error(response, status: int, *fragments: str) -> dict:
    """The one error envelope: this status, a body of only ``{"error": ...}`` holding each fragment."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    for fragment in fragments:
        assert fragment in body["error"], body["error"]
    return body


def encoded(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    """An image file of these pixels (PIL)."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels).astype(np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


def request_count(**labels) -> float:
    """serving_requests_total of the first series with these labels (0 before any)."""
    for metric in REQUESTS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


LIMITS = {"max_body_bytes": 200_000, "max_batch_images": 8, "max_queue_images": 64, "body_timeout_seconds": 5}


def make_card(name: str, version: str, shape=(28, 28, 1), labels=("a", "b", "c"), kind="softmax", invert="never", tensor=False) -> ModelCard:
    if tensor:
        spec, prep = InputSpec(kind="tensor", shape=shape, value_range=None, divide_by=None), None
    else:
        spec = InputSpec(kind="image", shape=shape, value_range=(0, 255), divide_by=255)
        prep = ImagePreprocessing(colour_mode="RGB" if shape[-1] == 3 else "L", aspect="pad", resize="bilinear", invert=invert)
    output = OutputSpec(kind=kind, labels=labels, positive_label=labels[1] if kind == "sigmoid" else None)
    return ModelCard(
        name=name,
        version=version,
        description=f"{name} for tests",
        task="classification" if tensor else "image-classification",
        input=spec,
        preprocessing=prep,
        output=output,
        architecture="fake",
        number_of_parameters=1,
        metrics={"accuracy": 0.5},
        training={},
        data={"source": "tests"},
        framework_versions={},
    )


class FakeRunner:
    """Answers class ``int(mean of the example) % classes`` with probability 0.9; counts its calls."""

    def __init__(self, classes: int, status: str = "ready", delay: float = 0.0):
        self.classes, self.state, self.delay = classes, status, delay
        self.calls: list[np.ndarray] = []

    async def predict(self, values: np.ndarray) -> np.ndarray:
        self.calls.append(values)
        if self.delay:
            await asyncio.sleep(self.delay)
        winners = values.reshape(len(values), -1).mean(axis=1).astype(int) % self.classes
        probabilities = np.full((len(values), self.classes), 0.1 / (self.classes - 1), dtype=np.float32)
        probabilities[np.arange(len(values)), winners] = 0.9
        return probabilities

    async def status(self) -> dict:
        return {"status": self.state, "reason": None if self.state == "ready" else f"runner is {self.state}"}


def write_config(tmp_path, models: dict, **sections) -> object:
    path = tmp_path / "configuration.yaml"
    path.write_text(yaml.safe_dump({"models": models, "limits": LIMITS, **sections}, sort_keys=False))
    return load_config(path)


class InProcess:
    """A served set of cards, with their fake runners, behind the entry's routes (``client``)."""

    def __init__(self, config, cards: dict[tuple[str, str], ModelCard | None], runners: dict | None = None, references: dict[tuple[str, str], dict] | None = None):
        self.runners = runners or {key: FakeRunner(card.classes if card else 2) for key, card in cards.items()}
        models = {}
        for name, settings in config.models.items():
            handles = {}
            for version in settings.versions:
                card = cards[name, version]
                failure = None if card else f"{name}:{version} is not in the model store"
                handles[version] = VersionHandle(
                    name, version, config, self.runners[name, version], card, created="2026-11-30T00:00:00", failure=failure, reference=(references or {}).get((name, version))
                )
            models[name] = ServedModel(name, handles, dict(settings.aliases), settings.default)
        self.registry = ModelRegistry(models)
        self.plane = DataPlane(self.registry, config)
        self.router = make_router(config)
        self.app = build(not_found, config, plane=lambda: self.plane, router=self.router)  # the entry's stack (serving/app.py)

    async def probe(self) -> None:
        for handle in self.registry.handles():
            handle.health.update(await handle.health.probe())


async def not_found(scope, receive, send):
    """What BentoML answers for a path no route takes (before the error envelope); its lifespan is empty."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        return await send({"type": "lifespan.shutdown.complete"})
    await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"Not Found"})


@pytest.fixture
def served(tmp_path):
    return served_models(tmp_path)


def served_models(tmp_path, vector_aliases: dict | None = None) -> InProcess:
    """clothes-like grey 28x28 (v1, v2; v3 missing from the store), a colour 32x32x3 model, a tensor model."""
    config = write_config(
        tmp_path,
        {
            "grey": {"versions": ["v1", "v2", "v3"], "aliases": {"stable": "v1"}},
            "colour": {"versions": ["v1"]},
            "vector": {"versions": ["v1"], **({"aliases": vector_aliases} if vector_aliases else {})},
        },
        course={"project3": {"model": "colour", "version": "v1"}},
    )
    cards = {
        ("grey", "v1"): make_card("grey", "v1", labels=tuple("abcdefghij"), invert="auto"),
        ("grey", "v2"): make_card("grey", "v2", labels=tuple("abcdefghij"), invert="auto"),
        ("grey", "v3"): None,
        ("colour", "v1"): make_card("colour", "v1", shape=(32, 32, 3), labels=("damage", "no_damage"), kind="sigmoid"),
        ("vector", "v1"): make_card("vector", "v1", shape=(4,), labels=("x", "y", "z"), tensor=True),
    }
    return InProcess(config, cards)


@pytest.fixture
def client(served):
    with TestClient(served.app) as client:
        client.portal.call(served.probe)
        yield client
