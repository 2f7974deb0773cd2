"""The course's routes in-process, for three kinds of model at once: grey 28x28 (ten classes), colour
32x32x3 (one sigmoid unit) and a tensor of four values; their runners are fakes (conftest)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from tests.unit.serving.conftest import assert_error, encoded, request_count


def test_list_models_names_every_model_with_versions_and_aliases(client):
    models = {m["name"]: m for m in client.get("/models").json()["models"]}
    assert set(models) == {"grey", "colour", "vector"}
    assert models["grey"]["versions"] == ["v1", "v2", "v3"] and models["grey"]["aliases"] == {"stable": "v1"}
    assert models["colour"]["default_version"] == "v1"


def test_list_versions_reports_status_and_reason(client):
    versions = {v["version"]: v for v in client.get("/models/grey").json()["versions"]}
    assert versions["v1"]["status"] == "ready" and versions["v1"]["aliases"] == ["stable"]
    assert versions["v3"]["status"] == "unavailable" and "not in the model store" in versions["v3"]["reason"]


def test_model_info_is_the_card_with_aliases_and_endpoints(client):
    info = client.get("/models/colour/v1").json()
    assert info["input"]["shape"] == [32, 32, 3] and info["output"]["kind"] == "sigmoid"
    assert info["output"]["labels"] == ["damage", "no_damage"] and info["tag"] == "colour:v1"
    assert info["endpoints"]["predict"] == "/models/colour/v1"
    assert client.get("/models/grey/stable").json()["version"] == "v1"
    assert client.get("/models/grey/stable").json()["aliases"] == ["stable"]


@pytest.mark.parametrize("body", [{"image": [[30] * 28] * 28}, {"image": [[[30]] * 28] * 28}, {"images": [[[30] * 28] * 28]}])
def test_grey_json_with_or_without_channel_axis(served, client, body):
    response = client.post("/models/grey/v1", json=body)
    assert response.status_code == 200, response.text
    prediction = response.json()["predictions"][0]
    assert prediction == {"class_id": 0, "label": "a", "confidence": pytest.approx(0.9)}  # mean 30 % 10
    assert served.runners["grey", "v1"].calls[-1].shape == (1, 28, 28, 1)


def test_colour_json_must_carry_its_channels(served, client):
    assert client.post("/models/colour/v1", json={"image": np.full((32, 32, 3), 1).tolist()}).json()["predictions"][0]["label"] == "no_damage"
    assert_error(client.post("/models/colour/v1", json={"image": [[1] * 32] * 32}), 422, "image", "32x32x3", "32x32")


def test_image_file_is_converted_and_resized_per_card(served, client):
    photo = np.zeros((90, 60, 3), dtype=np.uint8)
    photo[..., 0] = 200  # a red photo, portrait, for a colour model of 32x32
    response = client.post("/models/colour/v1", files={"image": ("p.jpg", encoded(photo, "JPEG"), "image/jpeg")})
    assert response.status_code == 200, response.text
    sent = served.runners["colour", "v1"].calls[-1]
    assert sent.shape == (1, 32, 32, 3) and sent.dtype == np.uint8
    assert sent[0, 16, 16, 0] > 150 and sent[0, 16, 16, 1] < 50  # red kept, colour mode RGB
    client.post("/models/grey/v1", files={"image": ("p.png", encoded(photo), "image/png")})
    assert served.runners["grey", "v1"].calls[-1].shape == (1, 28, 28, 1)


def test_invert_follows_the_card_policy(served, client):
    light = np.full((28, 28), 250, dtype=np.uint8)
    client.post("/models/grey/v1", files={"image": ("p.png", encoded(light), "image/png")})
    assert served.runners["grey", "v1"].calls[-1].max() == 5  # grey's policy is auto: a light border inverts
    client.post("/models/colour/v1", files={"image": ("p.png", encoded(np.full((32, 32, 3), 250)), "image/png")})
    assert served.runners["colour", "v1"].calls[-1].min() == 250  # colour's policy is never
    client.post("/models/colour/v1?invert=true", files={"image": ("p.png", encoded(np.full((32, 32, 3), 250)), "image/png")})
    assert served.runners["colour", "v1"].calls[-1].max() == 5  # unless the client asks


def test_raw_bytes_are_sized_by_the_card(served, client):
    body = np.full((2, 32, 32, 3), 7, dtype=np.uint8).tobytes()
    response = client.post("/models/colour/v1", content=body, headers={"content-type": "application/octet-stream"})
    assert response.status_code == 200 and len(response.json()["predictions"]) == 2
    assert_error(client.post("/models/colour/v1", content=body[:-1], headers={"content-type": "application/octet-stream"}), 422, "3072 bytes", "32x32x3")


def test_npy_batch(served, client):
    buffer = io.BytesIO()
    np.save(buffer, np.full((3, 28, 28), 12.0))
    response = client.post("/models/grey/v2", content=buffer.getvalue(), headers={"content-type": "application/x-npy"})
    assert response.status_code == 200 and [p["label"] for p in response.json()["predictions"]] == ["c"] * 3


def test_tensor_model_takes_json_and_npy_only(served, client):
    response = client.post("/models/vector/v1", json={"inputs": [[1.5, -2, 7, 300], [0, 0, 0, 0]]})
    assert response.status_code == 200, response.text
    assert [p["label"] for p in response.json()["predictions"]] == ["y", "x"]  # int(306.5 / 4) % 3, 0
    assert_error(client.post("/models/vector/v1", json={"image": [1, 2, 3, 4]}), 422, "'input' or 'inputs'")
    assert_error(client.post("/models/vector/v1", json={"input": [1, 2, 3]}), 422, "4 per example", "got 3")
    for kind in ("multipart/form-data; boundary=x", "application/octet-stream"):
        assert_error(client.post("/models/vector/v1", content=b"x", headers={"content-type": kind}), 415, "vector:v1", "application/json, application/x-npy")


@pytest.mark.parametrize(
    "path,fragments",
    [
        ("/models/nope/v1", ["unknown model 'nope'", "grey, colour, vector"]),
        ("/models/grey/v9", ["unknown version 'v9' of model grey", "v1, v2, v3, stable"]),
        ("/models/GREY/v1", ["no such model"]),
        ("/models/grey/-v1", ["no such version"]),
        ("/models/nope", ["unknown model"]),
        ("/models/grey/v9/report", ["unknown version"]),
    ],
)
def test_unknown_or_malformed_names_are_404(client, path, fragments):
    assert_error(client.get(path), 404, *fragments)


def test_405_names_the_allowed_methods(client):
    for method, path, allowed in (("TRACE", "/models", "GET, HEAD"), ("DELETE", "/models/grey/v1", "GET, HEAD, POST"), ("PUT", "/models/grey/v1/report", "GET, HEAD")):
        response = client.request(method, path)
        assert_error(response, 405, method)
        assert response.headers["allow"] == allowed


def test_head_answers_headers_only(client):
    response = client.head("/models/grey/v1")
    assert response.status_code == 200 and response.content == b"" and int(response.headers["content-length"]) > 100


def test_version_missing_from_the_store_is_503_with_its_reason(client):
    for response in (client.get("/models/grey/v3"), client.post("/models/grey/v3", json={"image": [[0] * 28] * 28})):
        assert_error(response, 503, "grey:v3 is not in the model store")
        assert response.headers["retry-after"] == "30"


def test_loading_runner_is_503(served, client):
    served.runners["grey", "v2"].state = "loading"
    client.portal.call(served.probe)
    response = client.post("/models/grey/v2", json={"image": [[0] * 28] * 28})
    assert_error(response, 503, "runner is loading")
    assert "retry-after" in response.headers


def test_limits(client):
    assert_error(client.post("/models/grey/v1", json={"images": [[[0] * 28] * 28] * 9}), 413, "9 examples exceed the limit of 8")
    assert_error(client.post("/models/grey/v1", content=b"0" * 300_000, headers={"content-type": "application/json"}), 413, "exceeds the limit")


def test_report_and_drift_without_stored_files_are_404(client):
    assert_error(client.get("/models/grey/v1/report"), 404, "grey:v1 has no evaluation report")
    assert_error(client.get("/models/grey/v1/drift"), 404, "grey:v1 has no reference statistics")


def test_paths_no_route_takes_fall_through(client):
    assert_error(client.get("/elsewhere"), 404, "Not Found")


def test_requests_are_counted_by_model_version_protocol_and_status(client):
    before = request_count(model="grey", version="v1", protocol="course", endpoint="predict", status="200")
    unknown = request_count(model="unknown", version="unknown", protocol="course", endpoint="predict", status="404")
    client.post("/models/grey/stable", json={"image": [[0] * 28] * 28})
    client.post("/models/what/ever", json={"image": [[0] * 28] * 28})
    assert request_count(model="grey", version="v1", protocol="course", endpoint="predict", status="200") == before + 1
    assert request_count(model="unknown", version="unknown", protocol="course", endpoint="predict", status="404") == unknown + 1


# --- Project 3's grader routes ----------------------------------------------------------------------


def test_summary_is_the_configured_models_card(client):
    summary = client.get("/summary").json()
    assert summary["name"] == "colour" and summary["version"] == "v1" and summary["number_of_parameters"] == 1
    assert {"description", "input", "output"} <= set(summary)


def test_inference_answers_the_way_the_grader_reads_it(served, client):
    """The course's grader: requests.post(url, files={"image": open(path, "rb")}): a .jpeg file name, no content type."""
    photo = np.zeros((128, 128, 3), dtype=np.uint8)
    photo[..., 1] = 9  # mean 3 -> class 1 of the fake runner: no_damage
    files = {"image": ("-93.6_30.1.jpeg", encoded(photo, "JPEG"))}
    response = client.post("/inference", files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["prediction"].lower() == "no_damage" and body["model"] == "colour" and body["version"] == "v1"
    assert served.runners["colour", "v1"].calls[-1].shape == (1, 32, 32, 3)


def test_inference_of_several_examples_answers_their_labels(client):
    images = np.stack([np.zeros((32, 32, 3)), np.ones((32, 32, 3))]).astype(int).tolist()
    assert client.post("/inference", json={"images": images}).json()["prediction"] == ["damage", "no_damage"]


def test_grader_routes_share_the_error_contract(client):
    assert_error(client.post("/inference", files={"image": ("x.jpeg", b"not a jpeg")}), 422, "image", "decodable")
    response = client.post("/summary")
    assert_error(response, 405, "POST")
    assert response.headers["allow"] == "GET, HEAD"


def test_without_project3_there_are_no_grader_routes(tmp_path):
    from starlette.testclient import TestClient

    from tests.unit.serving.conftest import InProcess, make_card, write_config

    config = write_config(tmp_path, {"grey": {"versions": ["v1"]}})
    served = InProcess(config, {("grey", "v1"): make_card("grey", "v1")})
    with TestClient(served.app) as client:
        assert_error(client.get("/summary"), 404, "Not Found")
        assert_error(client.post("/inference", json={"image": [[0] * 28] * 28}), 404, "Not Found")
