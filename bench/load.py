"""Run wrk with bench/post.lua against one URL and read its report.

>>> result = run_wrk("http://127.0.0.1:3000/models/clothes/v1", body, connections=64, seconds=30, timeout_s=10)
>>> result.requests_per_s, result.p90_ms, result.errors       # errors: answers other than 2xx, and socket errors
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # bench.grpc_load's workers import this module, not the bodies' recipes or the store
    from bench.bodies import Body

SCRIPT = Path(__file__).with_name("post.lua")
THREADS = 2
TIME_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


class WrkError(RuntimeError):
    """wrk failed or printed a report this module cannot read."""


@dataclasses.dataclass(frozen=True)
class WrkResult:
    requests: int
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    statuses: dict[int, int]

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors

    @property
    def ok_per_s(self) -> float:
        """Successful responses per second: wrk's rate scaled by the share of 2xx responses."""
        if self.requests == 0:
            return 0.0
        return self.requests_per_s * (self.requests - self.non_2xx) / self.requests

    def status_text(self) -> str:
        return ", ".join(f"{status}: {count}" for status, count in sorted(self.statuses.items()))


def run_wrk(url: str, body: Body, connections: int, seconds: int, timeout_s: int) -> WrkResult:
    command = [
        "wrk",
        "--latency",
        f"-t{min(THREADS, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        f"{timeout_s}s",
        "-s",
        str(SCRIPT),
        url,
        "--",
        str(body.path),
        body.content_type,
    ]
    try:
        finished = subprocess.run(command, capture_output=True, text=True, timeout=seconds + timeout_s + 30)
    except subprocess.TimeoutExpired:
        raise WrkError(f"wrk did not finish within {seconds + timeout_s + 30} s") from None
    if finished.returncode != 0:
        raise WrkError(f"wrk exited with {finished.returncode}: {finished.stderr.strip() or finished.stdout.strip()}")
    return parse_wrk(finished.stdout)


def parse_wrk(report: str) -> WrkResult:
    """Read requests/s, the 50%, 90% and 99% latencies, non-2xx responses and socket errors from wrk's report.

    Non-2xx responses are counted from bench/post.lua's status lines (any status outside 200..299);
    without them, from wrk's own count (which lets 3xx pass)."""
    requests = _search(r"^\s*(\d+) requests in ", report)
    rate = _search(r"^Requests/sec:\s+([\d.]+)", report)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", report)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report)
    statuses = {int(code): int(count) for code, count in re.findall(r"^bench-status (\d+) (\d+)$", report, re.M)}
    return WrkResult(
        requests=int(requests),
        requests_per_s=float(rate),
        p50_ms=_percentile_ms("50", report),
        p90_ms=_percentile_ms("90", report),
        p99_ms=_percentile_ms("99", report),
        non_2xx=sum(n for code, n in statuses.items() if not 200 <= code < 300) if statuses else int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
        statuses=statuses,
    )


def _search(pattern: str, report: str) -> str:
    match = re.search(pattern, report, re.M)
    if match is None:
        raise WrkError(f"no match for {pattern!r} in wrk's report:\n{report}")
    return match.group(1)


def _percentile_ms(percent: str, report: str) -> float:
    match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m|h)\s*$", report, re.M)
    if match is None:
        raise WrkError(f"no {percent}% latency in wrk's report (was --latency passed?):\n{report}")
    return float(match.group(1)) * TIME_UNITS_MS[match.group(2)]


def alternating_runs(
    url: str, directory: Path, bodies: dict[tuple[str, str], tuple[str, dict]], connections: int, rounds: int, seconds: int
) -> dict[tuple[str, str], list[WrkResult]]:
    """Each scenario, ``(model, route) -> (path, JSON body)``, loaded with wrk ``rounds`` times for ``seconds``
    (the rounds alternate the scenarios, after a 2 s warm-up round that is not kept); the bodies are written
    once into ``directory``. A failed request stops the benchmark."""
    import json

    from bench.bodies import Body

    files = {}
    for (model, route), (_, payload) in bodies.items():
        files[model, route] = directory / f"{model}-{route.replace(' ', '-')}.json"
        files[model, route].write_text(json.dumps(payload))
    runs: dict[tuple[str, str], list[WrkResult]] = {key: [] for key in bodies}
    for round_ in range(-1, rounds):
        for (model, route), (path, _) in bodies.items():
            result = run_wrk(url + path, Body(files[model, route], "application/json", 1), connections, 2 if round_ < 0 else seconds, 10)
            if result.errors:
                raise SystemExit(f"{model} through {route}: {result.errors} failed requests; see {directory}")
            if round_ >= 0:
                runs[model, route].append(result)
    return runs


def median_run(results: list[WrkResult]) -> WrkResult:
    """The run of median throughput."""
    return sorted(results, key=lambda r: r.requests_per_s)[len(results) // 2]
