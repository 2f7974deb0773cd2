"""Faults of a real `bentoml serve`: a runner killed under load, bad models at start-up, SIGTERM under load.

.venv/bin/python -m pytest tests/e2e/test_faults.py -s      # -s prints the measured figures
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections import Counter

import numpy as np
import orjson
import pytest
import requests
import yaml

from models import store
from serving.runner_health import PROBE_INTERVAL_SECONDS, PROBE_TIMEOUT_SECONDS
from tests.e2e.conftest import (
    CLOTHES,
    ENTRY,
    LIMITS,
    MISSING_VERSION,
    PLACEMENT,
    Server,
    SteadyLoad,
    clothes,
    corrupt_model,
    free_port,
    ready_server,
    report_figures,
    worker_pids,
    write_config,
)

ONE_IMAGE = orjson.dumps({"image": np.zeros((28, 28), dtype=int).tolist()})
# A call in flight when its runner dies is cut off within one probe interval plus the probe timeout.
MAX_FAILURE_SECONDS = PROBE_INTERVAL_SECONDS + PROBE_TIMEOUT_SECONDS + 2.5  # + slack for 2 busy cores
RESTART_BOUND_SECONDS = 120  # TensorFlow's import and the model load, on 2 cores shared with the load
STRICT_EXIT_BOUND_SECONDS = 45  # `bentoml serve` imports BentoML and service.py, then stops


def worker_pid(srv: Server, service_name: str) -> int | None:
    return next(iter(worker_pids(srv, service_name)), None)


class ReadinessPoll(threading.Thread):
    """GET /readyz every 0.2 s until stopped, recording (monotonic time, status or None)."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.results: list[tuple[float, int | None]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                status = requests.get(f"{self.url}/readyz", timeout=5).status_code
            except requests.RequestException:
                status = None
            self.results.append((time.monotonic(), status))
            time.sleep(0.2)

    def outage(self, since: float) -> tuple[float | None, float | None]:
        """When /readyz first stopped answering 200 after ``since``, and when it answered 200 again."""
        down = next((t for t, status in self.results if t > since and status != 200), None)
        up = next((t for t, status in self.results if down and t > down and status == 200), None)
        return down, up


@pytest.fixture(scope="module")
def strict_server(trained_versions, tmp_path_factory):
    """v1 and v2 with strict readiness: both models are fine, so it starts. v1 runs in a runner process of
    its own (killed below); v2 where the suite's placement puts it."""
    tmp = tmp_path_factory.mktemp("faults")
    models = {CLOTHES: clothes(trained_versions, {"stable": "v1", "latest": "v2"}) | {"versions": {"v1": {"placement": "process"}, "v2": {}}}}
    config = write_config(tmp / "configuration.yaml", models, strict_readiness=True)
    with ready_server(config, free_port(), tmp / "serve.log") as srv:
        yield srv


def test_a_killed_runner_restarts_and_only_its_version_fails_meanwhile(strict_server):
    v1, v2 = (f"{strict_server.url}/models/clothes/{v}" for v in ("v1", "v2"))
    old_pid = worker_pid(strict_server, "clothes-v1")
    assert old_pid, "no worker process of clothes-v1 under bentoml serve"
    readiness = ReadinessPoll(strict_server.url)
    readiness.start()
    with SteadyLoad([v1, v2], ONE_IMAGE, seconds=RESTART_BOUND_SECONDS + 20) as load:
        time.sleep(2)
        killed = time.monotonic()
        os.kill(old_pid, signal.SIGKILL)
        while time.monotonic() < killed + RESTART_BOUND_SECONDS:
            v1_back = any(o.url == v1 and o.sent > killed and o.status == 200 for o in load.outcomes)
            if v1_back and readiness.outage(killed)[1]:
                break
            time.sleep(0.2)
        time.sleep(2)  # steady again after the restart
    readiness.stopping.set()
    readiness.join()

    new_pid = worker_pid(strict_server, "clothes-v1")
    v1_outcomes = [o for o in load.outcomes if o.url == v1]
    v2_outcomes = [o for o in load.outcomes if o.url == v2]
    failures = [o for o in v1_outcomes if o.status != 200]
    recovered = min((o.answered for o in v1_outcomes if o.sent > killed and o.status == 200), default=None)
    unready, ready_again = readiness.outage(killed)

    def after_kill(moment: float | None) -> str:
        return f"+{moment - killed:.2f} s" if moment is not None else "never"

    report_figures(
        f"\nkill -9 clothes-v1 (pid {old_pid} -> {new_pid}) under load: {len(v1_outcomes)} v1 requests, {len(failures)} "
        f"failed with 503 (the slowest in {max((o.answered - o.sent for o in failures), default=0):.2f} s); v1 failing from "
        f"{after_kill(min((o.answered for o in failures), default=None))} to its first 200 at {after_kill(recovered)} "
        f"after the kill; /readyz non-200 from {after_kill(unready)}, 200 again at {after_kill(ready_again)}; "
        f"v2: {len(v2_outcomes)} requests, {sum(o.status != 200 for o in v2_outcomes)} failed"
    )
    assert new_pid and new_pid != old_pid, "clothes-v1 was not restarted"
    assert recovered is not None, f"v1 never answered 200 again:\n{strict_server.log.read_text()[-3000:]}"
    assert all(o.status == 200 for o in v2_outcomes) and len(v2_outcomes) > 20, "v2 failed while v1's runner restarted"
    assert failures, "no v1 request failed: the kill went unnoticed"
    for outcome in failures:
        assert killed <= outcome.answered <= recovered, "v1 failed outside its restart"
        assert outcome.status == 503 and outcome.retry_after, outcome
        assert list(orjson.loads(outcome.body)) == ["error"] and "runner" in orjson.loads(outcome.body)["error"], outcome.body
        assert outcome.answered - outcome.sent < MAX_FAILURE_SECONDS, f"a v1 request hung {outcome.answered - outcome.sent:.1f} s"
    assert all(s == 200 for t, s in readiness.results if t < killed), "not ready before the kill"
    assert unready is not None, "/readyz stayed 200 while v1's runner was down"
    assert ready_again is not None, "/readyz never came back to 200"


