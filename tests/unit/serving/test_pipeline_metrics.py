"""A pipeline's card carries its measured metrics (the pipeline metrics record, ``pipeline_metrics``)
only while its steps' cards are the ones they were measured with."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

from serving.pipelines import add_pipelines, card_digest
from tests.unit.serving.conftest import InProcess, make_card, write_config
from tests.unit.serving.test_pipelines import LABELS, Confident


def served(tmp_path, record: dict | None):
    if record is not None:
        (tmp_path / "pipelines.json").write_text(json.dumps(record))
    pipelines = {"mc": {"combine": "cascade", "steps": ["m:v1", "m:v2"], "threshold": 0.9}}
    config = write_config(tmp_path, {"m": {"versions": ["v1", "v2"]}}, pipelines=pipelines, pipeline_metrics="pipelines.json")
    cards = {("m", v): make_card("m", v, shape=(4,), labels=LABELS, tensor=True) for v in ("v1", "v2")}
    server = InProcess(config, cards, {key: Confident(0.9, 0.9) for key in cards})
    add_pipelines(server.registry, config)
    return server, cards


def info(server) -> dict:
    with TestClient(server.app) as client:
        client.portal.call(server.probe)
        return client.get("/models/mc/v1").json()


def test_the_measured_metrics_show_for_the_steps_they_were_measured_with(tmp_path):
    digests = {f"m:{v}": card_digest(make_card("m", v, shape=(4,), labels=LABELS, tensor=True)) for v in ("v1", "v2")}
    metrics = {"accuracy": 0.93, "examples": 10000}
    server, _ = served(tmp_path, {"mc": {"steps": digests, "metrics": metrics}})
    assert info(server)["metrics"] == metrics


def test_metrics_measured_with_other_steps_are_not_shown(tmp_path):
    server, _ = served(tmp_path, {"mc": {"steps": {"m:v1": "0" * 16, "m:v2": "1" * 16}, "metrics": {"accuracy": 0.99}}})
    assert info(server)["metrics"] is None


def test_no_record_or_a_broken_one_leaves_the_metrics_empty(tmp_path):
    assert info(served(tmp_path, None)[0])["metrics"] is None
    (tmp_path / "pipelines.json").write_text("{not json")
    pipelines = {"mc": {"combine": "cascade", "steps": ["m:v1", "m:v2"], "threshold": 0.9}}
    config = write_config(tmp_path, {"m": {"versions": ["v1", "v2"]}}, pipelines=pipelines, pipeline_metrics="pipelines.json")
    from serving.pipelines import read_measured

    assert read_measured(config) == {}
