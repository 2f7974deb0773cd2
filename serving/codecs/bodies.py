"""Body codecs: an HTTP body -> model input values, the codec chosen by content type, sized by the card.

Accepted bodies (anything else is 415; pickle never):

- ``application/json``: one example or a batch, in the card's shape: for image models
  ``{"image": <H x W grey, or H x W x 3 colour>}`` or ``{"images": [...]}``; for other models
  ``{"input": <example>}`` or ``{"inputs": [...]}``; values in the card's range (0..255 for images);
- ``multipart/form-data`` (image models): an image file under the key ``image`` (PNG, JPEG, ...;
  any size), with an optional ``invert`` field or query parameter: ``auto`` (default: the card's
  policy), ``true`` or ``false``;
- ``application/octet-stream`` (image models): raw uint8 values, N x H x W x C row-major, for compact batches;
- ``application/x-npy``: a NumPy ``.npy`` array of examples, or of one, loaded without pickle.

Each codec is a :class:`BodyCodec` in ``BODY_CODECS`` (media type -> codec): what it accepts, how it
decodes, and how the OpenAPI document describes it (``openapi_media``). A new one is a class and a
``register`` call; the 415 messages and the OpenAPI document's content types follow the registry.

    >>> values = await decode(request, card, max_batch=1024)    # (N, *card.input.shape)
    >>> request = InferenceRequest(name, Named(version), {INPUT: Body.of(request)})   # decoded by the data plane
"""

from __future__ import annotations

import abc
import dataclasses
import io
import json
import math
import tokenize
from collections.abc import Mapping

import numpy as np
import orjson
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from models.card import ModelCard
from models.preprocessing import Invert, check_values, example_text, parse_invert, range_text, values_from_image, values_from_json
from serving.codecs.tensors import json_tensor
from serving.core import Input, check_batch, holds_booleans
from serving.errors import BadRequest, InvalidInput, UnsupportedMediaType

JSON = "application/json"
MULTIPART = "multipart/form-data"
RAW = "application/octet-stream"
NPY = "application/x-npy"
SCHEMAS = "#/components/schemas/"  # the OpenAPI document's components (serving/openapi.py)
# The file part of an upload: an image file (any format PIL reads; these are the common ones).
IMAGE_ENCODING = {"image": {"contentType": "image/png, image/jpeg, image/gif, image/webp"}}


class BodyCodec(abc.ABC):
    media_type: str
    images_only = False  # only image models take it (image files, raw pixels)

    def accepts(self, card: ModelCard) -> bool:
        if card.named_inputs:  # an object of tensors by name: JSON only
            return self.media_type == JSON
        return card.is_image or not self.images_only

    @abc.abstractmethod
    async def decode(self, body: bytes, headers: Headers, query: Mapping[str, str], card: ModelCard) -> np.ndarray:
        """(N, *card.input.shape) values, or a ServingError naming the field."""

    @abc.abstractmethod
    def openapi_media(self, card: ModelCard, limit: int) -> dict:
        """The OpenAPI media type object of a body for ``card``'s model, at most ``limit`` examples (serving/openapi.py).
        It may refer to the model's components: ``#/components/schemas/<model>.PredictRequest``, ``.Upload``."""


BODY_CODECS: dict[str, BodyCodec] = {}


def register(codec: BodyCodec) -> BodyCodec:
    BODY_CODECS[codec.media_type] = codec
    return codec


def accepted(card: ModelCard) -> tuple[str, ...]:
    return tuple(kind for kind, codec in BODY_CODECS.items() if codec.accepts(card))


def json_fields(card: ModelCard) -> tuple[str, str]:  # named inputs too: {"input": {...}}, {"inputs": {...}}
    """The JSON fields of one example and of a batch."""
    return ("image", "images") if card.is_image else ("input", "inputs")