@pytest.mark.parametrize(
    "bad_version, cause",
    [
        (
            MISSING_VERSION,
            f"clothes:{MISSING_VERSION} is not in the model store; train it with train_and_save.py train clothes {MISSING_VERSION} (a model with a recipe), or import it",
        ),
        ("garbled", "clothes:garbled cannot be loaded: model.keras is not a readable Keras archive"),
    ],
    ids=["missing", "corrupt"],
)
def test_strict_readiness_refuses_to_start_on_a_bad_model(trained_versions, tmp_path, bad_version, cause):
    if bad_version == "garbled":
        corrupt_model("garbled")
    config = write_config(tmp_path / "configuration.yaml", {CLOTHES: clothes(["v1", bad_version], {"stable": "v1"})}, strict_readiness=True)
    port = free_port()
    started = time.monotonic()
    srv = Server(config, port, tmp_path / "serve.log")
    listened = False
    try:
        while srv.process.poll() is None and time.monotonic() - started < STRICT_EXIT_BOUND_SECONDS:
            with socket.socket() as probe:
                listened |= probe.connect_ex(("127.0.0.1", port)) == 0
            time.sleep(0.05)
        exited_after = time.monotonic() - started
    finally:
        srv.stop()
    output = srv.log.read_text()
    report_figures(f"\nstrict readiness, {bad_version}: `bentoml serve` exited {srv.process.returncode} after {exited_after:.1f} s")
    assert srv.process.returncode not in (None, 0), output[-3000:]
    assert exited_after < STRICT_EXIT_BOUND_SECONDS
    assert not listened and "Starting production" not in output, "something listened before start-up was refused"
    assert cause in output and "strict_readiness is true: not starting" in output, output[-3000:]


def test_without_strict_readiness_a_missing_model_makes_only_its_version_unavailable(degraded_server):
    url = f"{degraded_server.url}/models/clothes"
    reason = store.not_in_store(CLOTHES, MISSING_VERSION)
    predict = requests.post(f"{url}/{MISSING_VERSION}", data=ONE_IMAGE, headers={"content-type": "application/json"}, timeout=30)
    info = requests.get(f"{url}/{MISSING_VERSION}", timeout=30)
    for response in (predict, info):
        assert response.status_code == 503 and response.headers["Retry-After"], response.text
        assert response.json() == {"error": reason}
    statuses = {v["version"]: v for v in requests.get(url, timeout=30).json()["versions"]}
    assert statuses[MISSING_VERSION]["status"] == "unavailable" and statuses[MISSING_VERSION]["reason"] == reason
    assert requests.post(f"{url}/v1", data=ONE_IMAGE, headers={"content-type": "application/json"}, timeout=30).status_code == 200
    assert requests.get(f"{url}/v1", timeout=30).status_code == 200


