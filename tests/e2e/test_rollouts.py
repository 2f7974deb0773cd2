"""Progressive delivery through a real `bentoml serve`: rollouts move an alias step by step while live
traffic carries its ground truth (``X-Label``), and the server decides by itself.

- A candidate that answers noise (a Keras model with random weights, imported here) is rolled back
  within its first gated step on its live accuracy, with no failed request, and the reason recorded.
- A better candidate (clothes v1 where v2 served) reaches 100% through every step, and is recorded as
  a promotion.
- A rollout survives a restart of the server (the desired state in a file): it resumes at its step,
  with its step's start kept, and goes on to complete.

The timelines (steps, shares, gate values, decision times) are printed with the measured figures.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests

from models import store
from tests.e2e.conftest import CLOTHES, ROOT, Server, clothes, free_port, report_figures, write_config
from training.recipes.clothes import load_data

TIMEOUT = 30
NOISE = "noise"
ALIASES = {"stable": "v1", "legacy": "v2", "third": "v2", "fourth": "v2"}


@pytest.fixture(scope="module")
def noise_version(trained_versions, tmp_path_factory) -> str:
    """clothes 'noise': a Keras model with random weights (its answers are noise), imported as users do."""
    tmp = tmp_path_factory.mktemp("noise")
    script = f"""
