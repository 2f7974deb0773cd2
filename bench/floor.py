"""The floor: a bare Starlette app that parses each scenario's body into a numpy array and answers, nothing more.

    .venv/bin/uvicorn bench.floor:app --host 127.0.0.1 --port 8000 --no-access-log --log-level warning

It takes the served routes' paths and bodies (bench/scenarios.py): the course's JSON, image uploads
and raw bytes at ``/models/<name>/<version>``, the Open Inference Protocol's binary tensors at
``/v2/models/<name>/versions/<version>/infer`` and TF Serving's ``{"instances": ...}`` at
``/v1/models/<name>/versions/<n>:predict``; shapes and colour modes from the version's card, read once.
What the served service cannot beat on this machine for that body: the same HTTP stack family
(uvicorn, Starlette), the same parsers (orjson, Starlette's multipart, PIL), no validation, no model,
no hop to a runner.
"""

from __future__ import annotations

import functools
import io

import numpy as np
import orjson
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

DATATYPES = {"UINT8": np.uint8, "INT32": np.int32, "INT64": np.int64, "FP32": np.float32, "FP64": np.float64}


@functools.cache
def card_input(name: str, version: str) -> tuple[tuple[int, ...], str | None]:
    """(the card's input shape, its image colour mode), read from the store once per version."""
    from models import store

    card = store.load_card(name, version)
    return tuple(card.input.shape), card.preprocessing.colour_mode if card.preprocessing else None


def image_pixels(data: bytes, shape: tuple[int, ...], mode: str | None) -> np.ndarray:
    image = Image.open(io.BytesIO(data)).convert(mode)
    return np.asarray(image.resize((shape[1], shape[0]))).reshape(1, *shape)


async def course(request: Request) -> JSONResponse:
    shape, mode = card_input(request.path_params["name"], request.path_params["version"])
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/octet-stream":
        pixels = np.frombuffer(await request.body(), dtype=np.uint8).reshape(-1, *shape)
    elif media_type == "multipart/form-data":
        async with request.form() as form:
            pixels = image_pixels(await form["image"].read(), shape, mode)
    else:
        payload = orjson.loads(await request.body())
        pixels = np.asarray([payload["image"]] if "image" in payload else payload["images"], dtype=np.float32).reshape(-1, *shape)
    return JSONResponse({"examples": len(pixels)})


async def v2_infer(request: Request) -> JSONResponse:
    body = await request.body()
    header_length = int(request.headers.get("inference-header-content-length", len(body)))
    header = orjson.loads(body[:header_length])
    offset, tensors = header_length, []
    for tensor in header["inputs"]:
        if "binary_data_size" in tensor.get("parameters", {}):
            size = tensor["parameters"]["binary_data_size"]
            tensors.append(np.frombuffer(body[offset : offset + size], dtype=DATATYPES[tensor["datatype"]]).reshape(tensor["shape"]))
            offset += size
        else:
            tensors.append(np.asarray(tensor["data"], dtype=DATATYPES[tensor["datatype"]]).reshape(tensor["shape"]))
    return JSONResponse({"examples": len(tensors[0])})


async def tfserving_predict(request: Request) -> JSONResponse:
    shape, _ = card_input(request.path_params["name"], f"v{request.path_params['number']}")  # version <n> is v<n> (bench/scenarios.py)
    payload = orjson.loads(await request.body())
    values = np.asarray(payload["instances"] if "instances" in payload else payload["inputs"], dtype=np.float32)
    return JSONResponse({"examples": len(values.reshape(-1, *shape))})


async def ready(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = Starlette(
    routes=[
        Route("/models/{name}/{version}", course, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", v2_infer, methods=["POST"]),
        Route("/v1/models/{name}/versions/{number}:predict", tfserving_predict, methods=["POST"]),
        Route("/readyz", ready),
    ]
)
