"""Named tensors sent to a running server through each protocol with its stock client, and the answers
compared with the model's own (tests/e2e/test_named_tensors.py, test_dynamic_shapes.py).

    >>> answer = served(srv, "onnx-pair", {"x": x, "k": k}, "v2 gRPC", ["sum", "best"])
    >>> worst_difference(local_answers, answer)    # strings and integers compared exactly
"""

from __future__ import annotations

import grpc
import numpy as np
import requests
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import np_to_triton_dtype

TIMEOUT = 30
PROTOCOLS = ("course REST", "v2 REST", "v2 gRPC", "TF Serving REST rows", "TF Serving REST columns", "TF Serving gRPC")


def served(srv, model: str, inputs: dict[str, np.ndarray], protocol: str, outputs: list[str]) -> dict[str, np.ndarray]:
    """``model``'s v1 answers to ``inputs`` (a batch per input name) through ``protocol``, by output name."""
    if protocol == "course REST":
        response = requests.post(f"{srv.url}/models/{model}/v1", json={"inputs": {name: value.tolist() for name, value in inputs.items()}}, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        result = response.json()["result"]
        return {name: np.asarray(value) for name, value in result.items()} if isinstance(result, dict) else {outputs[0]: np.asarray(result)}
    if protocol in ("v2 REST", "v2 gRPC"):
        client_module, address = (triton_http, srv.url.removeprefix("http://")) if protocol == "v2 REST" else (triton_grpc, srv.grpc)
        with client_module.InferenceServerClient(address) as client:
            tensors = []
            for name, value in inputs.items():
                tensor = client_module.InferInput(name, list(value.shape), np_to_triton_dtype(value.dtype))
                tensor.set_data_from_numpy(value)
                tensors.append(tensor)
            result = client.infer(model, tensors)
            return {name: result.as_numpy(name) for name in outputs}
    if protocol == "TF Serving REST rows":
        rows = [{name: value[i].tolist() for name, value in inputs.items()} for i in range(len(next(iter(inputs.values()))))]
        response = requests.post(f"{srv.url}/v1/models/{model}:predict", json={"instances": rows}, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        predictions = response.json()["predictions"]
        return {name: np.asarray([row[name] for row in predictions]) for name in outputs} if isinstance(predictions[0], dict) else {outputs[0]: np.asarray(predictions)}
    if protocol == "TF Serving REST columns":
        response = requests.post(f"{srv.url}/v1/models/{model}:predict", json={"inputs": {name: value.tolist() for name, value in inputs.items()}}, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        answer = response.json()["outputs"]
        return {name: np.asarray(value) for name, value in answer.items()} if isinstance(answer, dict) else {outputs[0]: np.asarray(answer)}
    if protocol == "TF Serving gRPC":
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        request = predict_pb2.PredictRequest()
        request.model_spec.name = model
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        with grpc.insecure_channel(srv.grpc) as channel:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=TIMEOUT)
        assert sorted(response.outputs) == sorted(outputs)
        return {name: tf.make_ndarray(response.outputs[name]) for name in outputs}
    raise AssertionError(protocol)


def worst_difference(expected: dict[str, np.ndarray], answer: dict[str, np.ndarray]) -> float:
    """The largest difference of the answer's floats from the expected ones, relative to their size (at
    least 1); strings (str or bytes) and integers must be equal."""
    worst = 0.0
    for output, value in expected.items():
        got = np.asarray(answer[output]).reshape(value.shape)
        if value.dtype == object:  # strings: exactly, whether a client gives them as str or bytes
            assert [v.decode() if isinstance(v, bytes) else v for v in got.flat] == list(value.flat), output
            continue
        if value.dtype.kind in "iub":
            assert got.tolist() == value.tolist(), output
            continue
        worst = max(worst, float(np.abs(got - value).max() / max(1.0, float(np.abs(value).max()))))
    return worst
