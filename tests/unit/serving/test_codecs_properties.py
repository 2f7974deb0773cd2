"""Property tests of the body codecs: any body, under any content type, becomes model input values or a
typed error, for a grey 28x28 card (the course's), a colour 32x32x3 card and a tensor card.

``serving.codecs.decode`` is driven as the prediction route drives it, with a Starlette request
for each accepted content type (and others): arbitrary bytes, bodies built to be nearly right (JSON
examples with a wrong value, multipart forms with odd parts, raw batches of almost whole examples,
.npy files of every dtype and shape, some with lying headers), then damaged. What comes out is
values (N, *card.input.shape) within the card's range, N between 1 and the batch limit, or a
ServingError (or the model package's InvalidInput, which the routes map to 422). Nothing else, and
no warning.
"""

from __future__ import annotations

import asyncio
import io
import json
import warnings

import hypothesis.extra.numpy as npst
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image
from starlette.datastructures import Headers
from starlette.requests import Request

from models.card import ModelCard
from models.preprocessing import InvalidInput as InvalidPixels
from serving.codecs import ACCEPTED, JSON, MULTIPART, NPY, RAW, check_form_fields, decode, json_fields
from serving.errors import ServingError
from tests.unit.cards import clothes_card, colour_card, tensor_card

# A file or socket left for the garbage collector to close fails the test too.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
MAX_BATCH_IMAGES = 8
BOUNDARY = "fuzzb0undary"
GREY = clothes_card()
COLOUR = colour_card(aspect="crop", invert="auto")
TENSOR = tensor_card(value_range=(-1000, 1000))  # bounded: see test_preprocessing.py for values beyond float32
CARDS = pytest.mark.parametrize("card", [GREY, COLOUR, TENSOR], ids=["grey", "colour", "tensor"])
IMAGE_CARDS = pytest.mark.parametrize("card", [GREY, COLOUR], ids=["grey", "colour"])
PIXEL_MIN, PIXEL_MAX = 0, 255


def request(content_type: str | None, body: bytes, query: bytes = b"") -> Request:
    headers = [(b"content-type", content_type.encode("latin-1"))] if content_type is not None else []
    scope = {"type": "http", "method": "POST", "path": "/models/clothes/v1", "query_string": query, "headers": headers}
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


