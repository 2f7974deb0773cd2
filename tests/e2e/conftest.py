"""A real `bentoml serve` of service.py, with quickly trained real models in a temporary store.

The suite runs under one placement of the versions' engines, ``E2E_PLACEMENT`` (``inprocess``, the
default, or ``process``): `make test` runs it in process, `make test-e2e-process` again with every
version in a runner process. Tests about what only one placement has (a runner process killed, an
entry worker killed) ask for theirs in their configuration, per version.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from serving.slots import RUNTIME_ENV

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--epochs", "1", "--train-limit", "3000", "--test-limit", "500", "--quiet", "--no-download"]
CLOTHES = "clothes"
DAMAGE = "damage"
LIMITS = {"max_body_bytes": 1_000_000, "max_batch_images": 64, "max_queue_images": 256}
PLACEMENT = os.environ.get("E2E_PLACEMENT", "inprocess")
ENTRY = "model-server"  # the entry service's name: its worker processes run the in-process engines


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_training(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "train_and_save.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="session")
def trained_versions() -> list[str]:
    versions = ["v1", "v2"]
    for version in versions:
        result = run_training("train", CLOTHES, version, "--force", *TINY)
        assert result.returncode == 0, result.stderr[-3000:]
    return versions


@pytest.fixture(scope="session")
def damage_versions() -> list[str]:
    """The shipped damage versions (models/shipped/: real models, trained from the vendored images), in
    the session's store: training them takes the better part of an hour, importing them seconds."""
    from models import store

    archives = sorted((ROOT / "models" / "shipped" / DAMAGE).glob(f"*{store.ARCHIVE_SUFFIX}"))
    assert archives, "no shipped damage model: python train_and_save.py train damage v1, then ship damage v1"
    return [store.import_archive(archive, force=True)[0].split(":")[1] for archive in archives]


def damage(versions: list[str], aliases: dict[str, str], **settings) -> dict:
    """The ``models`` entry of the damage model serving ``versions``."""
    return {"versions": list(versions), "aliases": aliases, "default_version": next(iter(aliases), versions[0]), **settings}


def clothes(versions: list[str], aliases: dict[str, str], **settings) -> dict:
    """The ``models`` entry of the clothes model serving ``versions``, with the repository's promotion policy."""
    base = yaml.safe_load((ROOT / "configuration.yaml").read_text())["models"][CLOTHES]
    return {**base, "versions": list(versions), "aliases": aliases, "default_version": next(iter(aliases), versions[0]), **settings}


def write_config(path: Path, models: dict, runner_dispatcher: bool = False, limits: dict | None = None, placement: str = PLACEMENT, **sections) -> Path:
    """The repository's configuration serving ``models`` (the ``models`` section), with test limits;
    files resolved for ``path``. ``placement``: every version's, unless its own settings say.

    Monitoring logs go next to ``path`` (``monitoring/``), and the promotion record too; ``sections``
    replace top-level sections; ``limits`` overrides single limits, over ``LIMITS`` over the repository's.
    """
    base = yaml.safe_load((ROOT / "configuration.yaml").read_text())
    monitor = base["entry"]["monitoring"]["options"]
    monitor["log_config_file"] = str(ROOT / monitor["log_config_file"])
    monitor["log_path"] = str(path.parent / "monitoring")
    base["promotion_record"] = str(path.parent / "promotions.json")
    base["pipeline_metrics"] = str(ROOT / base["pipeline_metrics"])  # the shipped record: measured with the shipped versions
    base["runners"]["batching"] = {**base["runners"].get("batching", {}), "enabled": runner_dispatcher}
    base["runners"]["placement"] = placement
    base["models"] = models
    base["pipelines"] = {}  # the shipped pipelines name clothes versions; a test serving them says so
    base["course"] = {}
    base["limits"] = {**base["limits"], **LIMITS, **(limits or {})}
    base["grpc"] = {**base.get("grpc", {}), "host": "127.0.0.1"}  # loopback only; each Server picks its own port
    base.update(sections)
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    return path


def assert_error(response, status: int, *fragments: str):
    """The response is the error envelope ``{"error": "..."}`` with ``status``, naming each fragment."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    for fragment in fragments:
        assert fragment in body["error"], body["error"]


def worker_pids(srv: Server, service_name: str) -> list[int]:
    """The processes of one BentoML service under this server's `bentoml serve` (one circus watcher per service)."""
    from bench.servers import descendants

    pids = []
    for pid in descendants(srv.process.pid):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--service-name" in args and args[args.index(b"--service-name") + 1] == service_name.encode():
            pids.append(pid)
    return pids


def engine_pids(srv: Server, slot: str, placement: str = PLACEMENT) -> list[int]:
    """The processes running a slot's engine: every entry worker (in process), or the slot's runner workers."""
    return worker_pids(srv, ENTRY if placement == "inprocess" else slot)


