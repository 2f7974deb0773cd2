"""The desired state in a JSON file: ``local`` (the runtime directory, one server) and ``file`` (durable).

Writes are compare-and-set under an exclusive lock, then renamed into place; followers notice a change by
the file's modification time (a stat every 0.1 s). Reports are files beside it, expired by their time.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import time
from pathlib import Path

from serving.fleet.backends.base import BackendUnreachable, StaleState, StateBackend
from serving.fleet.desired import DesiredState
from serving.slots import write_json

WATCH_SECONDS = 0.1


class FileBackend(StateBackend):
    kind = "file"

    def __init__(self, path: Path):
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.reports_dir = path.with_name(path.name + ".replicas")
        self._seen: int | None = None

    def describe(self) -> str:
        return f"file {self.path}"

    @contextlib.contextmanager
    def _locked(self):
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(self.lock_path, "a")
        except OSError as exc:
            raise BackendUnreachable(self, exc) from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> DesiredState | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise BackendUnreachable(self, exc) from None

    async def read(self) -> DesiredState | None:
        return self._read()

    async def write(self, state: DesiredState, based_on: int) -> int:
        with self._locked():
            stored = self._read()
            current = stored["generation"] if stored else 0
            if current != based_on:
                raise StaleState(based_on, current)
            state = {**state, "generation": current + 1}
            write_json(self.path, dict(state))
            return state["generation"]

    async def wait_change(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mtime = self._mtime()
            if mtime != self._seen:
                self._seen = mtime
                return
            await asyncio.sleep(WATCH_SECONDS)

    def _mtime(self) -> int | None:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None

    async def put_report(self, replica: str, report: dict, ttl: float) -> None:
        self.reports_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.reports_dir / f"{replica}.json", {"expires": time.time() + ttl, "report": report})

    async def reports(self) -> dict[str, dict]:
        found = {}
        for path in sorted(self.reports_dir.glob("*.json")):
            with contextlib.suppress(OSError, ValueError, KeyError):
                entry = json.loads(path.read_text())
                if entry["expires"] > time.time():
                    found[path.stem] = entry["report"]
        return found
