"""Start the benchmarked servers on free loopback ports, wait until they answer, stop their process groups.

    >>> with launch("floor", log_dir) as server:
    ...     server.ready_after_s, server.predict_url
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
PREDICT_PATH = "/models/clothes/v1"
READY_PATH = "/readyz"
NAMES = ("served", "baseline", "floor")
# Service settings that would make "served" differ from what `make serve` runs.
TUNING_VARIABLES = ("CLOTHES_CONFIG", "BENTOML_CONFIG", "BENTOML_CONFIG_OPTIONS")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def server_command(name: str, port: int) -> list[str]:
    if name == "served":  # exactly `make serve`, on loopback and a free port
        return [str(BIN / "bentoml"), "serve", "service:Clothes", "--host", HOST, "--port", str(port)]
    if name == "baseline":
        return [str(BIN / "python"), "-m", "bench.baseline_flask", "--host", HOST, "--port", str(port)]
    if name == "floor":
        return [
            str(BIN / "python"), "-m", "uvicorn", "bench.floor:app", "--host", HOST, "--port", str(port),
            "--no-access-log", "--log-level", "warning",
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
    def __init__(self, name: str, log_path: Path):
        self.name = name
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.predict_url = self.url + PREDICT_PATH
        self.ready_after_s: float | None = None
        with log_path.open("w") as log:
            self.process = subprocess.Popen(
                server_command(name, self.port), cwd=ROOT, env=server_environment(),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.started = time.monotonic()

    def wait_ready(self, timeout_s: float) -> float:
        """Seconds from launch to the first 200 on /readyz; raise if the server dies or times out."""
        while time.monotonic() - self.started < timeout_s:
            if self.process.poll() is not None:
                raise ServerNotReady(f"{self.name} exited with {self.process.returncode} before ready", self.log_tail())
            if get_status(self.url + READY_PATH) == 200:
                self.ready_after_s = time.monotonic() - self.started
                return self.ready_after_s
            time.sleep(0.1)
        raise ServerNotReady(f"{self.name} not ready after {timeout_s:.0f} s", self.log_tail())

    def stop(self, grace_s: float = 20) -> None:
        """SIGTERM the whole process group, SIGKILL what is left after ``grace_s``."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=grace_s)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def get_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, urllib.error.URLError):
        return None


def probe(url: str, body_path: Path, content_type: str) -> tuple[int | None, str]:
    """One POST of a benchmark body: its status and the start of its answer, to explain errors."""
    request = urllib.request.Request(url, data=body_path.read_bytes(), headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(200).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(200).decode(errors="replace")
    except (OSError, urllib.error.URLError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def launch(name: str, log_dir: Path, ready_timeout_s: float = 300) -> Iterator[Server]:
    """A running, ready server; its process group is stopped on exit, also on errors."""
    server = Server(name, log_dir / f"{name}-{time.monotonic_ns()}.log")
    try:
        server.wait_ready(ready_timeout_s)
        yield server
    finally:
        server.stop()
