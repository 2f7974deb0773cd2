"""Three replicas behind Debian's nginx share one desired state in a real Redis: every admin operation, made
through any replica, reaches every replica; a replica killed and started again, Redis stopped for 20 s,
and the whole fleet restarted lose nothing, with clients through nginx seeing 0 failed requests.

Each replica has a model store of its own; clothes v3 exists only in the shared repository
(repository.path) and is fetched by each replica when the desired state asks for it.

    .venv/bin/python -m pytest tests/e2e/test_fleet.py -s     # -s prints the measured figures
"""

from __future__ import annotations

import re
import shutil
import statistics
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml

from models import repository
from tests.conftest import SESSION_HOME
from tests.e2e.conftest import CLOTHES, Server, SteadyLoad, clothes, free_port, report_figures, write_config
from tests.e2e.test_failover import NGINX_CONF, kill_replica, running_nginx
from tests.e2e.test_live import copy_version, one_image
from tests.redis_server import RedisServer

NAMES = ("a", "b", "c")
CONVERGE_SECONDS = 2.0  # every replica serves a change within this of its admin answer
OUTAGE_SECONDS = 20
NGINX_FAIL_TIMEOUT = int(re.search(r"fail_timeout=(\d+)s", NGINX_CONF.read_text()).group(1))  # nginx skips a failed replica this long
TIMEOUT = 60


class Fleet:
    """The replicas (a, b, c), their nginx, and the figures measured along the way."""

    def __init__(self, tmp: Path, redis: RedisServer, nginx: str, replicas: dict[str, Server], config: Path, homes: dict[str, Path]):
        self.tmp, self.redis, self.nginx, self.replicas, self.config, self.homes = tmp, redis, nginx, replicas, config, homes
        self.convergence: dict[str, list[float]] = {}

    def start(self, name: str, port: int) -> Server:
        env = {"BENTOML_HOME": str(self.homes[name]), "MODEL_SERVER_STATE_URL": self.redis.url, "MODEL_SERVER_REPLICA": name}
        self.replicas[name] = Server(self.config, port, self.tmp / f"replica-{name}.log", env=env)
        return self.replicas[name]

    def admin(self, name: str, method: str, path: str, body: dict | None = None, headers: dict | None = None) -> requests.Response:
        return requests.request(method, f"{self.replicas[name].url}{path}", json=body, headers=headers, timeout=TIMEOUT)

    def converge(self, step: str, check, answered: float, timeout: float = 30) -> float:
        """Seconds from an admin answer until every replica's /models/clothes passes ``check``."""
        pending = set(self.replicas)
        while pending and time.monotonic() - answered < timeout:
            for name in sorted(pending):
                try:
                    if check(requests.get(f"{self.replicas[name].url}/models/{CLOTHES}", timeout=5).json()):
                        pending.discard(name)
                except (requests.RequestException, ValueError):
                    pass
            time.sleep(0.05)
        assert not pending, f"{step}: replicas {sorted(pending)} never converged:\n" + "\n".join(self.log_tail(n) for n in pending)
        seconds = time.monotonic() - answered
        self.convergence.setdefault(step, []).append(seconds)
        return seconds

    def log_tail(self, name: str) -> str:
        return f"--- replica {name}:\n" + (self.tmp / f"replica-{name}.log").read_text()[-3000:]

    def errors(self, name: str) -> str:
        """A replica's error lines and tracebacks (what a 500 asks to see), else its log's tail."""
        text = (self.tmp / f"replica-{name}.log").read_text()
        found = [m.group(0) for m in re.finditer(r"^.*\[(?:ERROR|CRITICAL)\].*(?:\n(?!\d{4}-\d\d-\d\dT).*)*", text, re.MULTILINE)]
        return f"--- replica {name}, errors:\n" + "\n".join(found)[-6000:] if found else self.log_tail(name)


def versions(body: dict) -> set[str]:
    return {row["version"] for row in body["versions"] if row["status"] == "ready"}


