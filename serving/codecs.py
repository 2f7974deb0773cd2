"""HTTP request -> model input values: body codecs chosen by content type and sized by the model's card.

Accepted bodies (anything else is 415; pickle never):

- ``application/json``: one example or a batch, in the card's shape: for image models
  ``{"image": <H x W grey, or H x W x 3 colour>}`` or ``{"images": [...]}``; for other models
  ``{"input": <example>}`` or ``{"inputs": [...]}``; values in the card's range (0..255 for images);
- ``multipart/form-data`` (image models): an image file under the key ``image`` (PNG, JPEG, ...;
  any size), with an optional ``invert`` field or query parameter: ``auto`` (default: the card's
  policy), ``true`` or ``false``;
- ``application/octet-stream`` (image models): raw uint8 values, N x H x W x C row-major, for compact batches;
- ``application/x-npy``: a NumPy ``.npy`` array of examples, or of one, loaded without pickle.

    >>> values = await decode(request, card, max_batch=1024)    # (N, *card.input.shape)
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

from models.card import ModelCard
from models.preprocessing import Invert, check_values, example_text, parse_invert, range_text, values_from_image, values_from_json
from serving.errors import BadRequest, InvalidInput, PayloadTooLarge, UnsupportedMediaType

JSON = "application/json"
MULTIPART = "multipart/form-data"
RAW = "application/octet-stream"
NPY = "application/x-npy"
ACCEPTED = (JSON, MULTIPART, RAW, NPY)
TENSOR_ACCEPTED = (JSON, NPY)  # a model whose input is not an image takes no image files or raw pixels


def accepted(card: ModelCard) -> tuple[str, ...]:
    return ACCEPTED if card.is_image else TENSOR_ACCEPTED


def json_fields(card: ModelCard) -> tuple[str, str]:
    """The JSON fields of one example and of a batch."""
    return ("image", "images") if card.is_image else ("input", "inputs")


def json_hint(card: ModelCard) -> str:
    one, many = json_fields(card)
    values = f"{example_text(card)} list of {range_text(card)}" if card.input.value_range else f"{example_text(card)} list of numbers"
    return f'expected JSON {{"{one}": <{values}>}} or {{"{many}": [<{example_text(card)}>, ...]}}'


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def decode(request: Request, card: ModelCard, max_batch: int) -> np.ndarray:
    """Values (N, *shape) as clients sent them (uint8 or float32), or a ServingError.

    The body size limit is enforced before this, for every route, by ``middleware.BodyLimit``.
    """
    kind = media_type(request)
    if kind not in accepted(card):
        shown = kind or "none"
        raise UnsupportedMediaType(f"content type {shown} is not accepted by {card.tag}; use one of {', '.join(accepted(card))}")
    if "invert" in request.query_params:  # refused whatever the body, though only image files use it
        parse_invert(request.query_params["invert"])
    body = await request.body()
    if kind == JSON:
        values = decode_json(body, card)
    elif kind == MULTIPART:
        values = await decode_multipart(request, body, card)
    elif kind == RAW:
        values = decode_raw(body, card)
    else:
        values = decode_npy(body, card)
    check_batch(len(values), max_batch, json_fields(card)[1])
    return values


def check_batch(count: int, max_batch: int, field: str) -> None:
    if count > max_batch:
        raise PayloadTooLarge(f"{field}: {count} examples exceed the limit of {max_batch} per request")


def decode_json(body: bytes, card: ModelCard) -> np.ndarray:
    if not body.strip():
        raise BadRequest(f"empty body; {json_hint(card)}")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = lenient_json(body)
    if not isinstance(payload, dict):
        raise InvalidInput(f"body: {json_hint(card)}")
    one, many = json_fields(card)
    if one in payload:
        field, batch = one, False
    elif many in payload:
        field, batch = many, True
    else:
        raise InvalidInput(f"body: missing field '{one}' or '{many}'; {json_hint(card)}")
    values = values_from_json(payload[field], card, field=field, batch=batch)
    # NumPy reads true and false among numbers as 1 and 0; look for them only when the body has any.
    if (b"true" in body or b"false" in body) and holds_booleans(payload[field]):
        raise InvalidInput(f"{field}: expected numbers, got true or false")
    return values


def holds_booleans(rows: list) -> bool:
    """Whether regular nested lists (already known to be numbers of one depth) hold a boolean."""
    depth, first = 1, rows
    while first and isinstance(first[0], list):
        depth, first = depth + 1, first[0]
    leaves = rows
    for _ in range(depth - 1):
        leaves = itertools.chain.from_iterable(leaves)
    return bool in set(map(type, leaves))


def lenient_json(body: bytes):
    """The standard library's parser: slower, but it reads NaN and Infinity, so that they are refused
    as values (422, naming the field) rather than as syntax, and it words syntax errors well."""
    try:
        return json.loads(body)
    except RecursionError:
        raise BadRequest("invalid JSON: nested too deeply") from None
    except ValueError as exc:
        raise BadRequest(f"invalid JSON: {exc}") from None


def decode_raw(body: bytes, card: ModelCard) -> np.ndarray:
    size = card.example_bytes
    if not body or len(body) % size:
        shape = "x".join(map(str, card.input.shape))
        raise InvalidInput(f"body: expected raw uint8 values, a multiple of {size} bytes (N x {shape}), got {len(body)} bytes")
    # Stays uint8 on its way to the runner: a quarter of the bytes of float32 through the hop.
    return np.frombuffer(body, dtype=np.uint8).reshape(-1, *card.input.shape)


def decode_npy(body: bytes, card: ModelCard) -> np.ndarray:
    _check_npy_size(body)
    try:
        array = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise BadRequest(f"invalid .npy body: {exc}") from None
    if not isinstance(array, np.ndarray):
        raise BadRequest("invalid .npy body: expected one array")
    return check_values(array, card, field="body")


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


async def decode_multipart(request: Request, body: bytes, card: ModelCard) -> np.ndarray:
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
        return values_from_image(await upload.read(), card, field="image", invert=request.query_params.get("invert", invert))
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
