"""TensorFlow Serving's REST API and the Open Inference Protocol v2 against a real `bentoml serve`, with
real clients: tritonclient[http] for v2, and for TF Serving the request bodies its api_rest.md writes.

Every served model and version is driven from the server's own listing and cards, on real held-out
images of each model (its recipe's test split), and every protocol's answers equal the course
route's for the same images: the same probabilities, so the same accuracy. The SavedModel export
(`train_and_save.py export-tfserving`) is loaded with tf.saved_model.load and answers what the server
answers on the same images. The clients' outputs are printed in the measured figures (docs/protocols.md).
"""

from __future__ import annotations

import base64
import functools
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from PIL import Image
from tritonclient.utils import InferenceServerException

from tests.e2e.conftest import ROOT, assert_error, report_figures
from training import recipes

IMAGES = 256  # held-out examples per model
CHUNK = 64  # conftest.LIMITS' max_batch_images
TIMEOUT = 60


@pytest.fixture(scope="module")
def served(url) -> dict[str, dict]:
    """Each served model: its versions, aliases and card input and labels (GET /models, GET /models/<name>/<version>)."""
    models = {}
    for model in requests.get(f"{url}/models", timeout=TIMEOUT).json()["models"]:
        info = requests.get(f"{url}/models/{model['name']}/{model['versions'][0]}", timeout=TIMEOUT).json()
        models[model["name"]] = {**model, "input": info["input"], "labels": info["output"]["labels"]}
    return models


@functools.cache
def held_out(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The first IMAGES held-out examples of a model's recipe, as clients send them (0..255), and their labels."""
    data = recipes.get(name).load_data(allow_download=False)
    return data.x_test[:IMAGES], data.y_test[:IMAGES]


def batch(name: str, shape: list[int]) -> tuple[np.ndarray, np.ndarray]:
    images, labels = held_out(name)
    return images.reshape(len(images), *shape).astype(np.uint8), labels


def versions(served: dict) -> list[tuple[str, str]]:
    return [(name, version) for name, model in served.items() for version in model["versions"]]


def course(url: str, name: str, version: str, images: np.ndarray) -> np.ndarray:
    """The course route's probabilities, in chunks of the batch limit."""
    rows = []
    for start in range(0, len(images), CHUNK):
        body = {"images": images[start : start + CHUNK].tolist()}
        response = requests.post(f"{url}/models/{name}/{version}", json=body, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        rows += response.json()["result"]
    return np.asarray(rows, dtype=np.float32)


@pytest.fixture(scope="module")
def client(url):
    with triton.InferenceServerClient(url.removeprefix("http://")) as client:
        yield client


def show(title: str, value) -> None:
    report_figures(f"{title}:\n{json.dumps(value, indent=1)[:1500]}")


# --- Open Inference Protocol v2, with tritonclient ------------------------------------------------------


def test_tritonclient_server_metadata_and_health(client):
    assert client.is_server_live() and client.is_server_ready()
    metadata = client.get_server_metadata()
    show("tritonclient get_server_metadata()", metadata)
    assert metadata["name"] == "model-server" and {"binary_tensor_data", "classification"} <= set(metadata["extensions"])


def test_tritonclient_model_metadata_and_readiness(client, served):
    for name, model in served.items():
        metadata = client.get_model_metadata(name)
        show(f"tritonclient get_model_metadata({name!r})", metadata)
        assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, *model["input"]["shape"]]}]
        # every served version has held-out statistics: its answers carry an OOD score (models.<name>.ood)
        assert metadata["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, len(model["labels"])]}, {"name": "ood_score", "datatype": "FP32", "shape": [-1]}]
        assert metadata["versions"] == model["versions"] and metadata["platform"] in ("onnxruntime", "tensorflow")
        for version in [*model["versions"], *model["aliases"]]:
            assert client.get_model_metadata(name, version)["inputs"] == metadata["inputs"]
            assert client.is_model_ready(name, version)
        assert not client.is_model_ready(name, "no-such-version")


def test_tritonclient_repository_index(client, served):
    index = client.get_model_repository_index()
    show("tritonclient get_model_repository_index()", index)
    assert {(e["name"], e["version"], e["state"]) for e in index} == {(name, version, "READY") for name, version in versions(served)}


@pytest.mark.parametrize("binary", [True, False], ids=["binary tensors", "JSON tensors"])
def test_tritonclient_infer_equals_the_course_route(client, url, served, binary):
    """Real held-out images of every model and version: tritonclient's answers are the course route's."""
    figures = []
    for name, version in versions(served):
        images, labels = batch(name, served[name]["input"]["shape"])
        expected = course(url, name, version, images)
        answered = []
        for start in range(0, len(images), CHUNK):
            tensor = triton.InferInput("input", [len(images[start : start + CHUNK]), *images.shape[1:]], "UINT8")
            tensor.set_data_from_numpy(images[start : start + CHUNK], binary_data=binary)
            outputs = [triton.InferRequestedOutput("probabilities", binary_data=binary)]
            result = client.infer(name, [tensor], model_version=version, outputs=outputs, request_id=f"{name}-{start}")
            assert result.get_response()["id"] == f"{name}-{start}" and result.get_response()["model_version"] == version
            answered.append(result.as_numpy("probabilities"))
        probabilities = np.concatenate(answered)
        np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-7)
        accuracy = float(np.mean(probabilities.argmax(axis=1) == labels))
        assert accuracy == float(np.mean(expected.argmax(axis=1) == labels))
        figures.append(f"  {name}:{version} on {len(images)} held-out images: accuracy {accuracy:.4f} (the course route's too)")
    report_figures(f"tritonclient infer, {'binary' if binary else 'JSON'} tensors:\n" + "\n".join(figures))


