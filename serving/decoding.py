"""HTTP request -> pixels: body size limit, content-type dispatch, JSON and multipart decoding.

Accepted bodies (anything else is 415; pickle never):

- ``application/json``: ``{"image": <28x28>}`` or ``{"images": [<28x28>, ...]}``, values 0..255;
- ``multipart/form-data``: an image file under the key ``image`` (PNG, JPEG, ...), with an optional
  ``invert`` field or query parameter: ``auto`` (default), ``true`` or ``false``;
- ``application/octet-stream``: raw uint8 pixels, N x 28 x 28 row-major, for compact batches;
- ``application/x-npy``: a NumPy ``.npy`` array of shape (N, 28, 28) or (28, 28), loaded without pickle.
"""

from __future__ import annotations

import io
import json

import numpy as np
import orjson
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from models.preprocessing import Invert, check_pixels, pixels_from_image, pixels_from_json
from models.specs import IMAGE_HEIGHT, IMAGE_WIDTH
from serving.errors import BadRequest, InvalidInput, PayloadTooLarge, UnsupportedMediaType

JSON = "application/json"
MULTIPART = "multipart/form-data"
RAW = "application/octet-stream"
NPY = "application/x-npy"
ACCEPTED = (JSON, MULTIPART, RAW, NPY)
IMAGE_BYTES = IMAGE_HEIGHT * IMAGE_WIDTH
JSON_HINT = 'expected JSON {"image": <28x28 list of 0..255>} or {"images": [<28x28>, ...]}'


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def decode(request: Request, max_batch_images: int) -> np.ndarray:
    """Pixels (N, 28, 28) in 0..255 (uint8 or float32) from a prediction request, or a ServingError.

    The body size limit is enforced before this, for every route, by ``middleware.BodyLimit``.
    """
    kind = media_type(request)
    if kind not in ACCEPTED:
        shown = kind or "none"
        raise UnsupportedMediaType(f"content type {shown} is not accepted; use one of {', '.join(ACCEPTED)}")
    body = await request.body()
    if kind == JSON:
        pixels = decode_json(body)
    elif kind == MULTIPART:
        pixels = await decode_multipart(request, body)
    elif kind == RAW:
        pixels = decode_raw(body)
    else:
        pixels = decode_npy(body)
    if len(pixels) > max_batch_images:
        raise PayloadTooLarge(f"images: {len(pixels)} images exceed the limit of {max_batch_images} per request")
    return pixels


def decode_json(body: bytes) -> np.ndarray:
    if not body.strip():
        raise BadRequest(f"empty body; {JSON_HINT}")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = _lenient_json(body)
    if not isinstance(payload, dict):
        raise InvalidInput(f"body: {JSON_HINT}")
    if "image" in payload:
        return pixels_from_json(payload["image"], field="image")
    if "images" in payload:
        return pixels_from_json(payload["images"], field="images", batch=True)
    raise InvalidInput(f"body: missing field 'image' or 'images'; {JSON_HINT}")


def _lenient_json(body: bytes):
    """The standard library's parser: slower, but it reads NaN and Infinity, so that they are refused
    as values (422, naming the field) rather than as syntax, and it words syntax errors well."""
    try:
        return json.loads(body)
    except RecursionError:
        raise BadRequest("invalid JSON: nested too deeply") from None
    except ValueError as exc:
        raise BadRequest(f"invalid JSON: {exc}") from None


def decode_raw(body: bytes) -> np.ndarray:
    if not body or len(body) % IMAGE_BYTES:
        raise InvalidInput(f"body: expected raw uint8 pixels, a multiple of {IMAGE_BYTES} bytes (N x 28 x 28), got {len(body)} bytes")
    # Stays uint8 on its way to the runner: a quarter of the bytes of float32 through the hop.
    return np.frombuffer(body, dtype=np.uint8).reshape(-1, IMAGE_HEIGHT, IMAGE_WIDTH)


def decode_npy(body: bytes) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise BadRequest(f"invalid .npy body: {exc}") from None
    if not isinstance(array, np.ndarray):
        raise BadRequest("invalid .npy body: expected one array")
    return check_pixels(array, field="body")


async def decode_multipart(request: Request, body: bytes) -> np.ndarray:
    async def stream():
        yield body

    try:
        form = await MultiPartParser(request.headers, stream(), max_files=4, max_fields=16).parse()
    except MultiPartException as exc:
        raise BadRequest(f"invalid multipart body: {exc.message}") from None
    try:
        upload = form.get("image")
        if upload is None:
            raise InvalidInput("image: missing; send the image file under the form key 'image'")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("image: expected a file upload, got a plain form field")
        invert = request.query_params.get("invert") or form.get("invert") or Invert.AUTO
        if not isinstance(invert, str):
            raise InvalidInput("invert: expected auto, true or false")
        return pixels_from_image(await upload.read(), field="image", invert=invert)
    finally:
        await form.close()