def replica_home(tmp: Path, name: str) -> Path:
    """A model store of the replica's own, with the session's trained versions but no v3."""
    home = tmp / f"home-{name}"
    shutil.copytree(Path(SESSION_HOME) / "models", home / "models", ignore=shutil.ignore_patterns("v3"))
    return home


@pytest.fixture
def fleet(trained_versions, tmp_path):
    redis = RedisServer(tmp_path / "redis").start()
    shared = tmp_path / "repository"
    homes = {name: replica_home(tmp_path, name) for name in NAMES}
    copy_version("v2", "v3")
    repository.publish(shared, CLOTHES, "v3")  # the session's store has v3; the replicas' stores do not
    sections = {
        "live": {"spare_runners": 1, "admin_without_token": True},
        "state": {"backend": "redis", "key": "fleet-test", "poll_seconds": 2.0, "report_seconds": 0.5},
        "repository": {"path": str(shared)},
    }
    config = write_config(tmp_path / "configuration.yaml", {CLOTHES: clothes(trained_versions, {"stable": "v1", "latest": "v2"})}, **sections)
    raw = yaml.safe_load(config.read_text())
    raw["entry"]["workers"] = 1  # three replicas on two cores
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    fleet = Fleet(tmp_path, redis, "", {}, config, homes)
    try:
        for name in NAMES:
            fleet.start(name, free_port())
        for srv in fleet.replicas.values():
            srv.wait_ready()
        (tmp_path / "nginx").mkdir()
        with running_nginx(tmp_path / "nginx", free_port(), [srv.port for srv in fleet.replicas.values()]) as url:
            fleet.nginx = url
            yield fleet
    finally:
        for srv in fleet.replicas.values():
            srv.stop()
        redis.stop()


def stable(body: dict):
    return body["aliases"].get("stable")