def pixels_or_typed_error(card: ModelCard, content_type: str | None, body: bytes, query: bytes = b"") -> None:
    """``decode`` gives valid values or a typed error; nothing else, no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            values = asyncio.run(decode(request(content_type, body, query), card, MAX_BATCH_IMAGES))
        except (ServingError, InvalidPixels) as exc:
            assert str(exc)
            return
    # Raw batches and image files stay uint8 on their way to the runner; everything else is float32.
    assert isinstance(values, np.ndarray) and values.dtype in (np.uint8, np.float32)
    assert values.shape[1:] == card.input.shape and 1 <= len(values) <= MAX_BATCH_IMAGES
    assert np.isfinite(values).all()
    low, high = card.input.value_range
    assert values.min() >= low and values.max() <= high


def damaged(data: st.DrawFn, body: bytes) -> bytes:
    """The body as it is, cut short, or with a few bytes changed."""
    body = bytearray(body)
    damage = data(st.sampled_from(["none", "none", "truncate", "flip"]))
    if damage == "truncate":
        del body[data(st.integers(0, len(body))) :]
    elif damage == "flip" and body:
        for _ in range(data(st.integers(1, 6))):
            body[data(st.integers(0, len(body) - 1))] = data(st.integers(0, 255))
    return bytes(body)


ACCEPTED_TYPES = st.sampled_from([*ACCEPTED, f"{MULTIPART}; boundary={BOUNDARY}", "Application/JSON; charset=latin-1", "application/x-npy; x=1"])
OTHER_TYPES = st.one_of(st.sampled_from(["text/plain", "application/python-pickle", ""]), st.none(), st.text(st.characters(max_codepoint=127), max_size=40))
CONTENT_TYPES = st.integers(0, 3).flatmap(lambda pick: OTHER_TYPES if pick == 3 else ACCEPTED_TYPES)  # mostly accepted ones
QUERIES = st.one_of(st.just(b""), st.sampled_from([b"invert=true", b"invert=AUTO", b"invert=", b"invert=maybe", b"invert=false&invert=x"]), st.binary(max_size=20))


@CARDS
@given(CONTENT_TYPES, st.binary(max_size=4096), QUERIES)
@PROPERTY
@example(JSON, b"", b"")
@example(JSON, b"[" * 100_000, b"")
@example(JSON, b'{"image": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", b"")
@example(JSON, b'{"input": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", b"")
@example(RAW, bytes(28 * 28 * (MAX_BATCH_IMAGES + 1)), b"")
@example(RAW, bytes(32 * 32 * 3 * (MAX_BATCH_IMAGES + 1)), b"")
@example(NPY, b"\x93NUMPY", b"")
@example(MULTIPART, b"--x\r\n", b"")
def test_any_bytes_under_any_content_type(card, content_type, body, query):
    pixels_or_typed_error(card, content_type, body, query)


# JSON as a client can send it, nested in lists and objects.
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=30)
PIXEL_VALUES = st.one_of(st.integers(PIXEL_MIN, PIXEL_MAX), st.floats(PIXEL_MIN, PIXEL_MAX), JSON_SCALARS)


@st.composite
def json_bodies(data, card: ModelCard) -> bytes:
    """``{"image": ...}`` or ``{"images": [...]}`` (``input``/``inputs`` for a tensor): right, nearly
    right (a wrong value, a short row), or anything."""
    shape = card.input.shape
    rows = np.full(shape, data(st.sampled_from([0, PIXEL_MAX, 0.5]))).tolist()
    example_ = rows if len(shape) > 1 else [rows]
    for _ in range(data(st.integers(0, 2))):
        index = data(st.integers(0, len(example_) - 1))
        row = example_[index] = list(example_[0])
        if data(st.booleans()):
            row[data(st.integers(0, len(row) - 1))] = data(PIXEL_VALUES)
        else:
            del row[data(st.integers(0, len(row))) :]
    image = example_ if len(shape) > 1 else example_[0]
    value = data(st.one_of(st.just(image), st.lists(st.just(image), max_size=MAX_BATCH_IMAGES + 1), JSON_VALUES))
    one, many = json_fields(card)
    payload = data(st.sampled_from([one, many, "both", "bare", "image"]))
    document = {one: value, many: value} if payload == "both" else value if payload == "bare" else {payload: value}
    try:  # the standard library writes NaN and Infinity as literals, orjson as null
        text = orjson.dumps(document) if data(st.booleans()) else json.dumps(document).encode()
    except orjson.JSONEncodeError:  # integers past 64 bits, lone surrogates
        text = json.dumps(document).encode()
    return damaged(data, text)


@CARDS
@given(data=st.data())
@PROPERTY
def test_json_bodies(card, data):
    pixels_or_typed_error(card, JSON, data.draw(json_bodies(card)))


@pytest.mark.parametrize(
    "body",
    [
        b'{"image": [[NaN]]}',
        b'{"image": ' + orjson.dumps([[0] * 28] * 28).replace(b"0,", b"true,", 1) + b"}",
        b'{"images": [' + orjson.dumps([[0] * 28] * 28).replace(b"0,", b"false,", 1) + b"]}",
    ],
)
def test_json_edge_bodies(body):
    pixels_or_typed_error(GREY, JSON, body)


@IMAGE_CARDS
@given(st.integers(0, MAX_BATCH_IMAGES + 2), st.integers(-3, 3), st.binary(min_size=1, max_size=1))
@PROPERTY
def test_raw_bodies(card, images, extra, fill):
    pixels_or_typed_error(card, RAW, fill * max(0, images * card.example_bytes + extra))


DTYPES = st.one_of(npst.scalar_dtypes(), npst.byte_string_dtypes(), npst.unicode_string_dtypes(), npst.array_dtypes(), st.just(np.dtype(object)))


def shapes(card: ModelCard):
    shape = card.input.shape
    near = [shape, (1, *shape), (MAX_BATCH_IMAGES + 1, *shape), (0, *shape)] + ([shape[:2], (2, *shape[:2])] if card.input.channels == 1 else [])
    return st.one_of(st.sampled_from(near), npst.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))


@st.composite
def npy_bodies(data, card: ModelCard) -> bytes:
    """A .npy file of any dtype and shape (object arrays pickled), Fortran or C order, or a header
    that lies about its shape; then maybe damaged."""
    SHAPES = shapes(card)
    dtype, shape = data(DTYPES), data(SHAPES)
    if data(st.booleans()):  # of a numeric dtype, within 0..255: images, if the shape is right
        dtype = data(st.one_of(npst.integer_dtypes(), npst.floating_dtypes()))
        array = data(npst.arrays(dtype, shape, elements=st.integers(PIXEL_MIN, min(PIXEL_MAX, np.iinfo(dtype).max if dtype.kind in "iu" else PIXEL_MAX))))
    elif dtype == np.dtype(object):
        array = np.empty(shape, dtype=object)
        for index in np.ndindex(shape):
            array[index] = data(JSON_VALUES)
    else:
        array = data(npst.arrays(dtype, shape))
    if data(st.booleans()):
        array = np.asfortranarray(array)
    buf = io.BytesIO()
    descr = np.lib.format.dtype_to_descr(array.dtype)
    if data(st.booleans()) and str(descr).isascii():  # the header claims another shape than the data has
        claimed = data(st.one_of(SHAPES, st.tuples(st.integers(0, 2**62), *map(st.just, card.input.shape))))
        np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": claimed})
        buf.write(array.tobytes() if dtype != np.dtype(object) else b"")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "stored array in format 3.0" (non-Latin-1 field names)
            np.save(buf, array, allow_pickle=True)
    return damaged(data, buf.getvalue())


@CARDS
@given(data=st.data())
@PROPERTY
def test_npy_bodies(card, data):
    pixels_or_typed_error(card, NPY, data.draw(npy_bodies(card)))


def image_file(data) -> bytes:
    fmt = data(st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "ICO"]))
    mode = data(st.sampled_from(["L", "RGB", "RGBA", "P", "1", "I;16"]))
    size = (data(st.integers(1, 60)), data(st.integers(1, 60)))
    buf = io.BytesIO()
    try:
        Image.new("RGB", size, (data(st.integers(0, 255)), 40, 200)).convert(mode).save(buf, format=fmt)
    except (OSError, ValueError, KeyError, TypeError):  # this format cannot hold this mode
        Image.new("L", size).save(buf, format="PNG")
    return damaged(data, buf.getvalue())


PART_NAMES = st.one_of(st.sampled_from(["image", "invert", "version", ""]), st.text(max_size=6))


@st.composite
def multipart_bodies(data) -> tuple[str, bytes]:
    """A form of a few parts: files or plain values under expected or odd names, then maybe damaged."""
    parts = []
    if data(st.booleans()):  # the image where it belongs
        parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'.encode() + image_file(data) + b"\r\n")
    for _ in range(data(st.integers(0, 3))):
        name = data(PART_NAMES).replace('"', "").replace("\r", "").replace("\n", "")
        disposition = f'form-data; name="{name}"'
        if data(st.booleans()):
            disposition += f'; filename="{data(st.sampled_from(["a.png", "", "x"]))}"'
        content = image_file(data) if data(st.booleans()) else data(st.one_of(st.sampled_from([b"auto", b"true", b"FALSE", b""]), st.binary(max_size=40)))
        headers = f"Content-Disposition: {disposition}\r\n"
        if data(st.booleans()):
            headers += f"Content-Type: {data(st.sampled_from(['image/png', 'text/plain; charset=latin-1', 'application/octet-stream']))}\r\n"
        parts.append(f"--{BOUNDARY}\r\n{headers}\r\n".encode("utf-8", "surrogatepass") + content + b"\r\n")
    body = damaged(data, b"".join(parts) + f"--{BOUNDARY}--\r\n".encode())
    content_type = data(st.sampled_from([f"{MULTIPART}; boundary={BOUNDARY}", f'{MULTIPART}; boundary="{BOUNDARY}"', MULTIPART, f"{MULTIPART}; boundary=other"]))
    return content_type, body


@IMAGE_CARDS
@given(multipart_bodies(), QUERIES)
@PROPERTY
def test_multipart_bodies(card, form, query):
    content_type, body = form
    pixels_or_typed_error(card, content_type, body, query)


@given(multipart_bodies())
@PROPERTY
def test_typed_api_form_check(form):
    """The check ahead of BentoML's typed API: it passes the form on, or refuses it with a ServingError."""
    content_type, body = form
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            asyncio.run(check_form_fields(Headers({"content-type": content_type}), body, frozenset({"image"})))
        except ServingError as exc:
            assert exc.status in (400, 422) and exc.message


def test_a_npy_header_with_a_bytes_key_is_a_400_not_a_500():
    """Found by test_npy_bodies: NumPy sorts the header's keys, and a bytes key among str ones raised TypeError."""
    import struct

    from serving.codecs.bodies import decode_npy
    from serving.errors import BadRequest
    from tests.unit.cards import clothes_card

    header = b"{'descr': '|b1', b'fortran_order': False, 'shape': (28, 28, 1), }"
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    body = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(784)
    with pytest.raises(BadRequest, match="invalid .npy body"):
        decode_npy(body, clothes_card())
