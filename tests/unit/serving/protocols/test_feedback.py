"""Feedback and live accuracy in-process: predictions through the protocols, ground truth by request id
or carried by the request (``X-Label``), joined by a real journal (SQLite in a temporary runtime
directory) and reported by ``GET /models/<name>/<version>/live``; mistakes answer 400 naming the field."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from serving.feedback import Journal
from tests.unit.serving.conftest import assert_error, served_models

VECTOR = "/models/vector/v1"  # its fake runner answers class int(mean of the four values) % 3


@pytest.fixture
def served(tmp_path):
    served = served_models(tmp_path)
    journal = served.plane.journal = Journal(served.plane.config.feedback.model_copy(update={"join_seconds": 0.05}), tmp_path, labels_of=served.registry.labels_of)
    journal.start()
    yield served
    journal.stop()


@pytest.fixture
def client(served):
    with TestClient(served.app) as client:
        client.portal.call(served.probe)
        yield client


def predict(client, value: int, rid: str, **headers):
    response = client.post(VECTOR, json={"input": [value] * 4}, headers={"X-Request-Id": rid, **headers})
    assert response.status_code == 200 and response.headers["x-request-id"] == rid, response.text
    return response


def test_live_accuracy_equals_the_accuracy_of_the_labels_sent(client):
    truths = []
    for index in range(30):
        predict(client, index % 3, f"r-{index}", **({"X-Slice": "night"} if index < 10 else {}))
        truths.append(index % 3 if index % 2 == 0 else (index + 1) % 3)
    answer = client.post("/models/vector/feedback", json={"feedback": [{"id": f"r-{i}", "label": t} for i, t in enumerate(truths)] + [{"id": "nobody", "label": "x"}]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"model": "vector", "accepted": 31, "joined": 30, "unknown": ["nobody"], "unknown_ids": 1, "shared": False}
    live = client.get(f"{VECTOR}/live").json()
    assert live["examples"] == 30 and live["accuracy"]["value"] == 0.5 and live["accuracy"]["correct"] == 15
    assert live["accuracy"]["low"] < 0.5 < live["accuracy"]["high"]
    assert live["slices"]["night"]["examples"] == 10 and live["offline"] == {"accuracy": 0.5}
    assert [c["label"] for c in live["classes"]] == ["x", "y", "z"] and live["series"][-1]["examples"] == 30


def test_a_request_carrying_its_labels_is_counted_without_feedback(client):
    response = client.post(VECTOR, json={"inputs": [[0] * 4, [1] * 4, [2] * 4]}, headers={"X-Label": "x, 1,x"})
    assert response.status_code == 200, response.text
    response = client.post(
        "/v2/models/vector/versions/v1/infer", json={"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 1, 1, 1]}]}, headers={"X-Label": "y"}
    )
    assert response.status_code == 200, response.text
    client.post("/models/vector/feedback", json={"feedback": [{"id": "unrelated", "label": 0}]})  # a pass of the join has run
    live = client.get("/models/vector/v1/live").json()
    assert (live["examples"], live["accuracy"]["correct"]) == (4, 3)


def test_an_alias_is_reported_per_alias(served, client, tmp_path):
    predict(client, 1, "a-1")
    client.post("/models/grey/stable", json={"image": [[0] * 28] * 28}, headers={"X-Request-Id": "g-1"})
    assert client.post("/models/grey/feedback", json={"feedback": [{"id": "g-1", "label": "a"}]}).json()["joined"] == 1
    live = client.get("/models/grey/stable/live").json()
    assert live["version"] == "v1" and live["aliases"] == {"stable": {"value": 1.0, "low": pytest.approx(0.206549, abs=1e-6), "high": 1.0, "examples": 1, "correct": 1}}


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        (b"not json", ["invalid JSON"]),
        ({"feedback": []}, ["feedback: List should have at least 1 item"]),
        ({"feedback": [{"id": "r", "label": "x", "labels": ["y"]}]}, ["give one of label, labels, value or values"]),
        ({"feedback": [{"id": "bad id!", "label": "x"}]}, ["feedback.0.id"]),
        ({"feedback": [{"id": "r", "label": "horse"}]}, ["feedback[0].label: unknown label 'horse'; labels: x, y, z"]),
        ({"feedback": [{"id": "r", "labels": ["x", 7]}]}, ["feedback[0].labels: class index 7 is out of range: 0 to 2"]),
        ({"feedback": [{"id": "r", "label": True}]}, ["feedback.0.label"]),
        ({"feedback": [{"id": "r", "label": "x"}], "extra": 1}, ["extra: Extra inputs are not permitted"]),
    ],
)
def test_mistaken_feedback_is_refused_naming_the_field(client, body, fragments):
    response = client.post("/models/vector/feedback", **({"content": body} if isinstance(body, bytes) else {"json": body}))
    assert_error(response, 400, *fragments)


def test_mistaken_carried_labels_and_slices_are_refused_before_inference(served, client):
    calls = len(served.runners["vector", "v1"].calls)
    assert_error(client.post(VECTOR, json={"input": [0] * 4}, headers={"X-Label": "x,y"}), 400, "X-Label: 2 labels for 1 example")
    assert_error(client.post(VECTOR, json={"input": [0] * 4}, headers={"X-Label": "w"}), 400, "X-Label: unknown label 'w'")
    assert_error(client.post(VECTOR, json={"input": [0] * 4}, headers={"X-Slice": "-no"}), 400, "X-Slice: a slice is 1 to 64 characters")
    assert len(served.runners["vector", "v1"].calls) == calls


def test_unknown_models_too_many_labels_and_feedback_off(served, client):
    assert_error(client.post("/models/nothing/feedback", json={"feedback": [{"id": "r", "label": 0}]}), 404, "nothing")
    served.plane.config = served.plane.config.model_copy(update={"feedback": served.plane.config.feedback.model_copy(update={"max_items": 3})})
    assert_error(client.post("/models/vector/feedback", json={"feedback": [{"id": "r", "labels": [0, 1, 2, 0]}]}), 413, "feedback.max_items")
    served.plane.journal = None
    assert_error(client.post("/models/vector/feedback", json={"feedback": [{"id": "r", "label": 0}]}), 404, "feedback is off")
    assert_error(client.get(f"{VECTOR}/live"), 404, "feedback is off")
