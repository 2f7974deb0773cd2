"""What the TensorFlow Serving and Open Inference Protocol REST routes share: version numbers in URLs,
JSON values and base64 image files read against a card, and each protocol's status codes for the one
error hierarchy. Tensors by datatype are serving/codecs/tensors.py.

    >>> values = json_values(instances, card, "instances", batch=True)     # (N, *card shape), checked against the card
    >>> image_from_b64({"b64": "iVBORw0..."}, card, "instances[0]")

Every function raises a ``serving.errors`` exception naming the field (or ``models.preprocessing``'s
``InvalidInput``, a 422); :func:`statuses` gives those a protocol's own statuses.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Mapping

import numpy as np
import orjson

from models.card import ModelCard
from models.preprocessing import check_values, values_from_image, values_from_json
from serving import codecs
from serving.dataplane import NUMBER, caller
from serving.errors import BadRequest, InvalidInput, NotFound, ServingError, as_serving_error
from serving.protocols import Handler, documented


class ResourceExhausted(ServingError):
    """TF Serving's RESOURCE_EXHAUSTED (its HTTP 429): the version's queue is full."""

    status = 429


def statuses(remap: Mapping[type, type[ServingError]]):
    """A handler whose errors leave with its protocol's statuses: each ``ServingError`` class in ``remap``
    (and its subclasses, most specific first) becomes the mapped class, message and headers kept."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def mapped(plane, request, **params):
            try:
                return await handler(plane, request, **params)
            except Exception as exc:
                current = caller()
                current.answered = current.answered or current.resolved  # these protocols name the version an error came from
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

    return documented(describe)(bound)


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


def card_values(array: np.ndarray, card: ModelCard, field: str) -> np.ndarray:
    """A batch checked against the card: its example shape (a grey image may leave out its channel axis), range, finiteness."""
    if array.ndim == 0:
        raise BadRequest(f"{field}: expected a batch of examples, got a single number")
    return check_values(array, card, field, batch=True)
