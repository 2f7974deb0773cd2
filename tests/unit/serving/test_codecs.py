"""serving/codecs.py: request bodies -> model input values, sized by each model's card."""

import asyncio
import io
import json

import numpy as np
import pytest
from PIL import Image
from starlette.requests import Request

from models.preprocessing import InvalidInput as InvalidValues
from serving.codecs import accepted, decode, decode_json, decode_npy, decode_raw, json_fields
from serving.errors import BadRequest, InvalidInput, PayloadTooLarge, UnsupportedMediaType
from tests.unit.cards import clothes_card, colour_card, tensor_card

CLOTHES, COLOUR, TENSOR = clothes_card(), colour_card(), tensor_card()
BOUNDARY = "b0undary"


def request(content_type: str | None, body: bytes, query: bytes = b"") -> Request:
    headers = [(b"content-type", content_type.encode("latin-1"))] if content_type is not None else []
    scope = {"type": "http", "method": "POST", "path": "/models/m/v1", "query_string": query, "headers": headers}
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


def run_decode(card, content_type, body, query=b"", max_batch=8):
    return asyncio.run(decode(request(content_type, body, query), card, max_batch=max_batch))


def multipart(image: bytes, invert: str | None = None) -> tuple[str, bytes]:
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'.encode() + image + b"\r\n"]
    if invert is not None:
        parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="invert"\r\n\r\n{invert}\r\n'.encode())
    return f"multipart/form-data; boundary={BOUNDARY}", b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def png(pixels) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


# --- JSON ---------------------------------------------------------------------------------------


def test_course_body():
    assert decode_json(b'{"image": ' + str([[0] * 28] * 28).encode() + b"}", CLOTHES).shape == (1, 28, 28, 1)


def test_colour_bodies_one_or_many():
    scene = np.random.default_rng(0).integers(0, 256, (32, 32, 3))
    one = decode_json(json.dumps({"image": scene.tolist()}).encode(), COLOUR)
    assert one.shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(one[0], scene)
    assert decode_json(json.dumps({"images": [scene.tolist()] * 3}).encode(), COLOUR).shape == (3, 32, 32, 3)
    with pytest.raises(InvalidValues, match="32x32x3"):
        decode_json(json.dumps({"image": scene[..., 0].tolist()}).encode(), COLOUR)  # grey HxW: grey models only


def test_tensor_bodies_use_input_and_inputs():
    assert json_fields(TENSOR) == ("input", "inputs") and json_fields(CLOTHES) == ("image", "images")
    assert decode_json(b'{"input": [1, 2.5, -3, 4]}', TENSOR).shape == (1, 4)
    assert decode_json(b'{"inputs": [[1, 2, 3, 4], [0, 0, 0, 0]]}', TENSOR).shape == (2, 4)
    with pytest.raises(InvalidInput, match="missing field 'input' or 'inputs'"):
        decode_json(b'{"image": [1, 2, 3, 4]}', TENSOR)


@pytest.mark.parametrize(
    "body,error,message",
    [
        (b"", BadRequest, "empty body"),
        (b"   ", BadRequest, "empty body"),
        (b"{", BadRequest, "invalid JSON"),
        (b"[" * 50_000 + b"]" * 50_000, BadRequest, "invalid JSON"),
        (b"3", InvalidInput, "expected JSON"),
        (b'{"img": 1}', InvalidInput, "missing field 'image' or 'images'"),
        (b'{"image": [[NaN]]}', InvalidValues, "image: expected 28x28 per image"),
        (b'{"image": ' + json.dumps([[float("nan")] * 28] * 28).encode() + b"}", InvalidValues, "image: values must be finite"),
        (b'{"image": ' + json.dumps([[0] * 28] * 28).replace("0,", "true,", 1).encode() + b"}", InvalidInput, "got true or false"),
    ],
)
def test_refusals(body, error, message):
    with pytest.raises(error, match=message):
        decode_json(body, CLOTHES)


def test_the_hint_names_the_cards_shape_and_range():
    with pytest.raises(InvalidInput, match=r'expected JSON \{"image": <32x32x3 list of 0..255>\} or \{"images": \[<32x32x3>, ...\]\}'):
        decode_json(b"[]", COLOUR)
    with pytest.raises(InvalidInput, match=r'\{"input": <4 list of numbers>\}'):
        decode_json(b"[]", TENSOR)


# --- raw bytes ----------------------------------------------------------------------------------


def test_raw_bytes_are_n_by_the_cards_example_size():
    body = np.arange(2 * 32 * 32 * 3, dtype=np.uint64).astype(np.uint8).tobytes()
    values = decode_raw(body, COLOUR)
    assert values.shape == (2, 32, 32, 3) and values.dtype == np.uint8
    np.testing.assert_array_equal(values.reshape(-1), np.frombuffer(body, np.uint8))  # row-major N x H x W x C
    assert decode_raw(bytes(28 * 28 * 5), CLOTHES).shape == (5, 28, 28, 1)


