"""gRPC from the image: the container serves the Open Inference Protocol, TF Serving's services and health
checks on its gRPC port (MODEL_SERVER_GRPC_PORT), with answers equal to its REST routes'."""

from __future__ import annotations

import grpc
import numpy as np
import requests
import tritonclient.grpc as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.conftest import CLOTHES
from training.recipes.clothes import load_data


def test_the_image_answers_grpc_as_it_answers_rest(container):
    images = load_data().x_test[:16].reshape(16, 28, 28, 1).astype(np.uint8)
    with grpc.insecure_channel(container.grpc) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=30)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    with triton.InferenceServerClient(container.grpc) as client:
        assert client.is_server_ready()
        tensor = triton.InferInput("input", list(images.shape), "UINT8")
        tensor.set_data_from_numpy(images)
        result = client.infer(CLOTHES, [tensor], model_version="stable")
    rest = requests.post(f"{container.url}/models/{CLOTHES}/stable", data=images.tobytes(), headers={"content-type": "application/octet-stream"}, timeout=30)
    assert rest.status_code == 200, rest.text
    assert result.get_response().model_version == rest.headers["X-Model-Version"]
    np.testing.assert_allclose(result.as_numpy("probabilities"), np.asarray(rest.json()["result"], np.float32), rtol=0, atol=1e-6)