def test_without_strict_readiness_a_corrupt_model_makes_only_its_version_unavailable(degraded_server):
    url = f"{degraded_server.url}/models/clothes"
    predict = requests.post(f"{url}/broken", data=ONE_IMAGE, headers={"content-type": "application/json"}, timeout=30)
    info = requests.get(f"{url}/broken", timeout=30)
    for response in (predict, info):
        assert response.status_code == 503 and response.headers["Retry-After"], response.text
        assert list(response.json()) == ["error"] and response.json()["error"].startswith("clothes:broken failed to load: ")
    assert requests.post(f"{url}/v1", data=ONE_IMAGE, headers={"content-type": "application/json"}, timeout=30).status_code == 200


def test_sigterm_under_load_answers_requests_in_flight_and_refuses_new_ones_cleanly(trained_versions, tmp_path):
    """SIGTERM to plain `bentoml serve`: what was sent before it is answered 200; what is sent after it is
    refused (503, or no response at all: connection refused, or closed or reset before the status
    line) and never fails mid-response (a truncated body) or with a 500."""
    config = write_config(tmp_path / "configuration.yaml", {CLOTHES: clothes(trained_versions, {"stable": "v1", "latest": "v2"})})
    srv = Server(config, free_port(), tmp_path / "serve.log")
    batch = orjson.dumps({"images": np.random.default_rng(0).integers(0, 256, (LIMITS["max_batch_images"], 28, 28)).tolist()})
    urls = [f"{srv.url}/models/clothes/{v}" for v in ("v1", "v2") * 3]
    try:
        srv.wait_ready()
        with SteadyLoad(urls, batch, seconds=60) as load:
            time.sleep(3)
            sigterm_at = time.monotonic()
            os.kill(srv.process.pid, signal.SIGTERM)
            srv.process.wait(timeout=60)
            stopped_after = time.monotonic() - sigterm_at
            time.sleep(1)  # the clients meet the stopped server
    finally:
        srv.stop()

    before = [o for o in load.outcomes if o.sent < sigterm_at]
    in_flight = [o for o in before if o.answered > sigterm_at]
    after = [o for o in load.outcomes if o.sent >= sigterm_at]
    completed = [o for o in in_flight if o.status == 200]
    refused = [o for o in after if o.status == 503 or o.refused_before_answering]
    failed = [o for o in before if o.status != 200] + [o for o in after if o.status != 200 and o not in refused]
    report_figures(
        f"\nSIGTERM to bentoml serve under load: {len(in_flight)} in flight, {len(completed)} completed, "
        f"{sum(o.status == 200 for o in after)} sent after it still answered 200, {len(refused)} refused "
        f"{dict(Counter(str(o.status) if o.status else _cause(o.error) for o in refused))}, {len(failed)} failed; "
        f"exit code {srv.process.returncode} after {stopped_after:.1f} s"
    )
    assert len(before) >= 10 and in_flight, "no request was in flight at SIGTERM"
    assert not failed, [(o.status, o.error, o.body[:200]) for o in failed]
    assert after and refused, "no request met the stopped server"
    assert srv.process.returncode == 0, srv.log.read_text()[-3000:]
    served = yaml.safe_load(config.read_text())
    if PLACEMENT == "process":
        runners = len(served["models"][CLOTHES]["versions"]) + served["live"]["spare_runners"]
        assert f"stopping the entry service before its {runners} runner service(s)" in srv.log.read_text()  # serving/ordered_stop.py


def _cause(error: BaseException) -> str:
    """What a client error says happened: refused, closed without an answer, reset, or its type."""
    text = str(error)
    return next((cause for cause in ("Connection refused", "RemoteDisconnected", "Connection reset") if cause in text), type(error).__name__)


