"""The course's Project 3, the way its grader runs it: `GET <base>/summary`, then for each held-out image
`requests.post(f"{base}/inference", files={"image": open(path, "rb")})`, reading
`response.json()["prediction"]`, lower-cased, against the image's folder; any status of 400 or more is
wrong. Served here: the shipped damage models (real, trained from the vendored images) next to
clothes, the routes bound to damage's stable version by configuration, on real JPEG files that
training never saw (the recipe's held-out split)."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from models import store
from tests.e2e.conftest import CLOTHES, DAMAGE, clothes, damage, free_port, ready_server, report_figures, write_config
from training.recipes import damage as recipe

GRADED = 300  # held-out images sent, the course grader's way
RNG_SEED = 7


@pytest.fixture(scope="module")
def grader_server(trained_versions, damage_versions, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("project3")
    models = {CLOTHES: clothes(["v1"], {"stable": "v1"}), DAMAGE: damage(damage_versions, {"stable": damage_versions[-1]})}
    config = write_config(tmp / "configuration.yaml", models, course={"project3": {"model": DAMAGE, "version": "stable"}})
    with ready_server(config, free_port(), tmp / "serve.log") as srv:
        yield srv


@pytest.fixture(scope="module")
def held_out():
    files = recipe.split().held_out()
    picked = np.random.default_rng(RNG_SEED).choice(len(files), size=GRADED, replace=False)
    return [files[i] for i in picked]


def test_summary_is_a_json_object_naming_the_model(grader_server, damage_versions):
    summary = requests.get(f"{grader_server.url}/summary", timeout=30).json()
    assert isinstance(summary, dict)
    assert summary["name"] == DAMAGE and summary["version"] == damage_versions[-1]
    assert summary["description"] and summary["number_of_parameters"] == store.load_card(DAMAGE, damage_versions[-1]).number_of_parameters


def graded(base: str, files: list[tuple[str, int]]) -> int:
    """How many of these (path, label index) files the course's grader counts right at ``base``."""
    correct = 0
    for path, label in files:
        with open(path, "rb") as image:
            response = requests.post(f"{base}/inference", files={"image": image}, timeout=30)  # exactly the grader's call
        correct += response.status_code < 400 and response.json()["prediction"].lower() == recipe.LABELS[label]
    return correct


def test_the_grader_scores_the_stable_version_as_offline(grader_server, held_out, damage_versions):
    correct = graded(grader_server.url, held_out)
    accuracy = correct / len(held_out)
    offline = store.load_card(DAMAGE, damage_versions[-1]).metrics["accuracy"]
    report_figures(
        f"\nProject 3 grader, {len(held_out)} held-out JPEGs through POST /inference: {correct} right ({accuracy:.4f}); "
        f"{DAMAGE}:{damage_versions[-1]} offline on its whole held-out split: {offline:.4f}"
    )
    assert accuracy >= 0.95


def test_what_the_grader_sends_equals_the_prediction_route(grader_server, held_out, damage_versions):
    path, _ = held_out[0]
    with open(path, "rb") as image:
        graded = requests.post(f"{grader_server.url}/inference", files={"image": image}, timeout=30).json()
    with open(path, "rb") as image:
        direct = requests.post(f"{grader_server.url}/models/{DAMAGE}/stable", files={"image": ("x.jpeg", image, "image/jpeg")}, timeout=30).json()
    assert graded["prediction"] == direct["predictions"][0]["label"] and graded["result"] == direct["result"]


def test_grader_routes_refuse_like_every_route(grader_server):
    refused = requests.post(f"{grader_server.url}/inference", files={"image": ("x.jpeg", b"not a jpeg")}, timeout=30)
    assert refused.status_code == 422 and "decodable" in refused.json()["error"]
    assert requests.post(f"{grader_server.url}/summary", timeout=30).status_code == 405
