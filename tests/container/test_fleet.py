"""The image as a fleet, with real Docker: Redis from deploy/redis/Dockerfile (Debian's redis-server on the
local base image) and two containers of the model server's image, made a fleet by the environment alone
(MODEL_SERVER_STATE_BACKEND, MODEL_SERVER_STATE_URL, MODEL_SERVER_REPLICA), as deploy/compose.yaml does.
A change through one replica reaches the other; Redis's container is removed and started again on its
volume, and the state is still there."""

from __future__ import annotations

import time

import pytest
import requests
import yaml

from tests.container.conftest import removed
from tests.container.helpers import FIGURES, docker, start_container
from tests.e2e.conftest import ROOT, free_port

REDIS_IMAGE = "model-server-redis:test"
TIMEOUT = 60


@pytest.fixture(scope="module")
def redis_image(image) -> str:
    """deploy/redis/Dockerfile, built on the base image the model server's image was built on."""
    started = time.monotonic()
    docker("build", "--network", "host", "-t", REDIS_IMAGE, str(ROOT / "deploy" / "redis"), timeout=600)
    FIGURES["redis image build"] = f"{time.monotonic() - started:.0f} s"
    return REDIS_IMAGE


def run_redis(image: str, port: int, volume: str) -> str:
    """Redis as deploy/compose.yaml runs it (append-only on a volume), on a free loopback port."""
    container = docker(
        "run", "-d", "--network", "host", "-v", f"{volume}:/data", image, "--appendonly", "yes", "--dir", "/data", "--bind", "127.0.0.1", "--port", str(port)
    ).stdout.strip()
    deadline = time.monotonic() + 30
    while docker("exec", container, "redis-cli", "-p", str(port), "ping", check=False).stdout.strip() != "PONG":
        assert time.monotonic() < deadline, docker("logs", container, check=False).stderr
        time.sleep(0.2)
    return container


@pytest.fixture
def fleet_config(test_config, tmp_path):
    config = yaml.safe_load(test_config.read_text())
    config["live"] = {**config.get("live", {}), "admin_without_token": True}
    path = tmp_path / "configuration.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o644)
    return path


def test_two_containers_follow_one_desired_state_in_redis_and_it_survives_redis(image, redis_image, fleet_config):
    port, volume = free_port(), f"model-server-test-redis-{free_port()}"
    redis = run_redis(redis_image, port, volume)
    replicas = []
    try:
        for name in ("one", "two"):
            env = {"MODEL_SERVER_STATE_BACKEND": "redis", "MODEL_SERVER_STATE_URL": f"redis://127.0.0.1:{port}/0", "MODEL_SERVER_REPLICA": name}
            replicas.append(start_container(image, fleet_config, env=env))
        for replica in replicas:
            replica.wait_ready()
        one, two = replicas
        moved = requests.put(f"{one.url}/models/clothes/aliases/stable", json={"weights": {"v1": 50, "v2": 50}}, timeout=TIMEOUT)
        assert moved.status_code == 200, moved.text
        answered = time.monotonic()
        while requests.get(f"{two.url}/models/clothes", timeout=5).json()["aliases"]["stable"] != {"v1": 50, "v2": 50}:
            assert time.monotonic() - answered < 5, "the other container never followed"
            time.sleep(0.05)
        FIGURES["fleet of two containers: an alias split through one, served by the other"] = f"{time.monotonic() - answered:.2f} s after the answer"
        status = requests.get(f"{two.url}/fleet", timeout=5).json()
        assert {r["replica"] for r in status["replicas"]} == {"one", "two"} and status["backend"].startswith("redis 127.0.0.1")

        docker("stop", redis, timeout=60)  # Redis gone (a graceful stop, as `docker compose restart` does): serving goes on, admin calls answer 503
        docker("rm", redis)
        for _ in range(4):  # whichever of its entry workers answers (one may have started as Redis went)
            served = requests.post(f"{two.url}/models/clothes/v2", json={"image": [[0] * 28] * 28}, timeout=TIMEOUT)
            assert served.status_code == 200, served.text
        refused = requests.put(f"{two.url}/models/clothes/aliases/stable", json={"version": "v2"}, timeout=TIMEOUT)
        assert refused.status_code == 503 and "state backend" in refused.json()["error"], refused.text
        redis = run_redis(redis_image, port, volume)  # a new container on the same volume
        deadline = time.monotonic() + 30
        while (status := requests.get(f"{one.url}/fleet", timeout=5)).status_code != 200:
            assert time.monotonic() < deadline, status.text
            time.sleep(0.5)
        assert status.json()["desired"]["models"]["clothes"]["aliases"]["stable"] == {"v1": 50, "v2": 50}
    finally:
        for number, replica in enumerate(replicas, 1):
            removed(replica, f"fleet container {number}")
        docker("rm", "-f", redis, check=False)
        docker("volume", "rm", volume, check=False)
