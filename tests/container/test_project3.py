"""The course's Project 3 grader against the container: `GET /summary`, then `POST /inference` with each
held-out JPEG under the multipart key `image`, exactly as the grader's `requests.post(url,
files={"image": open(path, "rb")})` sends it, against the image's damage model (damage's stable)."""

from __future__ import annotations

import numpy as np
import requests

from tests.container.helpers import FIGURES, docker
from tests.e2e.test_project3 import graded
from training.recipes import damage as recipe

GRADED = 200


def test_the_course_grader_passes_against_the_container(container):
    summary = requests.get(f"{container.url}/summary", timeout=30).json()
    assert summary["name"] == "damage" and summary["number_of_parameters"] > 0 and summary["description"]
    files = recipe.split().held_out()
    picked = np.random.default_rng(11).choice(len(files), size=GRADED, replace=False)
    correct = graded(container.url, [files[i] for i in picked])
    served = requests.get(f"{container.url}/models/damage/{summary['version']}", timeout=30).json()
    FIGURES["Project 3 grader"] = (
        f"{correct} of {GRADED} held-out JPEGs right ({correct / GRADED:.3f}) from damage:{summary['version']} "
        f"(offline, on its whole held-out split: {served['metrics']['accuracy']:.4f})"
    )
    assert correct / GRADED >= 0.95


def test_every_version_runs_in_its_own_runner_on_onnx_runtime(container):
    for model in ("clothes", "damage"):
        versions = requests.get(f"{container.url}/models/{model}", timeout=30).json()["versions"]
        assert {(v["version"], v["status"], v["engine"]) for v in versions} == {("v1", "ready", "onnxruntime"), ("v2", "ready", "onnxruntime")}
    usage = docker("stats", "--no-stream", "--format", "{{.MemUsage}}", container.id).stdout.strip()
    FIGURES["memory, four versions loaded (docker stats)"] = usage
