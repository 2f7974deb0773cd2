"""Memory of a served process tree, from /proc: resident memory (RSS) sampled in the background, and
each process's own high-water mark (VmHWM), which catches a spike shorter than the sampling interval.

    with MemorySampler(server.process.pid) as memory:
        with memory.window("bomb") as window:
            requests.post(...)
        window.rss_growth, window.hwm_growth      # bytes above the level when the window opened

Figures are sums over the processes (`bentoml serve`, the entry service, one runner per version):
shared pages count once per process, which is fine for growth, the figure the tests bound.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

from bench.memory import proc_bytes
from bench.servers import descendants

MIB = 1024 * 1024
SAMPLE_SECONDS = 0.02


def status_bytes(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM) in bytes; 0 once the process is gone."""
    return proc_bytes(pid, "status", field) or 0


def process_tree(pid: int) -> list[int]:
    return [pid, *descendants(pid)]


def tree_rss(pids: list[int]) -> int:
    return sum(status_bytes(pid, "VmRSS") for pid in pids)


def tree_hwm(pids: list[int]) -> dict[int, int]:
    return {pid: status_bytes(pid, "VmHWM") for pid in pids}


@dataclasses.dataclass
class Window:
    """Memory while one payload was handled; growth figures are bytes above the level at the start."""

    label: str
    rss_before: int
    hwm_before: dict[int, int]
    started: float
    ended: float = 0.0
    peak_rss: int = 0
    hwm_after: dict[int, int] = dataclasses.field(default_factory=dict)

    @property
    def rss_growth(self) -> int:
        return max(0, self.peak_rss - self.rss_before)

    @property
    def hwm_growth(self) -> int:
        """How far the processes' peaks rose during the window, summed (0 when no process set a new peak)."""
        return sum(max(0, self.hwm_after.get(pid, 0) - before) for pid, before in self.hwm_before.items())


class MemorySampler:
    """Samples the RSS of ``pid`` and the processes below it (fixed when started) every ``SAMPLE_SECONDS``."""

    def __init__(self, pid: int):
        self.pids = process_tree(pid)
        self.samples: list[tuple[float, int]] = []
        self.windows: list[Window] = []
        self.baseline = tree_rss(self.pids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.samples.append((time.monotonic(), tree_rss(self.pids)))

    def peak_between(self, start: float, end: float) -> int:
        return max((rss for at, rss in self.samples if start <= at <= end), default=0)

    @property
    def peak(self) -> int:
        return max((rss for _, rss in self.samples), default=self.baseline)

    def alive(self) -> bool:
        """Whether every process of the tree is still running (a restarted worker gets a new id)."""
        return all(Path(f"/proc/{pid}").exists() for pid in self.pids)

    def window(self, label: str) -> _WindowContext:
        return _WindowContext(self, label)


class _WindowContext:
    def __init__(self, sampler: MemorySampler, label: str):
        self.sampler = sampler
        self.label = label

    def __enter__(self) -> Window:
        pids = self.sampler.pids
        self.window = Window(self.label, tree_rss(pids), tree_hwm(pids), time.monotonic())
        return self.window

    def __exit__(self, *exc_info) -> None:
        window = self.window
        time.sleep(2 * SAMPLE_SECONDS)  # let the sampler see the end of the window
        window.ended = time.monotonic()
        window.hwm_after = tree_hwm(self.sampler.pids)
        window.peak_rss = max(self.sampler.peak_between(window.started, window.ended), tree_rss(self.sampler.pids))
        self.sampler.windows.append(window)


def mib(size: int) -> str:
    return f"{size / MIB:.1f} MiB"
