"""Start the benchmarked servers on free loopback ports, wait until they answer, stop their process groups.

    >>> with launch("served-tensorflow", log_dir) as server:
    ...     server.ready_after_s, server.url + LOAD["json"].path

``served`` and ``served-tensorflow`` are `bentoml serve service:ModelServer` (as `make serve`) with
the repository's configuration.yaml written to a file of the run (``MODEL_SERVER_CONFIG``), every
version on one engine: ONNX Runtime (the default) or TensorFlow. ``served-process`` puts every version
in a runner process (``placement: process``), ``served-2`` runs two entry workers. ``baseline`` is the course's Flask
server (clothes v1 only), ``floor`` a bare ASGI app that parses each scenario's body and answers.
``handwritten-1`` and ``handwritten-2`` are the hand-written peers (bench/handwritten.py: Starlette,
onnxruntime and orjson on clothes v1's stored model.onnx, at the course's route only) on uvicorn with
1 and 2 workers; a multi-worker peer is ready once every worker has answered /readyz.
A served server's gRPC port (``grpc.port``) is a free one too (``MODEL_SERVER_GRPC_PORT``), at
``server.grpc_target``; only the served servers answer the gRPC scenarios.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import yaml

from bench import baseline_flask
from bench.bodies import Body
from bench.scenarios import Scenario
from config.settings import load_yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
READY_PATH = "/readyz"
# The served servers and their engine; those in SERVED_CHANGES change single settings of configuration.yaml.
ENGINES = {"served": "onnxruntime", "served-process": "onnxruntime", "served-2": "onnxruntime", "served-tensorflow": "tensorflow"}
SERVED_CHANGES = {
    "served-process": {"runners": {"placement": "process"}},  # every version in a runner process of its own
    "served-2": {"entry": {"workers": 2}},  # two entry workers, every in-process engine in each
}
HANDWRITTEN = {"handwritten-1": 1, "handwritten-2": 2}  # the hand-written peers and their uvicorn workers
HANDWRITTEN_PATH = baseline_flask.PATH  # bench/handwritten.py serves the course's clothes v1 route, as the baseline
NAMES = (*ENGINES, *HANDWRITTEN, "baseline", "floor")
WORKERS_READY_TIMEOUT_S = 30  # how long a multi-worker peer's other workers may take after the first answered
STOP_GRACE_S = 5
# Service settings that would make "served" differ from what the run's configuration file says.
TUNING_VARIABLES = ("MODEL_SERVER_CONFIG", "BENTOML_CONFIG", "BENTOML_CONFIG_OPTIONS", "MODEL_SERVER_RUNTIME")  # the last: each server its own
GRPC_PORT_ENV = "MODEL_SERVER_GRPC_PORT"  # config/settings.py: overrides grpc.port


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def write_config(directory: Path, engine: str = "onnxruntime", changes: dict | None = None, name: str | None = None) -> Path:
    """The repository's configuration.yaml with every version on ``engine``, as ``directory``/configuration-<engine>.yaml.

    Per-version engine overrides are dropped, so that every version runs on ``engine`` (a version
    without a verified ONNX export still runs on TensorFlow: the report names each version's engine).
    Files are resolved for the new place; monitoring logs go to ``directory``/monitoring. ``changes``
    replace single keys of top-level sections, e.g. ``{"monitoring": {"enabled": False}}``.
    """
    config = load_yaml((ROOT / "configuration.yaml").read_text(), ROOT / "configuration.yaml")
    config.setdefault("runners", {})["engine"] = engine
    config.setdefault("grpc", {})["host"] = HOST  # on loopback, as the HTTP port (the port comes from GRPC_PORT_ENV)
    for model in config["models"].values():
        if isinstance(model.get("versions"), dict):
            for overrides in model["versions"].values():
                (overrides or {}).pop("engine", None)
    monitor = config.get("entry", {}).get("monitoring", {}).get("options", {})
    if monitor.get("log_config_file"):
        monitor["log_config_file"] = str(ROOT / monitor["log_config_file"])
    if "log_path" in monitor:
        monitor["log_path"] = str(directory / "monitoring")
    if config.get("promotion_record"):
        config["promotion_record"] = str(ROOT / config["promotion_record"])
    for section, values in (changes or {}).items():
        config[section] = {**config.get(section, {}), **values}
    path = directory / f"configuration-{name or engine}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def import_model(home: Path, path: Path, name: str, *flags: str) -> None:
    """``train_and_save.py import path --name name --version v1 *flags`` into the scratch store under ``home``."""
    env = {**os.environ, "BENTOML_HOME": str(home / "bentoml"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, str(ROOT / "train_and_save.py"), "import", str(path), "--name", name, "--version", "v1", *flags]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)


def serving_only(home: Path, models: list[str], name: str) -> Path:
    """A configuration serving v1 of ``models`` alone (no pipelines, no course routes, no feedback journal), on ONNX Runtime."""
    config = write_config(home, "onnxruntime", {"feedback": {"enabled": False}}, name)
    settings = load_yaml(config.read_text(), config)
    settings.update(models={model: {"versions": ["v1"]} for model in models}, pipelines={}, course={})
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    return config


def serves(name: str, scenario: Scenario) -> bool:
    """Whether a server answers a scenario: the baseline and the hand-written peers have only the
    course's clothes v1 route (JSON, raw bytes, image uploads), and only the served servers speak gRPC."""
    if scenario.grpc:
        return name in ENGINES
    if name in HANDWRITTEN:
        return scenario.path == HANDWRITTEN_PATH
    return name != "baseline" or scenario.path == baseline_flask.PATH


def server_command(name: str, port: int) -> list[str]:
    if name in ENGINES:  # exactly `make serve`, on loopback and a free port
        return [str(BIN / "bentoml"), "serve", "service:ModelServer", "--host", HOST, "--port", str(port)]
    if name == "baseline":
        return [str(BIN / "python"), "-m", "bench.baseline_flask", "--host", HOST, "--port", str(port)]
    if name == "floor" or name in HANDWRITTEN:
        workers = ["--workers", str(HANDWRITTEN[name])] if HANDWRITTEN.get(name, 1) > 1 else []
        return [
            str(BIN / "python"),
            "-m",
            "uvicorn",
            "bench.floor:app" if name == "floor" else "bench.handwritten:app",
            "--host",
            HOST,
            "--port",
            str(port),
            *workers,
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    raise ValueError(f"unknown server {name!r}; known: {', '.join(NAMES)}")


def server_environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in TUNING_VARIABLES}
    return {**env, "BENTOML_DO_NOT_TRACK": "true", "TF_CPP_MIN_LOG_LEVEL": "2"}


class ServerNotReady(RuntimeError):
    """A server died or timed out before answering /readyz; ``log_tail`` holds the end of its output."""

    def __init__(self, message: str, log_tail: str):
        last_line = next((line.strip() for line in reversed(log_tail.splitlines()) if line.strip()), "(empty log)")
        super().__init__(f"{message}; its log ends with: {last_line}")
        self.log_tail = log_tail


class Server:
    def __init__(self, name: str, log_path: Path, env: dict[str, str] | None = None):
        self.name = name
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.grpc_port = next(port for port in iter(free_port, None) if port != self.port) if name in ENGINES else None
        self.grpc_target = f"{HOST}:{self.grpc_port}" if self.grpc_port else None
        if self.grpc_port:  # never the configured 8001, which another server on the machine may hold
            env = {GRPC_PORT_ENV: str(self.grpc_port), **(env or {})}
        self.ready_after_s: float | None = None
        self.first_prediction_s: float | None = None
        self.killed_after_grace = 0
        with log_path.open("w") as log:
            self.process = subprocess.Popen(
                server_command(name, self.port),
                cwd=ROOT,
                env={**server_environment(), **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started = time.monotonic()

    def wait_ready(self, timeout_s: float) -> float:
        """Seconds from launch to the first 200 on /readyz; raise if the server dies or times out."""
        while time.monotonic() - self.started < timeout_s:
            if self.process.poll() is not None:
                raise ServerNotReady(f"{self.name} exited with {self.process.returncode} before ready", self.log_tail())
            if get_status(self.url + READY_PATH) == 200:
                self.ready_after_s = time.monotonic() - self.started
                self.wait_workers()
                return self.ready_after_s
            time.sleep(0.1)
        raise ServerNotReady(f"{self.name} not ready after {timeout_s:.0f} s", self.log_tail())

    def wait_workers(self) -> None:
        """A multi-worker peer: poll /readyz (its answer is the worker's process id) until every worker has
        answered, for at most WORKERS_READY_TIMEOUT_S, so that its load does not start on one worker."""
        workers, answered = HANDWRITTEN.get(self.name, 1), set()
        deadline = time.monotonic() + WORKERS_READY_TIMEOUT_S
        while workers > 1 and len(answered) < workers and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(self.url + READY_PATH, timeout=2) as response:
                    answered.add(response.read())
            time.sleep(0.05)

    def time_first_prediction(self, path: str, body: Body, timeout_s: float = 60) -> float | None:
        """Seconds from launch to the first 2xx answer to ``body`` at ``path`` (None: no 2xx within ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status, _ = probe(self.url + path, body)
            if status is not None and status < 300:
                self.first_prediction_s = time.monotonic() - self.started
                return self.first_prediction_s
            time.sleep(0.05)
        return None

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM the launched process group, SIGKILL it and every descendant left after ``grace_s``.

        BentoML starts each worker in a session of its own, out of reach of the group's signal, so the
        workers are tracked by id (and start time, as ids get reused) and killed once the arbiter that
        could restart them is dead. ``killed_after_grace`` counts the processes that needed SIGKILL.
        """
        tree = {self.process.pid: _start_time(self.process.pid)}
        self._track_descendants(tree)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(_alive(pid, started) for pid, started in tree.items()):
            if self.process.poll() is None:
                self._track_descendants(tree)
            time.sleep(0.1)
        self.killed_after_grace = sum(_alive(pid, started) for pid, started in tree.items())
        _kill_all(tree)  # the launched process first: dicts keep insertion order
        self.process.wait(timeout=30)

    def _track_descendants(self, tree: dict[int, str | None]) -> None:
        for pid in descendants(self.process.pid):
            tree.setdefault(pid, _start_time(pid))

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def descendants(pid: int) -> list[int]:
    """Ids of every process below ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, pending = [], [pid]
    while pending:
        below = children.get(pending.pop(), [])
        found += below
        pending += below
    return found


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name: state, ppid, ..., start time at index 19."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[19] if fields else None


def _alive(pid: int, started: str | None) -> bool:
    """Still running and still the same process (ids get reused); zombies count as gone."""
    fields = _stat_fields(pid)
    return fields is not None and fields[19] == started and fields[0] != "Z"


def _kill_all(tree: dict[int, str | None]) -> None:
    for pid, started in tree.items():
        if _alive(pid, started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def get_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, urllib.error.URLError):
        return None


def probe(url: str, body: Body, timeout_s: float = 30) -> tuple[int | None, str]:
    """One POST of a benchmark body, with the headers wrk sends (no Content-Type when the body has none):
    its status and the start of its answer, to explain errors."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
    try:
        connection.request("POST", parts.path, body=body.path.read_bytes(), headers=body.request_headers())
        response = connection.getresponse()
        return response.status, response.read(200).decode(errors="replace")
    except OSError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()


@contextlib.contextmanager
def launch(name: str, log_dir: Path, ready_timeout_s: float = 300, env: dict[str, str] | None = None) -> Iterator[Server]:
    """A running, ready server (``env``: extra environment, over the served configuration written into
    ``log_dir``); stopped on exit, also on errors."""
    if name in ENGINES:
        env = {"MODEL_SERVER_CONFIG": str(write_config(log_dir, ENGINES[name], SERVED_CHANGES.get(name), name)), **(env or {})}
    server = Server(name, log_dir / f"{name}-{time.monotonic_ns()}.log", env)
    try:
        server.wait_ready(ready_timeout_s)
        yield server
    finally:
        server.stop()
