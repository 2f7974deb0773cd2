"""The service's container image, run with Docker: build or reuse it, start containers, clean up.

Run by `make test-container` (or `pytest tests/container`); plain `pytest` / `make test` leave this
directory out (it needs Docker and builds an image), unless MODEL_SERVER_CONTAINER_TESTS=1.

- MODEL_SERVER_IMAGE=model-server:<version>: test that image instead of building one with
  scripts/build-container.sh (which reuses an image whose Bento inputs are unchanged).
- Containers run with `--network host` on a free port of 127.0.0.1 (BENTOML_HOST/BENTOML_PORT), with
  the e2e test configuration (limits of 1 MB and 64 images) for the image's four versions (clothes
  and damage, v1 and v2, each in its own runner, and the Project 3 routes on damage's stable) mounted
  and named by MODEL_SERVER_CONFIG. Every container started here is removed at the end, by its id.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.container.helpers import FIGURES, Container, docker, start_container, store_environment
from tests.e2e.conftest import CLOTHES, DAMAGE, ROOT, clothes, damage, write_config

HERE = Path(__file__).resolve().parent
LOG_LINES = 150


def _wanted(config) -> bool:
    if os.environ.get("MODEL_SERVER_CONTAINER_TESTS") == "1":
        return True
    for arg in config.args:
        path = Path(str(arg).split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    if collection_path != HERE / "conftest.py" and not _wanted(config):
        return True
    return None


LOGS: dict[str, str] = {}  # each container's log, kept when it is removed: printed when a test failed


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("container figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")
    if terminalreporter.stats.get("failed") or terminalreporter.stats.get("error"):
        for name, log in LOGS.items():
            terminalreporter.section(f"log of {name}")
            terminalreporter.write_line(log)


def removed(container: Container, name: str) -> None:
    LOGS[name] = container.logs(LOG_LINES)
    container.remove()


@pytest.fixture(scope="session")
def image(tmp_path_factory) -> str:
    """The image under test: $MODEL_SERVER_IMAGE, or built (or reused) by scripts/build-container.sh."""
    if os.environ.get("MODEL_SERVER_IMAGE"):
        tag = os.environ["MODEL_SERVER_IMAGE"]
        docker("image", "inspect", tag)
        FIGURES["image"] = f"{tag} (given by MODEL_SERVER_IMAGE)"
    else:
        log = tmp_path_factory.mktemp("build") / "build-container.log"
        started = time.monotonic()
        with log.open("w") as err:
            result = subprocess.run(
                ["bash", str(ROOT / "scripts" / "build-container.sh")],
                cwd=ROOT,
                env=store_environment(),
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                timeout=3600,
            )
        if result.returncode != 0:
            pytest.fail(f"scripts/build-container.sh failed ({result.returncode}):\n{log.read_text()[-4000:]}")
        tag = result.stdout.strip().splitlines()[-1]
        FIGURES["image"] = f"{tag} (build or reuse: {time.monotonic() - started:.0f} s, log {log})"
    size = int(docker("image", "inspect", tag, "--format", "{{.Size}}").stdout)
    FIGURES["image size"] = f"{size / 1e9:.2f} GB"
    return tag


BENTO_SOURCE = "/home/bentoml/bento/src"  # the Bento's code and configuration in the image


@pytest.fixture(scope="session")
def test_config(tmp_path_factory) -> Path:
    models = {CLOTHES: clothes(["v1", "v2"], {"stable": "v1", "latest": "v2"}), DAMAGE: damage(["v1", "v2"], {"stable": "v2", "latest": "v2"})}
    path = write_config(tmp_path_factory.mktemp("config") / "configuration.yaml", models, course={"project3": {"model": DAMAGE, "version": "stable"}})
    # write_config points files at this checkout; inside the container they are the Bento's.
    config = yaml.safe_load(path.read_text())
    monitor = config["entry"]["monitoring"]["options"]
    monitor["log_config_file"] = f"{BENTO_SOURCE}/serving/monitoring-logging.yaml"
    monitor["log_path"] = "/tmp/monitoring"  # writable by the container's user
    config["promotion_record"] = f"{BENTO_SOURCE}/deploy/promotions.json"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o644)  # read by the container's user
    return path


@pytest.fixture
def new_container(image, test_config):
    """Start containers of the image (removed at the end); each call returns a ready one."""
    started: list[Container] = []

    def start() -> Container:
        container = start_container(image, test_config)
        started.append(container)
        seconds = container.wait_ready()
        FIGURES[f"cold start, extra container {len(started)}"] = f"{seconds:.1f} s (docker run -> /readyz 200)"
        return container

    yield start
    for number, container in enumerate(started, 1):
        removed(container, f"extra container {number}")


@pytest.fixture(scope="session")
def container(image, test_config):
    """One container for the HTTP contract tests, ready; removed at the end of the session."""
    running = start_container(image, test_config)
    try:
        seconds = running.wait_ready()
        FIGURES["cold start"] = f"{seconds:.1f} s (docker run -> /readyz 200)"
        yield running
    finally:
        removed(running, "the contract tests' container")


@pytest.fixture(scope="session")
def url(container) -> str:
    return container.url


@pytest.fixture(scope="session")
def server_log(container):
    """The contract tests' container's log so far, as a callable (tests/e2e's server_log for a container)."""
    return lambda: container.logs(tail=1_000_000)
