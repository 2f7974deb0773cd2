"""Two replicas behind nginx with the repository's configuration (deploy/nginx/model-server.conf): one is
killed with SIGKILL under load, and clients see no failed request.

    .venv/bin/python -m pytest tests/e2e/test_failover.py -s     # -s prints the measured figures
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import orjson
import pytest
import requests
import yaml

from bench.servers import descendants
from tests.e2e.conftest import CLOTHES, ROOT, Server, SteadyLoad, clothes, free_port, report_figures, write_config

NGINX_CONF = ROOT / "deploy" / "nginx" / "model-server.conf"
REPLICA_ADDRESSES = ("127.0.0.1:3000", "127.0.0.1:3001")  # as the repository's file names them
LISTEN = "listen 80;"
LOAD_SECONDS = 20
KILL_AFTER_SECONDS = 6
ONE_IMAGE = orjson.dumps({"image": np.zeros((28, 28), dtype=int).tolist()})
SERVICE_CONFIG = yaml.safe_load((ROOT / "configuration.yaml").read_text())
MAX_BODY_BYTES = SERVICE_CONFIG["limits"]["max_body_bytes"]


def nginx_binary() -> str:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.access(found, os.X_OK), "nginx is not installed: `make nginx` (apt-get install nginx-light)"
    return found


def nginx_setting(name: str) -> str:
    """The value of a directive that appears once in the repository's nginx file."""
    values = re.findall(rf"^\s*{name}\s+([^;]+);", NGINX_CONF.read_text(), flags=re.M)
    assert len(values) == 1, f"{name}: {values}"
    return values[0].strip()


def nginx_config(directory: Path, port: int, replica_ports: list[int]) -> Path:
    """The repository's file with this test's ports (a server line per replica, as the file writes its
    first), inside a minimal nginx.conf writing only to ``directory``."""
    site = NGINX_CONF.read_text()
    lines = [line for line in site.splitlines() if any(f"server {address} " in line for address in REPLICA_ADDRESSES)]
    assert len(lines) == len(REPLICA_ADDRESSES), lines
    servers = "\n".join(lines[0].replace(REPLICA_ADDRESSES[0], f"127.0.0.1:{replica_port}") for replica_port in replica_ports)
    site = site.replace(lines[0], servers).replace(lines[1] + "\n", "")
    assert site.count(LISTEN) == 1
    site = site.replace(LISTEN, f"listen 127.0.0.1:{port};")
    (directory / "model-server.conf").write_text(site)
    main = directory / "nginx.conf"
    main.write_text(
        f"""
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log notice;
events {{ worker_connections 512; }}
http {{
    log_format failover '$msec $status $request_time "$request" upstream=$upstream_addr statuses=$upstream_status';
    access_log {directory}/access.log failover;
    client_body_temp_path {directory}/client_body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    include {directory}/model-server.conf;
}}
"""
    )
    return main


