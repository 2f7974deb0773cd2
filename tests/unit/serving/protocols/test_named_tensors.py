"""Models with several named inputs and outputs, in process: every REST protocol reads the inputs by
name (JSON, v2's binary tensors, TF Serving's row and columnar formats, the course's ``{"inputs": {...}}``),
the data plane checks each against the card and packs them for the runner, and the answers come back
as named outputs in their own datatypes. A two-input classifier keeps everything a classifier has.

The runner here unpacks the rows as an engine does (models/tensors.py) and computes answers the tests
know: ``score[j] = sum(features) + counts[j]`` (FP32), ``count = sum(counts)`` (INT64), ``flag`` (BOOL).
"""

from __future__ import annotations

import json
import struct

import numpy as np
import orjson
import pytest
from starlette.testclient import TestClient

from models.card import InputSpec, ModelCard, OutputSpec, TensorSpec, row_bytes
from models.tensors import pack, unpack
from serving.openapi import Served, model_schemas, route_paths
from tests.unit.serving.conftest import InProcess, assert_error, write_config

INPUTS = (TensorSpec(name="features", datatype="FP32", shape=(4,)), TensorSpec(name="counts", datatype="INT64", shape=(3,)))
OUTPUTS = (
    TensorSpec(name="score", datatype="FP32", shape=(3,)),
    TensorSpec(name="count", datatype="INT64", shape=()),
    TensorSpec(name="flag", datatype="BOOL", shape=(1,)),
)
FEATURES = np.array([[0.5, 1.0, -2.0, 0.25], [3.0, 0.0, 0.0, 1.0]], np.float32)
COUNTS = np.array([[1, 2, 3], [0, 0, 9]], np.int64)


def answers(features: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    score = (features.sum(axis=1, keepdims=True) + counts).astype(np.float32)
    return {"score": score, "count": counts.sum(axis=1).astype(np.int64), "flag": (score.max(axis=1, keepdims=True) > 5)}


class NamedRunner:
    """A runner of a named-tensor card: packed rows in, packed rows (or a classifier's probabilities) out."""

    def __init__(self, card: ModelCard):
        self.card = card
        self.calls: list[np.ndarray] = []

    async def predict(self, values: np.ndarray) -> np.ndarray:
        self.calls.append(values)
        given = unpack(self.card.inputs, values)
        named = answers(given["features"], given["counts"])
        if self.card.outputs:
            return pack(self.card.outputs, named)
        exp = np.exp(named["score"] - named["score"].max(axis=1, keepdims=True))
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)

    async def status(self) -> dict:
        return {"status": "ready", "reason": None}


def named_card(name: str, classifier: bool = False) -> ModelCard:
    output = OutputSpec(kind="softmax", labels=("low", "mid", "high")) if classifier else OutputSpec.packed(OUTPUTS)
    return ModelCard(
        name=name,
        version="v1",
        description=f"{name} for tests",
        task="classification" if classifier else "tensors",
        input=InputSpec.packed(INPUTS),
        inputs=INPUTS,
        preprocessing=None,
        output=output,
        outputs=() if classifier else OUTPUTS,
        architecture="fake",
        number_of_parameters=1,
        metrics=None,
        training={},
        data={"source": "tests"},
        framework_versions={},
    )


ECHOED = (TensorSpec(name="x", datatype="FP64", shape=()), TensorSpec(name="on", datatype="BOOL", shape=(2,)), TensorSpec(name="small", datatype="UINT8", shape=(1,)))


class EchoRunner:
    """Answers its inputs as its outputs (the same specs): what each datatype carries end to end."""

    async def predict(self, values: np.ndarray) -> np.ndarray:
        return values

    async def status(self) -> dict:
        return {"status": "ready", "reason": None}


def echo_card() -> ModelCard:
    card = named_card("echo")
    size = row_bytes(ECHOED)
    packed = InputSpec(kind="tensors", shape=(size,), dtype="uint8", value_range=None, divide_by=None)
    return card.model_copy(update={"input": packed, "inputs": ECHOED, "output": OutputSpec(kind="tensors", shape=(size,)), "outputs": ECHOED})


