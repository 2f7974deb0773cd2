"""Models of other tasks than one class per example (regression, multi-label, embedding), in process:
every protocol answers the model's values under the task's tensor name, the course's routes read
them by target or label, and what needs classes (labels in requests, the classification extension,
``:classify``) is refused naming the task."""

from __future__ import annotations

import numpy as np
import pytest
from starlette.testclient import TestClient

from models.card import InputSpec, ModelCard, OutputSpec, Target
from serving.feedback import Journal
from tests.unit.serving.conftest import InProcess, assert_error, write_config

OUTPUTS = {
    "house": OutputSpec(kind="regression", targets=(Target(name="price", unit="USD"), Target(name="area", unit="m2"))),
    "tagger": OutputSpec(kind="multilabel", labels=("red", "round", "sweet"), thresholds=(0.5, 0.5, 0.5)),
    "embedder": OutputSpec(kind="embedding", shape=(3,)),
}
TASKS = {"house": "regression", "tagger": "multilabel-classification", "embedder": "embedding"}


class ValuesRunner:
    """Answers (N, units): unit j of an example is sigmoid(sum of its values - j)."""

    def __init__(self, units: int):
        self.units = units

    async def predict(self, values: np.ndarray) -> np.ndarray:
        sums = values.reshape(len(values), -1).sum(axis=1, keepdims=True)
        return (1 / (1 + np.exp(-(sums - np.arange(self.units))))).astype(np.float32)

    async def status(self) -> dict:
        return {"status": "ready", "reason": None}


def expected(values: np.ndarray, units: int) -> np.ndarray:
    sums = np.asarray(values, np.float32).reshape(len(values), -1).sum(axis=1, keepdims=True)
    return (1 / (1 + np.exp(-(sums - np.arange(units))))).astype(np.float32)


def card(name: str) -> ModelCard:
    return ModelCard(
        name=name,
        version="v1",
        description=f"{name} for tests",
        task=TASKS[name],
        input=InputSpec(kind="tensor", shape=(4,), value_range=None, divide_by=None),
        preprocessing=None,
        output=OUTPUTS[name],
        architecture="fake",
        number_of_parameters=1,
        metrics=None,
        training={},
        data={"source": "tests"},
        framework_versions={},
    )


@pytest.fixture
def client(tmp_path):
    config = write_config(tmp_path, {name: {"versions": ["v1"]} for name in OUTPUTS}, course={"project3": {"model": "house", "version": "v1"}})
    cards = {(name, "v1"): card(name) for name in OUTPUTS}
    served = InProcess(config, cards, runners={key: ValuesRunner(c.output.units) for key, c in cards.items()})
    settings = config.feedback.model_copy(update={"join_seconds": 0.05})
    journal = served.plane.journal = Journal(settings, tmp_path, labels_of=served.registry.labels_of, targets_of=served.registry.targets_of)
    journal.start()
    with TestClient(served.app) as client:
        client.portal.call(served.probe)
        yield client
    journal.stop()


ROWS = [[0.1, 0.2, 0.3, 0.4], [1.0, -2.0, 0.5, 0.0]]


def test_the_course_routes_answer_values_by_target_and_labels_past_their_thresholds(client):
    answer = client.post("/models/house/v1", json={"inputs": ROWS}).json()
    values = expected(np.array(ROWS), 2)
    np.testing.assert_allclose(answer["result"], values, atol=1e-6)
    assert [list(p["values"]) for p in answer["predictions"]] == [["price", "area"]] * 2
    assert answer["predictions"][1]["values"]["area"] == pytest.approx(float(values[1, 1]), abs=1e-6)
    one = client.post("/inference", json={"input": ROWS[0]}).json()  # the course's Project 3 route, bound to house here
    assert one["prediction"] == pytest.approx({"price": float(values[0, 0]), "area": float(values[0, 1])}, abs=1e-6)
    tags = client.post("/models/tagger/v1", json={"inputs": ROWS}).json()["predictions"]
    scores = expected(np.array(ROWS), 3)
    assert tags[0]["labels"] == [label for label, p in zip(("red", "round", "sweet"), scores[0], strict=True) if p >= 0.5]
    assert tags[1]["scores"]["sweet"] == pytest.approx(float(scores[1, 2]), abs=1e-6)
    embedding = client.post("/models/embedder/v1", json={"input": ROWS[0]}).json()
    assert embedding["predictions"] is None and len(embedding["result"][0]) == 3


