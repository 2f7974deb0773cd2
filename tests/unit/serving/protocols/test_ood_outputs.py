"""Out-of-distribution outputs in-process: a model configured with ``ood: {score: max_softmax,
abstain_above: 0.05}`` (its fake runner answers 0.9, a score of 0.1) abstains on every example, and
each protocol says so: the course's predictions, v2's ``ood_score`` and ``abstained`` outputs (JSON
and binary), the model's v2 metadata; outputs asked for one by one, mistakes refused naming the field."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from starlette.testclient import TestClient

from tests.unit.serving.conftest import InProcess, assert_error, make_card, write_config

INFER = "/v2/models/vector/versions/v1/infer"


@pytest.fixture
def client(tmp_path):
    config = write_config(
        tmp_path, {"vector": {"versions": ["v1"], "ood": {"score": "max_softmax", "abstain_above": 0.05}}, "plain": {"versions": ["v1"], "ood": {"enabled": False}}}
    )
    served = InProcess(
        config,
        {
            ("vector", "v1"): make_card("vector", "v1", shape=(4,), labels=("x", "y", "z"), tensor=True),
            ("plain", "v1"): make_card("plain", "v1", shape=(4,), labels=("x", "y", "z"), tensor=True),
        },
    )
    with TestClient(served.app) as client:
        client.portal.call(served.probe)
        yield client


def body(**extra) -> dict:
    return {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [1.0] * 4 + [2.0] * 4}], **extra}


def test_the_course_answer_abstains_with_its_score(client):
    prediction = client.post("/models/vector/v1", json={"input": [1, 1, 1, 1]}).json()["predictions"][0]
    assert prediction["ood_score"] == pytest.approx(0.1, abs=1e-6) and prediction["abstained"] is True
    assert prediction["label"] is None and prediction["class_id"] is None
    assert "ood_score" not in client.post("/models/plain/v1", json={"input": [1, 1, 1, 1]}).json()["predictions"][0]


def test_v2_answers_every_output_by_default_and_the_metadata_lists_them(client):
    answer = client.post(INFER, json=body()).json()
    assert [(o["name"], o["datatype"], o["shape"]) for o in answer["outputs"]] == [("probabilities", "FP32", [2, 3]), ("ood_score", "FP32", [2]), ("abstained", "BOOL", [2])]
    assert answer["outputs"][1]["data"] == pytest.approx([0.1, 0.1], abs=1e-6) and answer["outputs"][2]["data"] == [True, True]
    outputs = client.get("/v2/models/vector/versions/v1").json()["outputs"]
    assert outputs == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
        {"name": "ood_score", "datatype": "FP32", "shape": [-1]},
        {"name": "abstained", "datatype": "BOOL", "shape": [-1]},
    ]
    assert [o["name"] for o in client.get("/v2/models/plain/versions/v1").json()["outputs"]] == ["probabilities"]


def test_v2_outputs_asked_for_one_by_one_in_json_or_binary(client):
    answer = client.post(INFER, json=body(outputs=[{"name": "abstained"}, {"name": "ood_score", "parameters": {"binary_data": True}}]))
    header_length = int(answer.headers["inference-header-content-length"])
    head = json.loads(answer.content[:header_length])
    assert [o["name"] for o in head["outputs"]] == ["abstained", "ood_score"] and head["outputs"][0]["data"] == [True, True]
    scores = np.frombuffer(answer.content[header_length:], dtype="<f4")
    assert head["outputs"][1]["parameters"]["binary_data_size"] == 8 and scores == pytest.approx([0.1, 0.1], abs=1e-6)
    binary = client.post(INFER, json=body(outputs=[{"name": "abstained", "parameters": {"binary_data": True}}]))
    assert binary.content[int(binary.headers["inference-header-content-length"]) :] == struct.pack("??", True, True)


@pytest.mark.parametrize(
    ("outputs", "fragment"),
    [
        ([{"name": "ood_score"}, {"name": "ood_score"}], "outputs[1]: ood_score is asked for twice"),
        ([{"name": "ood_score", "parameters": {"classification": 2}}], "outputs[0].parameters.classification: only probabilities has classes"),
        ([{"name": "energy"}], "outputs[0]: unexpected output 'energy' for model vector; outputs: probabilities, ood_score, abstained"),
    ],
)
def test_mistaken_output_requests_are_refused(client, outputs, fragment):
    assert_error(client.post(INFER, json=body(outputs=outputs)), 400, fragment)


def test_an_output_the_version_does_not_have_is_refused_naming_what_it_has(client):
    assert_error(
        client.post("/v2/models/plain/versions/v1/infer", json=body(outputs=[{"name": "ood_score"}])), 400, "plain:v1 has no output 'ood_score'; its outputs: probabilities"
    )
