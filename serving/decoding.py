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
import itertools
import json
import math
import tokenize

import numpy as np
import orjson
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from models.preprocessing import Invert, check_pixels, parse_invert, pixels_from_image, pixels_from_json
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
    if "invert" in request.query_params:  # refused whatever the body, though only image files use it
        parse_invert(request.query_params["invert"])
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
        field, batch = "image", False
    elif "images" in payload:
        field, batch = "images", True
    else:
        raise InvalidInput(f"body: missing field 'image' or 'images'; {JSON_HINT}")
    pixels = pixels_from_json(payload[field], field=field, batch=batch)
    # NumPy reads true and false among numbers as 1 and 0; look for them only when the body has any.
    if (b"true" in body or b"false" in body) and _holds_booleans(payload[field], depth=3 if batch else 2):
        raise InvalidInput(f"{field}: expected numbers, got true or false")
    return pixels


def _holds_booleans(rows: list, depth: int) -> bool:
    """Whether nested lists of the given depth (already known to be that deep) hold a boolean."""
    leaves = rows
    for _ in range(depth - 1):
        leaves = itertools.chain.from_iterable(leaves)
    return bool in set(map(type, leaves))


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
    _check_npy_size(body)
    try:
        array = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise BadRequest(f"invalid .npy body: {exc}") from None
    if not isinstance(array, np.ndarray):
        raise BadRequest("invalid .npy body: expected one array")
    return check_pixels(array, field="body")


def _check_npy_size(body: bytes) -> None:
    """Refuse a .npy body whose header declares more (or fewer) bytes than follow it: NumPy allocates
    what the header declares before reading, so a 100-byte body could ask for a terabyte."""
    stream = io.BytesIO(body)
    try:
        version = np.lib.format.read_magic(stream)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
        shape, _, dtype = read_header(stream)
    except (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError) as exc:  # NumPy tokenizes the header
        raise BadRequest(f"invalid .npy body: {exc}") from None
    declared, present = math.prod(shape) * dtype.itemsize, len(body) - stream.tell()
    if not dtype.hasobject and declared != present:  # object arrays are refused by np.load (no pickle)
        raise BadRequest(f"invalid .npy body: its header declares {declared} bytes of data ({dtype}, shape {shape}), {present} follow")


async def decode_multipart(request: Request, body: bytes) -> np.ndarray:
    form = await parse_form(request.headers, body)
    try:
        upload = form.get("image")
        if upload is None:
            raise InvalidInput("image: missing; send the image file under the form key 'image'")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("image: expected a file upload, got a plain form field")
        invert = form.get("invert", Invert.AUTO)
        if not isinstance(invert, str):
            raise InvalidInput("invert: expected auto, true or false")
        invert = parse_invert(invert)  # checked even when the query's wins
        return pixels_from_image(await upload.read(), field="image", invert=request.query_params.get("invert", invert))
    finally:
        await form.close()


async def parse_form(headers: Headers, body: bytes) -> FormData:
    async def stream():
        yield body

    # Starlette reads a body without its closing delimiter as the parts it completed, and leaves
    # the open part's file unclosed (python-multipart does not check that the body ended).
    boundary = parse_options_header(headers.get("content-type", ""))[1].get(b"boundary")
    if boundary and not (body.startswith(b"--" + boundary + b"--") or b"\r\n--" + boundary + b"--" in body):
        raise BadRequest("invalid multipart body: it ends before its closing boundary")
    try:
        return await MultiPartParser(headers, stream(), max_files=4, max_fields=16).parse()
    except MultiPartException as exc:
        raise BadRequest(f"invalid multipart body: {exc.message}") from None


async def check_form_fields(headers: Headers, body: bytes, file_fields: frozenset[str]) -> None:
    """Refuse a multipart body for a typed API whose fields are of the wrong kind, before BentoML reads it:
    it would fetch a plain value given for a file as a URL, and fail with 500 on a file given for a value."""
    form = await parse_form(headers, body)
    try:
        for name, value in form.multi_items():
            if name in file_fields and not isinstance(value, UploadFile):
                raise InvalidInput(f"{name}: expected a file upload, got a plain form field")
            if name not in file_fields and isinstance(value, UploadFile):
                raise InvalidInput(f"{name}: expected a plain form field, got a file upload")
    finally:
        await form.close()