@pytest.fixture
def served(tmp_path):
    config = write_config(tmp_path, {"multi": {"versions": ["v1"]}, "picker": {"versions": ["v1"]}, "echo": {"versions": ["v1"]}})
    cards = {("multi", "v1"): named_card("multi"), ("picker", "v1"): named_card("picker", classifier=True)}
    runners: dict = {key: NamedRunner(card) for key, card in cards.items()}
    cards["echo", "v1"], runners["echo", "v1"] = ModelCard.model_validate(echo_card().model_dump()), EchoRunner()
    return InProcess(config, cards, runners=runners)


@pytest.fixture
def client(served):
    with TestClient(served.app) as client:
        client.portal.call(served.probe)
        yield client


def check_outputs(outputs: dict[str, np.ndarray], features=FEATURES, counts=COUNTS) -> None:
    expected = answers(features, counts)
    assert set(outputs) == set(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(np.asarray(outputs[name]).reshape(value.shape), value)


def v2_inputs(features=FEATURES, counts=COUNTS) -> list[dict]:
    return [
        {"name": "features", "datatype": "FP32", "shape": list(features.shape), "data": features.reshape(-1).tolist()},
        {"name": "counts", "datatype": "INT64", "shape": list(counts.shape), "data": counts.reshape(-1).tolist()},
    ]


def test_v2_metadata_names_every_input_and_output_with_its_datatype(client):
    meta = client.get("/v2/models/multi").json()
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}, {"name": "counts", "datatype": "INT64", "shape": [-1, 3]}]
    assert meta["outputs"] == [
        {"name": "score", "datatype": "FP32", "shape": [-1, 3]},
        {"name": "count", "datatype": "INT64", "shape": [-1]},
        {"name": "flag", "datatype": "BOOL", "shape": [-1, 1]},
    ]


def test_v2_json_answers_each_output_in_its_datatype(client):
    answer = client.post("/v2/models/multi/infer", json={"inputs": v2_inputs()}).json()
    assert [(o["name"], o["datatype"], o["shape"]) for o in answer["outputs"]] == [("score", "FP32", [2, 3]), ("count", "INT64", [2]), ("flag", "BOOL", [2, 1])]
    check_outputs({o["name"]: np.array(o["data"]) for o in answer["outputs"]})
    # inputs in any order, in other numeric datatypes (whole float values for the INT64 input)
    swapped = [dict(v2_inputs()[1], datatype="FP64"), dict(v2_inputs()[0], datatype="FP16")]
    answer = client.post("/v2/models/multi/infer", json={"inputs": swapped, "outputs": [{"name": "count"}]}).json()
    assert [o["name"] for o in answer["outputs"]] == ["count"] and answer["outputs"][0]["data"] == COUNTS.sum(axis=1).tolist()


