"""What the TensorFlow Serving and Open Inference Protocol routes share: version numbers, tensors from
JSON or raw bytes, base64 image files, and each protocol's status codes for the one error hierarchy.

    >>> version_number("v12"), version_number("12"), version_number("stable")
    (12, 12, None)
    >>> tensor = tensor_from_bytes(body[64:], (2, 28, 28, 1), DATATYPES["UINT8"], "inputs[0]")  # no copy
    >>> values = card_values(tensor, card, "inputs[0]")     # (2, 28, 28, 1), checked against the card

Every function raises a ``serving.errors`` exception naming the field (or ``models.preprocessing``'s
``InvalidInput``, a 422); :func:`statuses` gives those a protocol's own statuses.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re

import numpy as np
import orjson

from models.card import ModelCard
from models.preprocessing import check_values, values_from_image, values_from_json
from serving import codecs
from serving.dataplane import caller
from serving.errors import BadRequest, InvalidInput, NotFound, ServingError, as_serving_error
from serving.protocols import Handler

# Tensor datatypes of the Open Inference Protocol that hold numbers, as little-endian NumPy types.
# BOOL, BYTES and BF16 are refused: a card's input is numbers, and NumPy has no bfloat16.
DATATYPES = {
    "UINT8": np.dtype("u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"), "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
}
NUMBER = re.compile(r"0|[1-9][0-9]{0,17}")  # a version number as TF Serving takes it (int64), written canonically
VERSION_NUMBER = re.compile(rf"v?({NUMBER.pattern})")
INPUT, OUTPUT = "input", "probabilities"  # the one input and output tensor, named alike in both protocols


class ResourceExhausted(ServingError):
    """TF Serving's RESOURCE_EXHAUSTED (its HTTP 429): the version's queue is full."""

    status = 429


def statuses(remap: dict[type, type]):
    """A handler whose errors leave with its protocol's statuses: each ``ServingError`` class in ``remap``
    (and its subclasses, most specific first) becomes the mapped class, message and headers kept."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def mapped(plane, request, **params):
            try:
                return await handler(plane, request, **params)
            except Exception as exc:
                error = as_serving_error(exc)
                for cls in type(error).__mro__:
                    if cls in remap:
                        converted = remap[cls](error.message)
                        converted.headers = {**error.headers, **converted.headers}
                        raise converted from exc
                raise

        return mapped

    return wrap


def variant(handler: Handler, describe) -> Handler:
    """The same handler with another OpenAPI description (one per path: operation ids are unique)."""

    @functools.wraps(handler)
    async def bound(plane, request, **params):
        return await handler(plane, request, **params)

    bound.openapi = describe
    return bound


def answered_by(request, handle) -> None:
    """Record the version a request resolved to, as inference does: its response names it in
    ``X-Model-Version`` and the request metrics label it (serving.protocols)."""
    caller().answered = handle


def version_number(version: str) -> int | None:
    """The number of a version named ``v<n>`` or ``<n>`` (TF Serving's versions are numbers), else None."""
    found = VERSION_NUMBER.fullmatch(version)
    return int(found.group(1)) if found else None


def numbered(model) -> dict[int, str]:
    """A served model's versions by number; a number two versions share (``v1`` and ``1``) is left out."""
    by_number: dict[int, list[str]] = {}
    for version in model.handles:
        number = version_number(version)
        if number is not None:
            by_number.setdefault(number, []).append(version)
    return {number: names[0] for number, names in by_number.items() if len(names) == 1}


def labels(model) -> dict[str, str]:
    """TF Serving labels of a served model: its aliases, and its versions that have no number."""
    unnumbered = {version: version for version in model.handles if version_number(version) is None}
    return {**unnumbered, **model.aliases}


def parse_number(text: str) -> int:
    """A version number from a URL, or 404 (TF Serving's route takes digits only)."""
    if not NUMBER.fullmatch(text):
        raise NotFound("no such version: versions are numbers in this API (/versions/<n>); an alias goes in /labels/<label>")
    return int(text)


def parse_json_object(body: bytes, field: str = "body") -> dict:
    """A JSON object (NaN and Infinity are read, so that they are refused as values, not as syntax)."""
    if not body.strip():
        raise BadRequest(f"{field}: empty; expected a JSON object")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = codecs.lenient_json(body)
    if not isinstance(payload, dict):
        raise BadRequest(f"{field}: expected a JSON object")
    return payload


