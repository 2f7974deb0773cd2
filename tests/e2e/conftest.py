"""A real `bentoml serve` of service.py, with quickly trained real models in a temporary store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--epochs", "1", "--train-limit", "3000", "--test-limit", "500", "--quiet", "--no-download"]
LIMITS = {"max_body_bytes": 1_000_000, "max_batch_images": 64, "max_queue_images": 256}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_training(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "train_and_save.py"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="session")
def trained_versions() -> list[str]:
    versions = ["v1", "v2"]
    for version in versions:
        result = run_training("--version", version, "--force", *TINY)
        assert result.returncode == 0, result.stderr[-3000:]
    return versions


def write_config(path: Path, versions: list[str], aliases: dict[str, str], runner_dispatcher: bool = False, **clothes) -> Path:
    """The repository's configuration, serving ``versions`` with test limits; files resolved for ``path``.

    Monitoring logs go next to ``path`` (``monitoring/``); ``clothes`` replaces keys of the clothes section.
    """
    base = yaml.safe_load((ROOT / "configuration.yaml").read_text())
    monitor = base["services"]["clothes"]["monitoring"]["options"]
    monitor["log_config_file"] = str(ROOT / monitor["log_config_file"])
    monitor["log_path"] = str(path.parent / "monitoring")
    base["clothes"]["promotion"]["record"] = str(path.parent / "promotions.json")
    for version in versions:
        runner = base["services"].setdefault(f"clothes-{version}", {})
        runner["batching"] = {**runner.get("batching", {}), "enabled": runner_dispatcher}
    base["clothes"]["versions"] = versions
    base["clothes"]["aliases"] = aliases
    base["clothes"]["limits"] = LIMITS
    base["clothes"].update(clothes)
    path.write_text(yaml.safe_dump(base))
    return path


class Server:
    def __init__(self, config: Path, port: int, log: Path):
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        env = {**os.environ, "CLOTHES_CONFIG": str(config)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bentoml", "serve", "service:Clothes", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_ready(self, timeout: float = 180) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"bentoml serve exited with {self.process.returncode}:\n{self.log.read_text()[-4000:]}")
            try:
                if requests.get(f"{self.url}/readyz", timeout=10).status_code == 200:
                    return time.monotonic() - started
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"not ready after {timeout} s:\n{self.log.read_text()[-4000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)


@pytest.fixture(scope="session")
def server(trained_versions, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    config = write_config(tmp / "configuration.yaml", trained_versions, {"stable": "v1", "latest": "v2"})
    srv = Server(config, free_port(), tmp / "serve.log")
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def url(server) -> str:
    return server.url
