"""The gRPC services in-process: the real grpc.aio server of serving/protocols/grpc over the conftest's data
plane with fake runners, called by tritonclient.grpc (v2), the health stub, and raw channels with our own
message classes (TF Serving: its stock stubs are in tests/e2e/test_grpc.py, they import TensorFlow).

Every answer must equal the REST routes' for the same inputs, every error must carry its gRPC status, and
nothing a client sends may produce INTERNAL or UNKNOWN."""

from __future__ import annotations

import asyncio
import json
import socket
import threading

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient
from tritonclient.utils import InferenceServerException

from serving.protocols.grpc import messages
from serving.protocols.grpc import server as grpc_server
from tests.unit.serving.conftest import FakeRunner, InProcess, make_card, request_count, write_config

GREY = np.full((2, 28, 28, 1), 31, dtype=np.uint8)  # class 1 ("b") of ten
CLIENT_ERRORS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
}
TOKEN = "a-token-of-sixteen-chars"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Shifted(FakeRunner):
    """The fake runner's answer, one class further."""

    async def predict(self, values: np.ndarray) -> np.ndarray:
        return np.roll(await super().predict(values), 1, axis=1)


class Served:
    """The conftest's models (grey v1..v3 with a missing v3, colour, vector) and a split alias, on REST and gRPC."""

    def __init__(self, tmp_path, token: bool = False, delay: float = 0.0, limits: dict | None = None):
        aliases = {"stable": "v1", "split": {"v1": 50, "v2": 50}}
        security = {"security": {"api_token_env": "GRPC_TEST_TOKEN"}} if token else {}
        self.config = write_config(
            tmp_path,
            {"grey": {"versions": ["v1", "v2", "v3"], "aliases": aliases}, "vector": {"versions": ["v1"]}},
            grpc={"host": "127.0.0.1", "port": free_port()},
            live={"admin_without_token": False},
            **security,
        )
        if limits:
            self.config = self.config.model_copy(update={"limits": self.config.limits.model_copy(update=limits)})
        cards = {
            ("grey", "v1"): make_card("grey", "v1", labels=tuple("abcdefghij")),
            ("grey", "v2"): make_card("grey", "v2", labels=tuple("abcdefghij")),
            ("grey", "v3"): None,
            ("vector", "v1"): make_card("vector", "v1", shape=(4,), labels=("x", "y", "z"), tensor=True),
        }
        runners = {key: FakeRunner(card.classes if card else 2, delay=delay) for key, card in cards.items()}
        runners["grey", "v2"] = Shifted(10, delay=delay)  # v2 answers otherwise than v1, so a test can tell which answered
        self.rest = InProcess(self.config, cards, runners)
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.server = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        self.target = f"127.0.0.1:{self.config.grpc.port}"
        self.channel = grpc.insecure_channel(self.target)

    async def _start(self):
        await self.rest.probe()
        return await grpc_server.start(self.rest.plane, self.config)

    def call(self, service_method: str, request, metadata=None):
        """A unary call with our message classes; the response type is found from the descriptor."""
        service, method = service_method.rsplit("/", 1)
        output = messages.service(service).methods_by_name[method].output_type.full_name
        stub = self.channel.unary_unary(f"/{service}/{method}", request_serializer=lambda m: m.SerializeToString(), response_deserializer=messages.message(output).FromString)
        return stub.with_call(request, metadata=metadata, timeout=10)

    def raw(self, service_method: str, data: bytes):
        stub = self.channel.unary_unary(service_method, request_serializer=None, response_deserializer=None)
        return stub(data, timeout=10)

    def close(self) -> None:
        self.channel.close()
        asyncio.run_coroutine_threadsafe(self.server.stop(None), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    served = Served(tmp_path_factory.mktemp("grpc"))
    yield served
    served.close()


@pytest.fixture(scope="module")
def rest(served):
    with TestClient(served.rest.app) as client:
        yield client


@pytest.fixture(scope="module")
def triton_client(served):
    client = triton.InferenceServerClient(served.target)
    yield client
    client.close()


def triton_input(array: np.ndarray, datatype: str = "UINT8") -> triton.InferInput:
    tensor = triton.InferInput("input", list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    return tensor


def rest_v2(rest, path: str, array: np.ndarray, datatype: str = "UINT8", outputs: list | None = None, headers: dict | None = None) -> dict:
    body = {"inputs": [{"name": "input", "shape": list(array.shape), "datatype": datatype, "data": array.reshape(-1).tolist()}]}
    if outputs is not None:
        body["outputs"] = outputs
    response = rest.post(path, content=json.dumps(body), headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()


# --- the Open Inference Protocol, with tritonclient.grpc --------------------------------------------------


def test_server_and_model_metadata_as_rest_answers_them(triton_client, rest):
    assert triton_client.is_server_live() and triton_client.is_server_ready()
    assert triton_client.get_server_metadata(as_json=True)["extensions"] == rest.get("/v2").json()["extensions"]
    for version in ("v1", "stable", ""):
        grpc_answer = triton_client.get_model_metadata("grey", version, as_json=True)
        rest_answer = rest.get(f"/v2/models/grey{'/versions/' + version if version else ''}").json()
        assert grpc_answer["versions"] == rest_answer["versions"]
        for kind in ("inputs", "outputs"):
            assert [(t["name"], t["datatype"], [int(s) for s in t["shape"]]) for t in grpc_answer[kind]] == [(t["name"], t["datatype"], t["shape"]) for t in rest_answer[kind]]
    assert triton_client.is_model_ready("grey", "v2") and not triton_client.is_model_ready("grey", "v3")


def test_infer_with_raw_contents_equals_rest(triton_client, rest):
    for version in ("v1", "v2", "stable"):
        result = triton_client.infer("grey", [triton_input(GREY)], model_version=version)
        expected = rest_v2(rest, f"/v2/models/grey/versions/{version}/infer", GREY)
        assert result.get_response().model_version == expected["model_version"]
        assert np.array_equal(result.as_numpy("probabilities").reshape(-1), np.asarray(expected["outputs"][0]["data"], np.float32))


def test_classification_extension_equals_rest(triton_client, rest):
    result = triton_client.infer("grey", [triton_input(GREY)], outputs=[triton.InferRequestedOutput("probabilities", class_count=3)])
    expected = rest_v2(rest, "/v2/models/grey/infer", GREY, outputs=[{"name": "probabilities", "parameters": {"classification": 3}}])
    assert [text.decode() for text in result.as_numpy("probabilities").reshape(-1)] == expected["outputs"][0]["data"]


def test_repository_index_equals_rest(triton_client, rest):
    index = triton_client.get_model_repository_index(as_json=True)["models"]
    assert [(m["name"], m["version"], m["state"]) for m in index] == [(m["name"], m["version"], m["state"]) for m in rest.post("/v2/repository/index").json()]


def test_a_split_is_sticky_per_traffic_key_on_grpc_and_rest_alike(triton_client, rest):
    """The same key answers with the same version whatever the protocol; different keys reach both versions."""
    seen = set()
    for key in map(str, range(24)):
        result = triton_client.infer("grey", [triton_input(GREY)], model_version="split", headers={"x-traffic-key": key})
        answered = result.get_response().model_version
        assert (
            rest.post(
                "/v2/models/grey/versions/split/infer",
                content=json.dumps({"inputs": [{"name": "input", "shape": [2, 28, 28, 1], "datatype": "UINT8", "data": GREY.reshape(-1).tolist()}]}),
                headers={"X-Traffic-Key": key},
            ).headers["x-model-version"]
            == answered
        )
        seen.add(answered)
    assert seen == {"v1", "v2"}


def test_grpc_calls_are_counted_by_protocol_and_method(triton_client):
    before = request_count(protocol="grpc-v2", endpoint="ModelInfer", model="grey", version="v1", status="OK")
    triton_client.infer("grey", [triton_input(GREY)], model_version="v1")
    assert request_count(protocol="grpc-v2", endpoint="ModelInfer", model="grey", version="v1", status="OK") == before + 1


@pytest.mark.parametrize(
    "call, code, fragment",
    [
        (lambda c: c.infer("nope", [triton_input(GREY)]), "StatusCode.NOT_FOUND", "unknown model 'nope'"),
        (lambda c: c.infer("grey", [triton_input(GREY)], model_version="v9"), "StatusCode.NOT_FOUND", "unknown version 'v9'"),
        (lambda c: c.infer("grey", [triton_input(GREY)], model_version="v3"), "StatusCode.UNAVAILABLE", "not in the model store"),
        (lambda c: c.infer("grey", [triton_input(np.full((2, 5), 1, np.uint8))]), "StatusCode.INVALID_ARGUMENT", "expected 28x28"),
        (lambda c: c.infer("grey", [triton_input(np.full((9, 28, 28), 1, np.uint8))]), "StatusCode.RESOURCE_EXHAUSTED", "exceed the limit of 8"),
        (lambda c: c.infer("grey", [triton_input(np.full((1, 28, 28), 300, np.int32), "INT32")]), "StatusCode.INVALID_ARGUMENT", "0..255"),
        (
            lambda c: c.infer("grey", [triton_input(np.full((1, 28, 28), 1, np.uint8))], outputs=[triton.InferRequestedOutput("logits")]),
            "StatusCode.INVALID_ARGUMENT",
            "unexpected output 'logits'",
        ),
        (lambda c: c.load_model("grey"), "StatusCode.PERMISSION_DENIED", "admin operations are off"),
    ],
)
def test_errors_carry_their_grpc_status_and_the_message(triton_client, call, code, fragment):
    with pytest.raises(InferenceServerException) as raised:
        call(triton_client)
    assert raised.value.status() == code, raised.value
    assert fragment in raised.value.message()


def test_shapes_that_lie_about_raw_contents_are_refused_before_any_allocation(served):
    request = messages.message("inference.ModelInferRequest")(model_name="grey")
    request.inputs.add(name="input", datatype="UINT8", shape=[1024, 1024, 1024, 1024])
    request.raw_input_contents.append(bytes(16))
    with pytest.raises(grpc.RpcError) as raised:
        served.call("inference.GRPCInferenceService/ModelInfer", request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "needs 1099511627776 bytes, got 16" in raised.value.details()


@pytest.mark.parametrize("shape, raw, fragment", [([1] * 65, bytes(1), "65 dimensions; at most 32"), ([0, 2**31, 2**31], b"", "too large to describe")])
def test_shapes_numpy_cannot_describe_are_invalid_argument(served, shape, raw, fragment):
    request = messages.message("inference.ModelInferRequest")(model_name="grey")
    request.inputs.add(name="input", datatype="UINT16", shape=shape)
    request.raw_input_contents.append(raw)
    with pytest.raises(grpc.RpcError) as raised:
        served.call("inference.GRPCInferenceService/ModelInfer", request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and fragment in raised.value.details()


def test_health_check(served):
    stub = health_pb2_grpc.HealthStub(served.channel)
    assert stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as raised:
        stub.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=10)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


# --- TensorFlow Serving ----------------------------------------------------------------------------------


def predict_request(spec: dict, array: np.ndarray = GREY[:1]):
    request = messages.message("tensorflow.serving.PredictRequest")()
    request.model_spec.name = spec["name"]
    if "version" in spec:
        request.model_spec.version.value = spec["version"]
    if "label" in spec:
        request.model_spec.version_label = spec["label"]
    tensor = request.inputs["input"]
    tensor.dtype = 4  # DT_UINT8
    for size in array.shape:
        tensor.tensor_shape.dim.add(size=size)
    tensor.tensor_content = array.tobytes()
    return request


@pytest.mark.parametrize(
    "spec, rest_path",
    [
        ({"name": "grey", "version": 2}, "/v1/models/grey/versions/2:predict"),
        ({"name": "grey", "label": "stable"}, "/v1/models/grey/labels/stable:predict"),
        ({"name": "grey"}, "/v1/models/grey:predict"),
    ],
)
def test_tfserving_predict_equals_rest(served, rest, spec, rest_path):
    response, call = served.call("tensorflow.serving.PredictionService/Predict", predict_request(spec))
    output = response.outputs["probabilities"]
    got = np.frombuffer(output.tensor_content, "<f4").reshape([d.size for d in output.tensor_shape.dim])
    expected = rest.post(rest_path, json={"instances": GREY[:1].tolist()})
    assert np.allclose(got, expected.json()["predictions"], atol=1e-6)
    assert dict(call.trailing_metadata())["x-model-version"] == expected.headers["x-model-version"]
    assert f"v{response.model_spec.version.value}" == expected.headers["x-model-version"]


def test_a_tfserving_label_naming_a_weighted_split_answers_on_both_protocols(served, rest):
    """The bug the redesign was for: REST answered 500 for a label that names a split."""
    for key in map(str, range(16)):
        response, call = served.call("tensorflow.serving.PredictionService/Predict", predict_request({"name": "grey", "label": "split"}), metadata=[("x-traffic-key", key)])
        via_rest = rest.post("/v1/models/grey/labels/split:predict", json={"instances": GREY[:1].tolist()}, headers={"X-Traffic-Key": key})
        assert via_rest.status_code == 200, via_rest.text
        assert dict(call.trailing_metadata())["x-model-version"] == via_rest.headers["x-model-version"]


def test_tfserving_metadata_and_status_equal_rest(served, rest):
    from google.protobuf import json_format

    request = messages.message("tensorflow.serving.GetModelMetadataRequest")(metadata_field=["signature_def"])
    request.model_spec.name, request.model_spec.version.value = "grey", 1
    response, _ = served.call("tensorflow.serving.PredictionService/GetModelMetadata", request)
    signatures = messages.message("tensorflow.serving.SignatureDefMap")()
    assert response.metadata["signature_def"].Unpack(signatures)
    expected = rest.get("/v1/models/grey/versions/1/metadata").json()["metadata"]["signature_def"]
    assert signatures == json_format.ParseDict(expected, messages.message("tensorflow.serving.SignatureDefMap")())  # the REST JSON, as a message
    status_request = messages.message("tensorflow.serving.GetModelStatusRequest")()
    status_request.model_spec.name = "grey"
    status, _ = served.call("tensorflow.serving.ModelService/GetModelStatus", status_request)
    listed = json_format.MessageToDict(status, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    expected_status = rest.get("/v1/models/grey").json()["model_version_status"]
    assert [(s["version"], s["state"]) for s in listed["model_version_status"]] == [(s["version"], s["state"]) for s in expected_status]


def test_tfserving_classify_equals_rest(served, rest):
    request = messages.message("tensorflow.serving.ClassificationRequest")()
    request.model_spec.name = "grey"
    example = request.input.example_list.examples.add()
    example.features.feature["input"].float_list.value.extend([31.0] * 784)
    response, _ = served.call("tensorflow.serving.PredictionService/Classify", request)
    got = [[(c.label, round(c.score, 6)) for c in row.classes] for row in response.result.classifications]
    expected = rest.post("/v1/models/grey:classify", json={"examples": [{"input": [31] * 784}]}).json()["results"]
    assert got == [[(label, round(score, 6)) for label, score in row] for row in expected]


# --- hostile input: never INTERNAL or UNKNOWN ----------------------------------------------------------------


@pytest.mark.parametrize(
    "method",
    [
        "/inference.GRPCInferenceService/ModelInfer",
        "/tensorflow.serving.PredictionService/Predict",
        "/tensorflow.serving.PredictionService/Classify",
        "/inference.GRPCInferenceService/ModelMetadata",
    ],
)
@pytest.mark.parametrize("data", [b"\xff\xff\xff", b"\x0a\xff\xff\xff\xff\x0f", bytes(range(256)), b"\x12\x04grey"])
def test_garbage_bytes_are_client_errors(served, method, data):
    try:
        served.raw(method, data)
    except grpc.RpcError as error:
        assert error.code() in CLIENT_ERRORS, (error.code(), error.details())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(["grey", "vector", "nope", "", "GREY", "a" * 80]),
    version=st.sampled_from(["", "v1", "v3", "split", "stable", "v9", "../x"]),
    datatype=st.sampled_from(["UINT8", "FP32", "INT64", "FP16", "BYTES", "BOOL", "BF16", "", "uint8"]),
    shape=st.lists(st.integers(min_value=0, max_value=2**40), max_size=5),
    raw=st.one_of(st.none(), st.binary(max_size=4096)),
    fp32=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=40),
    inputs=st.integers(min_value=0, max_value=2),
)
def test_any_model_infer_request_is_answered_or_refused_as_a_client_error(served, name, version, datatype, shape, raw, fp32, inputs):
    request = messages.message("inference.ModelInferRequest")(model_name=name, model_version=version)
    for i in range(inputs):
        tensor = request.inputs.add(name="input" if i == 0 else f"x{i}", datatype=datatype, shape=shape)
        tensor.contents.fp32_contents.extend(fp32)
        if raw is not None:
            request.raw_input_contents.append(raw)
    try:
        served.call("inference.GRPCInferenceService/ModelInfer", request)
    except grpc.RpcError as error:
        assert error.code() in CLIENT_ERRORS, (error.code(), error.details())


def test_the_token_is_required_in_metadata_except_for_health(tmp_path, monkeypatch):
    monkeypatch.setenv("GRPC_TEST_TOKEN", TOKEN)
    served = Served(tmp_path, token=True)
    try:
        request = messages.message("inference.ServerMetadataRequest")()
        with pytest.raises(grpc.RpcError) as raised:
            served.call("inference.GRPCInferenceService/ServerMetadata", request)
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as raised:
            served.call("inference.GRPCInferenceService/ServerMetadata", request, metadata=[("authorization", "Bearer wrong-token-wrong-token")])
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED and raised.value.details() == "invalid API token"
        response, _ = served.call("inference.GRPCInferenceService/ServerMetadata", request, metadata=[("authorization", f"Bearer {TOKEN}")])
        assert response.name == "model-server"
        health = health_pb2_grpc.HealthStub(served.channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        served.close()


def test_calls_past_the_limit_in_flight_are_refused_at_once(tmp_path):
    """limits.max_requests_in_flight bounds the calls in flight (grpc's maximum_concurrent_rpcs): more are RESOURCE_EXHAUSTED, not queued."""
    served = Served(tmp_path, delay=0.5, limits={"max_requests_in_flight": 2})
    try:
        request = messages.message("inference.ModelInferRequest")(model_name="grey", model_version="v1")
        request.inputs.add(name="input", datatype="UINT8", shape=[1, 28, 28, 1])
        request.raw_input_contents.append(bytes(784))
        stub = served.channel.unary_unary("/inference.GRPCInferenceService/ModelInfer", request_serializer=lambda m: m.SerializeToString(), response_deserializer=bytes)
        futures = [stub.future(request, timeout=10) for _ in range(8)]
        codes = []
        for future in futures:
            try:
                future.result()
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                codes.append(error.code())
        assert codes.count(grpc.StatusCode.OK) >= 1 and codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= 4, codes
        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, codes
    finally:
        served.close()


# --- request ids ----------------------------------------------------------------------------------------


def test_every_grpc_answer_carries_a_request_id_the_callers_when_well_formed(served):
    request = predict_request({"name": "grey", "version": 1})
    _, call = served.call("tensorflow.serving.PredictionService/Predict", request, metadata=[("x-request-id", "order-7:try-1")])
    assert dict(call.trailing_metadata())["x-request-id"] == "order-7:try-1"
    _, call = served.call("tensorflow.serving.PredictionService/Predict", request, metadata=[("x-request-id", "no spaces allowed")])
    generated = dict(call.trailing_metadata())["x-request-id"]
    assert len(generated) == 32 and int(generated, 16) >= 0
    with pytest.raises(grpc.RpcError) as refused:  # an error carries it too
        served.call("tensorflow.serving.PredictionService/Predict", predict_request({"name": "nothing"}), metadata=[("x-request-id", "failed-1")])
    assert dict(refused.value.trailing_metadata())["x-request-id"] == "failed-1"


def test_a_v2_grpc_answer_echoes_the_request_id_field_or_gives_the_call_s(served):
    infer = messages.message("inference.ModelInferRequest")
    request = infer(model_name="grey", model_version="v1", id="client-id")
    tensor = request.inputs.add(name="input", datatype="UINT8", shape=[1, 28, 28])
    request.raw_input_contents.append(GREY[:1].tobytes())
    assert tensor.name == "input"
    response, _ = served.call("inference.GRPCInferenceService/ModelInfer", request)
    assert response.id == "client-id"
    request.id = ""
    response, call = served.call("inference.GRPCInferenceService/ModelInfer", request, metadata=[("x-request-id", "from-metadata")])
    assert response.id == "from-metadata" == dict(call.trailing_metadata())["x-request-id"]
