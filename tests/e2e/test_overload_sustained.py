"""Sustained overload: about twice the measured capacity for two minutes, then recovery.

The server's own limit does the shedding: ``max_requests_in_flight: 64``. The benchmark's 64
connections already reach the service's full throughput (docs/benchmarks.md), so more requests in
flight would only queue and add latency; past 64 the entry answers 503 with Retry-After at once
(the front door, serving/frontdoor.py). The per-version image queue (``max_queue_images``, 256 here) never
fills with at most 64 single images in flight: tests/e2e/test_overload.py covers it with batches.

The load is wrk on loopback with 8 x the benchmark's connections, each pausing between requests
(tests/e2e/paced_post.lua) so that together they offer about twice the capacity measured first,
however fast the refusals come back. A plain closed-loop wrk would resend every refusal at once and
measure its own loop instead. A few Python clients meanwhile record each answer's status, latency
and Retry-After, a prober checks /livez and /readyz, and a sampler the served tree's memory.

About 3 minutes: start, 10 s of capacity, 120 s of overload, a few seconds of recovery.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import yaml

from bench.bodies import write_bodies
from bench.load import THREADS, WrkResult, parse_wrk, run_wrk
from bench.run import DEFAULT_CONNECTIONS
from tests.e2e.conftest import CLOTHES, SteadyLoad, clothes, free_port, ready_server, report_figures, write_config
from tests.e2e.memory import MIB, MemorySampler, mib

BENCH_CONNECTIONS = DEFAULT_CONNECTIONS["json"]  # the benchmark's, for one JSON image per request
IN_FLIGHT = BENCH_CONNECTIONS  # max_requests_in_flight of this server: the module docstring says why
CONNECTIONS = 8 * BENCH_CONNECTIONS
OFFER = 2.0  # times the measured capacity
CAPACITY_SECONDS = 10
OVERLOAD_SECONDS = 120
WRK_TIMEOUT_S = 10  # a request unanswered this long counts as a wrk timeout
PACED_SCRIPT = Path(__file__).with_name("paced_post.lua")
# Of the capacity measured before the overload (10 s of wrk on a fresh server). Right after two minutes
# of overload, 1 s windows measured 68% to 83% of it in three CI runs, from the first second on and
# flat after. The bar tells a server that recovered from one wedged or thrashing after the load
# (near 0), with room for a busy 2-core CI machine; the measured share is reported, and the
# benchmarks (bench/) hold the throughput figures.
RECOVERED_SHARE = 0.3
RECOVERY_SECONDS = 5
REFUSAL_P99_SECONDS = 2.0  # measured 47 ms; a refusal that queues first takes the whole timeout
HEALTH_MAX_SECONDS = 5.0  # measured 0.32 s; probes time out at 5 s
# Over the level after the capacity run. The heaps of the entry and the runner settle at a plateau
# within the first minute (+70 to +140 MB measured; full-rate load without shedding grows them about
# as much), then stay flat. A leak shows as growth in the second minute (MEMORY_DRIFT); the budget
# only bounds the plateau, with room for allocator noise.
MEMORY_BUDGET = 384 * MIB
MEMORY_DRIFT = 32 * MIB
PREDICT = "/models/clothes/v1"


@pytest.fixture(scope="module")
def overload_server(trained_versions, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("overload")
    config = write_config(tmp / "configuration.yaml", {CLOTHES: clothes(trained_versions, {"stable": "v1", "latest": "v2"})}, limits={"max_requests_in_flight": IN_FLIGHT})
    # One entry worker: with two, its capacity is more than wrk on the same two cores can offer 1.5 times over.
    served = yaml.safe_load(config.read_text())
    served["entry"]["workers"] = 1
    config.write_text(yaml.safe_dump(served, sort_keys=False))
    with ready_server(config, free_port(), tmp / "serve.log") as server:
        yield server


def run_paced_wrk(url: str, body, connections: int, pause_ms: int, seconds: int) -> WrkResult:
    """wrk with bench/post.lua's body and status counts, each connection pausing ``pause_ms`` between requests."""
    command = [
        "wrk",
        "--latency",
        f"-t{THREADS}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        f"{WRK_TIMEOUT_S}s",
        "-s",
        str(PACED_SCRIPT),
        url,
        "--",
        str(body.path),
        body.content_type,
        str(pause_ms),
    ]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=seconds + WRK_TIMEOUT_S + 30)
    assert finished.returncode == 0, finished.stderr
    return parse_wrk(finished.stdout)


