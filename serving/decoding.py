"""HTTP request -> pixels: body size limit, content-type dispatch, JSON and multipart decoding.

Accepted bodies (anything else is 415; pickle never):

- ``application/json``: ``{"image": <28x28>}`` or ``{"images": [<28x28>, ...]}``, values 0..255;
- ``multipart/form-data``: an image file under the key ``image`` (PNG, JPEG, ...), with an optional
  ``invert`` field or query parameter: ``auto`` (default), ``true`` or ``false``.
"""

from __future__ import annotations

import json

import numpy as np
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from models.preprocessing import Invert, pixels_from_image, pixels_from_json
from serving.errors import BadRequest, InvalidInput, PayloadTooLarge, UnsupportedMediaType

JSON = "application/json"
MULTIPART = "multipart/form-data"
ACCEPTED = (JSON, MULTIPART)
JSON_HINT = 'expected JSON {"image": <28x28 list of 0..255>} or {"images": [<28x28>, ...]}'


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def decode(request: Request, max_batch_images: int) -> np.ndarray:
    """Pixels (N, 28, 28) float32 in 0..255 from a prediction request, or a ServingError.

    The body size limit is enforced before this, for every route, by ``middleware.BodyLimit``.
    """
    kind = media_type(request)
    if kind not in ACCEPTED:
        shown = kind or "none"
        raise UnsupportedMediaType(f"content type {shown} is not accepted; use one of {', '.join(ACCEPTED)}")
    body = await request.body()
    if kind == JSON:
        pixels = decode_json(body)
    else:
        pixels = await decode_multipart(request, body)
    if len(pixels) > max_batch_images:
        raise PayloadTooLarge(f"images: {len(pixels)} images exceed the limit of {max_batch_images} per request")
    return pixels


def decode_json(body: bytes) -> np.ndarray:
    if not body.strip():
        raise BadRequest(f"empty body; {JSON_HINT}")
    try:
        payload = json.loads(body)
    except RecursionError:
        raise BadRequest("invalid JSON: nested too deeply") from None
    except ValueError as exc:
        raise BadRequest(f"invalid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InvalidInput(f"body: {JSON_HINT}")
    if "image" in payload:
        return pixels_from_json(payload["image"], field="image")
    if "images" in payload:
        return pixels_from_json(payload["images"], field="images", batch=True)
    raise InvalidInput(f"body: missing field 'image' or 'images'; {JSON_HINT}")


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
