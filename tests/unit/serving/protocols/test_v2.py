"""The Open Inference Protocol v2 in-process, for a grey softmax card, a colour sigmoid card and a tensor
card over fake runners (conftest). Binary requests are built, and answers read, by tritonclient's own
HTTP code (``tritonclient.http``), as its client sends and parses them."""

from __future__ import annotations

import json
import time
import tracemalloc

import numpy as np
import orjson
import pytest
from starlette.testclient import TestClient
from tritonclient.http import InferInput, InferRequestedOutput, InferResult
from tritonclient.http._utils import _get_inference_request

from tests.unit.serving.conftest import assert_error, request_count
from tests.unit.serving.protocols.test_tfserving import probabilities, protocol_app

GREY = np.full((1, 28, 28, 1), 30, dtype=np.uint8)  # class 0 ("a") of ten
COLOUR = np.full((2, 32, 32, 3), 1, dtype=np.uint8)  # class 1 of two: no_damage
VECTOR = np.array([[1.5, -2, 7, 300], [0, 0, 0, 0]], dtype=np.float32)  # classes 1 ("y") and 0 ("x")


@pytest.fixture
def v2(served):
    with TestClient(protocol_app(served)) as client:
        client.portal.call(served.probe)
        yield client


def triton_request(array: np.ndarray, datatype: str | None = None, binary: bool = True, outputs: list | None = None, request_id: str = "") -> tuple[bytes, dict]:
    """The body and headers tritonclient's InferenceServerClient.infer sends for ``array``."""
    tensor = InferInput("input", list(array.shape), datatype or _datatype(array))
    tensor.set_data_from_numpy(array, binary_data=binary)
    body, json_size = _get_inference_request([tensor], request_id, outputs, 0, False, False, 0, None, None)
    return body, ({"Inference-Header-Content-Length": str(json_size)} if json_size is not None else {})


def _datatype(array: np.ndarray) -> str:
    from tritonclient.utils import np_to_triton_dtype

    return np_to_triton_dtype(array.dtype)


def infer(client, path: str, body: bytes, headers: dict) -> InferResult:
    """POST the body, then read the answer as tritonclient does (InferResult)."""
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == 200, response.text
    return InferResult.from_response_body(response.content, header_length=response.headers.get("inference-header-content-length"))


# --- server and model metadata, health -------------------------------------------------------------------


def test_server_metadata_live_and_ready(served, v2):
    metadata = v2.get("/v2").json()
    assert metadata["name"] == "model-server" and metadata["extensions"] == ["binary_tensor_data", "classification", "model_repository"]
    assert v2.get("/v2/health/live").json() == {"live": True}
    assert v2.get("/v2/health/ready").json() == {"ready": True}  # grey:v3 is missing, the others ready
    served.runners["colour", "v1"].state = "loading"
    v2.portal.call(served.probe)
    response = v2.get("/v2/health/ready")
    assert_error(response, 503, "not ready", "colour:v1 (loading)")
    assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize("model,shape,classes", [("grey", [28, 28, 1], 10), ("colour", [32, 32, 3], 2), ("vector", [4], 3)])
