"""A regressor's drift through the entry, in process: its version is monitored like a classifier's (its
window, GET /models/<name>/<version>/drift, the serving_drift_* gauges, the replica's counts for the
fleet), with a KS test per input and per target; models of other tasks say why they have no drift."""

from __future__ import annotations

import json

import numpy as np
import pytest
from starlette.testclient import TestClient

from lifecycle.reference import build_regression_reference, drift_card
from models.card import OutputSpec
from serving.monitoring import CLASS_SHARE, DRIFT_DETECTED, DRIFT_P_VALUE, DRIFT_WINDOW
from tests.unit.cards import regression_card
from tests.unit.serving.conftest import LIMITS, InProcess, assert_error, write_config

HOUSE = regression_card(name="house")
TAGGER = regression_card(name="tagger").model_copy(update={"output": OutputSpec(kind="multilabel", labels=("a", "b"), thresholds=(0.5, 0.5)), "task": "multilabel-classification"})
WEIGHTS = np.array([[40_000.0, 2.0], [-1_000.0, 0.5], [-5_000.0, -1.0], [60_000.0, 0.1]], dtype=np.float32)


class TaggerRunner:
    """Answers (N, 2): label a's probability rising with income (the fourth input), b's with rooms (the first)."""

    async def predict(self, values: np.ndarray) -> np.ndarray:
        x = values.reshape(len(values), 4)
        return (1 / (1 + np.exp(-np.stack([x[:, 3] - 4, x[:, 0] - 3], axis=1)))).astype(np.float32)

    async def status(self) -> dict:
        return {"status": "ready", "reason": None}


class HouseRunner:
    """Answers (N, 2): price and area, linear in the four inputs."""

    async def predict(self, values: np.ndarray) -> np.ndarray:
        return (values.reshape(len(values), 4) @ WEIGHTS + np.float32([100_000, 20])).astype(np.float32)

    async def status(self) -> dict:
        return {"status": "ready", "reason": None}


def inputs(n: int, seed: int, income: float = 0.0) -> np.ndarray:
    values = np.random.default_rng(seed).normal([3, 30, 5, 4 + income], [1, 10, 2, 1.5], (n, 4))
    return values.astype(np.float32)


def sample(metric, **labels) -> float | None:
    for family in metric.collect():
        for s in family.samples:
            if all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


@pytest.fixture
def served(tmp_path):
    models = {"house": {"versions": ["v1", "v2"]}, "tagger": {"versions": ["v1"]}, "embedder": {"versions": ["v1"]}}
    config = write_config(
        tmp_path,
        models,
        monitoring={"window": 400, "min_samples": 200, "log_sample_rate": 0, "refresh_seconds": 3600},
        limits={**LIMITS, "max_batch_images": 50, "max_queue_images": 200},
    )
    held_out = inputs(1000, seed=1)
    reference = json.loads(json.dumps(build_regression_reference(held_out, held_out @ WEIGHTS + [100_000, 20], HOUSE)))
    tagger = TAGGER
    tagged = 1 / (1 + np.exp(-np.stack([held_out[:, 3] - 4, held_out[:, 0] - 3], axis=1)))
    tagger_reference = json.loads(json.dumps(build_regression_reference(held_out, tagged, drift_card(tagger))))
    embedder = regression_card(name="embedder").model_copy(update={"output": OutputSpec(kind="embedding", shape=(2,)), "task": "embedding"})
    cards = {("house", "v1"): HOUSE, ("house", "v2"): HOUSE.model_copy(update={"version": "v2"}), ("tagger", "v1"): tagger, ("embedder", "v1"): embedder}
    runners = {key: TaggerRunner() if key[0] == "tagger" else HouseRunner() for key in cards}
    return InProcess(config, cards, runners=runners, references={("house", "v1"): reference, ("tagger", "v1"): tagger_reference})


@pytest.fixture
def client(served):
    with TestClient(served.app) as client:
        client.portal.call(served.probe)
        yield client


def send(client, values: np.ndarray, batch: int = 25) -> None:
    for start in range(0, len(values), batch):
        response = client.post("/models/house/v1", json={"inputs": values[start : start + batch].tolist()})
        assert response.status_code == 200, response.text