@pytest.mark.parametrize("datatype", ["FP32", "INT64", "FP16"])
def test_tritonclient_other_datatypes_are_converted(client, url, served, datatype):
    from tritonclient.utils import triton_to_np_dtype

    name, model = next(iter(served.items()))
    images, _ = batch(name, model["input"]["shape"])
    tensor = triton.InferInput("input", [8, *images.shape[1:]], datatype)
    tensor.set_data_from_numpy(images[:8].astype(triton_to_np_dtype(datatype)))
    probabilities = client.infer(name, [tensor]).as_numpy("probabilities")  # the default version
    np.testing.assert_allclose(probabilities, course(url, name, model["default_version"], images[:8]), atol=1e-7)


def test_tritonclient_classification(client, url, served):
    for name, model in served.items():
        images, _ = batch(name, model["input"]["shape"])
        tensor = triton.InferInput("input", [4, *images.shape[1:]], "UINT8").set_data_from_numpy(images[:4])
        result = client.infer(name, [tensor], outputs=[triton.InferRequestedOutput("probabilities", class_count=2)])
        top = result.as_numpy("probabilities")
        show(f"tritonclient classification (class_count=2) of {name}", [[s.decode() for s in row] for row in top])
        expected = course(url, name, model["default_version"], images[:4])
        for row, probabilities in zip(top, expected, strict=True):
            score, index, label = row[0].decode().split(":", 2)
            assert int(index) == probabilities.argmax() and label == model["labels"][int(index)]
            assert float(score) == pytest.approx(float(probabilities.max()), abs=1e-6)


def test_tritonclient_errors(client, served):
    name, model = next(iter(served.items()))
    shape = model["input"]["shape"]
    cases = {
        "unknown model": ("nope", triton.InferInput("input", [1, *shape], "UINT8").set_data_from_numpy(np.zeros((1, *shape), np.uint8)), "404"),
        "wrong input name": (name, triton.InferInput("pixels", [1, *shape], "UINT8").set_data_from_numpy(np.zeros((1, *shape), np.uint8)), "400"),
        "BOOL": (name, triton.InferInput("input", [1, *shape], "BOOL").set_data_from_numpy(np.zeros((1, *shape), bool)), "400"),
    }
    shown = {}
    for label, (model_name, tensor, status) in cases.items():
        with pytest.raises(InferenceServerException) as raised:
            client.infer(model_name, [tensor])
        assert raised.value.status() == status, raised.value
        shown[label] = f"[{raised.value.status()}] {raised.value.message()}"
    show("tritonclient InferenceServerException", shown)


# --- TensorFlow Serving's REST API, with the bodies api_rest.md writes -------------------------------------


def numbered(served: dict) -> list[tuple[str, str, str]]:
    return [(name, version, version.removeprefix("v")) for name, version in versions(served) if version.removeprefix("v").isdigit()]


def test_tfserving_model_status(url, served):
    for name, model in served.items():
        status = requests.get(f"{url}/v1/models/{name}", timeout=TIMEOUT).json()
        show(f"GET /v1/models/{name}", status)
        listed = [entry["version"] for entry in status["model_version_status"]]
        assert listed == sorted(listed, key=int, reverse=True)
        for entry in status["model_version_status"]:
            assert entry["state"] == "AVAILABLE" and entry["status"] == {"error_code": "OK", "error_message": ""}
        for alias, version in model["aliases"].items():
            by_label = requests.get(f"{url}/v1/models/{name}/labels/{alias}", timeout=TIMEOUT).json()
            assert by_label["model_version_status"][0]["version"] == version.removeprefix("v")


def test_tfserving_metadata(url, served):
    for name, _version, number in numbered(served):
        metadata = requests.get(f"{url}/v1/models/{name}/versions/{number}/metadata", timeout=TIMEOUT).json()
        if number == "1":
            show(f"GET /v1/models/{name}/versions/1/metadata", metadata)
        assert metadata["model_spec"] == {"name": name, "signature_name": "", "version": number}
        signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
        dims = signature["inputs"]["input"]["tensor_shape"]["dim"]
        assert [int(d["size"]) for d in dims] == [-1, *served[name]["input"]["shape"]]
        assert signature["method_name"] == "tensorflow/serving/predict"