@pytest.mark.parametrize(("name", "tensor", "units"), [("house", "values", 2), ("tagger", "probabilities", 3), ("embedder", "embedding", 3)])
def test_v2_and_tf_serving_answer_the_task_tensor(client, name, tensor, units):
    meta = client.get(f"/v2/models/{name}").json()
    assert meta["outputs"] == [{"name": tensor, "datatype": "FP32", "shape": [-1, units]}]
    body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 4], "data": sum(ROWS, [])}]}
    answer = client.post(f"/v2/models/{name}/infer", json=body).json()
    assert [o["name"] for o in answer["outputs"]] == [tensor] and answer["outputs"][0]["shape"] == [2, units]
    np.testing.assert_allclose(np.reshape(answer["outputs"][0]["data"], (2, units)), expected(np.array(ROWS), units), atol=1e-6)
    signature = client.get(f"/v1/models/{name}/metadata").json()["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert list(signature["outputs"]) == [tensor]
    predictions = client.post(f"/v1/models/{name}:predict", json={"instances": ROWS}).json()["predictions"]
    np.testing.assert_allclose(predictions, expected(np.array(ROWS), units), atol=1e-6)


def test_what_needs_one_class_per_example_is_refused_naming_the_task(client):
    body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": ROWS[0]}], "outputs": [{"name": "values", "parameters": {"classification": 2}}]}
    assert_error(client.post("/v2/models/house/infer", json=body), 400, "classification", "regression")
    wrong = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": ROWS[0]}], "outputs": [{"name": "probabilities"}]}
    assert_error(client.post("/v2/models/house/infer", json=wrong), 400, "probabilities", "values")
    assert_error(client.post("/v1/models/house:classify", json={"examples": [{"input": ROWS[0]}]}), 400, "regression", ":predict")
    assert_error(client.post("/models/embedder/v1", json={"input": ROWS[0]}, headers={"X-Label": "3.5"}), 400, "X-Label", "embedding")
    top = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": ROWS[0]}], "outputs": [{"name": "probabilities", "parameters": {"classification": 2}}]}
    classes = client.post("/v2/models/tagger/infer", json=top).json()["outputs"][0]
    assert classes["datatype"] == "BYTES" and classes["shape"] == [1, 2]  # a tagger's labels have scores: the extension applies


def test_a_regressors_live_error_from_values_sent_by_id_and_carried_by_requests(client):
    rng = np.random.default_rng(2)
    rows = rng.normal(0, 1, (40, 4)).round(3)
    answers = expected(rows, 2).astype(np.float64)
    truth = answers + rng.normal(0, 0.1, answers.shape)
    for index, row in enumerate(rows[:30]):
        response = client.post("/models/house/v1", json={"input": row.tolist()}, headers={"X-Request-Id": f"h-{index}"})
        assert response.status_code == 200, response.text
    for index, row in enumerate(rows[30:], start=30):
        carried = f"{float(truth[index, 0])!r};{float(truth[index, 1])!r}"
        response = client.post("/models/house/v1", json={"input": row.tolist()}, headers={"X-Request-Id": f"h-{index}", "X-Label": carried, "X-Slice": "carried"})
        assert response.status_code == 200, response.text
    feedback = [{"id": f"h-{index}", "value": truth[index].tolist()} for index in range(30)] + [{"id": "never", "value": [1.0, 2.0]}]
    answer = client.post("/models/house/feedback", json={"feedback": feedback}).json()
    assert answer["accepted"] == 31 and answer["joined"] == 30 and answer["unknown"] == ["never"]
    report = client.get("/models/house/v1/live").json()
    assert report["task"] == "regression" and report["examples"] == 40 and set(report["slices"]) == {"carried"}
    error = answers - truth
    for index, target in enumerate(report["targets"]):
        assert target["name"] == ("price", "area")[index] and target["unit"] == ("USD", "m2")[index]
        assert target["mae"]["value"] == pytest.approx(np.abs(error[:, index]).mean(), abs=1e-5)
        assert target["rmse"]["value"] == pytest.approx(np.sqrt((error[:, index] ** 2).mean()), abs=1e-5)
    assert_error(client.post("/models/house/feedback", json={"feedback": [{"id": "h-1", "value": 3.0}]}), 400, "1 value", "2 targets")
    assert_error(client.post("/models/house/feedback", json={"feedback": [{"id": "h-1", "label": "x"}]}), 400)
    assert_error(client.post("/models/tagger/feedback", json={"feedback": [{"id": "t-1", "value": 1.0}]}), 400, "not values", "send labels")
    assert_error(client.post("/models/house/v1", json={"input": ROWS[0]}, headers={"X-Label": "1.0"}), 400, "X-Label", "2 finite numbers")
    assert_error(client.get("/models/embedder/v1/live"), 400, "embedding")
