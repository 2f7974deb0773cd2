"""A realistic mixed load for the course's "load testing" step: JSON, PNG and batch requests, both versions.

    make serve &
    .venv/bin/locust -f locustfile.py --headless -u 50 -r 10 -t 60s --host http://127.0.0.1:3000

Most traffic is the course's single JSON image; some clients upload photos (PNG), a few send batches
as raw bytes, and a trickle reads model info. Real Fashion-MNIST test images are used, so the
predicted-class mix looks like production, and every answer is checked, not only its status.
"""

from __future__ import annotations

import io
import random

import numpy as np
from locust import FastHttpUser, between, task
from PIL import Image

from training.recipes.clothes import load_data

IMAGES = load_data(allow_download=False).x_test[:2000]
VERSIONS = ("v1", "v2", "stable", "latest")


def png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


class ModelClient(FastHttpUser):
    wait_time = between(0.0, 0.05)

    def _check(self, response, images: int) -> None:
        if response.status_code != 200:
            response.failure(f"{response.status_code}: {response.text[:200]}")
        elif len(response.json()["result"]) != images:
            response.failure("wrong number of result rows")

    @task(10)
    def json_image(self):
        version = random.choice(VERSIONS)
        image = IMAGES[random.randrange(len(IMAGES))]
        with self.client.post(f"/models/clothes/{version}", json={"image": image.tolist()}, name="json image", catch_response=True) as r:
            self._check(r, 1)

    @task(3)
    def png_upload(self):
        version = random.choice(VERSIONS)
        body = png(IMAGES[random.randrange(len(IMAGES))])
        with self.client.post(f"/models/clothes/{version}", files={"image": ("garment.png", body, "image/png")}, name="png upload", catch_response=True) as r:
            self._check(r, 1)

    @task(1)
    def raw_batch(self):
        start = random.randrange(len(IMAGES) - 64)
        headers = {"content-type": "application/octet-stream"}
        version = random.choice(VERSIONS)
        with self.client.post(f"/models/clothes/{version}", data=IMAGES[start : start + 64].tobytes(), headers=headers, name="raw batch 64", catch_response=True) as r:
            self._check(r, 64)

    @task(1)
    def model_info(self):
        self.client.get(f"/models/clothes/{random.choice(VERSIONS)}", name="model info")