def numbers(value: object, field: str, booleans: bool = True) -> np.ndarray:
    """Nested lists of numbers, not ragged, as an array. ``booleans``: the body may hold true or false
    (NumPy reads them among numbers as 1 and 0), so look for them."""
    if not isinstance(value, list):
        raise BadRequest(f"{field}: expected a list of numbers, got {_json_type(value)}")
    try:
        array = np.asarray(value)
    except (ValueError, OverflowError):
        raise BadRequest(f"{field}: expected equal-length rows of numbers (got ragged or mixed data)") from None
    if array.dtype == bool or array.dtype.kind not in "uif" or (booleans and array.size and codecs.holds_booleans(value)):
        raise BadRequest(f"{field}: expected numbers only")
    return array


def json_values(value: object, card: ModelCard, field: str, batch: bool, booleans: bool = True) -> np.ndarray:
    """One example or a batch, as nested lists in the card's shape (a grey image may leave out its channel axis)."""
    values = values_from_json(value, card, field=field, batch=batch)
    if booleans and codecs.holds_booleans(value):
        raise InvalidInput(f"{field}: expected numbers, got true or false")
    return values


def image_from_b64(value: object, card: ModelCard, field: str) -> np.ndarray:
    """``{"b64": "<base64 of a PNG or JPEG>"}``: the image file, decoded as the card's preprocessing says (1, H, W, C)."""
    if not (isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str)):
        raise BadRequest(f'{field}: expected {{"b64": "<base64 of an image file>"}}')
    if not card.is_image:
        raise BadRequest(f"{field}: {card.tag} takes {card.input.kind} values, not image files")
    try:
        data = base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{field}: not valid base64") from None
    return values_from_image(data, card, field=field)


def is_b64(value: object) -> bool:
    return isinstance(value, dict) and "b64" in value


def count(value: object) -> int | None:
    """A non-negative whole JSON number (2.0 is one, as JSON Schema's integers), or None; never a boolean."""
    if type(value) is float and value.is_integer() and value >= 0:
        return int(value)
    return value if type(value) is int and value >= 0 else None


def shape_of(value: object, field: str) -> tuple[int, ...]:
    """A tensor shape: non-negative integers. The element count is not computed here (it may be 2**40)."""
    dims = [count(dim) for dim in value] if isinstance(value, list) else [None]
    if None in dims:
        raise BadRequest(f"{field}: expected a list of non-negative integers")
    return tuple(dims)


def datatype_of(value: object, field: str) -> np.dtype:
    if not isinstance(value, str) or value not in DATATYPES:
        shown = value if isinstance(value, str) and len(value) <= 16 else _json_type(value)
        raise BadRequest(f"{field}: datatype {shown} is not accepted; use one of {', '.join(DATATYPES)}")
    return DATATYPES[value]


def tensor_from_bytes(data: bytes | memoryview, shape: tuple[int, ...], dtype: np.dtype, field: str) -> np.ndarray:
    """Raw little-endian values, row-major: exactly the shape's element count of them, without a copy."""
    expected = math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise BadRequest(f"{field}: shape {list(shape)} of {dtype.name} needs {expected} bytes, got {len(data)}")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def tensor_from_json(data: object, shape: tuple[int, ...], dtype: np.dtype, field: str, booleans: bool = True) -> np.ndarray:
    """JSON tensor data, flat or in the tensor's shape, as ``dtype``: integers must be whole and in range."""
    array = numbers(data, field, booleans)
    if array.shape != shape and not (array.ndim == 1 and array.size == math.prod(shape)):
        raise BadRequest(f"{field}: {array.size} values in shape {list(array.shape)} do not fill shape {list(shape)} (flat or in that shape)")
    if dtype.kind in "ui":
        if array.size and array.dtype.kind == "f" and not (np.isfinite(array).all() and (array == np.floor(array)).all()):
            raise BadRequest(f"{field}: {_datatype_name(dtype)} values must be whole numbers")
        info = np.iinfo(dtype)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise BadRequest(f"{field}: {_datatype_name(dtype)} values must lie in {info.min}..{info.max}")
    with np.errstate(over="ignore", invalid="ignore"):
        return array.astype(dtype).reshape(shape)


def card_values(array: np.ndarray, card: ModelCard, field: str) -> np.ndarray:
    """A batch checked against the card: its example shape (a grey image may leave out its channel axis), range, finiteness."""
    if array.ndim == 0:
        raise BadRequest(f"{field}: expected a batch of examples, got a single number")
    return check_values(array, card, field, batch=True)


def _datatype_name(dtype: np.dtype) -> str:
    return next(name for name, known in DATATYPES.items() if known == dtype)


def _json_type(value: object) -> str:
    return {dict: "an object", str: "a string", bool: "a boolean", type(None): "null", list: "a list"}.get(type(value), "a number")

