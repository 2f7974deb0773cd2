"""A hand-written peer, as a user would write it: Starlette + onnxruntime + orjson on the stored model.onnx of clothes v1.

    .venv/bin/uvicorn bench.handwritten:app --host 127.0.0.1 --port 8000 --no-access-log --log-level warning [--workers 2]

One POST route at the course's path: the course's JSON (``{"image": 28x28}`` or ``{"images": [...]}``),
raw uint8 ``application/octet-stream`` batches, or a PNG/JPEG upload (multipart, field ``image``:
grey, resized, nothing more), scaled by the card's ``divide_by``; ``{"result": probabilities}`` back.
No validation, no batching, inference on the event loop. ``/readyz`` (the worker's process id) only
lets the bench wait for every worker.
"""

import io
import os

import numpy as np
import onnxruntime as ort
import orjson
from PIL import Image
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from models import store

MODEL, VERSION = "clothes", "v1"
stored = store.get(MODEL, VERSION)
card = store.load_card(MODEL, VERSION, stored)
options = ort.SessionOptions()
options.intra_op_num_threads = 1
session = ort.InferenceSession(stored.path_of(card.engines["onnxruntime"]["file"]), options, providers=["CPUExecutionProvider"])
input_name, shape = session.get_inputs()[0].name, tuple(card.input.shape)


async def predict(request):
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/octet-stream"):
        x = np.frombuffer(await request.body(), dtype=np.uint8)
    elif content_type.startswith("multipart/form-data"):
        async with request.form() as form:
            x = np.asarray(Image.open(io.BytesIO(await form["image"].read())).convert("L").resize(shape[1::-1]))
    else:
        body = orjson.loads(await request.body())
        x = np.asarray(body["image"] if "image" in body else body["images"])
    x = (x / np.float32(card.input.divide_by)).astype(np.float32).reshape(-1, *shape)
    probabilities = session.run(None, {input_name: x})[0]
    return Response(orjson.dumps({"result": probabilities}, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


async def ready(request):
    return PlainTextResponse(str(os.getpid()))


app = Starlette(routes=[Route(f"/models/{MODEL}/{VERSION}", predict, methods=["POST"]), Route("/readyz", ready)])