def test_v2_binary_tensors_are_split_between_the_inputs_in_order(client, served):
    header = {
        "inputs": [
            {"name": "features", "datatype": "FP32", "shape": [2, 4], "parameters": {"binary_data_size": FEATURES.nbytes}},
            {"name": "counts", "datatype": "INT64", "shape": [2, 3], "parameters": {"binary_data_size": COUNTS.nbytes}},
        ],
        "outputs": [{"name": "score", "parameters": {"binary_data": True}}, {"name": "flag", "parameters": {"binary_data": True}}],
    }
    head = orjson.dumps(header)
    response = client.post(
        "/v2/models/multi/infer",
        content=head + FEATURES.tobytes() + COUNTS.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    length = int(response.headers["Inference-Header-Content-Length"])
    described = orjson.loads(response.content[:length])["outputs"]
    raw = response.content[length:]
    score_size = described[0]["parameters"]["binary_data_size"]
    expected = answers(FEATURES, COUNTS)
    np.testing.assert_array_equal(np.frombuffer(raw[:score_size], "<f4").reshape(2, 3), expected["score"])
    np.testing.assert_array_equal(np.frombuffer(raw[score_size:], "?").reshape(2, 1), expected["flag"])
    packed = served.runners["multi", "v1"].calls[-1]
    assert packed.dtype == np.uint8 and packed.shape == (2, row_bytes(INPUTS))  # one row per example crossed to the runner
    short = dict(header, inputs=[header["inputs"][0], {**header["inputs"][1], "parameters": {"binary_data_size": COUNTS.nbytes + 8}}])
    head = orjson.dumps(short)
    refused = client.post("/v2/models/multi/infer", content=head + FEATURES.tobytes() + COUNTS.tobytes(), headers={"Inference-Header-Content-Length": str(len(head))})
    assert_error(refused, 400, "inputs[1]", "binary_data_size")


@pytest.mark.parametrize(
    ("inputs", "fragments"),
    [
        ([v2_inputs()[0]], ["missing 'counts'", "its inputs: features, counts"]),
        ([*v2_inputs(), {"name": "extra", "datatype": "FP32", "shape": [2], "data": [1, 2]}], ["unexpected input 'extra'"]),
        ([v2_inputs()[0], dict(v2_inputs()[1], datatype="FP32", data=[1.5, 2, 3, 0, 0, 9])], ["inputs[1]", "INT64", "whole numbers"]),
        ([v2_inputs()[0], v2_inputs(counts=COUNTS[:1])[1]], ["1 examples of counts", "every input has one row per example"]),
        ([v2_inputs()[0], dict(v2_inputs()[1], shape=[3, 2])], ["counts takes examples of shape [3]"]),
        ([v2_inputs()[0], v2_inputs()[0]], ["given twice"]),
        ([dict(v2_inputs()[0], data=[float("nan")] * 8), v2_inputs()[1]], ["finite"]),
    ],
)
def test_v2_refuses_inputs_that_do_not_match_the_card_naming_them(client, inputs, fragments):
    response = client.post("/v2/models/multi/infer", content=_json(inputs), headers={"Content-Type": "application/json"})
    assert_error(response, 400, *fragments)


def _json(inputs: list[dict]) -> bytes:
    return json.dumps({"inputs": inputs}).encode()  # NaN as the standard library writes it: refused as a value, not as syntax


def test_tf_serving_takes_rows_and_columns_by_input_name_and_answers_objects(client):
    signature = client.get("/v1/models/multi/metadata").json()["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert {name: entry["dtype"] for name, entry in signature["inputs"].items()} == {"features": "DT_FLOAT", "counts": "DT_INT64"}
    assert {name: entry["dtype"] for name, entry in signature["outputs"].items()} == {"score": "DT_FLOAT", "count": "DT_INT64", "flag": "DT_BOOL"}
    rows = [{"features": f.tolist(), "counts": c.tolist()} for f, c in zip(FEATURES, COUNTS, strict=True)]
    predictions = client.post("/v1/models/multi:predict", json={"instances": rows}).json()["predictions"]
    assert len(predictions) == 2 and set(predictions[0]) == {"score", "count", "flag"}
    check_outputs({name: np.array([row[name] for row in predictions]) for name in predictions[0]})
    columns = client.post("/v1/models/multi:predict", json={"inputs": {"features": FEATURES.tolist(), "counts": COUNTS.tolist()}}).json()["outputs"]
    check_outputs({name: np.array(value) for name, value in columns.items()})
    assert_error(client.post("/v1/models/multi:predict", json={"instances": [rows[0], {"features": rows[1]["features"]}]}), 400, "instances[1]", "same inputs")
    assert_error(client.post("/v1/models/multi:predict", json={"instances": FEATURES.tolist()}), 400, "objects", "features, counts")


def test_the_course_route_takes_inputs_by_name_and_answers_outputs_by_name(client):
    answer = client.post("/models/multi/v1", json={"inputs": {"features": FEATURES.tolist(), "counts": COUNTS.tolist()}}).json()
    assert answer["predictions"] is None and list(answer["result"]) == ["score", "count", "flag"]
    check_outputs({name: np.array(value) for name, value in answer["result"].items()})
    one = client.post("/models/multi/v1", json={"input": {"features": FEATURES[0].tolist(), "counts": COUNTS[0].tolist()}}).json()
    check_outputs({name: np.array(value) for name, value in one["result"].items()}, FEATURES[:1], COUNTS[:1])
    assert_error(client.post("/models/multi/v1", json={"inputs": FEATURES.tolist()}), 422, '"inputs": {"features": [...], "counts": [...]}')
    assert_error(client.post("/models/multi/v1", content=b"\x93NUMPY", headers={"Content-Type": "application/x-npy"}), 415, "named inputs as JSON")
    assert_error(client.post("/models/multi/v1", json={"inputs": {"features": FEATURES.tolist(), "counts": [[1, 2, 3], [0, 0, 2**63]]}}), 422, "INT64", "must lie in")


def test_a_two_input_classifier_keeps_its_labels_and_classes(client):
    answer = client.post("/models/picker/v1", json={"inputs": {"features": FEATURES.tolist(), "counts": COUNTS.tolist()}}).json()
    score = answers(FEATURES, COUNTS)["score"]
    assert [p["label"] for p in answer["predictions"]] == [("low", "mid", "high")[i] for i in score.argmax(axis=1)]
    body = {"inputs": v2_inputs(), "outputs": [{"name": "probabilities", "parameters": {"classification": 1}}]}
    top = client.post("/v2/models/picker/infer", json=body).json()["outputs"][0]
    assert top["datatype"] == "BYTES" and [text.split(":")[2] for text in top["data"]] == [p["label"] for p in answer["predictions"]]
    results = client.post("/v1/models/picker:predict", json={"inputs": {"features": FEATURES.tolist(), "counts": COUNTS.tolist()}}).json()["outputs"]
    np.testing.assert_allclose(results, answer["result"], atol=1e-7)
    assert_error(client.get("/models/multi/v1/drift"), 404, "multi:v1 answers tensors: drift is monitored for classifiers, regressors and multi-label taggers")


def held_rows(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (count, 4)).astype(np.float32), rng.integers(0, 10, (count, 3))


def test_a_classifier_of_named_inputs_is_watched_for_drift_on_their_values(tmp_path):
    """Its reference and its window hold the same vector per example (features[0..3], counts[0..2]): traffic
    like the held-out rows does not drift; shifted counts do."""
    from lifecycle.reference import build_reference, drift_card, drift_values

    config = write_config(tmp_path, {"picker": {"versions": ["v1"]}}, monitoring={"window": 300, "min_samples": 200, "refresh_seconds": 0.0})
    card = named_card("picker", classifier=True)
    features, counts = held_rows(600, 1)
    rows = pack(INPUTS, {"features": features, "counts": counts})
    runner = NamedRunner(card)
    score = answers(features, counts)["score"]
    probabilities = np.exp(score - score.max(axis=1, keepdims=True)) / np.exp(score - score.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True)
    reference = build_reference(drift_values(rows, card), probabilities, drift_card(card))
    served = InProcess(config, {("picker", "v1"): card}, runners={("picker", "v1"): runner}, references={("picker", "v1"): reference})
    with TestClient(served.app) as client:
        client.portal.call(served.probe)
        for shift, expected in ((0, "no drift"), (5, "drift")):
            features, counts = held_rows(300, 2 + shift)
            for start in range(0, 300, 6):
                body = {"inputs": {"features": features[start : start + 6].tolist(), "counts": (counts[start : start + 6] + shift).tolist()}}
                assert client.post("/models/picker/v1", json=body).status_code == 200
            report = client.get("/models/picker/v1/drift").json()
            assert report["window"]["size"] == 300 and report["reference_images"] == 600 and report["verdict"] == expected, report


def test_the_openapi_document_describes_named_inputs_and_outputs(served):
    config = served.plane.config
    models = [Served(name, config) for name in config.models]
    for model in models:
        model.card = served.registry.models[model.name].handles["v1"].card
    own = model_schemas(models[0], config)
    assert own["multi.Example"]["required"] == ["features", "counts"]
    assert list(own["multi.PredictResponse"]["properties"]["result"]["properties"]) == ["score", "count", "flag"]
    paths = route_paths(served.router, models, config)
    assert list(paths["/models/multi/{version}"]["post"]["requestBody"]["content"]) == ["application/json"]
    v2 = paths["/v2/models/multi/infer"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    variants = v2["properties"]["inputs"]["items"]["anyOf"]
    items = {}  # (input, datatype sent) -> what its data's items may be
    for variant in variants:
        datatypes = variant["properties"]["datatype"]
        for datatype in datatypes.get("enum", [datatypes.get("const")]):
            items[variant["properties"]["name"]["const"], datatype] = variant["properties"]["data"]["items"]
    float32 = float(np.finfo(np.float32).max)
    assert items["features", "FP32"] == items["features", "FP64"] == {"type": "number", "minimum": -float32, "maximum": float32}  # FP32 holds no more
    assert items["features", "INT8"] == {"type": "integer", "minimum": -128, "maximum": 127} and items["features", "BOOL"] == {"type": "boolean"}
    assert items["counts", "FP64"]["type"] == items["counts", "INT64"]["type"] == "integer"  # an INT64 input takes whole numbers, whatever their datatype
    assert items["counts", "UINT64"] == {"type": "integer", "minimum": 0, "maximum": 2**53}  # what a JSON number holds exactly
    assert len(items) == 2 * 12 and {name for name, _ in items} == {"features", "counts"}
    assert v2["properties"]["inputs"]["minItems"] == v2["properties"]["inputs"]["maxItems"] == 2


def test_tf_serving_bodies_and_answers_of_named_tensors_are_the_documented_ones(served, client):
    """TF Serving's rows (an object of every input per example) and columns (an object of every input's
    batch) are what the document's request schema takes; what the server answers holds to its response schema."""
    from jsonschema import Draft202012Validator

    from serving.openapi import _add_middleware_responses, shared_schemas

    config = served.plane.config
    models = [Served(name, config) for name in config.models]
    schemas = shared_schemas(models)
    for model in models:
        model.card = served.registry.models[model.name].handles["v1"].card
        schemas.update(model_schemas(model, config))
    spec = {"paths": route_paths(served.router, models, config), "components": {"schemas": schemas, "headers": {}}}
    _add_middleware_responses(spec, config)

    def holds(path: str, body, answer: bool = False) -> bool:
        operation = spec["paths"][path]["post"]
        schema = operation["responses"]["200"] if answer else operation["requestBody"]
        return Draft202012Validator({**schema["content"]["application/json"]["schema"], "components": spec["components"]}).is_valid(body)

    rows = {"instances": [{"features": f.tolist(), "counts": c.tolist()} for f, c in zip(FEATURES, COUNTS, strict=True)]}
    columns = {"inputs": {"features": FEATURES.tolist(), "counts": COUNTS.tolist()}}
    for name in ("multi", "picker"):
        path = f"/v1/models/{name}:predict"
        for body in (rows, columns):
            response = client.post(path, json=body)
            assert response.status_code == 200 and holds(path, body) and holds(path, response.json(), answer=True), (name, body, response.text)
        refused = ({"instances": FEATURES.tolist()}, {"instances": [{"features": FEATURES[0].tolist()}]}, {"inputs": {"features": FEATURES.tolist()}})
        for body in refused:
            assert client.post(path, json=body).status_code == 400 and not holds(path, body), body
    answer = client.post("/v1/models/multi:predict", json=rows).json()
    answer["predictions"][0]["count"] = "three"
    assert not holds("/v1/models/multi:predict", answer, answer=True)
    course = client.post("/models/multi/v1", json=columns).json()  # the course's route: its outputs by name, BOOL as true or false
    assert holds("/models/multi/{version}", columns) and holds("/models/multi/{version}", course, answer=True), course
    course["result"]["flag"] = [[1], [0]]
    assert not holds("/models/multi/{version}", course, answer=True)


def test_packed_rows_round_trip_through_struct_layout():
    rows = pack(INPUTS, {"features": FEATURES, "counts": COUNTS})
    first = rows[0].tobytes()
    assert struct.unpack("<4f3q", first) == (*FEATURES[0].tolist(), *COUNTS[0].tolist())  # little-endian, in the card's order


def test_scalars_booleans_and_small_integers_travel_exactly_through_json(client):
    one = client.post("/models/echo/v1", json={"input": {"x": 0.1, "on": [True, False], "small": [255]}}).json()["result"]
    assert one == {"x": [0.1], "on": [[True, False]], "small": [[255]]}
    rows = [{"x": 2.5, "on": [False, True], "small": [0]}, {"x": -1e300, "on": [True, False], "small": [7]}]
    predictions = client.post("/v1/models/echo:predict", json={"instances": rows}).json()["predictions"]
    assert predictions == [{"x": 2.5, "on": [False, True], "small": [0]}, {"x": -1e300, "on": [True, False], "small": [7]}]
    v2 = client.post(
        "/v2/models/echo/infer",
        json={
            "inputs": [
                {"name": "x", "datatype": "FP64", "shape": [1], "data": [0.1]},
                {"name": "on", "datatype": "UINT8", "shape": [1, 2], "data": [1, 0]},
                {"name": "small", "datatype": "INT32", "shape": [1, 1], "data": [200]},
            ]
        },
    ).json()["outputs"]
    assert [(o["name"], o["datatype"], o["data"]) for o in v2] == [("x", "FP64", [0.1]), ("on", "BOOL", [True, False]), ("small", "UINT8", [200])]
    assert_error(client.post("/models/echo/v1", json={"input": {"x": True, "on": [1, 0], "small": [1]}}), 422, "x is FP64: expected numbers, got true or false")
    assert_error(client.post("/models/echo/v1", json={"input": {"x": 1, "on": [2, 0], "small": [1]}}), 422, "on is BOOL")
    assert_error(client.post("/models/echo/v1", json={"input": {"x": 1, "on": [True, 0], "small": [1]}}), 400, "input.on", "true and false only")
    assert_error(client.post("/models/echo/v1", json={"input": {"x": 1, "on": [1, 0], "small": [256]}}), 422, "small is UINT8: values must lie in 0..255")


def test_v2_takes_bool_inputs_as_json_true_and_false_or_as_bytes_0_and_1(client):
    def body(on: dict) -> list[dict]:
        return [
            {"name": "x", "datatype": "FP64", "shape": [1], "data": [0.5]},
            {"name": "on", "datatype": "BOOL", "shape": [1, 2], **on},
            {"name": "small", "datatype": "UINT8", "shape": [1, 1], "data": [3]},
        ]

    answer = client.post("/v2/models/echo/infer", json={"inputs": body({"data": [False, True]})}).json()["outputs"]
    assert [(o["name"], o["datatype"], o["data"]) for o in answer] == [("x", "FP64", [0.5]), ("on", "BOOL", [False, True]), ("small", "UINT8", [3])]
    for raw, status, fragment in ((b"\x01\x00", 200, None), (b"\x02\x00", 400, "BOOL values are bytes 0 or 1")):
        head = _json(body({"parameters": {"binary_data_size": 2}}))
        response = client.post("/v2/models/echo/infer", content=head + raw, headers={"Inference-Header-Content-Length": str(len(head))})
        if status == 200:
            assert response.status_code == 200, response.text
            assert response.json()["outputs"][1]["data"] == [True, False]
        else:
            assert_error(response, status, "inputs[1]", fragment)
    assert_error(client.post("/v2/models/echo/infer", json={"inputs": body({"data": [1, 0]})}), 400, "inputs[1].data: BOOL values must be true or false")
    assert_error(client.post("/v2/models/echo/infer", json={"inputs": body({"data": "yes"})}), 400, "inputs[1].data: expected a list of true and false")
    wrong = body({"data": [True, False]})
    wrong[0] = {"name": "x", "datatype": "BOOL", "shape": [1], "data": [True]}
    assert_error(client.post("/v2/models/echo/infer", json={"inputs": wrong}), 400, "x is FP64: expected numbers, got true or false")
