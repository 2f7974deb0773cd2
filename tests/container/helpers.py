"""Docker helpers of the container tests (one module, so the figures they record are shared)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from pathlib import Path

import requests

from tests.e2e.conftest import free_port

CONFIG_IN_CONTAINER = "/home/bentoml/test-configuration.yaml"
FIGURES: dict[str, str] = {}  # printed at the end of the session (conftest.pytest_terminal_summary)


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result


def store_environment() -> dict[str, str]:
    """The environment this pytest was started with: tests/conftest.py points BENTOML_HOME at an empty
    temporary store, but the image is built from the user's store (where the served versions are)."""
    env = dict(os.environ)
    env.pop("BENTOML_HOME", None)
    try:
        for item in Path("/proc/self/environ").read_bytes().split(b"\0"):
            if item.startswith(b"BENTOML_HOME="):
                env["BENTOML_HOME"] = item.split(b"=", 1)[1].decode()
    except OSError:
        pass
    return env


@dataclasses.dataclass
class Container:
    id: str
    port: int
    started: float  # time.monotonic() just before `docker run`
    grpc_port: int = 0  # the gRPC services' port (MODEL_SERVER_GRPC_PORT)

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self, tail: int = 60) -> str:
        result = docker("logs", "--tail", str(tail), self.id, check=False)
        return result.stdout + result.stderr

    def wait_ready(self, timeout: float = 240) -> float:
        """Seconds from `docker run` to the first 200 of /readyz."""
        while time.monotonic() - self.started < timeout:
            if docker("inspect", "--format", "{{.State.Running}}", self.id, check=False).stdout.strip() == "false":
                raise RuntimeError(f"container {self.id[:12]} exited:\n{self.logs()}")
            try:
                if requests.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return time.monotonic() - self.started
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"container {self.id[:12]} not ready after {timeout} s:\n{self.logs()}")

    def remove(self) -> None:
        docker("rm", "-f", "-v", self.id, check=False, timeout=60)


def start_container(image: str, config: Path, env: dict[str, str] | None = None, volumes: dict[str, str] | None = None) -> Container:
    """A container of ``image`` serving ``config`` on free loopback ports, with more environment and volumes."""
    port, grpc_port = free_port(), free_port()
    started = time.monotonic()
    extra = [arg for key, value in (env or {}).items() for arg in ("-e", f"{key}={value}")]
    extra += [arg for host, inside in (volumes or {}).items() for arg in ("-v", f"{host}:{inside}")]
    result = docker(
        "run",
        "-d",
        "--network",
        "host",
        *extra,
        "-e",
        f"BENTOML_PORT={port}",
        "-e",
        "BENTOML_HOST=127.0.0.1",
        "-e",
        f"MODEL_SERVER_GRPC_PORT={grpc_port}",
        "-e",
        f"MODEL_SERVER_CONFIG={CONFIG_IN_CONTAINER}",
        "-v",
        f"{config}:{CONFIG_IN_CONTAINER}:ro",
        image,
        "serve",
    )
    return Container(result.stdout.strip(), port, started, grpc_port)
