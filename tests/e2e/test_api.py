"""The HTTP contract, against a real `bentoml serve` with real (quickly trained) models."""

from __future__ import annotations

import io
import json
import pickle
import time

import numpy as np
import pytest
import requests
from PIL import Image

from models import store
from tests.e2e.conftest import CLOTHES as MODEL_NAME
from tests.e2e.conftest import assert_error
from training.recipes.clothes import LABELS as CLASS_NAMES
from training.recipes.clothes import load_data

TIMEOUT = 30


@pytest.fixture(scope="module")
def test_images():
    data = load_data(allow_download=False)
    return data.x_test[:32], data.y_test[:32]


def post_json(url, version, body, **kwargs):
    return requests.post(f"{url}/models/{MODEL_NAME}/{version}", json=body, timeout=TIMEOUT, **kwargs)


def png_bytes(pixels: np.ndarray, mode: str = "L", fmt: str = "PNG", size=None) -> bytes:
    img = Image.fromarray(pixels.astype(np.uint8)).convert(mode)
    if size:
        img = img.resize(size)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


# --- discovery and model info -------------------------------------------------------------


def test_list_models(url):
    body = requests.get(f"{url}/models", timeout=TIMEOUT).json()
    assert body["models"][0]["name"] == MODEL_NAME
    assert body["models"][0]["versions"] == ["v1", "v2"] and body["models"][0]["default_version"] == "stable"


def test_list_versions_with_status_and_aliases(url):
    body = requests.get(f"{url}/models/{MODEL_NAME}", timeout=TIMEOUT).json()
    by_version = {v["version"]: v for v in body["versions"]}
    assert by_version["v1"]["status"] == "ready" and by_version["v1"]["aliases"] == ["stable"]
    assert by_version["v2"]["status"] == "ready" and by_version["v2"]["aliases"] == ["latest"]


@pytest.mark.parametrize("version,architecture,parameters", [("v1", "lenet5", 44426), ("v2", "small_vgg", None)])
def test_model_info_is_the_stored_card(url, version, architecture, parameters):
    info = requests.get(f"{url}/models/{MODEL_NAME}/{version}", timeout=TIMEOUT).json()
    assert info["name"] == MODEL_NAME and info["version"] == version and info["tag"] == f"{MODEL_NAME}:{version}"
    assert info["architecture"] == architecture and info["description"] and info["task"] == "image-classification"
    assert info["output"] == {"kind": "softmax", "labels": list(CLASS_NAMES), "positive_label": None}
    assert info["input"] == {"kind": "image", "shape": [28, 28, 1], "dtype": "float32", "value_range": [0.0, 255.0], "divide_by": 255.0}
    assert info["preprocessing"] == {"colour_mode": "L", "aspect": "pad", "resize": "lanczos", "invert": "auto"}
    if parameters:
        assert info["number_of_parameters"] == parameters
    assert info["number_of_parameters"] > 0
    metrics = info["metrics"]
    assert 0 <= metrics["accuracy"] <= 1 and set(metrics["per_class"]) == set(CLASS_NAMES)
    assert np.asarray(metrics["confusion_matrix"]).shape == (10, 10)
    assert {"macro_precision", "macro_recall", "macro_f1"} <= set(metrics)
    assert set(info["framework_versions"]) == {"tensorflow", "keras"}
    assert len(info["data"]["sha256"]) == 4 and info["created"]
    assert info["training"]["epochs"] >= 1 and info["training"]["train_images"] > 0
    assert info == {**store.load_card(MODEL_NAME, version).model_dump(mode="json"), **{k: info[k] for k in ("tag", "created", "aliases", "endpoints")}}


def test_alias_resolves_to_its_version(url):
    info = requests.get(f"{url}/models/{MODEL_NAME}/latest", timeout=TIMEOUT).json()
    assert info["version"] == "v2" and info["aliases"] == ["latest"]


# --- predictions ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v2", "stable", "latest"])
def test_course_json_image(url, test_images, version):
    images, _ = test_images
    response = post_json(url, version, {"image": images[0].tolist()})
    assert response.status_code == 200, response.text
    body = response.json()
    result = np.asarray(body["result"])
    assert result.shape == (1, 10) and np.isclose(result.sum(), 1, atol=1e-4)
    prediction = body["predictions"][0]
    assert prediction["class_id"] == int(result.argmax())
    assert prediction["label"] == CLASS_NAMES[prediction["class_id"]]
    assert np.isclose(prediction["confidence"], result.max())
    assert body["version"] == {"stable": "v1", "latest": "v2"}.get(version, version)


def test_batch_matches_single_requests(url, test_images):
    images, _ = test_images
    batch = post_json(url, "v1", {"images": images[:8].tolist()}).json()
    singles = [post_json(url, "v1", {"image": image.tolist()}).json()["result"][0] for image in images[:8]]
    assert np.allclose(batch["result"], singles, atol=1e-5)
    assert len(batch["predictions"]) == 8