def json_hint(card: ModelCard) -> str:
    one, many = json_fields(card)
    values = f"{example_text(card)} list of {range_text(card)}" if card.input.value_range else f"{example_text(card)} list of numbers"
    return f'expected JSON {{"{one}": <{values}>}} or {{"{many}": [<{example_text(card)}>, ...]}}'


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclasses.dataclass(frozen=True)
class Body(Input):
    """A whole request body as the course's routes take it, decoded by the codec of its content type
    once the data plane knows the answering version's card."""

    kind: str  # the media type
    body: bytes
    headers: Headers
    query: Mapping[str, str]

    @classmethod
    async def of(cls, request: Request) -> Body:
        query = request.query_params if request.scope.get("query_string") else {}  # most requests have none: no parsing
        return cls(media_type(request), await request.body(), request.headers, query)

    async def values(self, card: ModelCard, max_examples: int) -> np.ndarray:
        """Values (N, *shape) as clients sent them (uint8 or float32), or a ServingError.

        The body size limit is enforced before this, for every route, by ``middleware.BodyLimit``.
        """
        codec = BODY_CODECS.get(self.kind)
        if codec is None or not codec.accepts(card):
            shown = self.kind or "none"
            raise UnsupportedMediaType(f"content type {shown} is not accepted by {card.tag}; use one of {', '.join(accepted(card))}")
        if "invert" in self.query:  # refused whatever the body, though only image files use it
            parse_invert(self.query["invert"])
        values = await codec.decode(self.body, self.headers, self.query, card)
        check_batch(len(values), max_examples, json_fields(card)[1])
        return values

    async def tensors(self, card: ModelCard, max_examples: int) -> dict[str, tuple[np.ndarray, str]]:
        """A model with named inputs takes JSON: ``{"inputs": {"<name>": [<example>, ...], ...}}``, or one
        example as ``{"input": {"<name>": <example>, ...}}``."""
        if self.kind != JSON:
            raise UnsupportedMediaType(f"content type {self.kind or 'none'} is not accepted by {card.tag}; it takes named inputs as JSON: {named_hint(card)}")
        if not self.body.strip():
            raise BadRequest(f"empty body; {named_hint(card)}")
        try:
            payload = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            payload = lenient_json(self.body)
        for field, batch in (("inputs", True), ("input", False)):
            named = payload.get(field) if isinstance(payload, dict) else None
            if isinstance(named, dict):
                tensors = {key: (json_tensor(value, f"{field}.{key}"), f"{field}.{key}") for key, value in named.items()}
                return tensors if batch else {key: (array[np.newaxis], where) for key, (array, where) in tensors.items()}
        raise InvalidInput(f"body: {named_hint(card)}")


def named_hint(card: ModelCard) -> str:
    names = ", ".join(f'"{spec.name}": [...]' for spec in card.inputs)
    return f'expected JSON {{"inputs": {{{names}}}}} (a batch of each input, by name) or {{"input": {{...}}}} (one example)'


async def decode(request: Request, card: ModelCard, max_batch: int) -> np.ndarray:
    """Values (N, *shape) of a request's body, decoded by its content type's codec."""
    return await (await Body.of(request)).values(card, max_batch)


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
    except (ValueError, TypeError, OSError, EOFError) as exc:
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
    # NumPy tokenizes the header and sorts its keys (a bytes key among str ones: TypeError, found by hypothesis)
    except (ValueError, TypeError, OSError, EOFError, SyntaxError, tokenize.TokenError) as exc:
        raise BadRequest(f"invalid .npy body: {exc}") from None
    declared, present = math.prod(shape) * dtype.itemsize, len(body) - stream.tell()
    if not dtype.hasobject and declared != present:  # object arrays are refused by np.load (no pickle)
        raise BadRequest(f"invalid .npy body: its header declares {declared} bytes of data ({dtype}, shape {shape}), {present} follow")


async def decode_multipart(headers: Headers, query: Mapping[str, str], body: bytes, card: ModelCard) -> np.ndarray:
    form = await parse_form(headers, body)
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
        return values_from_image(await upload.read(), card, field="image", invert=query.get("invert", invert))
    finally:
        await form.close()


class JsonCodec(BodyCodec):
    media_type = JSON

    async def decode(self, body, headers, query, card):
        return decode_json(body, card)

    def openapi_media(self, card, limit):
        return {"schema": {"$ref": f"{SCHEMAS}{card.name}.PredictRequest"}}


class MultipartCodec(BodyCodec):
    media_type, images_only = MULTIPART, True

    async def decode(self, body, headers, query, card):
        return await decode_multipart(headers, query, body, card)

    def openapi_media(self, card, limit):
        return {"schema": {"$ref": f"{SCHEMAS}{card.name}.Upload"}, "encoding": IMAGE_ENCODING}


class RawCodec(BodyCodec):
    media_type, images_only = RAW, True

    async def decode(self, body, headers, query, card):
        return decode_raw(body, card)

    def openapi_media(self, card, limit):
        shape = "x".join(map(str, card.input.shape))
        described = f"raw uint8 values, N x {shape} row-major: a multiple of {card.example_bytes} bytes, at most {limit} images"
        return {"schema": {"type": "string", "format": "binary", "description": described}}


class NpyCodec(BodyCodec):
    media_type = NPY

    async def decode(self, body, headers, query, card):
        return decode_npy(body, card)

    def openapi_media(self, card, limit):
        described = f"a NumPy .npy array of shape (N, {', '.join(map(str, card.input.shape))}) or one example, no pickled objects"
        return {"schema": {"type": "string", "format": "binary", "description": described}}


for _codec in (JsonCodec(), MultipartCodec(), RawCodec(), NpyCodec()):
    register(_codec)
ACCEPTED = tuple(BODY_CODECS)


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
