"""The image itself: lean, non-root, healthy by its own HEALTHCHECK, and draining on `docker stop`."""

from __future__ import annotations

import json
import threading
import time

import requests

from tests.container.helpers import FIGURES, docker
from tests.e2e.conftest import CLOTHES as MODEL_NAME
from training.recipes.clothes import load_data

MAX_IMAGE_BYTES = 0.65e9  # 0.58 GB measured with every version on ONNX Runtime (docs/container.md); TensorFlow alone is 1 GB


def container_exec(container, command: str) -> str:
    return docker("exec", container.id, "sh", "-c", command).stdout


def test_image_is_lean(image):
    size = int(docker("image", "inspect", image, "--format", "{{.Size}}").stdout)
    assert size <= MAX_IMAGE_BYTES, f"{image} is {size / 1e9:.2f} GB (limit {MAX_IMAGE_BYTES / 1e9} GB): see docs/container.md"
    probe = "for tool in gcc cc g++ make git curl uv; do command -v $tool; done; ls -d /app/.venv/lib/python3*/site-packages/tensorflow/include 2>/dev/null; true"
    found = docker("run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c", probe).stdout.split()
    assert found == [], f"build tools or build-only files in the image: {found}"
    # every version here runs on ONNX Runtime: scripts/bentofile.py leaves TensorFlow out of the image
    engines = docker(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "python",
        image,
        "-c",
        "import importlib.util as u; print(u.find_spec('onnxruntime') is not None, u.find_spec('tensorflow') is not None)",
    ).stdout.split()
    assert engines == ["True", "False"], engines


def test_runs_as_non_root(image, container):
    assert docker("image", "inspect", image, "--format", "{{.Config.User}}").stdout.strip() == "bentoml"
    assert container_exec(container, "id -u").strip() != "0"
    # every process of the server (bentoml serve, the entry service, one per runner): uid != 0
    uids = container_exec(container, "for p in /proc/[0-9]*; do [ -r $p/status ] && awk '/^Uid:/ {print $2}' $p/status; done").split()
    assert len(uids) >= 4 and "0" not in uids, uids


def test_healthcheck_reports_healthy(container):
    deadline = time.monotonic() + 90
    status = ""
    while time.monotonic() < deadline:
        state = json.loads(docker("inspect", "--format", "{{json .State.Health}}", container.id).stdout)
        status = state["Status"]
        if status == "healthy":
            break
        assert status == "starting", state
        time.sleep(1)
    assert status == "healthy", state


def test_stop_drains_in_flight_requests(new_container):
    """`docker stop` (SIGTERM, then up to 30 s): requests sent before it complete with 200."""
    target = new_container()
    images = load_data(allow_download=False).x_test[:64]
    body = json.dumps({"images": images.tolist()}).encode()
    url = f"{target.url}/models/{MODEL_NAME}/v2"
    results: list[tuple[float, float, object]] = []  # (sent, answered, status or exception name)
    lock = threading.Lock()

    def client() -> None:
        with requests.Session() as session:
            while True:
                sent = time.monotonic()
                try:
                    outcome = session.post(url, data=body, headers={"content-type": "application/json"}, timeout=60).status_code
                except requests.RequestException as exc:
                    outcome = type(exc).__name__
                with lock:
                    results.append((sent, time.monotonic(), outcome))
                if outcome != 200:
                    return

    clients = [threading.Thread(target=client, daemon=True) for _ in range(4)]
    for thread in clients:
        thread.start()
    time.sleep(3)
    stop_sent = time.monotonic()
    docker("stop", "-t", "30", target.id, timeout=60)
    stop_seconds = time.monotonic() - stop_sent
    for thread in clients:
        thread.join(timeout=30)

    before_stop = [r for r in results if r[0] < stop_sent]
    in_flight = [r for r in before_stop if r[1] > stop_sent]
    failed = [r for r in before_stop if r[2] != 200]
    FIGURES["docker stop"] = f"{stop_seconds:.1f} s, {len(in_flight)} requests in flight at SIGTERM, all answered 200: {not failed}"
    assert len(before_stop) >= 8, results
    assert in_flight, "no request was in flight when docker stop was sent"
    assert not failed, f"requests sent before docker stop failed: {failed}"
    state = json.loads(docker("inspect", "--format", "{{json .State}}", target.id).stdout)
    assert state["ExitCode"] == 0 and not state["OOMKilled"], state  # 137 would mean killed after the 30 s
    assert stop_seconds < 30
