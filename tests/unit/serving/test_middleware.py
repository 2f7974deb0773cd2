import json

import pytest

from serving.middleware import envelope


@pytest.mark.parametrize(
    "status,body,expected_status,expected",
    [
        (400, b'[{"error": "bad thing"}]', 400, "bad thing"),
        (404, b"Not Found", 404, "Not Found"),
        (500, b"", 500, "Internal Server Error"),
        (400, json.dumps({"error": "1 validation error", "detail": [{"loc": ["body", "images", 0], "msg": "too short"}]}).encode(), 422, "images.0: too short"),
        (503, b'{"detail": "Runners are not ready."}', 503, "Runners are not ready."),
    ],
)
def test_bentoml_errors_become_one_envelope(status, body, expected_status, expected):
    new_status, new_body = envelope(status, body)
    payload = json.loads(new_body)
    assert new_status == expected_status and set(payload) == {"error"} and expected in payload["error"]


def test_our_envelope_keeps_its_status_and_message():
    status, body = envelope(422, b'{"error":"image: expected 28x28"}')
    assert status == 422 and json.loads(body) == {"error": "image: expected 28x28"}
