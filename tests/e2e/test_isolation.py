"""A version whose model cannot load is reported unavailable; the other versions keep serving.

The server (``degraded_server`` in conftest.py) serves v1, a corrupt model and a missing one without
strict readiness, and also runs BentoML's own adaptive dispatcher inside the runners (``batching.enabled``).
"""

from __future__ import annotations

import numpy as np
import requests

from tests.e2e.conftest import MISSING_VERSION


def test_other_version_serves_through_the_runner_dispatcher(degraded_server):
    response = requests.post(f"{degraded_server.url}/models/clothes/v1", json={"images": np.zeros((5, 28, 28)).tolist()}, timeout=30)
    assert response.status_code == 200 and len(response.json()["result"]) == 5


def test_broken_version_answers_503_with_reason(degraded_server):
    response = requests.post(f"{degraded_server.url}/models/clothes/broken", json={"image": np.zeros((28, 28)).tolist()}, timeout=30)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert "clothes:broken failed to load" in response.json()["error"]


def test_status_lists_the_reason(degraded_server):
    versions = {v["version"]: v for v in requests.get(f"{degraded_server.url}/models/clothes", timeout=30).json()["versions"]}
    assert versions["broken"]["status"] == "unavailable" and "failed to load" in versions["broken"]["reason"]
    assert versions["v1"] == {"version": "v1", "aliases": ["stable"], "status": "ready", "reason": None, "engine": "onnxruntime"}
    assert versions["broken"]["engine"] is None and "not in the model store" in versions[MISSING_VERSION]["reason"]


def test_readiness_without_strict_readiness_ignores_versions_that_cannot_load(degraded_server):
    """The others serve, so the replica is ready (with strict readiness it would not have started)."""
    assert requests.get(f"{degraded_server.url}/readyz", timeout=30).status_code == 200
