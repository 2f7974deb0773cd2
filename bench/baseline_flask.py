"""The course's way of serving the model: Flask's threaded development server, ``model.predict`` per request.

    .venv/bin/python -m bench.baseline_flask --port 5000
    curl -X POST localhost:5000/models/clothes/v1 -H 'content-type: application/json' -d '{"image": [[0, ...], ...]}'

Besides the course's JSON body it accepts a multipart image file under ``image`` and raw uint8
``application/octet-stream`` (N x 28 x 28), so every benchmark scenario can run against it.
"""

from __future__ import annotations

import argparse
import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from flask import Flask, request  # noqa: E402
from PIL import Image  # noqa: E402

from models import store  # noqa: E402

model, info = store.load("v1")
app = Flask(__name__)


def request_pixels() -> np.ndarray:
    if request.mimetype == "application/octet-stream":
        return np.frombuffer(request.get_data(), dtype=np.uint8)
    if request.mimetype == "multipart/form-data":
        return np.array(Image.open(io.BytesIO(request.files["image"].read())).convert("L").resize((28, 28)))
    return np.array(request.json["image"])


@app.route("/models/clothes/v1", methods=["POST"])
def predict():
    x = request_pixels() / 255
    x = x.reshape(-1, 28, 28, 1)
    result = model.predict(x)
    return {"result": result.tolist()}


@app.route("/readyz")
def ready():
    return "ok"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    app.run(host=args.host, port=args.port, threaded=True)
