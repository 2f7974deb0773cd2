"""The HTTP contract of tests/e2e/test_api.py, against the container image.

The same test functions run here with this directory's `url` (a container of the image, with the
e2e test configuration mounted). Two are replaced: the image serves the models of the store it was
built from (fully trained), not the e2e session's quickly trained ones, so the offline accuracy and
the card to compare with come from the served model itself.
"""

from __future__ import annotations

import numpy as np
import pytest
import requests

from models.card import ModelCard
from tests.e2e.test_api import *  # noqa: F403 (the test functions and their fixtures)
from tests.e2e.test_api import MODEL_NAME, TIMEOUT, post_json
from training.recipes.clothes import RECIPE, load_data


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_model_info_is_the_stored_card(url, version):
    """The image's model info is a complete card of the clothes recipe (the image's store, not this session's)."""
    info = requests.get(f"{url}/models/{MODEL_NAME}/{version}", timeout=TIMEOUT).json()
    card = ModelCard.model_validate({k: v for k, v in info.items() if k not in ("tag", "created", "aliases", "endpoints")})
    assert card.name == MODEL_NAME and card.version == version and card.input == RECIPE.input and card.output == RECIPE.output
    assert card.architecture == RECIPE.versions[version].architecture and card.metrics["test_images"] == 10_000


def test_server_scales_inputs_like_training(url):
    """Accuracy through the container's API equals the accuracy its model recorded offline."""
    metrics = requests.get(f"{url}/models/{MODEL_NAME}/v1", timeout=TIMEOUT).json()["metrics"]
    data = load_data(allow_download=False)
    count = metrics["test_images"]
    images, labels = data.x_test[:count], data.y_test[:count]
    predicted = []
    for start in range(0, len(images), 64):
        body = post_json(url, "v1", {"images": images[start : start + 64].tolist()}).json()
        predicted.extend(p["class_id"] for p in body["predictions"])
    api_accuracy = float(np.mean(np.asarray(predicted) == labels))
    assert api_accuracy == pytest.approx(metrics["accuracy"], abs=1e-9)
