"""The course's way of serving the model: Flask's threaded development server, ``model.predict`` per request.

    .venv/bin/python -m bench.baseline_flask --port 5000
    curl -X POST localhost:5000/models/clothes/v1 -H 'content-type: application/json' -d '{"image": [[0, ...], ...]}'

It serves the course's model, clothes v1, at the course's route, nothing else. Besides the course's
JSON body it accepts a multipart image file under ``image`` and raw uint8 ``application/octet-stream``
in the card's shape, so the course-route scenarios can run against it. The card gives the shape.
"""

from __future__ import annotations

import argparse
import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from flask import Flask, request  # noqa: E402
from PIL import Image  # noqa: E402

MODEL, VERSION = "clothes", "v1"  # the course's
PATH = f"/models/{MODEL}/{VERSION}"

app = Flask(__name__)
model = card = None  # loaded by main()


def request_pixels() -> np.ndarray:
    if request.mimetype == "application/octet-stream":
        return np.frombuffer(request.get_data(), dtype=np.uint8)
    if request.mimetype == "multipart/form-data":
        height, width = card.input.shape[:2]
        image = Image.open(io.BytesIO(request.files["image"].read())).convert(card.preprocessing.colour_mode)
        return np.array(image.resize((width, height)))
    return np.array(request.json["image"])


@app.route(PATH, methods=["POST"])
def predict():
    x = request_pixels() / 255
    x = x.reshape(-1, *card.input.shape)
    result = model.predict(x)
    return {"result": result.tolist()}


@app.route("/readyz")
def ready():
    return "ok"


def main() -> None:
    global model, card
    from models import store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    card = store.load_card(MODEL, VERSION)
    model = store.load_keras(MODEL, VERSION)
    app.run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
