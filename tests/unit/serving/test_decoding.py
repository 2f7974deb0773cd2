import pytest

from serving.decoding import decode_json
from serving.errors import BadRequest, InvalidInput


def test_course_body():
    assert decode_json(b'{"image": ' + str([[0] * 28] * 28).encode() + b"}").shape == (1, 28, 28)


@pytest.mark.parametrize("body,error,message", [
    (b"", BadRequest, "empty body"),
    (b"   ", BadRequest, "empty body"),
    (b"{", BadRequest, "invalid JSON"),
    (b"[" * 50_000 + b"]" * 50_000, BadRequest, "invalid JSON"),
    (b"3", InvalidInput, "expected JSON"),
    (b'{"img": 1}', InvalidInput, "missing field 'image'"),
])
def test_refusals(body, error, message):
    with pytest.raises(error, match=message):
        decode_json(body)
