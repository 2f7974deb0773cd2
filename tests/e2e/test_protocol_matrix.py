"""Every protocol x every way of naming a version, against one real `bentoml serve` of clothes v1 and v2.

Protocols: the course's REST route, TF Serving REST, v2 REST, BentoML's typed API (/classify), v2 gRPC
(tritonclient.grpc) and TF Serving gRPC (tensorflow-serving-api's stubs). Addressings: a version, an
alias, the default (TF Serving: the latest), a 50/50 split without a traffic key, the split with a
sticky key (the same key gets the same version, across protocols too), and an alias shadowed by v2.

Each cell checks that the answer is the probabilities of the version that answered (a direct call to
that version) and that the answering version is reported; the table goes to the session summary.
"""

from __future__ import annotations

import functools
import time
import uuid

import grpc
import numpy as np
import pytest
import requests
import tritonclient.grpc as triton

from serving.workers import PUBLISH_SECONDS
from tests.e2e.conftest import CLOTHES, Server, clothes, free_port, ready_server, report_figures, write_config

TIMEOUT = 60
ALIASES = {"stable": "v1", "split": {"v1": 50, "v2": 50}, "shadowed": "v1"}
SPLIT_CALLS = 40
KEYS = [f"user-{i}" for i in range(12)]
SHADOW_CALLS = 4
PROTOCOLS = ["course REST", "TF Serving REST", "v2 REST", "typed API", "v2 gRPC", "TF Serving gRPC"]
ADDRESSINGS = ["version", "alias", "default", "split", "sticky split", "shadowed alias"]
TF = ("TF Serving REST", "TF Serving gRPC")
RESULTS: dict[tuple[str, str], str] = {}
STICKY: dict[str, tuple[str, str]] = {}  # key -> (version, the protocol that first saw it)