@pytest.mark.parametrize("size", [0, 1, 32 * 32 * 3 - 1, 32 * 32 * 3 + 1, 32 * 32])
def test_raw_bytes_of_another_size_are_refused(size):
    with pytest.raises(InvalidInput, match=rf"a multiple of 3072 bytes \(N x 32x32x3\), got {size} bytes"):
        decode_raw(bytes(size), COLOUR)


# --- .npy ---------------------------------------------------------------------------------------


def test_npy_one_or_many():
    assert decode_npy(npy(np.zeros((32, 32, 3), np.uint8)), COLOUR).shape == (1, 32, 32, 3)
    assert decode_npy(npy(np.zeros((4, 32, 32, 3), np.float32)), COLOUR).shape == (4, 32, 32, 3)
    assert decode_npy(npy(np.zeros((3, 4))), TENSOR).shape == (3, 4)
    with pytest.raises(InvalidValues, match="body: expected 32x32x3 per image"):
        decode_npy(npy(np.zeros((4, 28, 28), np.uint8)), COLOUR)


def test_npy_refuses_pickles_and_lying_headers():
    with pytest.raises(BadRequest, match="invalid .npy body"):
        decode_npy(npy(np.array([{"a": 1}], dtype=object)), CLOTHES)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": (10**9, 28, 28)})
    with pytest.raises(BadRequest, match="declares 784000000000 bytes"):
        decode_npy(buf.getvalue() + bytes(784), CLOTHES)


# --- decode: content types, batch limit, image files --------------------------------------------


def test_content_types_by_kind_of_model():
    assert set(accepted(TENSOR)) == {"application/json", "application/x-npy"}
    assert "multipart/form-data" in accepted(COLOUR) and "application/octet-stream" in accepted(COLOUR)
    for content_type in ("application/octet-stream", "multipart/form-data; boundary=x"):
        with pytest.raises(UnsupportedMediaType, match="not accepted by vector:v1"):
            run_decode(TENSOR, content_type, bytes(16))
    for content_type in (None, "text/plain", "application/python-pickle"):
        with pytest.raises(UnsupportedMediaType):
            run_decode(COLOUR, content_type, b"{}")


def test_batch_limit_counts_examples():
    assert run_decode(COLOUR, "application/octet-stream", bytes(3072 * 8)).shape == (8, 32, 32, 3)
    with pytest.raises(PayloadTooLarge, match="images: 9 examples exceed the limit of 8"):
        run_decode(COLOUR, "application/octet-stream", bytes(3072 * 9))
    with pytest.raises(PayloadTooLarge, match="inputs: 9 examples"):
        run_decode(TENSOR, "application/json", json.dumps({"inputs": [[0] * 4] * 9}).encode())


def test_image_file_is_resized_for_the_card_and_invert_is_honoured():
    light = np.full((50, 70, 3), 240, np.uint8)
    light[20:30, 30:40] = (10, 20, 30)
    content_type, body = multipart(png(light))
    values = run_decode(COLOUR, content_type, body)  # the colour card never inverts
    assert values.shape == (1, 32, 32, 3) and values.dtype == np.uint8 and values[0, 0, 0, 0] >= 230
    content_type, body = multipart(png(light), invert="true")
    assert run_decode(COLOUR, content_type, body)[0, 0, 0, 0] <= 25
    content_type, body = multipart(png(light), invert="false")
    assert run_decode(COLOUR, content_type, body, query=b"invert=true")[0, 0, 0, 0] <= 25  # the query wins
    grey = run_decode(CLOTHES, *multipart(png(light[..., 0])))  # clothes invert light backgrounds
    assert grey.shape == (1, 28, 28, 1) and grey[0, 0, 0, 0] <= 25


@pytest.mark.parametrize("query", [b"invert=maybe", b"invert="])
def test_a_bad_invert_query_is_refused_whatever_the_body(query):
    with pytest.raises(InvalidValues, match="invert"):
        run_decode(COLOUR, "application/octet-stream", bytes(3072), query=query)


def test_multipart_without_an_image_or_with_a_plain_value():
    with pytest.raises(InvalidInput, match="image: missing"):
        run_decode(COLOUR, f"multipart/form-data; boundary={BOUNDARY}", f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--{BOUNDARY}--\r\n'.encode())
    with pytest.raises(InvalidInput, match="image: expected a file upload"):
        run_decode(COLOUR, f"multipart/form-data; boundary={BOUNDARY}", f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"\r\n\r\n1\r\n--{BOUNDARY}--\r\n'.encode())
    with pytest.raises(BadRequest, match="closing boundary"):
        run_decode(COLOUR, f"multipart/form-data; boundary={BOUNDARY}", f"--{BOUNDARY}\r\n".encode())
