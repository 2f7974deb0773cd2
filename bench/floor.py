"""The floor: a bare Starlette app that parses the benchmark bodies into numpy arrays and nothing more.

    .venv/bin/uvicorn bench.floor:app --host 127.0.0.1 --port 8000 --no-access-log --log-level warning

What the served service cannot beat on this machine: same HTTP stack family (uvicorn), same body
parsing, no validation, no model, no hop to a runner.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route


async def request_pixels(request: Request) -> np.ndarray:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/octet-stream":
        return np.frombuffer(await request.body(), dtype=np.uint8).reshape(-1, 28, 28)
    if media_type == "multipart/form-data":
        async with request.form() as form:
            data = await form["image"].read()
        return np.array(Image.open(io.BytesIO(data)).convert("L").resize((28, 28)))[None]
    return np.array((await request.json())["image"]).reshape(-1, 28, 28)


async def parse(request: Request) -> JSONResponse:
    pixels = await request_pixels(request)
    return JSONResponse({"images": len(pixels)})


async def ready(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/models/clothes/v1", parse, methods=["POST"]), Route("/readyz", ready)])