def test_a_fleet_behind_nginx_follows_one_desired_state_through_every_fault(fleet):
    body = one_image()
    steps: list[tuple[str, int, int, int]] = []  # (step, requests, failed, cut mid-response by a kill) through nginx
    with SteadyLoad([f"{fleet.nginx}/models/{CLOTHES}/stable"] * 3, body, seconds=600, timeout=TIMEOUT) as load:

        def step(name: str, action) -> None:
            """An action under the steady load; every request through nginx meanwhile must succeed. An action
            that kills a replica returns when: nginx retries everything but a response the kill cut between its
            head and its body (the same event-loop step), which no proxy can retry (tests/e2e/test_failover.py)."""
            before = len(load.outcomes)
            try:
                killed = action()
            except AssertionError as exc:  # an admin call's 500 says "see the server log": here it is
                raise AssertionError(f"{name}: {exc}\n" + "\n".join(fleet.errors(n) for n in NAMES)) from None
            outcomes = load.outcomes[before:]
            failed = [o for o in outcomes if o.status != 200]
            cut = [o for o in failed if killed and o.status is None and "IncompleteRead" in repr(o.error) and o.sent <= killed <= o.answered + 0.5]
            failed = [o for o in failed if o not in cut]
            steps.append((name, len(outcomes), len(failed), len(cut)))
            assert not failed and len(cut) <= 2, f"{name}: {len(failed)} of {len(outcomes)} failed through nginx, {len(cut)} cut by a kill: {[*failed, *cut][:3]}"

        def load_v3():
            response = fleet.admin("a", "POST", f"/v2/repository/models/{CLOTHES}/load", {"parameters": {"version": "v3"}})
            assert response.status_code == 200 and response.json()["loaded"], response.text
            fleet.converge("load v3 (a)", lambda b: "v3" in versions(b), time.monotonic())

        def split():
            response = fleet.admin("b", "PUT", f"/models/{CLOTHES}/aliases/stable", {"weights": {"v1": 90, "v3": 10}})
            assert response.status_code == 200, response.text
            seconds = fleet.converge("split stable 90/10 (b)", lambda b: stable(b) == {"v1": 90, "v3": 10}, time.monotonic())
            assert seconds < CONVERGE_SECONDS
            before = len(load.outcomes)
            time.sleep(4)
            answered = [o.version for o in load.outcomes[before:] if o.status == 200]
            share = answered.count("v3") / len(answered)
            tolerance = 4 * (0.1 * 0.9 / len(answered)) ** 0.5  # four standard deviations of a binomial share
            report_figures(f"fleet: stable split 90/10 through nginx: v3 answered {share:.3f} of {len(answered)} requests (0.1 +- {tolerance:.3f})")
            assert abs(share - 0.1) < tolerance and set(answered) == {"v1", "v3"}

        def flips():
            """Ten changes of one alias, each through the next replica: convergence measured each time."""
            for i in range(10):
                target = ("v2", "v3")[i % 2]
                response = fleet.admin(NAMES[i % 3], "PUT", f"/models/{CLOTHES}/aliases/canary", {"version": target})
                assert response.status_code == 200, response.text
                fleet.converge("alias canary moved (10 times, through a, b, c in turn)", lambda b, t=target: b["aliases"].get("canary") == t, time.monotonic())
            assert max(fleet.convergence["alias canary moved (10 times, through a, b, c in turn)"]) < CONVERGE_SECONDS

        def shadow():
            response = fleet.admin("c", "PUT", f"/models/{CLOTHES}/shadow", {"alias": "stable", "candidate": "v2", "share": 0.5})
            assert response.status_code == 200, response.text
            fleet.converge("shadow stable by v2 (c)", lambda b: (b["shadow"] or {}).get("candidate") == "v2", time.monotonic())

        def promote():
            response = fleet.admin("a", "POST", f"/models/{CLOTHES}/promote", {"version": "v3"})
            assert response.status_code == 200 and response.json()["previous"] == {"v1": 90, "v3": 10}, response.text
            fleet.converge("promote v3 (a)", lambda b: stable(b) == "v3", time.monotonic())

        def rollback():
            response = fleet.admin("b", "POST", f"/models/{CLOTHES}/rollback")
            assert response.status_code == 200, response.text
            fleet.converge("roll back (b)", lambda b: stable(b) == {"v1": 90, "v3": 10}, time.monotonic())

        def promote_and_unload_v1():
            assert fleet.admin("c", "POST", f"/models/{CLOTHES}/promote", {"version": "v3"}).status_code == 200
            response = fleet.admin("a", "POST", f"/v2/repository/models/{CLOTHES}/unload", {"parameters": {"version": "v1"}})
            assert response.status_code == 200, response.text
            fleet.converge("unload v1 (a)", lambda b: versions(b) == {"v2", "v3"} and stable(b) == "v3", time.monotonic())
            refused = fleet.admin("b", "POST", f"/models/{CLOTHES}/rollback")  # its previous target, the split, needs v1
            assert refused.status_code == 409 and "load it first" in refused.json()["error"], refused.text

        def kill_and_restart_c():
            port = fleet.replicas["c"].port
            killed = time.monotonic()
            kill_replica(fleet.replicas["c"])
            time.sleep(2)
            srv = fleet.start("c", port)
            srv.wait_ready()
            served = requests.get(f"{srv.url}/models/{CLOTHES}", timeout=5).json()  # at once: ready means it serves the desired state
            assert versions(served) == {"v2", "v3"} and stable(served) == "v3" and served["shadow"]["candidate"] == "v2", served
            return killed

        def redis_outage():
            fleet.redis.stop()
            started = time.monotonic()
            refusals = 0
            while time.monotonic() - started < OUTAGE_SECONDS:
                for name in NAMES:
                    response = fleet.admin(name, "PUT", f"/models/{CLOTHES}/aliases/latest", {"version": "v3"})
                    assert response.status_code == 503 and "state backend" in response.json()["error"], response.text
                    refusals += 1
                    assert requests.get(f"{fleet.replicas[name].url}/readyz", timeout=5).status_code == 200
                time.sleep(2)
            assert fleet.admin("a", "GET", "/fleet").status_code == 503
            fleet.redis.start()
            deadline = time.monotonic() + 30
            while (response := fleet.admin("b", "PUT", f"/models/{CLOTHES}/aliases/latest", {"version": "v3"})).status_code != 200:
                assert time.monotonic() < deadline, response.text
                time.sleep(0.2)
            fleet.converge("after the outage: latest -> v3 (b)", lambda b: b["aliases"]["latest"] == "v3", time.monotonic())
            report_figures(f"fleet: Redis stopped {OUTAGE_SECONDS} s: {refusals} admin calls answered 503, serving went on")

        def rolling_restart():
            """One replica at a time, the next only once nginx uses the restarted one again: a replica that
            refused connections while it restarted is skipped for fail_timeout (deploy/nginx/model-server.conf)."""
            for name in NAMES:
                fleet.replicas[name].stop()
                fleet.start(name, fleet.replicas[name].port).wait_ready()
                time.sleep(NGINX_FAIL_TIMEOUT + 1)
            fleet.converge("rolling restart", lambda b: versions(b) == {"v2", "v3"} and stable(b) == "v3" and b["aliases"]["latest"] == "v3", time.monotonic())

        step("load v3 through a (fetched from the repository)", load_v3)
        step("split stable 90/10 through b", split)
        step("an alias moved 10 times through a, b, c in turn", flips)
        step("shadow through c", shadow)
        step("promote v3 through a", promote)
        step("roll back through b", rollback)
        step("promote through c, unload v1 through a", promote_and_unload_v1)
        step("kill -9 replica c, start it again", kill_and_restart_c)
        step(f"Redis stopped {OUTAGE_SECONDS} s, then started", redis_outage)
        step("rolling restart of the fleet", rolling_restart)

    status = fleet.admin("b", "GET", "/fleet").json()
    assert {r["replica"] for r in status["replicas"]} == set(NAMES) and all(r["in_sync"] for r in status["replicas"]), status["replicas"]
    for name in NAMES:  # each replica fetched v3 into its own store
        assert (fleet.homes[name] / "models" / CLOTHES / "v3").is_dir(), name
        assert f'replica="{name}"' in requests.get(f"{fleet.replicas[name].url}/metrics", timeout=10).text
    # Drift over the fleet: every replica's window of v3 (stable under load), from the counts each reports.
    # A replica's counts are those of its last drift report: asking each for its drift makes one now.
    own = [requests.get(f"{fleet.replicas[name].url}/models/{CLOTHES}/v3/drift", timeout=10).json()["window"]["size"] for name in NAMES]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = fleet.admin("c", "GET", "/fleet").json()
        fleet_drift = status["drift"].get(CLOTHES, {}).get("v3", {})
        if fleet_drift.get("replicas") == 3 and fleet_drift["window"]["size"] == sum(own):
            break
        time.sleep(0.5)
    assert fleet_drift["replicas"] == 3 and fleet_drift["window"]["size"] == sum(own), (fleet_drift.get("window"), own)
    per_replica = {r["replica"]: r["drift"][CLOTHES]["v3"]["window"] for r in status["replicas"]}
    assert per_replica == dict(zip(NAMES, own, strict=True)), per_replica
    report_figures(f"fleet drift of v3: {fleet_drift['verdict']} over {fleet_drift['window']['size']} predictions of 3 replicas ({', '.join(map(str, own))} each)")
    report_figures(
        "fleet steps (requests through nginx, failed, cut mid-response by a kill): " + "; ".join(f"{name}: {count}, {failed}, {cut}" for name, count, failed, cut in steps)
    )
    for name, seconds in fleet.convergence.items():
        report_figures(f"fleet convergence, {name}: median {statistics.median(seconds):.2f} s, worst {max(seconds):.2f} s over {len(seconds)}")

    # The whole fleet stopped and started again: the desired state is Redis's, not configuration.yaml's.
    for srv in fleet.replicas.values():
        srv.stop()
    for name in NAMES:
        fleet.start(name, fleet.replicas[name].port)
    for srv in fleet.replicas.values():
        srv.wait_ready()
    for name in NAMES:
        served = requests.get(f"{fleet.replicas[name].url}/models/{CLOTHES}", timeout=5).json()
        assert versions(served) == {"v2", "v3"} and stable(served) == "v3" and served["aliases"]["latest"] == "v3", (name, served)