def test_server_scales_inputs_like_training(url, test_images, trained_versions):
    """Accuracy through the API equals the accuracy recorded offline on the same test images."""

    data = load_data(allow_download=False)
    images, labels = data.x_test[:500], data.y_test[:500]
    predicted = []
    for start in range(0, len(images), 64):
        body = post_json(url, "v1", {"images": images[start : start + 64].tolist()}).json()
        predicted.extend(p["class_id"] for p in body["predictions"])
    api_accuracy = float(np.mean(np.asarray(predicted) == labels))
    offline = store.load_card(MODEL_NAME, "v1").metrics["accuracy"]
    assert api_accuracy == pytest.approx(offline, abs=1e-9)


@pytest.mark.parametrize("fmt,mode,size", [("PNG", "L", None), ("JPEG", "RGB", (280, 280)), ("PNG", "RGB", (50, 90))])
def test_multipart_image(url, test_images, fmt, mode, size):
    images, _ = test_images
    files = {"image": (f"shirt.{fmt.lower()}", png_bytes(images[0], mode, fmt, size), f"image/{fmt.lower()}")}
    response = requests.post(f"{url}/models/{MODEL_NAME}/v1", files=files, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert np.asarray(response.json()["result"]).shape == (1, 10)


def test_multipart_png_of_test_image_equals_json(url, test_images):
    images, _ = test_images
    files = {"image": ("x.png", png_bytes(images[3]), "image/png")}
    from_file = requests.post(f"{url}/models/{MODEL_NAME}/v1", files=files, timeout=TIMEOUT).json()["result"]
    from_json = post_json(url, "v1", {"image": images[3].tolist()}).json()["result"]
    assert np.allclose(from_file, from_json, atol=1e-5)


def test_invert_handles_dark_garment_on_light_background(url, test_images):
    images, _ = test_images
    photo = png_bytes(255 - images[5])  # a "photo": dark garment, white background
    auto = requests.post(f"{url}/models/{MODEL_NAME}/v1", files={"image": ("p.png", photo)}, timeout=TIMEOUT).json()
    forced_off = requests.post(f"{url}/models/{MODEL_NAME}/v1?invert=false", files={"image": ("p.png", photo)}, timeout=TIMEOUT).json()
    original = post_json(url, "v1", {"image": images[5].tolist()}).json()
    assert np.allclose(auto["result"], original["result"], atol=1e-5)
    assert not np.allclose(forced_off["result"], original["result"], atol=1e-3)


# --- errors: one envelope, the right status, a message naming the field --------------------


@pytest.mark.parametrize(
    "body,status,fragments",
    [
        ({}, 422, ["missing field 'image'"]),
        ({"picture": [[0] * 28] * 28}, 422, ["missing field 'image'"]),
        ({"image": [[0] * 27] * 28}, 422, ["image", "28x28", "28x27"]),
        ({"image": [[0] * 28] * 3}, 422, ["image", "3x28"]),
        ({"image": [[0] * 28] * 27 + [[0] * 27]}, 422, ["image", "ragged"]),
        ({"image": [["a"] * 28] * 28}, 422, ["image", "numbers"]),
        ({"image": [[True] * 28] * 28}, 422, ["image", "numbers"]),
        ({"image": [[300] * 28] * 28}, 422, ["image", "0..255"]),
        ({"image": [[-1] * 28] * 28}, 422, ["image", "0..255"]),
        ({"image": "abc"}, 422, ["image", "a string"]),
        ({"images": []}, 422, ["images"]),
        ({"images": [[[0] * 28] * 28] * 65}, 413, ["images", "65 examples", "64"]),
        ([1, 2], 422, ["JSON"]),
    ],
)
def test_bad_json_fields(url, body, status, fragments):
    assert_error(post_json(url, "v1", body), status, *fragments)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_values(url, literal):
    row = "[" + ",".join([literal] + ["0"] * 27) + "]"
    body = '{"image": [' + ",".join([row] * 28) + "]}"
    response = requests.post(f"{url}/models/{MODEL_NAME}/v1", data=body, headers={"content-type": "application/json"}, timeout=TIMEOUT)
    assert_error(response, 422, "image", "finite")


@pytest.mark.parametrize("data,fragment", [(b"", "empty body"), (b"{not json", "invalid JSON"), (b"[" * 100_000, "invalid JSON")])
def test_unreadable_json(url, data, fragment):
    response = requests.post(f"{url}/models/{MODEL_NAME}/v1", data=data, headers={"content-type": "application/json"}, timeout=TIMEOUT)
    assert_error(response, 400, fragment)


def test_not_an_image_file(url):
    files = {"image": ("x.png", b"this is not an image", "image/png")}
    assert_error(requests.post(f"{url}/models/{MODEL_NAME}/v1", files=files, timeout=TIMEOUT), 422, "image", "decodable")


def test_multipart_without_image_key(url, test_images):
    files = {"picture": ("x.png", png_bytes(test_images[0][0]), "image/png")}
    assert_error(requests.post(f"{url}/models/{MODEL_NAME}/v1", files=files, timeout=TIMEOUT), 422, "image", "missing")


def test_bad_invert_value(url, test_images):
    files = {"image": ("x.png", png_bytes(test_images[0][0]), "image/png")}
    response = requests.post(f"{url}/models/{MODEL_NAME}/v1?invert=maybe", files=files, timeout=TIMEOUT)
    assert_error(response, 422, "invert", "auto, true, false")


@pytest.mark.parametrize("content_type", ["application/vnd.bentoml+pickle", "application/python-pickle", "text/plain", ""])
def test_unsupported_content_types(url, content_type):
    response = requests.post(f"{url}/models/{MODEL_NAME}/v1", data=pickle.dumps(np.zeros((28, 28))), headers={"content-type": content_type}, timeout=TIMEOUT)
    assert_error(response, 415, "not accepted", "application/json", "application/octet-stream")


def test_pickle_refused_on_typed_api_too(url):
    response = requests.post(f"{url}/classify", data=pickle.dumps({"images": []}), headers={"content-type": "application/vnd.bentoml+pickle"}, timeout=TIMEOUT)
    assert_error(response, 415, "pickle")


def test_body_over_limit(url):
    response = requests.post(f"{url}/models/{MODEL_NAME}/v1", data=b"{" + b" " * 2_000_000 + b"}", headers={"content-type": "application/json"}, timeout=TIMEOUT)
    assert_error(response, 413, "exceeds the limit of 1000000 bytes")


def test_body_over_limit_without_content_length(url):
    def chunks():
        for _ in range(40):
            yield b" " * 50_000

    response = requests.post(f"{url}/models/{MODEL_NAME}/v1", data=chunks(), headers={"content-type": "application/json"}, timeout=TIMEOUT)
    assert_error(response, 413, "exceeds the limit")


@pytest.mark.parametrize(
    "path,fragments", [("/models/clothes/v9", ["v9", "v1", "v2", "stable", "latest"]), ("/models/shoes/v1", ["shoes", "clothes"]), ("/models/shoes", ["shoes"])]
)
def test_unknown_model_or_version(url, path, fragments):
    assert_error(requests.get(f"{url}{path}", timeout=TIMEOUT), 404, *fragments)


def test_unknown_version_on_post(url, test_images):
    assert_error(post_json(url, "v9", {"image": test_images[0][0].tolist()}), 404, "v9", "available")


def test_method_not_allowed(url):
    assert_error(requests.delete(f"{url}/models/{MODEL_NAME}/v1", timeout=TIMEOUT), 405, "DELETE")


def test_unknown_route_uses_envelope(url):
    assert_error(requests.get(f"{url}/nowhere", timeout=TIMEOUT), 404)


# --- the typed BentoML APIs and the generated client ------------------------------------------


def test_generated_client(url, test_images):
    import bentoml

    images, _ = test_images
    with bentoml.SyncHTTPClient(url) as client:
        body = client.classify(images=images[:4].tolist(), model=MODEL_NAME, version="v2")
        assert body["version"] == "v2" and np.asarray(body["result"]).shape == (4, 10)
        default = client.classify(images=images[:1].tolist(), model=MODEL_NAME)
        assert default["version"] == "v1"  # the configured default_version, stable -> v1


def test_generated_client_image_file(url, test_images, tmp_path):
    import bentoml

    path = tmp_path / "shirt.png"
    path.write_bytes(png_bytes(test_images[0][0]))
    with bentoml.SyncHTTPClient(url) as client:
        body = client.classify_image(image=path, model=MODEL_NAME, version="latest")
    assert body["version"] == "v2" and len(body["predictions"]) == 1


def _classify_lines(log: str) -> tuple[int, int]:
    """(INFO lines of a refused typed-API request, ERROR lines) about /classify in a server's log."""
    lines = [line for line in log.splitlines() if "/classify [POST]" in line]
    return sum("[INFO]" in line and "refused: 1 validation error for Input model Field required" in line for line in lines), sum("[ERROR]" in line for line in lines)


def test_typed_api_validation_uses_envelope(url, server_log):
    refused, errors = _classify_lines(server_log())  # the server is the session's (the container's): counted before and after
    response = requests.post(f"{url}/classify", json={"images": [[[1, 2]]], "model": MODEL_NAME}, timeout=TIMEOUT)
    assert_error(response, 422, "images")
    response = requests.post(f"{url}/classify", json={"images": [[[1, 2]]]}, timeout=TIMEOUT)
    assert_error(response, 422, "model")
    # the server's log: a client's mistake is one INFO line, not an ERROR with a traceback
    deadline = time.monotonic() + 5  # the log is written by the server's own processes
    while (after := _classify_lines(server_log()))[0] == refused and time.monotonic() < deadline:
        time.sleep(0.1)
    assert after == (refused + 1, errors), (refused, errors, after)


def test_typed_api_not_an_image(url, tmp_path):
    response = requests.post(f"{url}/classify_image", files={"image": ("x.png", b"garbage", "image/png")}, data={"model": MODEL_NAME}, timeout=TIMEOUT)
    assert_error(response, 422, "image", "decodable")


def test_typed_api_unknown_version(url, test_images):
    response = requests.post(f"{url}/classify", json={"images": test_images[0][:1].tolist(), "model": MODEL_NAME, "version": "v7"}, timeout=TIMEOUT)
    assert_error(response, 404, "v7")
    response = requests.post(f"{url}/classify", json={"images": test_images[0][:1].tolist(), "model": "shoes"}, timeout=TIMEOUT)
    assert_error(response, 404, "shoes", MODEL_NAME)


# --- health and metrics ---------------------------------------------------------------------


def test_health(url):
    assert requests.get(f"{url}/readyz", timeout=TIMEOUT).status_code == 200
    assert requests.get(f"{url}/livez", timeout=TIMEOUT).status_code == 200


def _metric_sum(url: str, name: str, **labels) -> float:
    """The sum of a metric's samples whose labels include ``labels``, from /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(requests.get(f"{url}/metrics", timeout=TIMEOUT).text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_metrics_count_this_request_and_its_predictions(url, test_images):
    labels = {"model": MODEL_NAME, "version": "v2"}
    requests_before = _metric_sum(url, "serving_requests_total", **labels, protocol="course", endpoint="predict", status="200")
    predictions_before = _metric_sum(url, "serving_predictions_total", **labels)
    confidences_before = _metric_sum(url, "serving_confidence_count", **labels)
    assert post_json(url, "v2", {"images": test_images[0][:3].tolist()}).status_code == 200
    assert _metric_sum(url, "serving_requests_total", **labels, protocol="course", endpoint="predict", status="200") == requests_before + 1
    assert _metric_sum(url, "serving_predictions_total", **labels) == predictions_before + 3
    assert _metric_sum(url, "serving_confidence_count", **labels) == confidences_before + 3


def test_errors_do_not_kill_workers(url, test_images):
    for _ in range(20):
        post_json(url, "v1", {"image": [["x"]]})
        requests.post(f"{url}/models/{MODEL_NAME}/v1", files={"image": ("x", b"\x89PNG\r\n\x1a\nbroken")}, timeout=TIMEOUT)
    assert post_json(url, "v1", {"image": test_images[0][0].tolist()}).status_code == 200
    assert json.loads(requests.get(f"{url}/models/{MODEL_NAME}", timeout=TIMEOUT).text)["versions"][0]["status"] == "ready"


# --- the compact binary batch paths -------------------------------------------------------------


def test_raw_uint8_batch_equals_json(url, test_images):
    images, _ = test_images
    response = requests.post(
        f"{url}/models/{MODEL_NAME}/v1",
        data=images[:16].astype(np.uint8).tobytes(),
        headers={"content-type": "application/octet-stream"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    from_json = post_json(url, "v1", {"images": images[:16].tolist()}).json()["result"]
    assert np.allclose(response.json()["result"], from_json, atol=1e-5)


def test_npy_batch(url, test_images):
    buf = io.BytesIO()
    np.save(buf, test_images[0][:5].astype(np.float32))
    response = requests.post(f"{url}/models/{MODEL_NAME}/v2", data=buf.getvalue(), headers={"content-type": "application/x-npy"}, timeout=TIMEOUT)
    assert response.status_code == 200 and len(response.json()["predictions"]) == 5


def test_npy_with_pickled_objects_is_refused(url):
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    response = requests.post(f"{url}/models/{MODEL_NAME}/v1", data=buf.getvalue(), headers={"content-type": "application/x-npy"}, timeout=TIMEOUT)
    assert_error(response, 400, ".npy")


@pytest.mark.parametrize("size", [0, 783, 785])
def test_raw_body_must_be_whole_images(url, size):
    response = requests.post(f"{url}/models/{MODEL_NAME}/v1", data=b"\x00" * size, headers={"content-type": "application/octet-stream"}, timeout=TIMEOUT)
    assert_error(response, 422, "multiple of 784 bytes")


def test_raw_batch_over_limit(url):
    response = requests.post(f"{url}/models/{MODEL_NAME}/v1", data=b"\x00" * 784 * 65, headers={"content-type": "application/octet-stream"}, timeout=TIMEOUT)
    assert_error(response, 413, "65 examples")