import keras
keras.utils.set_random_seed(7)
model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")], name="noise")
model.save({str(tmp / "noise.keras")!r})
"""
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, timeout=300)
    labels = tmp / "labels.txt"
    labels.write_text("\n".join(store.load_card(CLOTHES, "v1").labels) + "\n")
    result = subprocess.run(
        [sys.executable, "train_and_save.py", "import", str(tmp / "noise.keras"), "--name", CLOTHES, "--version", NOISE, "--labels", str(labels), "--scale", "255", "--force"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return NOISE


@pytest.fixture(scope="module")
def setup(trained_versions, noise_version, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rollouts")
    config = write_config(
        tmp / "configuration.yaml",
        {CLOTHES: clothes([*trained_versions, noise_version], ALIASES)},
        live={"admin_without_token": True},
        state={"backend": "file", "path": str(tmp / "desired.json")},
    )
    return config, free_port(), tmp / "serve.log"


@pytest.fixture(scope="module")
def srv(setup):
    server = Server(*setup)
    server.wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stream():
    data = load_data(allow_download=False)
    return data.x_test[4000:6000].astype(np.uint8), data.y_test[4000:6000].astype(int)


class Traffic:
    """Labelled requests to one alias from two threads until stopped: every status is kept."""

    def __init__(self, url: str, alias: str, stream, labelled: bool = True):
        self.url, self.alias, (self.images, self.truth) = url, alias, stream
        self.labelled = labelled
        self.labels = store.load_card(CLOTHES, "v1").labels
        self.statuses: list[int] = []
        self.versions: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(offset,), daemon=True) for offset in (0, 1)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self, offset: int) -> None:
        with requests.Session() as session:
            index = offset
            while not self._stop.is_set() and len(self.statuses) < 20_000:
                at = index % len(self.images)
                try:
                    response = session.post(
                        f"{self.url}/models/{CLOTHES}/{self.alias}",
                        json={"image": self.images[at].tolist()},
                        headers={"X-Label": self.labels[self.truth[at]]} if self.labelled else {},
                        timeout=TIMEOUT,
                    )
                    self.statuses.append(response.status_code)
                    self.versions.append(response.headers.get("X-Model-Version", "?"))
                except requests.RequestException:
                    if self._stop.is_set():
                        return
                    self.statuses.append(0)
                index += 2

    @property
    def failed(self) -> int:
        return sum(status != 200 for status in self.statuses)


def start(url: str, plan: dict) -> dict:
    response = requests.post(f"{url}/models/{CLOTHES}/rollouts", json=plan, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_rollouts_answer_says_whether_this_caller_may_change_them(srv):
    answer = requests.get(f"{srv.url}/models/{CLOTHES}/rollouts", timeout=TIMEOUT).json()
    assert answer["admin"] == {"allowed": True, "reason": None}  # live.admin_without_token here


def rollout_of(url: str, alias: str) -> dict:
    return next(r for r in requests.get(f"{url}/models/{CLOTHES}/rollouts", timeout=TIMEOUT).json()["rollouts"] if r["alias"] == alias)


def wait_for(url: str, alias: str, statuses: set[str], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rollout = rollout_of(url, alias)
        if rollout["status"] in statuses:
            return rollout
        time.sleep(0.2)
    raise AssertionError(f"the rollout of {alias} is still {rollout['status']}: {rollout['events']}")


def timeline(title: str, rollout: dict) -> str:
    began = rollout["events"][0]["time"]
    lines = [f"{title}: {rollout['candidate']} through {rollout['alias']} (baseline {rollout['baseline']}), steps {rollout['steps']}"]
    for event in rollout["events"]:
        gates = event["gates"]
        shown = ", ".join(
            f"{k} {gates[k]}"
            for k in ("requests", "labelled", "accuracy", "baseline_accuracy", "shadow_examples", "shadow_agreement", "error_rate", "p99_ms")
            if gates.get(k) is not None and (gates.get("shadow_examples") or not k.startswith("shadow"))
        )
        lines.append(f"  +{event['time'] - began:6.2f} s  {event['action']:<8} share {event['share']:>3}%  {event['reason']}{f'  [{shown}]' if shown else ''}")
    return "\n".join(lines)


def aliases(url: str) -> dict:
    return requests.get(f"{url}/models/{CLOTHES}", timeout=TIMEOUT).json()["aliases"]


def test_a_candidate_that_answers_noise_is_rolled_back_within_its_first_step(srv, stream):
    plan = {"alias": "stable", "candidate": NOISE, "steps": [20, 50, 100], "min_dwell_seconds": 1, "min_requests": 20, "gates": {"min_labelled": 40, "max_accuracy_drop": 0.05}}
    with Traffic(srv.url, "stable", stream) as traffic:
        started = start(srv.url, plan)
        assert started["status"] == "running" and aliases(srv.url)["stable"] == {"v1": 80, NOISE: 20}
        rollout = wait_for(srv.url, "stable", {"rolled_back", "completed"})
        time.sleep(0.5)  # requests after the decision go to v1 only
    report_figures(timeline("bad candidate", rollout))
    assert rollout["status"] == "rolled_back", rollout["events"]
    last = rollout["events"][-1]
    assert last["action"] == "rollback" and last["step"] == 0 and last["share"] == 0 and "live accuracy" in last["reason"]
    assert last["gates"]["labelled"] >= 40 and last["gates"]["accuracy"] < last["gates"]["baseline_accuracy"]
    assert [e["action"] for e in rollout["events"]] == ["start", "rollback"]
    assert aliases(srv.url)["stable"] == "v1" and traffic.failed == 0 and NOISE in traffic.versions
    assert traffic.versions[-1] == "v1"


def test_a_candidate_that_disagrees_with_its_baseline_is_rolled_back_on_shadow_agreement_without_labels(srv, stream):
    """No ground truth needed: the baseline's requests are mirrored to the candidate while agreement is gated."""
    requests.put(f"{srv.url}/models/{CLOTHES}/shadow", json={"alias": "legacy", "candidate": NOISE, "share": 0.5}, timeout=TIMEOUT).raise_for_status()
    gates = {"min_shadow_agreement": 0.8, "min_shadow_examples": 30, "shadow_share": 0.5}
    plan = {"alias": "stable", "candidate": NOISE, "steps": [20, 100], "min_dwell_seconds": 1, "min_requests": 20, "gates": gates}
    refused = requests.post(f"{srv.url}/models/{CLOTHES}/rollouts", json=plan, timeout=TIMEOUT)
    assert refused.status_code == 409 and "one shadow" in refused.json()["error"], refused.text  # the model shadows another alias
    requests.delete(f"{srv.url}/models/{CLOTHES}/shadow", timeout=TIMEOUT).raise_for_status()
    with Traffic(srv.url, "stable", stream, labelled=False) as traffic:
        start(srv.url, plan)
        rollout = wait_for(srv.url, "stable", {"rolled_back", "completed"})
        time.sleep(0.5)
    report_figures(timeline("disagreeing candidate, no labels", rollout))
    last = rollout["events"][-1]
    assert rollout["status"] == "rolled_back" and last["step"] == 0 and "shadow agreement" in last["reason"], rollout["events"]
    assert last["gates"]["labelled"] == 0 and last["gates"]["shadow_examples"] > 0 and last["gates"]["shadow_agreement_high"] < 0.8
    assert traffic.failed == 0 and aliases(srv.url)["stable"] == "v1"
    assert requests.get(f"{srv.url}/models/{CLOTHES}/shadow", timeout=TIMEOUT).json()["shadow"] is None  # mirrored only while it ran


