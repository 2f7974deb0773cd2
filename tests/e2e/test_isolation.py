"""A version whose model cannot load is reported unavailable; the other versions keep serving.

This server also runs BentoML's own adaptive dispatcher inside the runners (``batching.enabled``).
"""

from __future__ import annotations

import time

import bentoml
import numpy as np
import pytest
import requests

from models import store
from models.architectures import build
from tests.e2e.conftest import Server, free_port, write_config


@pytest.fixture(scope="module")
def broken_server(trained_versions, tmp_path_factory):
    store.save("broken", build("lenet5"), {"description": "saved, then corrupted"}, force=True)
    with open(bentoml.models.get("clothes:broken").path_of(store.MODEL_FILE), "wb") as f:
        f.write(b"not a keras archive")
    tmp = tmp_path_factory.mktemp("broken")
    config = write_config(tmp / "configuration.yaml", ["v1", "broken"], {"stable": "v1"}, runner_dispatcher=True)
    srv = Server(config, free_port(), tmp / "serve.log")
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{srv.url}/models/clothes", timeout=5).status_code == 200:
                    statuses = {v["version"]: v["status"] for v in requests.get(f"{srv.url}/models/clothes", timeout=5).json()["versions"]}
                    if statuses == {"v1": "ready", "broken": "unavailable"}:
                        break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError(srv.log.read_text()[-4000:])
        yield srv
    finally:
        srv.stop()


def test_other_version_serves_through_the_runner_dispatcher(broken_server):
    response = requests.post(f"{broken_server.url}/models/clothes/v1", json={"images": np.zeros((5, 28, 28)).tolist()}, timeout=30)
    assert response.status_code == 200 and len(response.json()["result"]) == 5


def test_broken_version_answers_503_with_reason(broken_server):
    response = requests.post(f"{broken_server.url}/models/clothes/broken", json={"image": np.zeros((28, 28)).tolist()}, timeout=30)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert "clothes:broken failed to load" in response.json()["error"]


def test_status_lists_the_reason(broken_server):
    versions = {v["version"]: v for v in requests.get(f"{broken_server.url}/models/clothes", timeout=30).json()["versions"]}
    assert versions["broken"]["status"] == "unavailable" and "failed to load" in versions["broken"]["reason"]


def test_readiness_reflects_the_failed_runner(broken_server):
    response = requests.get(f"{broken_server.url}/readyz", timeout=30)
    assert response.status_code == 503 and set(response.json()) == {"error"}
