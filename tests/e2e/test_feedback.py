"""Feedback and live accuracy through a real `bentoml serve` (two entry workers): a known labelled stream
of Fashion-MNIST test images is sent through four protocols and three aliases (one a split), its ground
truth comes back by request id (in batches, on fresh connections, so to either worker) or is carried
by the request (``X-Label``), and the live accuracy the server reports for each version, alias and
class equals the accuracy of that stream computed offline, in this process, by the stored model."""

from __future__ import annotations

import collections
import re
import time

import numpy as np
import pytest
import requests
import tritonclient.grpc as triton

from models import engines, store
from models.preprocessing import check_values
from tests.e2e.conftest import CLOTHES, clothes, free_port, ready_server, report_figures, write_config
from training.recipes.clothes import load_data

TIMEOUT = 30
STREAM = 240
ALIASES = {"stable": "v1", "latest": "v2", "canary": {"v1": 50, "v2": 50}}
ROUTES = ("course REST stable", "v2 REST canary", "v2 gRPC latest", "TF Serving REST canary")


@pytest.fixture(scope="module")
def srv(trained_versions, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("feedback")
    config = write_config(tmp / "configuration.yaml", {CLOTHES: clothes(trained_versions, ALIASES)}, monitoring={"refresh_seconds": 0.5})
    with ready_server(config, free_port(), tmp / "serve.log") as server:
        yield server


@pytest.fixture(scope="module")
def stream():
    data = load_data(allow_download=False)
    return data.x_test[1000 : 1000 + STREAM].astype(np.uint8), data.y_test[1000 : 1000 + STREAM].astype(int)


def offline(version: str, images: np.ndarray) -> np.ndarray:
    """The stored version's classes for ``images``, run here on ONNX Runtime (no server)."""
    card = store.load_card(CLOTHES, version)
    engine = engines.load(store.get(CLOTHES, version), card, "onnxruntime")
    return engine(check_values(images, card, "images", batch=True)).argmax(axis=1)


def send(srv, client: triton.InferenceServerClient, route: str, image: np.ndarray, rid: str, label: str | None) -> tuple[str, str | None]:
    """One image through ``route``: (the version that answered, the alias it named)."""
    headers = {"X-Request-Id": rid, **({"X-Label": label} if label is not None else {})}
    if route == "v2 gRPC latest":
        tensor = triton.InferInput("input", [1, 28, 28], "UINT8")
        tensor.set_data_from_numpy(image[None])
        result = client.infer(CLOTHES, [tensor], model_version="latest", headers={k.lower(): v for k, v in headers.items()})
        assert result.get_response().id == rid
        return result.get_response().model_version, "latest"
    if route == "course REST stable":
        response = requests.post(f"{srv.url}/models/{CLOTHES}/stable", json={"image": image.tolist()}, headers=headers, timeout=TIMEOUT)
    elif route == "v2 REST canary":
        body = {"inputs": [{"name": "input", "shape": [1, 28, 28], "datatype": "UINT8", "data": image.reshape(-1).tolist()}]}
        response = requests.post(f"{srv.url}/v2/models/{CLOTHES}/versions/canary/infer", json=body, headers=headers, timeout=TIMEOUT)
    else:
        response = requests.post(f"{srv.url}/v1/models/{CLOTHES}/labels/canary:predict", json={"instances": [image.tolist()]}, headers=headers, timeout=TIMEOUT)
    assert response.status_code == 200 and response.headers["X-Request-Id"] == rid, response.text
    return response.headers["X-Model-Version"], route.rsplit(" ", 1)[1]


def test_live_accuracy_equals_the_offline_accuracy_of_the_stream(srv, stream):
    images, truth = stream
    labels = store.load_card(CLOTHES, "v1").labels
    answered: dict[str, list[int]] = collections.defaultdict(list)  # version -> indices of the stream
    aliases: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
    carried = set(range(3, STREAM, 4))  # every fourth request carries its own label: no feedback for it
    with triton.InferenceServerClient(srv.grpc) as client:
        for index in range(STREAM):
            label = labels[truth[index]] if index in carried else None
            version, alias = send(srv, client, ROUTES[index % len(ROUTES)], images[index], f"fb-{index}", label)
            answered[version].append(index)
            aliases[version, alias].append(index)
    assert set(answered) == {"v1", "v2"}
    rest = [index for index in range(STREAM) if index not in carried]
    joined = 0
    for start in range(0, len(rest), 45):  # names for some, class indices for the others; a fresh connection each
        items = [{"id": f"fb-{i}", "label": labels[truth[i]] if i % 2 else int(truth[i])} for i in rest[start : start + 45]]
        answer = requests.post(f"{srv.url}/models/{CLOTHES}/feedback", json={"feedback": items}, timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
        assert answer.json()["unknown"] == [] and answer.json()["accepted"] == len(items)
        joined += answer.json()["joined"]
    assert joined == len(rest)

    lines = ["live accuracy against offline (the same stream, the stored model run here)"]
    for version, indices in sorted(answered.items()):
        predicted = offline(version, images[indices])
        correct = predicted == truth[indices]
        live = requests.get(f"{srv.url}/models/{CLOTHES}/{version}/live", timeout=TIMEOUT).json()
        assert live["examples"] == len(indices) and live["accuracy"]["correct"] == int(correct.sum())
        assert live["accuracy"]["value"] == pytest.approx(correct.mean(), abs=1e-6)
        assert live["accuracy"]["low"] <= correct.mean() <= live["accuracy"]["high"]
        for cls, row in enumerate(live["classes"]):
            members = truth[indices] == cls
            assert row["examples"] == int(members.sum())
            assert row["recall"] == (pytest.approx(correct[members].mean(), abs=1e-6) if members.any() else None)
        for (answering, alias), members in aliases.items():
            if answering == version:
                expected = int((offline(version, images[members]) == truth[members]).sum())
                assert (live["aliases"][alias]["examples"], live["aliases"][alias]["correct"]) == (len(members), expected)
        assert live["calibration"]["ece"] is not None and sum(b["examples"] for b in live["calibration"]["bins"]) == len(indices)
        lines.append(
            f"  {version}: live {live['accuracy']['value']:.4f} [{live['accuracy']['low']:.3f}, {live['accuracy']['high']:.3f}] over {len(indices)}, offline {correct.mean():.4f}"
        )
    report_figures("\n".join(lines))

    deadline = time.monotonic() + 10  # the gauges follow within monitoring.refresh_seconds
    while time.monotonic() < deadline:
        metrics = requests.get(f"{srv.url}/metrics", timeout=TIMEOUT).text
        found = re.search(r'serving_live_examples\{[^}]*model="clothes"[^}]*version="v1"[^}]*\} (\S+)', metrics)
        if found and float(found.group(1)) == len(answered["v1"]):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"serving_live_examples of v1 never reached {len(answered['v1'])}")
    assert re.search(r'serving_live_accuracy\{[^}]*bound="low"[^}]*\}', metrics)


def test_feedback_for_ids_never_answered_is_reported_not_joined(srv):
    answer = requests.post(f"{srv.url}/models/{CLOTHES}/feedback", json={"feedback": [{"id": "never-1", "label": 0}, {"id": "never-2", "labels": [1, 2]}]}, timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"model": CLOTHES, "accepted": 3, "joined": 0, "unknown": ["never-1", "never-2"], "unknown_ids": 2, "shared": False}