def test_a_regressors_drift_answers_its_inputs_and_targets_by_name(client, served):
    first = client.get("/models/house/v1/drift").json()
    assert first["verdict"] == "too few predictions" and first["model"] == "house" and first["window"]["size"] == 0
    send(client, inputs(400, seed=2))
    clean = client.get("/models/house/v1/drift").json()
    assert clean["verdict"] == "no drift" and clean["window"]["size"] == 400, clean["statistics"]
    assert set(clean["statistics"]) == {"mean_intensity_ks", *(f"input_ks[{n}]" for n in HOUSE.input.names), "predicted_value_ks[price]", "predicted_value_ks[area]"}
    assert "class_shares" not in clean and clean["predicted_values"]["price"]["unit"] == "USD"
    send(client, inputs(400, seed=3, income=1.5))  # the window now holds only shifted traffic
    drifted = client.get("/models/house/v1/drift").json()
    assert drifted["verdict"] == "drift" and drifted["drifted"]
    assert drifted["drifted_inputs"] == ["income"] and drifted["drifted_targets"] == ["price"]


def test_a_regressors_gauges_and_its_counts_for_the_fleet(client, served):
    send(client, inputs(400, seed=4, income=1.5))
    monitor = served.registry.resolve("house", "v1").monitor
    report = monitor.refresh_gauges()  # what the refresher's thread does every refresh_seconds
    labels = {"model": "house", "version": "v1"}
    assert sample(DRIFT_WINDOW, **labels) == 400
    assert sample(DRIFT_P_VALUE, **labels, statistic="input_ks[income]") == report["statistics"]["input_ks[income]"]["p_value"] < 1e-6
    assert sample(DRIFT_DETECTED, **labels, statistic="predicted_value_ks[price]") == 1 and sample(DRIFT_DETECTED, **labels, statistic="any") == 1
    assert sample(DRIFT_DETECTED, **labels, statistic="predicted_value_ks[area]") == 0
    assert sample(CLASS_SHARE, **labels) is None  # class shares are a classifier's
    counts = served.plane.drift_counts()["house"]["v1"]  # this replica's window, for GET /fleet
    fleet = monitor.fleet_drift([json.loads(json.dumps(counts))])
    assert fleet["statistics"] == report["statistics"] and fleet["drifted_inputs"] == ["income"]


def test_without_a_reference_or_of_another_task_drift_says_why(client):
    assert_error(client.get("/models/house/v2/drift"), 404, "house:v2 has no reference statistics", "import it with evaluation data")
    assert_error(client.get("/models/embedder/v1/drift"), 404, "embedder:v1 answers embedding: drift is monitored for classifiers, regressors and multi-label taggers")


def test_a_taggers_drift_watches_each_labels_probability_as_a_regressors_target(client):
    """A multi-label tagger: its inputs as a regressor's, and each label's probability as a target (its
    unit "probability"); shifting income moves label a's, and the report names both."""

    def tag(values):
        for start in range(0, len(values), 25):
            response = client.post("/models/tagger/v1", json={"inputs": values[start : start + 25].tolist()})
            assert response.status_code == 200, response.text

    tag(inputs(400, seed=6))
    clean = client.get("/models/tagger/v1/drift").json()
    assert clean["verdict"] == "no drift" and set(clean["predicted_values"]) == {"a", "b"}, clean["statistics"]
    assert clean["predicted_values"]["a"]["unit"] == "probability" and "predicted_value_ks[b]" in clean["statistics"]
    tag(inputs(400, seed=7, income=1.5))
    drifted = client.get("/models/tagger/v1/drift").json()
    assert drifted["verdict"] == "drift" and drifted["drifted_inputs"] == ["income"] and drifted["drifted_targets"] == ["a"], drifted["statistics"]


def test_the_document_describes_a_regressors_drift_report(client, served, monkeypatch):
    """The published document's house.DriftReport (schemas.RegressionDriftReport, narrowed to its inputs
    and targets by name) holds for the answers, and refuses a report naming a target the model lacks."""
    from jsonschema import Draft202012Validator

    from serving import openapi
    from tests.unit.serving.test_openapi import FakeService

    monkeypatch.setattr(openapi, "_card", lambda name, version: served.registry.model(name).handles[version].card)
    spec = openapi.build_spec(FakeService(), served.plane.config, served.router)
    validator = Draft202012Validator({"$ref": "#/components/schemas/house.DriftReport", "components": spec["components"]})
    send(client, inputs(400, seed=5, income=1.5))
    report = client.get("/models/house/v1/drift").json()
    assert report["drifted_inputs"] == ["income"] and not list(validator.iter_errors(report))
    assert list(validator.iter_errors(client.get("/models/house/v1").json()))  # a card is no drift report
    wrong = {**report, "drifted_targets": ["volume"], "predicted_values": {**report["predicted_values"], "volume": report["predicted_values"]["price"]}}
    assert len(list(validator.iter_errors(wrong))) == 2
