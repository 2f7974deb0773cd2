"""The HTTP contract of tests/e2e/test_api.py, against the container image.

The same test functions run here with this directory's `url` (a container of the image, with the
e2e test configuration mounted). One is replaced: the image serves the models of the store it was
built from (fully trained), not the e2e session's quickly trained ones, so the offline accuracy to
compare with comes from the served model's own metadata.
"""

from __future__ import annotations

import numpy as np
import pytest
import requests

from models.data import load_fashion_mnist
from models.specs import MODEL_NAME
from tests.e2e.test_api import *  # noqa: F403 (the test functions and their fixtures)
from tests.e2e.test_api import TIMEOUT, post_json


def test_server_scales_inputs_like_training(url):
    """Accuracy through the container's API equals the accuracy its model recorded offline."""
    metrics = requests.get(f"{url}/models/{MODEL_NAME}/v1", timeout=TIMEOUT).json()["metrics"]
    data = load_fashion_mnist(allow_download=False)
    count = metrics["test_images"]
    images, labels = data.x_test[:count], data.y_test[:count]
    predicted = []
    for start in range(0, len(images), 64):
        body = post_json(url, "v1", {"images": images[start:start + 64].tolist()}).json()
        predicted.extend(p["class_id"] for p in body["predictions"])
    api_accuracy = float(np.mean(np.asarray(predicted) == labels))
    assert api_accuracy == pytest.approx(metrics["accuracy"], abs=1e-9)
