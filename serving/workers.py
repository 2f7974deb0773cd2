"""What each entry worker counts on its own, published for the others (``entry.workers`` > 1).

Every entry worker keeps its own shadow comparisons and drift window: requests are spread over the
workers by the kernel. Each publishes a snapshot to a file of its own in the runtime directory
(written whole, renamed into place), and whichever worker answers a summary merges every worker's
latest snapshot with its own. A snapshot is at most ``PUBLISH_SECONDS`` old.

    runtime/entry/shadow/<pid>@<model>.json
    runtime/entry/drift/<pid>@<model>+<version>.npz      (names hold no '@' or '+')

    >>> board = Board("shadow")
    >>> board.publish("clothes", {"requests": 3, ...})
    >>> board.others("clothes")              # [snapshot, ...] of the other workers, the dead ones' too
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from serving.slots import runtime_dir, write_json

PUBLISH_SECONDS = 0.2


class Board:
    def __init__(self, name: str, runtime: Path | None = None):
        self.name = name
        self._runtime = runtime

    @functools.cached_property
    def dir(self) -> Path:
        """Resolved on first use: a process that never publishes (a test, a tool) makes no runtime directory."""
        return (self._runtime or runtime_dir()) / "entry" / self.name

    def _path(self, key: str, suffix: str, pid: int | None = None) -> Path:
        return self.dir / f"{pid or os.getpid()}@{key}{suffix}"

    def publish(self, key: str, snapshot: dict[str, Any]) -> None:
        write_json(self._path(key, ".json"), snapshot)

    def others(self, key: str) -> list[dict[str, Any]]:
        """The other workers' snapshots under ``key``; a worker that died keeps what it counted."""
        found = []
        for path in self._theirs(key, ".json"):
            with contextlib.suppress(OSError, ValueError):
                found.append(json.loads(path.read_bytes()))
        return found

    def publish_arrays(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        path = self._path(key, ".npz")
        self.dir.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp.npz")  # not matched by the glob of others_arrays
        np.savez(temporary, allow_pickle=False, **arrays)
        os.replace(temporary, path)

    def others_arrays(self, key: str) -> list[dict[str, np.ndarray]]:
        found = []
        for path in self._theirs(key, ".npz"):
            with contextlib.suppress(OSError, ValueError), np.load(path, allow_pickle=False) as arrays:
                found.append({name: arrays[name] for name in arrays.files})
        return found

    def _theirs(self, key: str, suffix: str) -> list[Path]:
        mine = self._path(key, suffix).name
        return [path for path in self.dir.glob(f"*@{key}{suffix}") if path.name != mine]
