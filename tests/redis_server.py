"""A real redis-server (Debian's, `make redis`) on a free loopback port, with append-only persistence in a
directory of the test's: stopped, killed and started again on the same data by the tests."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from tests.e2e.conftest import free_port


class RedisServer:
    def __init__(self, directory: Path, port: int | None = None):
        self.directory, self.port = directory, port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def start(self) -> RedisServer:
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory), "--appendonly", "yes", "--save", "", "--daemonize", "no"]
        self.process = subprocess.Popen(args, stdout=(self.directory / "redis.log").open("a"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_timeout=0.5).ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start:\n{(self.directory / 'redis.log').read_text()[-2000:]}")

    def stop(self, kill: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill() if kill else self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None
