"""Out-of-distribution scores through a real `bentoml serve`: every course answer's predictions carry
``ood_score``; with ``abstain_above`` set at the score that flags 1% of one clean held-out split, a
second clean split is abstained on at about that rate, and hurricane-damage photos sent to the clothes
model (as JPEG files, the way a client would) are mostly abstained on, without a label."""

from __future__ import annotations

import json

import numpy as np
import pytest
import requests

from lifecycle.ood import SCORES, reference_of
from models import store
from tests.e2e.conftest import CLOTHES, ROOT, clothes, free_port, ready_server, report_figures, write_config
from training.recipes.clothes import load_data

TIMEOUT = 30
FALSE_POSITIVE_RATE = 0.01
DAMAGE_PHOTOS = sorted((ROOT / "data" / "hurricane-damage").rglob("*.jpeg"))[::100]


@pytest.fixture(scope="module")
def images():
    data = load_data(allow_download=False)
    return data.x_test[2000:3000].astype(np.uint8), data.x_test[3000:3600].astype(np.uint8)


@pytest.fixture(scope="module")
def threshold(trained_versions, images) -> float:
    """The pixel_distance of v1 that 1% of the calibration split exceeds, computed here from the stored reference."""
    card = store.load_card(CLOTHES, "v1")
    reference = reference_of(json.loads(store.read_file(store.get(CLOTHES, "v1"), "reference.json")), card)
    calibration = SCORES["pixel_distance"](images[0], np.zeros((len(images[0]), card.classes)), reference)
    return float(np.quantile(calibration, 1 - FALSE_POSITIVE_RATE))


@pytest.fixture(scope="module")
def srv(trained_versions, threshold, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ood")
    models = {CLOTHES: clothes(trained_versions, {"stable": "v1"}, ood={"score": "pixel_distance", "abstain_above": threshold})}
    with ready_server(write_config(tmp / "configuration.yaml", models), free_port(), tmp / "serve.log") as server:
        yield server


def test_clean_images_are_rarely_abstained_on_and_damage_photos_mostly(srv, images, threshold):
    clean = images[1]
    answers = []
    for start in range(0, len(clean), 50):
        response = requests.post(f"{srv.url}/models/{CLOTHES}/v1", json={"images": clean[start : start + 50].tolist()}, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        answers += response.json()["predictions"]
    assert all(isinstance(p["ood_score"], float) for p in answers)
    clean_rate = np.mean([p["abstained"] for p in answers])
    assert all(p["label"] is None and p["class_id"] is None for p in answers if p["abstained"])
    assert all(p["label"] is not None for p in answers if not p["abstained"])

    photos = []
    for path in DAMAGE_PHOTOS:
        response = requests.post(f"{srv.url}/models/{CLOTHES}/v1", files={"image": (path.name, path.read_bytes(), "image/jpeg")}, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        photos.append(response.json()["predictions"][0])
    photo_rate = np.mean([p["abstained"] for p in photos])
    report_figures(
        f"OOD (pixel_distance, abstain_above {threshold:.3f} = 1% of a clean calibration split): clean held-out abstained {clean_rate:.1%} of {len(answers)}, "
        f"damage photos {photo_rate:.1%} of {len(photos)}"
    )
    assert clean_rate <= 3 * FALSE_POSITIVE_RATE
    assert photo_rate >= 0.7
    assert min(p["ood_score"] for p in photos) > np.median([p["ood_score"] for p in answers])

    metrics = requests.get(f"{srv.url}/metrics", timeout=TIMEOUT).text
    abstained = sum(p["abstained"] for p in answers + photos)
    counted = [line for line in metrics.splitlines() if line.startswith("serving_abstentions_total") and 'version="v1"' in line]
    assert counted and float(counted[0].rsplit(" ", 1)[1]) == abstained


def test_stock_v2_clients_read_the_score_and_the_abstentions(srv, images):
    """tritonclient over HTTP and gRPC: the default answer carries ood_score and abstained beside the
    probabilities, equal to what the course's answer says for the same images."""
    import tritonclient.grpc as triton_grpc
    import tritonclient.http as triton_http

    batch = np.concatenate([images[1][:4], np.full((2, 28, 28), 255, dtype=np.uint8)])  # four clean, two all-white
    course = requests.post(f"{srv.url}/models/{CLOTHES}/v1", json={"images": batch.tolist()}, timeout=TIMEOUT).json()["predictions"]
    expected_scores = np.asarray([p["ood_score"] for p in course])
    expected_abstained = [p["abstained"] for p in course]
    assert expected_abstained[-2:] == [True, True]
    for module, address in ((triton_http, srv.url.removeprefix("http://")), (triton_grpc, srv.grpc)):
        with module.InferenceServerClient(address) as client:
            tensor = module.InferInput("input", list(batch.shape), "UINT8")
            tensor.set_data_from_numpy(batch)
            result = client.infer(CLOTHES, [tensor], model_version="v1")
            assert result.as_numpy("ood_score") == pytest.approx(expected_scores, abs=1e-5)
            assert result.as_numpy("abstained").tolist() == expected_abstained
            assert result.as_numpy("probabilities").shape == (6, 10)
            metadata = client.get_model_metadata(CLOTHES, "v1")
            names = [o["name"] for o in metadata["outputs"]] if isinstance(metadata, dict) else [o.name for o in metadata.outputs]
            assert names == ["probabilities", "ood_score", "abstained"]