@contextlib.contextmanager
def running_nginx(directory: Path, port: int, replica_ports: list[int]):
    config = nginx_config(directory, port, replica_ports)
    check = subprocess.run([nginx_binary(), "-t", "-p", str(directory), "-c", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(
        [nginx_binary(), "-p", str(directory), "-c", str(config), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=(directory / "stderr.log").open("w"),
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert process.poll() is None, (directory / "stderr.log").read_text() + (directory / "error.log").read_text()
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def kill_replica(srv: Server) -> None:
    """SIGKILL a whole replica, as a crash would: `bentoml serve` first (no restarts), then its workers."""
    workers = descendants(srv.process.pid)  # each in a session of its own: not in the process group
    os.killpg(srv.process.pid, signal.SIGKILL)
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    srv.process.wait(timeout=10)


def predictions_served(url: str) -> float:
    """Successful predictions a replica has counted (serving_requests_total, endpoint predict, status 200)."""
    total = 0.0
    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("serving_requests_total{") and 'endpoint="predict"' in line and 'status="200"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def replicas(trained_versions, tmp_path):
    config = write_config(tmp_path / "configuration.yaml", {CLOTHES: clothes(trained_versions, {"stable": "v1", "latest": "v2"})})
    servers = [Server(config, free_port(), tmp_path / f"replica-{i}.log") for i in (1, 2)]
    try:
        for srv in servers:
            srv.wait_ready()
        yield servers
    finally:
        for srv in servers:
            srv.stop()


def test_the_repository_nginx_limits_follow_the_service_configuration():
    assert nginx_setting("client_max_body_size") == f"{MAX_BODY_BYTES // 2**20}m" and MAX_BODY_BYTES % 2**20 == 0
    assert f"body exceeds the limit of {MAX_BODY_BYTES} bytes" in NGINX_CONF.read_text()
    body_timeout = f"{SERVICE_CONFIG['limits']['body_timeout_seconds']:g}s"
    assert nginx_setting("client_body_timeout") == nginx_setting("client_header_timeout") == body_timeout
    assert int(nginx_setting("proxy_read_timeout").rstrip("s")) > SERVICE_CONFIG["entry"]["traffic"]["timeout"]
    assert nginx_setting("proxy_next_upstream").split() == ["error", "timeout", "http_502", "http_503", "non_idempotent"]


def test_a_replica_killed_under_load_costs_clients_at_most_the_responses_it_cut(replicas, tmp_path):
    nginx_dir = tmp_path / "nginx"
    nginx_dir.mkdir()
    victim, survivor = replicas
    with running_nginx(nginx_dir, free_port(), [int(srv.url.rsplit(":", 1)[1]) for srv in replicas]) as url:
        urls = [f"{url}/models/clothes/{v}" for v in ("v1", "v2", "v1", "v2")]
        with SteadyLoad(urls, ONE_IMAGE, seconds=LOAD_SECONDS) as load:
            time.sleep(KILL_AFTER_SECONDS)
            served_before = {srv.url: predictions_served(srv.url) for srv in replicas}
            killed = time.monotonic()
            kill_replica(victim)
            time.sleep(max(0.0, LOAD_SECONDS - KILL_AFTER_SECONDS - 1))
        # nginx's own refusals wear the service's envelope too
        too_large = requests.post(f"{url}/models/clothes/v1", data=b"0" * (MAX_BODY_BYTES + 1), headers={"content-type": "application/json"}, timeout=30)
    retried = [line for line in (nginx_dir / "access.log").read_text().splitlines() if "upstream=" in line and ", " in line.split("upstream=")[1]]

    failed = [o for o in load.outcomes if o.status != 200]
    # nginx retries a request on the other replica until it has passed the response's head on to the client; a
    # replica killed between writing a response's head and its body (the same event-loop step, microseconds) leaves
    # that one response cut, which no proxy can retry. Only such responses, in flight at the kill, may fail.
    cut = [o for o in failed if o.status is None and "IncompleteRead" in repr(o.error) and o.sent <= killed <= o.answered + 0.5]
    failed = [o for o in failed if o not in cut]
    around_kill = [o.answered - o.sent for o in load.outcomes if killed - 2 <= o.sent <= killed + 2]
    report_figures(
        f"\nnginx, 2 replicas, kill -9 of one after {KILL_AFTER_SECONDS} s of {LOAD_SECONDS} s: {len(load.outcomes)} requests, "
        f"{len(failed)} failed, {len(cut)} cut mid-response by the kill, {len(retried)} retried by nginx on the other replica; latency max within 2 s of the kill "
        f"{max(around_kill) * 1000:.0f} ms (median {np.median(around_kill) * 1000:.0f} ms); predictions per replica before "
        f"the kill: {sorted(served_before.values())}"
    )
    assert not failed and len(cut) <= 2, [(o.status, o.error, o.body[:200]) for o in [*failed, *cut][:5]]
    assert len(load.outcomes) > 100
    assert all(count > 0 for count in served_before.values()), f"nginx sent traffic to one replica only: {served_before}"
    assert any(o.sent > killed + 1 for o in load.outcomes), "no request after the kill"
    assert retried, "nginx never had to retry: the kill did not reach the traffic"
    assert survivor.process.poll() is None
    assert too_large.status_code == 413 and too_large.json() == {"error": f"body exceeds the limit of {MAX_BODY_BYTES} bytes"}