def test_tfserving_predict_both_formats_equal_the_course_route(url, served):
    for name, version, number in numbered(served):
        images, labels = batch(name, served[name]["input"]["shape"])
        expected = course(url, name, version, images)
        for request_key, response_key in (("instances", "predictions"), ("inputs", "outputs")):
            rows = []
            for start in range(0, len(images), CHUNK):
                body = {"signature_name": "serving_default", request_key: images[start : start + CHUNK].tolist()}
                response = requests.post(f"{url}/v1/models/{name}/versions/{number}:predict", json=body, timeout=TIMEOUT)
                assert response.status_code == 200, response.text
                rows += response.json()[response_key]
            np.testing.assert_allclose(np.asarray(rows, dtype=np.float32), expected, rtol=0, atol=1e-7)
        assert float(np.mean(np.asarray(rows).argmax(axis=1) == labels)) == float(np.mean(expected.argmax(axis=1) == labels))


def png_b64(image: np.ndarray) -> dict:
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG")
    return {"b64": base64.b64encode(buffer.getvalue()).decode()}


def test_tfserving_b64_images_equal_the_course_routes_image_files(url, served):
    for name, model in served.items():
        images, _ = batch(name, model["input"]["shape"])
        body = {"instances": [png_b64(image) for image in images[:4]]}
        response = requests.post(f"{url}/v1/models/{name}/labels/{next(iter(model['aliases']))}:predict", json=body, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        version = next(iter(model["aliases"].values()))
        for image, row in zip(images[:4], response.json()["predictions"], strict=True):
            png = base64.b64decode(png_b64(image)["b64"])
            upload = requests.post(f"{url}/models/{name}/{version}", files={"image": ("x.png", png, "image/png")}, timeout=TIMEOUT)
            np.testing.assert_allclose(row, upload.json()["result"][0], atol=1e-7)


def test_tfserving_classify(url, served):
    for name, model in served.items():
        images, _ = batch(name, model["input"]["shape"])
        body = {"examples": [{"input": image.reshape(-1).tolist()} for image in images[:2]]}
        response = requests.post(f"{url}/v1/models/{name}:classify", json=body, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        show(f"POST /v1/models/{name}:classify", results[:1])
        assert [[label for label, _ in result] for result in results] == [model["labels"]] * 2


def test_tfserving_errors(url, served):
    name = next(iter(served))
    cases = {
        "unknown model": (requests.get(f"{url}/v1/models/nope", timeout=TIMEOUT), 404, "unknown model 'nope'"),
        "unknown version": (requests.get(f"{url}/v1/models/{name}/versions/999", timeout=TIMEOUT), 404, "version 999"),
        "unknown label": (requests.get(f"{url}/v1/models/{name}/labels/nope", timeout=TIMEOUT), 404, "unknown label"),
        "both formats": (requests.post(f"{url}/v1/models/{name}:predict", json={"instances": [], "inputs": []}, timeout=TIMEOUT), 400, "only one of"),
        "wrong shape": (requests.post(f"{url}/v1/models/{name}:predict", json={"instances": [[1, 2, 3]]}, timeout=TIMEOUT), 400, "instances"),
        "signature": (requests.post(f"{url}/v1/models/{name}:predict", json={"signature_name": "x", "instances": [[1]]}, timeout=TIMEOUT), 400, "not found in signature def"),
    }
    for response, status, fragment in cases.values():
        assert_error(response, status, fragment)
    show("TF Serving REST errors", {label: f"[{r.status_code}] {r.json()['error']}" for label, (r, _, _) in cases.items()})


# --- the SavedModel export that TF Serving loads ----------------------------------------------------------------


def test_savedmodel_export_answers_what_the_server_answers(url, served, tmp_path):
    """export-tfserving, then tf.saved_model.load: the export's outputs on real held-out images equal the served ones."""
    import tensorflow as tf

    figures = []
    for name, version, number in numbered(served):
        result = subprocess.run(
            [sys.executable, str(ROOT / "train_and_save.py"), "export-tfserving", "--name", name, "--version", version, "--out", str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        path = tmp_path / name / number
        assert (path / "saved_model.pb").is_file() and (path / "variables").is_dir()
        images, _ = batch(name, served[name]["input"]["shape"])
        exported = tf.saved_model.load(str(path)).signatures["serving_default"](input=tf.constant(images, tf.float32))["probabilities"].numpy()
        body = {"instances": images[:CHUNK].tolist()}  # the same body goes to TF Serving and to this server
        served_rows = np.asarray(requests.post(f"{url}/v1/models/{name}/versions/{number}:predict", json=body, timeout=TIMEOUT).json()["predictions"])
        difference = float(np.abs(exported[:CHUNK] - served_rows).max())
        assert difference < 1e-5 and (exported[:CHUNK].argmax(axis=1) == served_rows.argmax(axis=1)).all()
        np.testing.assert_allclose(exported, course(url, name, version, images), atol=1e-5)
        figures.append(
            f"  {name}:{version} -> {path.relative_to(tmp_path)}: largest |difference| from the served probabilities {difference:.2g} "
            f"on {CHUNK} held-out images; {result.stdout.strip().splitlines()[0]}"
        )
    assert figures
    report_figures("SavedModel export (tf.saved_model.load) against the server:\n" + "\n".join(figures))