class HealthProbe(threading.Thread):
    """GET /livez and /readyz every half second: (path, status or exception name, seconds)."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.results: list[tuple[str, int | str, float]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            for path in ("/livez", "/readyz"):
                started = time.perf_counter()
                try:
                    status: int | str = requests.get(f"{self.url}{path}", timeout=5).status_code
                except requests.RequestException as exc:
                    status = type(exc).__name__
                self.results.append((path, status, time.perf_counter() - started))


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values[0] if values else 0.0)


def test_sustained_overload_is_shed_and_recovers(overload_server, tmp_path):
    url = overload_server.url + PREDICT
    body = write_bodies(tmp_path)["json"]

    capacity = run_wrk(url, body, BENCH_CONNECTIONS, CAPACITY_SECONDS, WRK_TIMEOUT_S)
    assert capacity.errors == 0, capacity
    # Each connection sends every pause + latency; most answers (refusals) come back in a few ms, the
    # accepted ones in about the capacity run's median.
    pause_ms = max(1, round(1000 * CONNECTIONS / (OFFER * capacity.ok_per_s) - capacity.p50_ms))

    probe = HealthProbe(overload_server.url)
    with MemorySampler(overload_server.process.pid) as memory, ThreadPoolExecutor(1) as background:
        started = time.monotonic()
        load = background.submit(run_paced_wrk, url, body, CONNECTIONS, pause_ms, OVERLOAD_SECONDS)
        probe.start()
        time.sleep(3)  # the load is established
        # Sampling clients, stopping by themselves 3 s before the load does.
        with SteadyLoad([url] * 4, body.path.read_bytes(), seconds=OVERLOAD_SECONDS - 6, content_type=body.content_type, timeout=WRK_TIMEOUT_S) as sampled:
            overload = load.result(timeout=OVERLOAD_SECONDS + 60)
        ended = time.monotonic()
        probe.stopping.set()
        probe.join(timeout=10)

        recovery: list[tuple[float, WrkResult]] = []
        while not recovery or (recovery[-1][1].ok_per_s < RECOVERED_SHARE * capacity.ok_per_s and time.monotonic() - ended < 2 * RECOVERY_SECONDS):
            window = run_wrk(url, body, BENCH_CONNECTIONS, 1, WRK_TIMEOUT_S)
            recovery.append((time.monotonic() - ended, window))

    halfway = started + OVERLOAD_SECONDS / 2
    first_minute, second_minute = memory.peak_between(started, halfway), memory.peak_between(halfway, ended)
    accepted = [o for o in sampled.outcomes if o.status == 200]
    refused = [o for o in sampled.outcomes if o.status != 200]
    accepted_s, refused_s = [o.answered - o.sent for o in accepted], [o.answered - o.sent for o in refused]
    recovered_after, recovered = recovery[-1]
    shed = overload.statuses.get(503, 0) / overload.requests
    report_figures(
        f"\nsustained overload (test_overload_sustained.py)\ncapacity: {capacity.ok_per_s:.0f} req/s at {BENCH_CONNECTIONS} connections (p50 {capacity.p50_ms:.0f} ms, p99 {capacity.p99_ms:.0f} ms)"
        f"\noverload: {CONNECTIONS} connections pausing {pause_ms} ms, {OVERLOAD_SECONDS} s, max_requests_in_flight {IN_FLIGHT}"
        f"\n  offered {overload.requests_per_s:.0f} req/s ({overload.requests_per_s / capacity.ok_per_s:.1f} x capacity),"
        f" accepted {overload.ok_per_s:.0f} req/s ({overload.ok_per_s / capacity.ok_per_s:.0%} of capacity)"
        f"\n  statuses {overload.status_text()}; shed {shed:.0%}; wrk socket errors {overload.socket_errors}; wrk p50 {overload.p50_ms:.0f} ms, p99 {overload.p99_ms:.0f} ms"
        f"\n  sampled: {len(accepted)} accepted, p50 {1000 * percentile(accepted_s, 50):.0f} ms, p99 {1000 * percentile(accepted_s, 99):.0f} ms;"
        f" {len(refused)} refused, p50 {1000 * percentile(refused_s, 50):.0f} ms, p99 {1000 * percentile(refused_s, 99):.0f} ms"
        f"\n  health: {len(probe.results)} probes, slowest {max(s for *_, s in probe.results):.3f} s"
        f"\n  memory: idle {mib(memory.baseline)}, peak +{mib(memory.peak - memory.baseline)};"
        f" peak of the first minute +{mib(first_minute - memory.baseline)}, of the second +{mib(second_minute - memory.baseline)}"
        f"\nrecovery, 1 s windows after the load (seconds: req/s): "
        + ", ".join(f"{after:.1f}: {window.ok_per_s:.0f} ({window.ok_per_s / capacity.ok_per_s:.0%})" for after, window in recovery)
    )

    # The load really exceeded capacity, and the excess was shed, not queued into timeouts.
    assert overload.requests_per_s > 1.5 * capacity.ok_per_s
    assert set(overload.statuses) <= {200, 503}, overload.statuses
    assert shed > 0.25
    assert overload.socket_errors == 0  # no timeout, no reset
    # Refusing is not free (HTTP and BentoML's own middleware come first): 30 to 50% of the capacity
    # was still served, with wrk and these clients on the same two cores. A collapse would fall far below.
    assert overload.ok_per_s > 0.15 * capacity.ok_per_s
    # Every refusal is a fast 503 with Retry-After and the envelope; accepted requests are answered.
    assert accepted and refused
    assert all(o.status == 503 and o.retry_after == "1" and json.loads(o.body)["error"].startswith("overloaded: ") for o in refused), refused[:3]
    assert percentile(refused_s, 99) < REFUSAL_P99_SECONDS
    # Up and ready all along, answering quickly; memory bounded; nothing restarted.
    assert {status for _, status, _ in probe.results} == {200}, probe.results
    assert max(seconds for *_, seconds in probe.results) < HEALTH_MAX_SECONDS
    assert memory.peak - memory.baseline < MEMORY_BUDGET, mib(memory.peak - memory.baseline)
    assert second_minute - first_minute < MEMORY_DRIFT, (mib(first_minute), mib(second_minute))
    assert memory.alive()
    # Full throughput back within seconds of the load stopping.
    assert recovered.ok_per_s >= RECOVERED_SHARE * capacity.ok_per_s, recovery
    assert recovered_after <= RECOVERY_SECONDS, recovery
