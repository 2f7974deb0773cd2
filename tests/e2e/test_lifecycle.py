"""The model lifecycle through a served process: reports, the promotion gate and drift monitoring."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
import requests
import yaml

from bench.drift import DriftProbe
from lifecycle.slices import apply_shift
from tests.e2e.conftest import CLOTHES as MODEL_NAME
from tests.e2e.conftest import ROOT, Server, clothes, free_port, run_training, write_config
from training.recipes.clothes import RECIPE, load_data

TIMEOUT = 30
# Documented in docs/lifecycle.md: drift is flagged within this many shifted requests (one image
# each) after a full window of clean traffic.
DETECTION_BOUND = 250
TINY_TEST_IMAGES = 500  # the e2e models' reference statistics come from the first 500 test images


@pytest.fixture(scope="module")
def data():
    return load_data(allow_download=False)


# --- evaluation report ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v2", "latest"])
def test_report_page_is_served_and_linked_from_the_model_info(url, version):
    info = requests.get(f"{url}/models/{MODEL_NAME}/{version}", timeout=TIMEOUT).json()
    assert info["endpoints"]["report"] == f"/models/{MODEL_NAME}/{info['version']}/report"
    page = requests.get(url + info["endpoints"]["report"], timeout=TIMEOUT)
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    html = page.text
    assert f"{MODEL_NAME}:{info['version']} evaluation report" in html
    for section in ("Confusion matrix", "Per-class precision, recall and F1", "Training and validation curves", "Misclassified test images", "Slices"):
        assert section in html
    assert len(re.findall(r"<img alt='' src='data:image/png;base64,", html)) >= 6
    worst = info["slices"]["worst"]
    assert f"worst slice: {worst['slice']}" in html and f"{worst['accuracy']:.4f}" in html


def test_model_info_reports_slices_and_the_worst_one(url):
    slices = requests.get(f"{url}/models/{MODEL_NAME}/v1", timeout=TIMEOUT).json()["slices"]
    assert set(slices["shifts"]) == set(RECIPE.shifts) == {"brightness", "contrast", "inverted", "translation", "rotation", "noise", "occlusion"}
    assert slices["shift_specs"] == RECIPE.shifts
    every = {**{f"class:{k}": v for k, v in slices["classes"].items()}, **{f"shift:{k}": v for k, v in slices["shifts"].items()}}
    assert slices["worst"]["accuracy"] == min(every.values()) == every[slices["worst"]["slice"]]
    assert slices["images"] == TINY_TEST_IMAGES


@pytest.mark.parametrize(
    "method,path,status,fragment",
    [
        ("POST", "/models/clothes/v1/report", 405, "use GET or HEAD"),
        ("DELETE", "/models/clothes/v1/drift", 405, "use GET or HEAD"),
        ("GET", "/models/clothes/v9/report", 404, "unknown version 'v9'"),
        ("GET", "/models/clothes/v9/drift", 404, "unknown version 'v9'"),
    ],
)
def test_report_and_drift_routes_refuse_with_the_error_envelope(url, method, path, status, fragment):
    response = requests.request(method, url + path, timeout=TIMEOUT)
    assert response.status_code == status and fragment in response.json()["error"], response.text


# --- promotion gate -------------------------------------------------------------------------------


def test_gate_refuses_records_and_promotes_and_the_server_follows(trained_versions, tmp_path):
    config = write_config(tmp_path / "configuration.yaml", {MODEL_NAME: clothes(trained_versions, {"stable": "v1", "latest": "v2"})})
    env = {"MODEL_SERVER_CONFIG": str(config)}
    strict = run_training("promote", MODEL_NAME, "v2", "--test-limit", "300", "--min-improvement", "0.5", env=env)
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "REFUSED: clothes:v2 does not replace v1 as stable" in strict.stdout and "overall:" in strict.stdout
    record = json.loads((tmp_path / "promotions.json").read_text())["models"][MODEL_NAME]
    assert record["stable"] is None and record["decisions"][0]["accepted"] is False
    assert record["decisions"][0]["images"] == 300 and record["decisions"][0]["policy"]["min_improvement"] == 0.5

    lenient = ["--min-improvement", "-1", "--max-class-regression", "1", "--max-slice-regression", "1"]
    passed = run_training("promote", MODEL_NAME, "v2", "--test-limit", "300", *lenient, env=env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "PROMOTED: clothes:v2 replaces v1 as stable" in passed.stdout
    assert json.loads((tmp_path / "promotions.json").read_text())["models"][MODEL_NAME]["stable"] == "v2"
    again = run_training("promote", MODEL_NAME, "v2", env=env)
    assert again.returncode == 0 and "already stable" in again.stdout

    server = Server(config, free_port(), tmp_path / "serve.log")
    try:
        server.wait_ready()
        assert requests.get(f"{server.url}/models/{MODEL_NAME}/stable", timeout=TIMEOUT).json()["version"] == "v2"
        typed = requests.post(f"{server.url}/classify", json={"images": [[[0] * 28] * 28], "model": MODEL_NAME}, timeout=TIMEOUT).json()
        assert typed["version"] == "v2"  # default_version is the stable alias
    finally:
        server.stop()


# --- drift monitoring -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def drift_server(trained_versions, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("drift")
    monitoring = {**yaml.safe_load((ROOT / "configuration.yaml").read_text())["monitoring"], "log_sample_rate": 0.1, "log_max_per_second": 1000, "refresh_seconds": 1.0}
    config = write_config(tmp / "configuration.yaml", {MODEL_NAME: clothes(trained_versions, {"stable": "v1"})}, monitoring=monitoring)
    server = Server(config, free_port(), tmp / "serve.log")
    server.monitoring = tmp / "monitoring"
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_clean_held_out_traffic_raises_no_drift(drift_server, data):
    probe = DriftProbe(f"{drift_server.url}/models/{MODEL_NAME}/v1")
    result = probe.false_alarms(data.x_test[TINY_TEST_IMAGES : TINY_TEST_IMAGES + 3000].astype(np.float32))
    assert result["checks"] >= 25 and result["false_alarms"] == 0, result


@pytest.mark.parametrize("shift", ["inverted", "brightness", "occlusion"])
def test_shifted_traffic_raises_drift_within_the_documented_requests(drift_server, data, shift):
    probe = DriftProbe(f"{drift_server.url}/models/{MODEL_NAME}/v1")
    clean = data.x_test[4000:5000].astype(np.float32)
    shifted = apply_shift(RECIPE.shifts[shift], data.x_test[5000 : 5000 + DETECTION_BOUND, ..., None])
    result = probe.detection_delay(clean, shifted)
    assert not result["clean_window_drifted"] and result["delay"] is not None, result
    assert result["delay"] <= DETECTION_BOUND and result["statistics"]

    time.sleep(1.1)  # the gauges refresh at most once a second, on a prediction
    probe.send(shifted[:1])
    # ... after its answer, off the request's path: another entry worker may answer /metrics before that refresh ends
    # every sample also carries the replica's name (serving/protocols/prometheus.py), first
    drifted, window = (
        r'serving_drift_detected\{replica="[^"]+",model="clothes",[^}]*statistic="any",version="v1"\} 1\.0',
        r'serving_drift_window_size\{replica="[^"]+",model="clothes",[^}]*version="v1"\} 1000\.0',
    )
    deadline = time.monotonic() + 5
    while not (re.search(drifted, metrics := requests.get(f"{drift_server.url}/metrics", timeout=TIMEOUT).text) and re.search(window, metrics)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert re.search(drifted, metrics), [line for line in metrics.splitlines() if "drift_detected" in line and 'statistic="any"' in line]
    assert re.search(window, metrics)


def test_samples_of_inputs_and_outputs_reach_the_data_log(drift_server, data):
    DriftProbe(f"{drift_server.url}/models/{MODEL_NAME}/v2").send(data.x_test[:400].astype(np.float32), per_request=10)
    logs = list((drift_server.monitoring / "predictions" / "data").glob("data.*.log"))
    records = [json.loads(line) for path in logs for line in path.read_text().splitlines()]
    records = [r for r in records if r["model"] == MODEL_NAME and r["version"] == "v2"]  # v1 gets traffic from the drift tests
    assert 10 <= len(records) <= 100, len(records)  # log_sample_rate 0.1 of 400 predictions
    record = records[-1]
    assert len(record["pixels"]) == 784 and 0 <= record["predicted_class"] < 10 and 0 < record["confidence"] <= 1
    assert record["mean_intensity"] == pytest.approx(np.mean(record["pixels"]), abs=0.01)


def test_sampled_records_carry_the_request_id_of_their_answer(drift_server, data):
    """Every record in the data log names the request it came from: the X-Request-Id its answer carried."""
    url = f"{drift_server.url}/models/{MODEL_NAME}/v2"
    sent = set()
    with requests.Session() as session:
        for index in range(300):
            response = session.post(url, json={"images": [data.x_test[1000 + index].tolist()]}, headers={"X-Request-Id": f"lifecycle-{index}"}, timeout=TIMEOUT)
            assert response.status_code == 200 and response.headers["X-Request-Id"] == f"lifecycle-{index}"
            sent.add(f"lifecycle-{index}")
    logs = list((drift_server.monitoring / "predictions" / "data").glob("data.*.log"))
    records = [json.loads(line) for path in logs for line in path.read_text().splitlines()]
    ours = [r for r in records if str(r.get("x_request_id", "")).startswith("lifecycle-")]
    assert 10 <= len(ours) <= 100 and all(r["x_request_id"] in sent for r in ours), len(ours)  # log_sample_rate 0.1
    for record in ours:
        index = int(record["x_request_id"].split("-")[1])
        assert record["mean_intensity"] == pytest.approx(float(np.mean(data.x_test[1000 + index])), abs=0.01)