def test_model_metadata_from_the_card(v2, model, shape, classes):
    metadata = v2.get(f"/v2/models/{model}/versions/v1").json()
    assert metadata["name"] == model and metadata["platform"] == "keras"  # the fake runners report no engine
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, *shape]}]
    assert metadata["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, classes]}]
    assert v2.get(f"/v2/models/{model}").json() == metadata  # the default version


def test_model_ready_by_version_or_alias(served, v2):
    assert v2.get("/v2/models/grey/versions/stable/ready").json() == {"name": "grey", "ready": True}
    assert v2.get("/v2/models/grey/ready").status_code == 200
    response = v2.get("/v2/models/grey/versions/v3/ready")
    assert_error(response, 503, "grey:v3 is not in the model store")
    assert response.headers["retry-after"] == "30"
    served.runners["grey", "v2"].state = "loading"
    v2.portal.call(served.probe)
    assert_error(v2.get("/v2/models/grey/versions/v2/ready"), 503, "grey:v2 is not ready", "loading")


@pytest.mark.parametrize(
    "path,fragments",
    [
        ("/v2/models/nope", ["unknown model 'nope'"]),
        ("/v2/models/grey/versions/v9/ready", ["unknown version 'v9' of model grey", "v1, v2, v3, stable"]),
        ("/v2/models/grey/versions/V1", ["no such version"]),
    ],
)
def test_unknown_models_and_versions_are_404(v2, path, fragments):
    assert_error(v2.get(path), 404, *fragments)


def test_repository_index(v2):
    body = v2.post("/v2/repository/index").json()  # tritonclient sends an empty body
    assert {(e["name"], e["version"]): e["state"] for e in body} == {
        ("grey", "v1"): "READY",
        ("grey", "v2"): "READY",
        ("grey", "v3"): "UNAVAILABLE",
        ("colour", "v1"): "READY",
        ("vector", "v1"): "READY",
    }
    assert next(e for e in body if e["version"] == "v3")["reason"] == "grey:v3 is not in the model store"
    assert len(v2.post("/v2/repository/index", json={"ready": True}).json()) == 4
    assert_error(v2.post("/v2/repository/index", json={"ready": "yes"}), 400, "ready")
    assert_error(v2.post("/v2/repository/index", content=b"{", headers={"content-type": "application/json"}), 400)


# --- inference --------------------------------------------------------------------------------------------


def test_json_tensors_flat_or_shaped_with_the_id_echoed(served, v2):
    body = {"id": "42", "inputs": [{"name": "input", "shape": [1, 28, 28, 1], "datatype": "UINT8", "data": GREY.reshape(-1).tolist()}]}
    answer = v2.post("/v2/models/grey/versions/v1/infer", json=body).json()
    assert answer == {
        "model_name": "grey",
        "model_version": "v1",
        "id": "42",
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [1, 10], "data": probabilities(0, 10)}],
    }
    assert served.runners["grey", "v1"].calls[-1].dtype == np.uint8  # UINT8 stays compact on its way to the runner
    body["inputs"][0] |= {"shape": [1, 28, 28], "data": GREY[..., 0].tolist()}  # grey without its channel axis, nested
    assert v2.post("/v2/models/grey/infer", json=body).json()["outputs"][0]["data"] == probabilities(0, 10)
    assert served.runners["grey", "v1"].calls[-1].shape == (1, 28, 28, 1)


@pytest.mark.parametrize("datatype", ["UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"])
@pytest.mark.parametrize("binary", [True, False])
def test_every_numeric_datatype_is_converted(served, v2, datatype, binary):
    from tritonclient.utils import triton_to_np_dtype

    array = np.full((1, 28, 28, 1), 31).astype(triton_to_np_dtype(datatype))
    result = infer(v2, "/v2/models/grey/versions/v2/infer", *triton_request(array, binary=binary))
    np.testing.assert_allclose(result.as_numpy("probabilities"), [probabilities(1, 10)], rtol=1e-6)
    sent = served.runners["grey", "v2"].calls[-1]
    assert sent.dtype == (np.uint8 if datatype == "UINT8" else np.float32) and float(sent.max()) == 31.0


def test_binary_inputs_and_outputs_as_tritonclient_sends_and_reads_them(served, v2):
    """tritonclient's defaults: binary inputs, and without requested outputs, binary_data_output."""
    body, headers = triton_request(COLOUR)
    assert "inference-header-content-length" in {k.lower() for k in headers}
    response = v2.post("/v2/models/colour/infer", content=body, headers=headers)
    assert response.headers["content-type"] == "application/octet-stream"
    result = InferResult.from_response_body(response.content, header_length=response.headers["inference-header-content-length"])
    np.testing.assert_allclose(result.as_numpy("probabilities"), [probabilities(1, 2)] * 2)
    assert result.get_output("probabilities") == {"name": "probabilities", "datatype": "FP32", "shape": [2, 2], "parameters": {"binary_data_size": 16}}
    assert served.runners["colour", "v1"].calls[-1].shape == (2, 32, 32, 3)
    result = infer(v2, "/v2/models/vector/infer", *triton_request(VECTOR, outputs=[InferRequestedOutput("probabilities", binary_data=False)], request_id="7"))
    assert result.get_response()["id"] == "7" and result.get_output("probabilities")["data"] == [*probabilities(1, 3), *probabilities(0, 3)]


@pytest.mark.parametrize("binary", [True, False])
def test_classification_extension(v2, binary):
    outputs = [InferRequestedOutput("probabilities", binary_data=binary, class_count=2)]
    result = infer(v2, "/v2/models/vector/infer", *triton_request(VECTOR, outputs=outputs))
    expected = [["0.9:1:y", "0.05:0:x"], ["0.9:0:x", "0.05:1:y"]]  # "<score>:<index>:<label>", best first
    assert result.as_numpy("probabilities").tolist() == ([[s.encode() for s in row] for row in expected] if binary else expected)
    assert result.get_output("probabilities")["datatype"] == "BYTES" and result.get_output("probabilities")["shape"] == [2, 2]
    outputs = [InferRequestedOutput("probabilities", binary_data=False, class_count=99)]  # at most every class
    assert infer(v2, "/v2/models/colour/infer", *triton_request(COLOUR, outputs=outputs)).get_output("probabilities")["shape"] == [2, 2]