def test_sigterm_under_grpc_load_drains_calls_in_flight(trained_versions, tmp_path):
    """The same for gRPC (serving/protocols/grpc/server.py stops with grace): calls sent before SIGTERM are
    answered OK; calls sent after it are answered or refused UNAVAILABLE, never cut off with another status."""
    import tritonclient.grpc as triton
    from tritonclient.utils import InferenceServerException

    config = write_config(tmp_path / "configuration.yaml", {CLOTHES: clothes(trained_versions, {"stable": "v1", "latest": "v2"})})
    srv = Server(config, free_port(), tmp_path / "serve.log")
    batch = np.random.default_rng(0).integers(0, 256, (LIMITS["max_batch_images"], 28, 28, 1), dtype=np.uint8)
    outcomes: list[tuple[float, float, str]] = []  # sent, answered, status code name
    stop = threading.Event()

    def client(version: str) -> None:
        with triton.InferenceServerClient(srv.grpc) as grpc_client:
            deadline = time.monotonic() + 60
            while not stop.is_set() and time.monotonic() < deadline:
                tensor = triton.InferInput("input", list(batch.shape), "UINT8")
                tensor.set_data_from_numpy(batch)
                sent = time.monotonic()
                try:
                    grpc_client.infer(CLOTHES, [tensor], model_version=version, client_timeout=30)
                    code = "OK"
                except InferenceServerException as exc:
                    code = str(exc.status()).removeprefix("StatusCode.")
                outcomes.append((sent, time.monotonic(), code))
                if code != "OK":
                    time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(version,)) for version in ("v1", "v2") * 3]
    try:
        srv.wait_ready()
        for thread in threads:
            thread.start()
        time.sleep(3)
        sigterm_at = time.monotonic()
        os.kill(srv.process.pid, signal.SIGTERM)
        srv.process.wait(timeout=60)
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        srv.stop()

    before = [o for o in outcomes if o[0] < sigterm_at]
    in_flight = [o for o in before if o[1] > sigterm_at]
    after = [o for o in outcomes if o[0] >= sigterm_at]
    report_figures(
        f"\nSIGTERM under gRPC load: {len(in_flight)} calls in flight, {sum(o[2] == 'OK' for o in in_flight)} completed; "
        f"after it {dict(Counter(o[2] for o in after))}; exit code {srv.process.returncode}"
    )
    assert len(before) >= 10 and in_flight, "no call was in flight at SIGTERM"
    assert all(o[2] == "OK" for o in before), Counter(o[2] for o in before)
    # A call that reaches the port while grpc shuts down may be CANCELLED by it rather than refused UNAVAILABLE: both mean not served.
    assert after and all(o[2] in ("OK", "UNAVAILABLE", "CANCELLED") for o in after), Counter(o[2] for o in after)
    assert srv.process.returncode == 0, srv.log.read_text()[-3000:]


@pytest.fixture
def two_entry_workers(trained_versions, tmp_path):
    """Every version in process, in each of two entry workers (the default placement and workers, said here)."""
    config = write_config(tmp_path / "configuration.yaml", {CLOTHES: clothes(trained_versions, {"stable": "v1", "latest": "v2"})}, placement="inprocess")
    served = yaml.safe_load(config.read_text())
    served["entry"]["workers"] = 2
    config.write_text(yaml.safe_dump(served, sort_keys=False))
    with ready_server(config, free_port(), tmp_path / "serve.log") as srv:
        yield srv


def test_a_killed_entry_worker_fails_only_its_requests_in_flight_and_is_replaced(two_entry_workers):
    """kill -9 of one of two entry workers under load: at most the requests in flight on it fail (each
    client has one in flight at a time), none sent a second after the kill does, the other worker
    serves on, and BentoML starts a new one, which serves too."""
    srv = two_entry_workers
    clients = 8
    urls = [f"{srv.url}/models/{CLOTHES}/{v}" for v in ("v1", "v2") * (clients // 2)]
    workers = worker_pids(srv, ENTRY)
    assert len(workers) == 2, workers
    with SteadyLoad(urls, ONE_IMAGE, seconds=40) as load:
        time.sleep(4)
        killed_at = time.monotonic()
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + RESTART_BOUND_SECONDS
        while time.monotonic() < deadline and not (len(now := worker_pids(srv, ENTRY)) == 2 and workers[0] not in now):
            time.sleep(0.2)
        replaced = worker_pids(srv, ENTRY)
        assert len(replaced) == 2 and workers[0] not in replaced, f"the killed entry worker was not replaced: {replaced}"
        replacement = next(pid for pid in replaced if pid not in workers)
        while time.monotonic() < deadline and requests.get(f"{srv.url}/readyz", timeout=5).status_code != 200:
            time.sleep(0.2)
        replaced_at = time.monotonic()
        time.sleep(6)  # both workers serve again
        load.stop()
    failed = [o for o in load.outcomes if o.status != 200]
    late = [o for o in failed if o.sent > killed_at + 1]
    after = [o for o in load.outcomes if o.sent > replaced_at]
    report_figures(
        f"\nkill -9 of one of two entry workers (in-process engines) under load from {clients} clients: {len(load.outcomes)} requests, "
        f"{len(failed)} failed ({dict(Counter(str(o.status) if o.status else _cause(o.error) for o in failed))}), all in flight at the kill; "
        f"replaced by pid {replacement} within {replaced_at - killed_at:.1f} s; {len(after)} answered after, "
        f"{sum(o.status == 200 for o in after)} of them 200"
    )
    assert len(failed) <= clients and not late, [(o.sent - killed_at, o.status, o.error) for o in failed]
    assert after and all(o.status == 200 for o in after)
    grpc_ready = requests.get(f"{srv.url}/v2/health/ready", timeout=5)
    assert grpc_ready.status_code == 200