@pytest.fixture(scope="module")
def srv(trained_versions, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("matrix")
    config = write_config(tmp / "configuration.yaml", {CLOTHES: clothes(["v1", "v2"], ALIASES)}, live={"admin_without_token": True})
    with ready_server(config, free_port(), tmp / "serve.log") as server:
        shadow = requests.put(f"{server.url}/models/{CLOTHES}/shadow", json={"alias": "shadowed", "candidate": "v2", "share": 1.0}, timeout=TIMEOUT)
        assert shadow.status_code == 200, shadow.text
        yield server


@pytest.fixture(scope="module", autouse=True)
def table():
    yield
    if not RESULTS:
        return
    width = max(len(p) for p in PROTOCOLS)
    lines = [
        "protocol x addressing matrix (clothes; stable->v1, split v1:50/v2:50, shadowed->v1 with shadow v2; cells: versions that answered)",
        f"  {'':{width}}  " + "  ".join(f"{a:17}" for a in ADDRESSINGS),
    ]
    for protocol in PROTOCOLS:
        lines.append(f"  {protocol:{width}}  " + "  ".join(f"{RESULTS.get((protocol, a), '-'):17}" for a in ADDRESSINGS))
    report_figures("\n" + "\n".join(lines))


@pytest.fixture(scope="module")
def triton_client(srv):
    with triton.InferenceServerClient(srv.grpc) as client:
        yield client


@pytest.fixture(scope="module")
def tf_stub(srv):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(srv.grpc) as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


@functools.cache
def batch() -> np.ndarray:
    from training.recipes.clothes import load_data

    return load_data(allow_download=False).x_test[100:103].astype(np.uint8)  # 3 x 28 x 28


@functools.cache
def direct(url: str, version: str) -> np.ndarray:
    """The probabilities of one version, called directly by its name."""
    response = requests.post(f"{url}/models/{CLOTHES}/{version}", json={"images": batch().tolist()}, timeout=TIMEOUT)
    assert response.status_code == 200 and response.headers["X-Model-Version"] == version, response.text
    return np.asarray(response.json()["result"], dtype=np.float32)


def target_of(protocol: str, addressing: str) -> str | None:
    """How the request names the version: None is the default (TF Serving: the latest)."""
    if addressing == "version":
        return "v2"
    if addressing == "alias":
        return "stable"
    if addressing == "default":
        return None
    return "shadowed" if addressing == "shadowed alias" else "split"


def expected_versions(protocol: str, addressing: str) -> set[str]:
    if addressing in ("split", "sticky split"):
        return {"v1", "v2"}
    if addressing == "default":
        return {"v2"} if protocol in TF else {"v1"}  # TF Serving: the highest number; else default_version (stable -> v1)
    return {"v2"} if addressing == "version" else {"v1"}


def checked(response: requests.Response) -> requests.Response:
    assert response.status_code == 200, response.text
    assert response.headers["X-Request-Id"] == response.request.headers.get("X-Request-Id", response.headers["X-Request-Id"])
    return response


def call(srv: Server, clients, protocol: str, target: str | None, key: str | None = None) -> tuple[np.ndarray, str]:
    """One request of the batch: the probabilities and the version the answer reports. Each carries an
    id of its own (X-Request-Id, gRPC metadata), which its answer must carry back."""
    images = batch()
    rid = f"matrix-{uuid.uuid4().hex[:12]}"
    headers = {"X-Request-Id": rid, **({"X-Traffic-Key": key} if key else {})}
    metadata = (("x-request-id", rid), *((("x-traffic-key", key),) if key else ()))
    if protocol == "course REST":
        response = checked(requests.post(f"{srv.url}/models/{CLOTHES}/{target}", json={"images": images.tolist()}, headers=headers, timeout=TIMEOUT))
        assert response.json()["version"] == response.headers["X-Model-Version"]
        return np.asarray(response.json()["result"], np.float32), response.headers["X-Model-Version"]
    if protocol == "TF Serving REST":
        path = "" if target is None else f"/versions/{target[1:]}" if target in ("v1", "v2") else f"/labels/{target}"
        response = checked(requests.post(f"{srv.url}/v1/models/{CLOTHES}{path}:predict", json={"instances": images.tolist()}, headers=headers, timeout=TIMEOUT))
        return np.asarray(response.json()["predictions"], np.float32), response.headers["X-Model-Version"]
    if protocol == "v2 REST":
        path = "" if target is None else f"/versions/{target}"
        body = {"inputs": [{"name": "input", "shape": list(images.shape), "datatype": "UINT8", "data": images.reshape(-1).tolist()}]}
        response = checked(requests.post(f"{srv.url}/v2/models/{CLOTHES}{path}/infer", json=body, headers=headers, timeout=TIMEOUT))
        answer = response.json()
        assert answer["model_version"] == response.headers["X-Model-Version"] and answer["id"] == rid
        return np.asarray(answer["outputs"][0]["data"], np.float32).reshape(len(images), -1), response.headers["X-Model-Version"]
    if protocol == "typed API":
        body = {"images": images.tolist(), "model": CLOTHES, **({"version": target} if target else {})}
        response = checked(requests.post(f"{srv.url}/classify", json=body, headers=headers, timeout=TIMEOUT))
        assert response.headers["X-Model-Version"] == response.json()["version"]
        return np.asarray(response.json()["result"], np.float32), response.headers["X-Model-Version"]
    if protocol == "v2 gRPC":
        tensor = triton.InferInput("input", list(images.shape), "UINT8")
        tensor.set_data_from_numpy(images)
        result = clients["triton"].infer(CLOTHES, [tensor], model_version=target or "", headers=dict(metadata))
        assert result.get_response().id == rid
        return result.as_numpy("probabilities"), result.get_response().model_version
    if protocol == "TF Serving gRPC":
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        request.model_spec.name = CLOTHES
        if target in ("v1", "v2"):
            request.model_spec.version.value = int(target[1:])
        elif target:
            request.model_spec.version_label = target
        request.inputs["input"].CopyFrom(tf.make_tensor_proto(images))
        response, rpc = clients["tf"].Predict.with_call(request, metadata=metadata, timeout=TIMEOUT)
        version = dict(rpc.trailing_metadata())["x-model-version"]
        assert dict(rpc.trailing_metadata())["x-request-id"] == rid
        assert response.model_spec.version.value == int(version[1:])
        return tf.make_ndarray(response.outputs["probabilities"]), version
    raise AssertionError(protocol)


def shadow_requests(srv: Server) -> int:
    summary = requests.get(f"{srv.url}/models/{CLOTHES}/shadow", timeout=TIMEOUT).json()
    assert summary["shadow"] == {"alias": "shadowed", "candidate": "v2", "share": 1.0}, summary
    return summary["requests"]


CELLS = [(p, a) for p in PROTOCOLS for a in ADDRESSINGS if not (p == "course REST" and a == "default")]  # the course's route always names a version


@pytest.mark.parametrize("protocol,addressing", CELLS)
def test_cell(srv, triton_client, tf_stub, protocol, addressing):
    clients = {"triton": triton_client, "tf": tf_stub}
    target = target_of(protocol, addressing)
    expected = expected_versions(protocol, addressing)
    answered: list[str] = []

    def one(key: str | None = None) -> str:
        probabilities, version = call(srv, clients, protocol, target, key)
        assert version in expected, (version, expected)
        np.testing.assert_allclose(probabilities, direct(srv.url, version), rtol=0, atol=1e-6)
        answered.append(version)
        return version

    if addressing == "split":
        for _ in range(SPLIT_CALLS):
            one()
        share = answered.count("v1") / len(answered)
        RESULTS[protocol, addressing] = f"v1 {answered.count('v1')}/v2 {answered.count('v2')}"
        assert 0.2 <= share <= 0.8, answered
    elif addressing == "sticky split":
        by_key = {}
        RESULTS[protocol, addressing] = "NOT sticky"
        for key in KEYS:
            seen = {one(key) for _ in range(3)}
            assert len(seen) == 1, (key, seen)
            by_key[key] = seen.pop()
        RESULTS[protocol, addressing] = f"{len(KEYS)} keys sticky"
        assert set(by_key.values()) == {"v1", "v2"}, by_key
        for key, version in by_key.items():  # the same key, the same version, whatever the protocol
            first = STICKY.setdefault(key, (version, protocol))
            assert first[0] == version, f"{key}: {version} on {protocol}, {first[0]} on {first[1]}"
    elif addressing == "shadowed alias":
        before = shadow_requests(srv)
        for _ in range(SHADOW_CALLS):
            one()
        time.sleep(2 * PUBLISH_SECONDS)  # each entry worker publishes its counts for the others' summaries at most this late
        deadline = time.monotonic() + 10
        while shadow_requests(srv) < before + SHADOW_CALLS and time.monotonic() < deadline:
            time.sleep(0.1)
        grown = shadow_requests(srv) - before
        RESULTS[protocol, addressing] = f"v1, shadow +{grown}"
        assert grown >= SHADOW_CALLS, f"shadow comparisons grew by {grown} after {SHADOW_CALLS} calls through the shadowed alias"
    else:
        one()
        one()
        RESULTS[protocol, addressing] = "/".join(sorted(set(answered)))
    if addressing != "shadowed alias":
        assert set(answered) <= expected


def test_typed_api_reports_the_version_in_a_header(srv):
    response = checked(requests.post(f"{srv.url}/classify", json={"images": batch().tolist(), "model": CLOTHES, "version": "stable"}, timeout=TIMEOUT))
    assert response.headers.get("X-Model-Version") == response.json()["version"] == "v1"