def v2_body(**changes) -> dict:
    body = {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": VECTOR.reshape(-1).tolist()}]}
    body["inputs"][0].update(changes.pop("input", {}))
    return body | changes


@pytest.mark.parametrize(
    "body,fragments",
    [
        (v2_body(input={"name": "x"}), ["unexpected input 'x' for model vector", "its input is 'input'"]),
        (v2_body(input={"datatype": "BOOL"}), ["datatype BOOL is not accepted", "UINT8"]),
        (v2_body(input={"datatype": "BF16"}), ["datatype BF16"]),
        (v2_body(input={"datatype": "FLOAT"}), ["datatype FLOAT is not accepted"]),
        (v2_body(input={"shape": [3, 4]}), ["8 values in shape [8] do not fill shape [3, 4]"]),
        (v2_body(input={"shape": [2, -4]}), ["shape: expected a list of non-negative integers"]),
        (v2_body(input={"shape": [2, 4], "data": [[1, 2, 3, 4, 5, 6, 7, 8]]}), ["do not fill shape [2, 4]"]),
        (v2_body(input={"shape": [2, 2, 2]}), ["expected 4 per example, got 2x2"]),
        (v2_body(input={"datatype": "INT32"}), ["INT32 values must be whole numbers"]),
        (v2_body(input={"datatype": "UINT8", "data": [1, 2, 3, 4, 5, 6, 7, 256]}), ["UINT8 values must lie in 0..255"]),
        (v2_body(input={"data": [True] * 8}), ["expected numbers only"]),
        (v2_body(input={"parameters": {"binary_data_size": 32}}), ["no binary part"]),
        (v2_body(input={"parameters": {"shared_memory_region": "r"}}), ["shared memory is not supported"]),
        (v2_body(inputs=[]), ["a list of one input"]),
        (v2_body(id=42), ["id: expecting a string"]),
        (v2_body(parameters={"binary_data_output": "yes"}), ["binary_data_output: expecting true or false"]),
        (v2_body(parameters=[]), ["parameters: expecting an object"]),
        (v2_body(outputs=[{"name": "scores"}]), ["unexpected output 'scores'", "outputs: probabilities, ood_score, abstained"]),
        (v2_body(outputs=[{"name": "probabilities", "parameters": {"classification": -1}}]), ["classification: expecting a number of classes"]),
        (v2_body(outputs=[{"name": "probabilities", "parameters": {"binary_data": 1}}]), ["binary_data: expecting true or false"]),
    ],
)
def test_invalid_requests_are_400_naming_the_field(v2, body, fragments):
    assert_error(v2.post("/v2/models/vector/infer", json=body), 400, *fragments)


def test_values_outside_the_cards_range_are_400(v2):
    body = {"inputs": [{"name": "input", "shape": [1, 28, 28], "datatype": "FP32", "data": [300.0] * 784}]}
    assert_error(v2.post("/v2/models/grey/infer", json=body), 400, "inputs[0]", "0..255")


def test_limits_content_types_and_unavailable_versions(v2):
    body, headers = triton_request(np.zeros((9, 4), dtype=np.float32))
    assert_error(v2.post("/v2/models/vector/infer", content=body, headers=headers), 413, "9 examples exceed the limit of 8")
    assert_error(v2.post("/v2/models/vector/infer", content=b"{}", headers={"content-type": "multipart/form-data; boundary=x"}), 415, "binary tensor format")
    response = v2.post("/v2/models/grey/versions/v3/infer", json=v2_body())
    assert_error(response, 503, "grey:v3 is not in the model store")


# --- hostile binary requests: each a fast 400, memory flat -------------------------------------------------


def _binary(header: dict, data: bytes = b"", length: int | None = None) -> tuple[bytes, dict]:
    json_part = orjson.dumps(header)
    return json_part + data, {"Inference-Header-Content-Length": str(len(json_part) if length is None else length)}


def _input(shape, datatype="FP32", size=None) -> dict:
    return {"inputs": [{"name": "input", "shape": shape, "datatype": datatype, "parameters": {"binary_data_size": size}}]}


HOSTILE = {
    "header length beyond the body": (_binary(_input([1, 4], size=16), bytes(16), length=10**12), ["exceeds the body's"]),
    "header length not a number": (_binary(_input([1, 4], size=16), bytes(16), length=-1), ["Inference-Header-Content-Length"]),
    "header length inside the JSON": (_binary(_input([1, 4], size=16), bytes(16), length=20), ["invalid JSON"]),
    "element count disagrees with the bytes": (_binary(_input([2, 4], size=16), bytes(16)), ["shape [2, 4] of float32 needs 32 bytes, got 16"]),
    "a shape of 2**40 elements": (_binary(_input([2**38, 4], size=16), bytes(16)), ["needs 4398046511104 bytes, got 16"]),
    "a size that disagrees with the body": (_binary(_input([1, 4], size=2**40), bytes(16)), ["binary_data_size is 1099511627776 bytes, but 16 bytes follow"]),
    "an unknown datatype": (_binary(_input([1, 4], datatype="FP128", size=16), bytes(16)), ["datatype FP128 is not accepted"]),
    "bytes no input declares": (_binary(v2_body(), bytes(16)), ["16 bytes follow the JSON, but no input declares binary_data_size"]),
}


@pytest.mark.parametrize("request_,fragments", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_binary_requests_are_fast_400s_with_flat_memory(v2, request_, fragments):
    body, headers = request_
    tracemalloc.start()
    started = time.perf_counter()
    response = v2.post("/v2/models/vector/infer", content=body, headers=headers)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert_error(response, 400, *fragments)
    assert elapsed < 0.5 and peak < 2_000_000, (elapsed, peak)


# --- metrics ------------------------------------------------------------------------------------------------


def test_requests_are_counted_with_the_protocol_and_the_version_they_resolved_to(v2):
    labels = {"model": "grey", "protocol": "v2", "endpoint": "infer"}
    before = request_count(version="v1", status="200", **labels)
    body, headers = triton_request(GREY)
    v2.post("/v2/models/grey/infer", content=body, headers=headers)  # the default version: the first, v1
    v2.post("/v2/models/grey/versions/stable/infer", content=body, headers=headers)
    assert request_count(version="v1", status="200", **labels) == before + 2


# --- property: whatever the JSON, never a 5xx -------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
DATATYPES = st.sampled_from(["FP32", "FP64", "FP16", "UINT8", "INT8", "INT32", "INT64", "UINT64", "BOOL", "BYTES", "BF16"]) | JSON_VALUES
SHAPES = st.lists(st.integers(-2, 6), max_size=4) | JSON_VALUES
DATA = (
    st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(2**70), 2**70), max_size=40)
    | st.lists(st.lists(st.integers(0, 300), max_size=4), max_size=10)
    | JSON_VALUES
)
PARAMETERS = (
    st.fixed_dictionaries(
        {},
        optional={
            "binary_data_size": JSON_VALUES | st.integers(-5, 64),
            "classification": JSON_VALUES | st.integers(-2, 5),
            "binary_data": JSON_VALUES,
            "binary_data_output": JSON_VALUES,
        },
    )
    | JSON_VALUES
)
TENSORS = st.fixed_dictionaries({"name": st.sampled_from(["input", "x"]) | JSON_VALUES}, optional={"shape": SHAPES, "datatype": DATATYPES, "data": DATA, "parameters": PARAMETERS})
BODIES = (
    st.fixed_dictionaries(
        {},
        optional={
            "id": JSON_VALUES,
            "inputs": st.lists(TENSORS, max_size=2) | JSON_VALUES,
            "parameters": PARAMETERS,
            "outputs": st.lists(st.fixed_dictionaries({"name": st.sampled_from(["probabilities", "y"]) | JSON_VALUES}, optional={"parameters": PARAMETERS}), max_size=2)
            | JSON_VALUES,
        },
    )
    | JSON_VALUES
)


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=BODIES, model=st.sampled_from(["vector", "grey", "colour"]), binary_tail=st.binary(max_size=40))
def test_any_json_body_is_answered_without_a_server_error(v2, body, model, binary_tail):
    payload = json.dumps(body).encode()  # the standard library's: integers beyond 64 bits, NaN and Infinity as clients may send them
    headers = {"content-type": "application/json"}
    if binary_tail:
        payload, headers = payload + binary_tail, {"Inference-Header-Content-Length": str(len(payload))}
    response = v2.post(f"/v2/models/{model}/infer", content=payload, headers=headers)
    assert response.status_code in (200, 400, 413, 415), (response.status_code, response.text)
    if response.status_code != 200:
        assert list(response.json()) == ["error"]
