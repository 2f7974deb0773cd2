"""serving/middleware.py: the one error envelope, the body and concurrency limits."""

import asyncio
import json
import logging
import sys
from http import HTTPStatus

import pytest
from pydantic import ValidationError

from serving.errors import MethodNotAllowed
from serving.middleware import BodyLimit, ClientErrorsLogged, ErrorEnvelope, envelope


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


# --- the ASGI middleware, driven with ASGI messages -----------------------------------------------


def call(app, path="/models/m/v1", chunks=(b"{}",), headers=(), method="POST"):
    """Run one request through ``app``; the (status, headers, body) it answered."""
    scope = {"type": "http", "method": method, "path": path, "headers": list(headers), "query_string": b""}
    pending = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent = []

    async def receive():
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, body


async def reads_body(scope, receive, send):
    """An app that reads the whole body, then answers its length."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def test_body_limit_by_declared_length_and_by_what_arrives():
    app = BodyLimit(reads_body, max_bytes=10)
    assert call(app, chunks=(b"12345", b"67890")) == (200, {}, b"10")
    status, headers, body = call(app, chunks=(b"x",), headers=[(b"content-length", b"11")])
    assert status == 413 and headers["connection"] == "close" and json.loads(body) == {"error": "body of 11 bytes exceeds the limit of 10 bytes"}
    status, headers, body = call(app, chunks=(b"123456", b"789012"))  # no length declared: counted as it arrives
    assert status == 413 and "exceeds the limit of 10 bytes" in json.loads(body)["error"]


def test_the_envelope_keeps_the_headers_an_error_carries():
    async def refuses(scope, receive, send):
        await MethodNotAllowed("DELETE", ["GET", "POST"]).to_response()(scope, receive, send)

    status, headers, body = call(ErrorEnvelope(refuses), method="DELETE")
    assert status == 405 and headers["allow"] == "GET, POST" and headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": "method DELETE not allowed here; use GET or POST"}
    assert int(headers["content-length"]) == len(body)


# --- BentoML's log of its typed APIs' errors -------------------------------------------------------


def _logged(exc: BaseException) -> logging.LogRecord:
    """The record BentoML's log_exception writes for ``exc``, through the filter."""
    try:
        raise exc
    except BaseException:
        record = logging.LogRecord(ClientErrorsLogged.LOGGER, logging.ERROR, __file__, 1, "Exception on %s [%s]", ("/classify", "POST"), sys.exc_info())
    assert ClientErrorsLogged().filter(record)
    return record


def test_a_clients_mistake_is_one_info_line_and_a_failure_keeps_its_traceback():
    from bentoml.exceptions import BentoMLException
    from pydantic import BaseModel

    class Input(BaseModel):
        model: str

    with pytest.raises(ValidationError) as refused:
        Input.model_validate({})
    record = _logged(refused.value)
    assert (record.levelno, record.exc_info) == (logging.INFO, None)
    assert record.getMessage().startswith("/classify [POST] refused: 1 validation error for Input model Field required") and "\n" not in record.getMessage()
    pickle = _logged(BentoMLException("pickle is not allowed", error_code=HTTPStatus.UNSUPPORTED_MEDIA_TYPE))
    assert (pickle.levelno, pickle.getMessage()) == (logging.INFO, "/classify [POST] refused: pickle is not allowed")

    class PredictResponse(BaseModel):  # a response the server built: its error is the server's
        confidence: float

    with pytest.raises(ValidationError) as answered:
        PredictResponse.model_validate({"confidence": "high"})
    for failure in (RuntimeError("boom"), BentoMLException("broken"), answered.value):
        record = _logged(failure)
        assert (record.levelno, record.getMessage()) == (logging.ERROR, "Exception on /classify [POST]") and record.exc_info[1] is failure
