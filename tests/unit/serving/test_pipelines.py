"""Pipelines in process (serving/pipelines.py): an ensemble and a cascade of two fake versions behind the
entry's routes. The ensemble answers the weighted mean; the cascade sends only the unsure examples on
and says which step answered each; a step's error comes back as its own, naming the step; steps that
do not compose leave the pipeline unavailable, saying why."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from starlette.testclient import TestClient

from serving.errors import Conflict, Unavailable
from serving.pipelines import add_pipelines
from tests.unit.serving.conftest import InProcess, assert_error, make_card, write_config

LABELS = ("a", "b", "c")


class Confident:
    """Class 0 with probability ``p`` where an example's first value is positive, else class 1 with probability ``q``; counts the examples it saw."""

    def __init__(self, p: float, q: float, fail: bool = False):
        self.p, self.q, self.fail, self.seen = p, q, fail, 0

    async def predict(self, values: np.ndarray) -> np.ndarray:
        if self.fail:
            raise Unavailable("its runner is restarting", retry_after=3)
        self.seen += len(values)
        answers = np.zeros((len(values), 3), dtype=np.float32)
        positive = values.reshape(len(values), -1)[:, 0] > 0
        answers[positive] = [self.p, (1 - self.p) / 2, (1 - self.p) / 2]
        answers[~positive] = [(1 - self.q) / 2, self.q, (1 - self.q) / 2]
        return answers

    async def status(self) -> dict:
        return {"status": "ready", "reason": None}


def serve(tmp_path, pipelines: dict, other_labels: bool = False, fail: bool = False):
    config = write_config(tmp_path, {"m": {"versions": ["v1", "v2"], "aliases": {"stable": "v1"}}, "other": {"versions": ["v1"]}}, pipelines=pipelines)
    cards = {("m", v): make_card("m", v, shape=(4,), labels=LABELS, tensor=True) for v in ("v1", "v2")}
    cards["other", "v1"] = make_card("other", "v1", shape=(4,), labels=("x", "y", "z") if other_labels else LABELS, tensor=True)
    runners = {("m", "v1"): Confident(0.95, 0.5), ("m", "v2"): Confident(0.6, 0.8, fail=fail), ("other", "v1"): Confident(0.5, 0.5)}
    served = InProcess(config, cards, runners)
    add_pipelines(served.registry, config)
    return served, runners


@pytest.fixture
def cascade(tmp_path):
    served, runners = serve(tmp_path, {"mc": {"combine": "cascade", "steps": ["m:stable", "m:v2"], "threshold": 0.9}})
    with TestClient(served.app) as client:
        client.portal.call(served.probe)
        yield client, runners


ROWS = [[1, 0, 0, 0], [-1, 0, 0, 0], [2, 0, 0, 0], [-3, 0, 0, 0]]


def test_a_cascade_escalates_only_the_unsure_examples_and_says_which_step_answered(cascade):
    client, runners = cascade
    body = client.post("/models/mc/v1", json={"inputs": ROWS}).json()
    assert [p["step"] for p in body["predictions"]] == ["m:stable", "m:v2", "m:stable", "m:v2"]
    assert [p["label"] for p in body["predictions"]] == ["a", "b", "a", "b"]
    np.testing.assert_allclose(body["result"][1], [0.1, 0.8, 0.1], atol=1e-6)  # v2's answer to the unsure one
    assert (runners["m", "v1"].seen, runners["m", "v2"].seen) == (4, 2)
    v2 = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [4, 4], "data": sum(ROWS, [])}]}
    outputs = {o["name"]: o for o in client.post("/v2/models/mc/infer", json=v2).json()["outputs"]}
    assert outputs["step"]["datatype"] == "INT32" and outputs["step"]["data"] == [0, 1, 0, 1]
    meta = client.get("/v2/models/mc").json()
    assert [o["name"] for o in meta["outputs"]] == ["probabilities", "step"]
    info = client.get("/models/mc/v1").json()
    assert info["architecture"] == "cascade(m:stable, m:v2)" and info["output"]["labels"] == list(LABELS) and info["training"]["pipeline"]["threshold"] == 0.9
    assert client.get("/models/mc").json()["versions"][0]["engine"] == "cascade of 2 steps"
    assert "mc" in [m["name"] for m in client.get("/models").json()["models"]]


def test_an_ensemble_answers_the_weighted_mean(tmp_path):
    served, _ = serve(tmp_path, {"me": {"combine": "ensemble", "steps": ["m:v1", "m:v2"], "weights": [3, 1]}})
    with TestClient(served.app) as client:
        client.portal.call(served.probe)
        body = client.post("/models/me/v1", json={"inputs": ROWS[:2]}).json()
    expected = np.array(
        [[0.95 * 0.75 + 0.6 * 0.25, 0.025 * 0.75 + 0.2 * 0.25, 0.025 * 0.75 + 0.2 * 0.25], [0.25 * 0.75 + 0.1 * 0.25, 0.5 * 0.75 + 0.8 * 0.25, 0.25 * 0.75 + 0.1 * 0.25]]
    )
    np.testing.assert_allclose(body["result"], expected, atol=1e-6)
    assert "step" not in body["predictions"][0]


def test_a_steps_error_comes_back_as_its_own_naming_the_step(tmp_path):
    served, _ = serve(tmp_path, {"mc": {"combine": "cascade", "steps": ["m:v1", "m:v2"], "threshold": 0.9}}, fail=True)
    with TestClient(served.app) as client:
        client.portal.call(served.probe)
        assert client.post("/models/mc/v1", json={"inputs": ROWS[:1]}).status_code == 200  # sure at step 1: step 2 is never asked
        response = client.post("/models/mc/v1", json={"inputs": ROWS[:2]})
    assert_error(response, 503, "step 2 of mc:v1, m:v2", "restarting")
    assert response.headers["retry-after"] == "3"


def test_steps_that_do_not_compose_leave_the_pipeline_unavailable_saying_why(tmp_path):
    served, _ = serve(tmp_path, {"mix": {"combine": "ensemble", "steps": ["m:v1", "other:v1"]}}, other_labels=True)
    with TestClient(served.app) as client:
        client.portal.call(served.probe)
        assert_error(client.post("/models/mix/v1", json={"inputs": ROWS[:1]}), 503, "step other:v1 answers", "the same labels")
        assert client.get("/v2/models/mix/ready").status_code == 503


def test_admin_operations_on_a_pipeline_say_it_has_no_versions_of_its_own(tmp_path):
    served, _ = serve(tmp_path, {"mc": {"combine": "cascade", "steps": ["m:v1", "m:v2"], "threshold": 0.9}})
    plane = served.plane
    for call in (plane.load("mc", "v2"), plane.set_alias("mc", "stable", "v1"), plane.rollouts("mc")):
        with pytest.raises(Conflict, match="mc is a pipeline"):
            asyncio.run(call)