def test_two_admins_at_once_lose_no_update_and_a_stale_one_gets_409(fleet):
    barrier = threading.Barrier(2)
    answers = {}

    def write(name: str, alias: str, version: str) -> None:
        barrier.wait()
        answers[alias] = fleet.admin(name, "PUT", f"/models/{CLOTHES}/aliases/{alias}", {"version": version})

    threads = [threading.Thread(target=write, args=args) for args in (("a", "team-a", "v1"), ("b", "team-b", "v2"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.status_code == 200 for r in answers.values()), {k: r.text for k, r in answers.items()}
    assert answers["team-a"].json()["generation"] != answers["team-b"].json()["generation"]
    fleet.converge("two admins at once", lambda b: b["aliases"].get("team-a") == "v1" and b["aliases"].get("team-b") == "v2", time.monotonic())

    current = fleet.admin("c", "GET", "/fleet").json()["generation"]
    assert fleet.admin("a", "PUT", f"/models/{CLOTHES}/aliases/team-c", {"version": "v2"}, headers={"If-Match": str(current)}).status_code == 200
    stale = fleet.admin("b", "PUT", f"/models/{CLOTHES}/aliases/team-c", {"version": "v1"}, headers={"If-Match": str(current)})
    assert stale.status_code == 409 and stale.headers["X-State-Generation"] == str(current + 1), stale.text
    assert f"current one is {current + 1}" in stale.json()["error"]
    fleet.converge("If-Match", lambda b: b["aliases"].get("team-c") == "v2", time.monotonic())


def test_feedback_through_one_replica_joins_where_each_prediction_was_answered(fleet):
    """Predictions spread over the replicas by nginx; their labels sent to replica a alone reach the
    others through Redis, each joins the answers it gave, and GET /fleet adds them up exactly."""
    names = requests.get(f"{fleet.nginx}/models/{CLOTHES}/v1", timeout=TIMEOUT).json()["output"]["labels"]
    labels, expected = [], 0
    for index in range(30):
        image = [[(index * 7 + row) % 256 for _ in range(28)] for row in range(28)]
        answer = requests.post(f"{fleet.nginx}/models/{CLOTHES}/stable", json={"image": image}, headers={"X-Request-Id": f"spread-{index}"}, timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
        predicted = answer.json()["predictions"][0]["label"]
        truth = predicted if index % 2 == 0 else next(name for name in names if name != predicted)
        expected += truth == predicted
        labels.append({"id": f"spread-{index}", "label": truth})
    sent = fleet.admin("a", "POST", f"/models/{CLOTHES}/feedback", {"feedback": labels})
    assert sent.status_code == 200 and sent.json()["shared"] is True and sent.json()["accepted"] == 30, sent.text
    assert sent.json()["joined"] < 30  # nginx spread the predictions: a answered only some
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        live = fleet.admin("b", "GET", "/fleet").json()["live"].get(CLOTHES, {}).get("v1", {})
        if live.get("examples") == 30:
            break
        time.sleep(0.25)
    assert live.get("examples") == 30 and live["correct"] == expected, live
    per_replica = {r["replica"]: r["live"][CLOTHES]["v1"][1] for r in fleet.admin("c", "GET", "/fleet").json()["replicas"]}
    assert sum(per_replica.values()) == 30 and sum(1 for count in per_replica.values() if count) >= 2, per_replica
