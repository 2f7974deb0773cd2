"""Both engines behind the same routes: the default server runs ONNX Runtime without TensorFlow in its
runners; a server configured with ``engine: tensorflow`` answers the same; a version without a
verified ONNX export runs on TensorFlow whatever the configuration asks."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
import requests
import yaml
from PIL import Image

from models import store
from tests.e2e.conftest import CLOTHES, Server, clothes, engine_pids, free_port, ready_server, write_config
from training.recipes.clothes import load_data

TIMEOUT = 30


def maps_tensorflow(pid: int) -> bool:
    return "libtensorflow" in Path(f"/proc/{pid}/maps").read_text()


@pytest.fixture(scope="module")
def tf_server(trained_versions, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tensorflow")
    config = write_config(tmp / "configuration.yaml", {CLOTHES: clothes(trained_versions, {"stable": "v1", "latest": "v2"})})
    served = yaml.safe_load(config.read_text())
    served["runners"]["engine"] = "tensorflow"
    config.write_text(yaml.safe_dump(served))
    with ready_server(config, free_port(), tmp / "serve.log") as srv:
        yield srv


@pytest.fixture(scope="module")
def images():
    data = load_data(allow_download=False)
    return data.x_test[:500], data.y_test[:500]


def engines_of(url: str, seconds: float = 60) -> dict[str, str | None]:
    """Each version's engine as the answering entry worker knows it, once it knows every one (for up to
    ``seconds``): /readyz answered by one entry worker says nothing of the other's view of slow runners
    (CI's process placement: TensorFlow runners still None in the other worker after ready)."""
    deadline = time.monotonic() + seconds
    while True:
        engines = {v["version"]: v["engine"] for v in requests.get(f"{url}/models/{CLOTHES}", timeout=TIMEOUT).json()["versions"]}
        if None not in engines.values() or time.monotonic() > deadline:
            return engines
        time.sleep(0.5)


def maps_onnxruntime(pid: int) -> bool:
    return "onnxruntime_pybind11_state" in Path(f"/proc/{pid}/maps").read_text()


def test_the_default_engine_is_onnx_runtime_and_no_served_process_loads_tensorflow(server):
    assert engines_of(server.url) == {"v1": "onnxruntime", "v2": "onnxruntime"}
    for version in ("v1", "v2"):
        pids = engine_pids(server, f"{CLOTHES}-{version}")
        assert pids, f"no process runs the engine of {version}"
        assert all(maps_onnxruntime(pid) for pid in pids), f"a process running {version} has no ONNX Runtime"
        assert not any(maps_tensorflow(pid) for pid in pids), f"a process running {version} mapped TensorFlow's library"
    from bench.servers import descendants

    tree = [server.process.pid, *descendants(server.process.pid)]  # `bentoml serve`, the entry workers (and their gRPC), runners, spares
    assert len(tree) >= 3 and not [pid for pid in tree if maps_tensorflow(pid)], "a process of the ONNX Runtime server mapped TensorFlow"


def test_a_tensorflow_runner_is_what_the_configuration_asks(tf_server):
    assert engines_of(tf_server.url) == {"v1": "tensorflow", "v2": "tensorflow"}
    assert all(maps_tensorflow(pid) for pid in engine_pids(tf_server, f"{CLOTHES}-v1"))


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_both_engines_answer_alike_and_as_offline(server, tf_server, images, version):
    x, y = images
    answers = {}
    for name, srv in (("onnxruntime", server), ("tensorflow", tf_server)):
        rows = []
        for start in range(0, len(x), 64):
            response = requests.post(f"{srv.url}/models/{CLOTHES}/{version}", json={"images": x[start : start + 64].tolist()}, timeout=TIMEOUT)
            assert response.status_code == 200, response.text
            rows.extend(response.json()["result"])
        answers[name] = np.asarray(rows)
    np.testing.assert_allclose(answers["onnxruntime"], answers["tensorflow"], atol=1e-5)
    offline = store.load_card(CLOTHES, version).metrics["accuracy"]
    for name, probabilities in answers.items():
        assert float(np.mean(probabilities.argmax(axis=1) == y)) == pytest.approx(offline, abs=1e-9), name


def test_image_files_and_raw_batches_alike_on_both_engines(server, tf_server, images):
    x, _ = images
    buffer = io.BytesIO()
    Image.fromarray(x[7]).resize((140, 140)).save(buffer, format="PNG")
    answers = []
    for srv in (server, tf_server):
        upload = requests.post(f"{srv.url}/models/{CLOTHES}/v2", files={"image": ("g.png", buffer.getvalue(), "image/png")}, timeout=TIMEOUT)
        raw = requests.post(f"{srv.url}/models/{CLOTHES}/v1", data=x[:16].tobytes(), headers={"content-type": "application/octet-stream"}, timeout=TIMEOUT)
        assert upload.status_code == raw.status_code == 200
        answers.append((upload.json()["result"], raw.json()["result"]))
    np.testing.assert_allclose(answers[0][0], answers[1][0], atol=1e-5)
    np.testing.assert_allclose(answers[0][1], answers[1][1], atol=1e-5)


def test_a_version_without_a_verified_export_runs_on_tensorflow(trained_versions, tmp_path):
    card = store.load_card(CLOTHES, "v1")
    unverified = card.model_copy(
        update={"version": "no-onnx", "engines": {"tensorflow": card.engines["tensorflow"], "onnxruntime": {"reason": "the ONNX export disagrees with Keras"}}}
    )
    store.save(unverified, store.load_keras(CLOTHES, "v1"), force=True)
    config = write_config(tmp_path / "configuration.yaml", {CLOTHES: clothes(["v1", "no-onnx"], {"stable": "v1"})})
    srv = Server(config, free_port(), tmp_path / "serve.log")
    try:
        srv.wait_ready()
        assert engines_of(srv.url) == {"v1": "onnxruntime", "no-onnx": "tensorflow"}
        assert requests.post(f"{srv.url}/models/{CLOTHES}/no-onnx", json={"image": [[0] * 28] * 28}, timeout=TIMEOUT).status_code == 200
        assert "runs on TensorFlow: the ONNX export disagrees with Keras" in srv.log.read_text()
    finally:
        srv.stop()