class Server:
    def __init__(self, config: Path, port: int, log: Path, env: dict[str, str] | None = None):
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        grpc_port = free_port()
        self.grpc = f"127.0.0.1:{grpc_port}"  # the gRPC services' address (MODEL_SERVER_GRPC_PORT overrides grpc.port)
        self.log, self.config = log, config
        env = {**os.environ, "MODEL_SERVER_CONFIG": str(config), "MODEL_SERVER_GRPC_PORT": str(grpc_port), **(env or {})}
        # Each server makes its own runtime directory: one this process made (an in-process test's data
        # plane asks for it) would be shared by every server started after it.
        env.pop(RUNTIME_ENV, None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bentoml", "serve", "service:ModelServer", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log.open("a"),  # a replica started again appends
            stderr=subprocess.STDOUT,
            start_new_session=True,
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


@contextlib.contextmanager
def ready_server(config: Path, port: int, log: Path) -> Iterator[Server]:
    """A `bentoml serve` of ``config``, ready (its /readyz 200); stopped on the way out."""
    srv = Server(config, port, log)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def server(trained_versions, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    config = write_config(tmp / "configuration.yaml", {CLOTHES: clothes(trained_versions, {"stable": "v1", "latest": "v2"})})
    with ready_server(config, free_port(), tmp / "serve.log") as srv:
        yield srv


@pytest.fixture(scope="session")
def url(server) -> str:
    return server.url


@pytest.fixture(scope="session")
def server_log(server):
    """The session server's log so far, as a callable (tests/container has the container's)."""
    return lambda: server.log.read_text(errors="replace")


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One request of a SteadyLoad: monotonic send and answer times, and the status or the exception."""

    url: str
    sent: float
    answered: float
    status: int | None  # None: an exception, in ``error``
    retry_after: str | None = None
    body: bytes = b""
    error: requests.RequestException | None = None
    version: str | None = None  # the X-Model-Version of the answer

    @property
    def refused_before_answering(self) -> bool:
        """No response at all: connection refused, or closed or reset before the status line."""
        return isinstance(self.error, requests.ConnectionError) and not isinstance(self.error, requests.Timeout)


class SteadyLoad:
    """One client thread per URL, each posting ``body`` again and again on its own keep-alive session.

    Bounded: it stops after ``seconds`` or on ``stop()``. Outcomes are recorded in ``outcomes``.
    ``bodies`` gives some URLs a body (and content type) of their own.
    """

    def __init__(
        self, urls: list[str], body: bytes, seconds: float, content_type: str = "application/json", timeout: float = 30, bodies: dict[str, tuple[bytes, str]] | None = None
    ):
        self.urls, self.body, self.content_type, self.timeout = urls, body, content_type, timeout
        self.bodies = bodies or {}
        self.deadline = time.monotonic() + seconds
        self.outcomes: list[Outcome] = []
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(url,), daemon=True) for url in urls]

    def __enter__(self) -> SteadyLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)

    def _client(self, url: str) -> None:
        body, content_type = self.bodies.get(url, (self.body, self.content_type))
        with requests.Session() as session:
            while not self._stopping.is_set() and time.monotonic() < self.deadline:
                sent = time.monotonic()
                try:
                    response = session.post(url, data=body, headers={"content-type": content_type}, timeout=self.timeout)
                    outcome = Outcome(
                        url, sent, time.monotonic(), response.status_code, response.headers.get("Retry-After"), response.content, version=response.headers.get("X-Model-Version")
                    )
                except requests.RequestException as exc:
                    outcome = Outcome(url, sent, time.monotonic(), None, error=exc)
                self.outcomes.append(outcome)  # list.append is atomic
                if outcome.status != 200:
                    time.sleep(0.02)  # no busy loop against a server that refuses


MISSING_VERSION = "absent"  # never saved to the session's store


def corrupt_model(version: str) -> None:
    """Save clothes:v1 again as clothes:<version>, then overwrite its model file with junk."""
    from models import store

    card = store.load_card(CLOTHES, "v1").model_copy(update={"version": version, "description": "saved, then corrupted"})
    store.save(card, store.load_keras(CLOTHES, "v1"), force=True)
    with open(store.get(CLOTHES, version).path_of(store.MODEL_FILE), "wb") as f:
        f.write(b"not a keras archive")


def wait_for_statuses(srv: Server, expected: dict[str, str], timeout: float = 180) -> None:
    """Wait until /models/clothes lists exactly these version statuses."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        if srv.process.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {srv.process.returncode}:\n{srv.log.read_text()[-4000:]}")
        try:
            seen = requests.get(f"{srv.url}/models/clothes", timeout=5).json()["versions"]
            if {v["version"]: v["status"] for v in seen} == expected:
                return
        except (requests.RequestException, ValueError, KeyError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"statuses never became {expected}; last seen {seen}:\n{srv.log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def degraded_server(trained_versions, tmp_path_factory):
    """v1, plus a corrupt model ("broken") and one missing from the store, without strict readiness.

    Its runners also use BentoML's own adaptive dispatcher (``batching.enabled``).
    """
    from models import store

    corrupt_model("broken")
    assert not store.exists(CLOTHES, MISSING_VERSION)
    tmp = tmp_path_factory.mktemp("degraded")
    versions = ["v1", "broken", MISSING_VERSION]
    config = write_config(tmp / "configuration.yaml", {CLOTHES: clothes(versions, {"stable": "v1"})}, runner_dispatcher=True, strict_readiness=False)
    srv = Server(config, free_port(), tmp / "serve.log")
    try:
        wait_for_statuses(srv, {"v1": "ready", "broken": "unavailable", MISSING_VERSION: "unavailable"})
        yield srv
    finally:
        srv.stop()


FIGURES: list[str] = []


def report_figures(text: str) -> None:
    """Print measured figures and repeat them in the session's summary (docs/reliability.md quotes them)."""
    print(text)
    FIGURES.append(text.strip("\n"))


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("measured figures")
        for text in FIGURES:
            terminalreporter.write_line(text)
