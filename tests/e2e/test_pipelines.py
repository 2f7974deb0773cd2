"""Pipelines through a real `bentoml serve`: a cascade and an ensemble of the e2e session's clothes
versions, as configuration.yaml ships them, answer what their steps answer combined (each step's
answer read from the server itself), through the course's route, OIP v2 REST and gRPC (the cascade's
``step`` output with tritonclient) and TF Serving REST; a step that stops serving makes the pipeline
answer 503 naming the step."""

from __future__ import annotations

import numpy as np
import pytest
import requests
import tritonclient.grpc as triton_grpc
import yaml

from tests.e2e.conftest import CLOTHES, ROOT, assert_error, clothes, free_port, ready_server, write_config
from training.recipes.clothes import load_data

TIMEOUT = 30
SHIPPED = yaml.safe_load((ROOT / "configuration.yaml").read_text())["pipelines"]


@pytest.fixture(scope="module")
def srv(trained_versions, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipelines")
    config = write_config(
        tmp / "configuration.yaml",
        {CLOTHES: clothes(trained_versions, {"stable": "v1"})},
        pipelines=SHIPPED,
        live={"admin_without_token": True},
    )
    with ready_server(config, free_port(), tmp / "serve.log") as server:
        yield server


@pytest.fixture(scope="module")
def images():
    data = load_data(allow_download=False)
    return data.x_test[:40].reshape(40, 28, 28).astype(np.uint8)


def answer(srv, path: str, images: np.ndarray) -> dict:
    """The course route's answer at /models/<path> (a model's version, or a pipeline, whose version is v1)."""
    response = requests.post(f"{srv.url}/models/{path if '/' in path else path + '/v1'}", json={"images": images.tolist()}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_cascade_answers_each_example_with_the_first_sure_step(srv, images):
    v1, v2 = (np.asarray(answer(srv, f"{CLOTHES}/{version}", images)["result"]) for version in ("v1", "v2"))
    threshold = SHIPPED["clothes-cascade"]["threshold"]
    sure = v1.max(axis=1) >= threshold
    body = answer(srv, "clothes-cascade", images)
    np.testing.assert_allclose(body["result"], np.where(sure[:, None], v1, v2), atol=1e-6)
    assert [p["step"] for p in body["predictions"]] == ["clothes:v1" if s else "clothes:v2" for s in sure]
    with triton_grpc.InferenceServerClient(srv.grpc) as client:
        tensor = triton_grpc.InferInput("input", [len(images), 28, 28], "UINT8")
        tensor.set_data_from_numpy(images)
        result = client.infer("clothes-cascade", [tensor])
    assert result.as_numpy("step").tolist() == [0 if s else 1 for s in sure]
    np.testing.assert_allclose(result.as_numpy("probabilities"), body["result"], atol=1e-6)
    ensemble = answer(srv, "clothes-ensemble", images)
    np.testing.assert_allclose(ensemble["result"], (v1 + v2) / 2, atol=1e-6)
    predictions = requests.post(f"{srv.url}/v1/models/clothes-ensemble:predict", json={"instances": images[:3].tolist()}, timeout=TIMEOUT).json()["predictions"]
    np.testing.assert_allclose(predictions, ((v1 + v2) / 2)[:3], atol=1e-6)
    card = requests.get(f"{srv.url}/models/clothes-cascade/v1", timeout=TIMEOUT).json()
    assert (
        card["architecture"] == "cascade(clothes:v1, clothes:v2)"
        and card["output"]["labels"] == requests.get(f"{srv.url}/models/{CLOTHES}/v1", timeout=TIMEOUT).json()["output"]["labels"]
    )
    assert card["metrics"] is None  # deploy/pipelines.json was measured with the shipped clothes versions, not this session's


def test_a_step_that_stops_serving_is_named_in_the_pipelines_answer(srv, images):
    repository = f"{srv.url}/v2/repository/models/{CLOTHES}"
    assert requests.post(f"{repository}/unload", json={"parameters": {"version": "v2"}}, timeout=TIMEOUT).status_code == 200
    try:
        assert_error(requests.post(f"{srv.url}/models/clothes-ensemble/v1", json={"images": images[:2].tolist()}, timeout=TIMEOUT), 503, "step clothes:v2 does not serve")
    finally:
        assert requests.post(f"{repository}/load", json={"parameters": {"version": "v2"}}, timeout=180).status_code == 200
