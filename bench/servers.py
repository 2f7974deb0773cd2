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
STOP_GRACE_S = 5
# Service settings that would make "served" differ from what `make serve` runs.
TUNING_VARIABLES = ("MODEL_SERVER_CONFIG", "BENTOML_CONFIG", "BENTOML_CONFIG_OPTIONS")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def server_command(name: str, port: int) -> list[str]:
    if name == "served":  # exactly `make serve`, on loopback and a free port
        return [str(BIN / "bentoml"), "serve", "service:ModelServer", "--host", HOST, "--port", str(port)]
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
    def __init__(self, name: str, log_path: Path, env: dict[str, str] | None = None):
        self.name = name
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.predict_url = self.url + PREDICT_PATH
        self.ready_after_s: float | None = None
        self.killed_after_grace = 0
        with log_path.open("w") as log:
            self.process = subprocess.Popen(
                server_command(name, self.port), cwd=ROOT, env={**server_environment(), **(env or {})},
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
def launch(name: str, log_dir: Path, ready_timeout_s: float = 300, env: dict[str, str] | None = None) -> Iterator[Server]:
    """A running, ready server (``env``: extra environment); stopped on exit, also on errors."""
    server = Server(name, log_dir / f"{name}-{time.monotonic_ns()}.log", env)
    try:
        server.wait_ready(ready_timeout_s)
        yield server
    finally:
        server.stop()