def test_a_better_candidate_reaches_every_step_and_is_promoted(srv, stream):
    plan = {"alias": "legacy", "candidate": "v1", "steps": [20, 50, 100], "min_dwell_seconds": 1, "min_requests": 20, "gates": {"min_labelled": 40, "max_accuracy_drop": 0.05}}
    with Traffic(srv.url, "legacy", stream) as traffic:
        start(srv.url, plan)
        rollout = wait_for(srv.url, "legacy", {"rolled_back", "completed"})
    report_figures(timeline("good candidate", rollout))
    assert rollout["status"] == "completed", rollout["events"]
    assert [(e["action"], e["share"]) for e in rollout["events"]] == [("start", 20), ("advance", 50), ("advance", 100), ("complete", 100)]
    assert all(e["gates"]["requests"] >= 20 and e["gates"]["dwell_seconds"] >= 1 for e in rollout["events"][1:])
    assert aliases(srv.url)["legacy"] == "v1" and traffic.failed == 0
    promotions = requests.get(f"{srv.url}/fleet", timeout=TIMEOUT).json()["desired"]["models"][CLOTHES]["promotions"]
    assert promotions[-1]["alias"] == "legacy" and promotions[-1]["version"] == "v1" and promotions[-1]["previous"] == "v2"


def test_requests_right_after_a_step_begins_count_for_it(srv, stream):
    """A step counts the candidate's answers from its start, not from when the judging worker first
    looked (up to half a second later): five requests sent at once, and no more, complete it."""
    start(srv.url, {"alias": "fourth", "candidate": "v1", "steps": [100], "min_dwell_seconds": 1, "min_requests": 5, "gates": {}})
    for index in range(5):
        response = requests.post(f"{srv.url}/models/{CLOTHES}/fourth", json={"image": stream[0][index].tolist()}, timeout=TIMEOUT)
        assert response.status_code == 200 and response.headers["X-Model-Version"] == "v1", response.text
    rollout = wait_for(srv.url, "fourth", {"rolled_back", "completed"}, timeout=20)
    assert rollout["status"] == "completed" and rollout["events"][-1]["gates"]["requests"] == 5, rollout["events"]


def test_a_restart_in_the_middle_of_a_rollout_resumes_it(srv, setup, stream):
    plan = {"alias": "third", "candidate": "v1", "steps": [10, 100], "min_dwell_seconds": 6, "min_requests": 5, "gates": {}}
    before = start(srv.url, plan)
    srv.stop()
    again = Server(*setup)
    try:
        again.wait_ready()
        resumed = rollout_of(again.url, "third")
        assert resumed["status"] == "running" and resumed["step"] == 0 and resumed["step_started"] == before["step_started"]
        assert aliases(again.url)["third"] == {"v2": 90, "v1": 10}
        with Traffic(again.url, "third", stream) as traffic:
            rollout = wait_for(again.url, "third", {"rolled_back", "completed"})
        report_figures(timeline("restarted in step 0", rollout))
        assert rollout["status"] == "completed" and [e["action"] for e in rollout["events"]] == ["start", "advance", "complete"]
        assert traffic.failed == 0
    finally:
        again.stop()
