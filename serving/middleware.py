"""ASGI middleware on the entry service, covering BentoML's own routes as well as ours.

- :class:`BodyLimit` refuses bodies over the configured size with 413 (BentoML sets no limit), and
  bodies still arriving after the configured time with 408.
- :class:`ErrorEnvelope` turns every error BentoML renders by itself (pydantic errors as a
  ``detail`` list, ``InvalidArgument`` as a one-element array, plain-text 404s) into the one
  ``{"error": "..."}`` envelope. Validation errors of the native APIs become 422, as ours are.
- :class:`TypedContentTypes` refuses with 415 a body on a typed API route (``/classify``,
  ``/classify_image``) whose content type is not the one that route takes: BentoML reads any unknown
  type (``application/octet-stream``, ``text/plain``, none) as JSON, and pickle must never get in.
- :class:`TypedFormFields` checks the fields of a multipart body on a typed API route before
  BentoML reads it: a broken body is 400, a plain value where a file goes or a file where a value
  goes is 422 (BentoML answered these with 500, and fetched a plain value for a file as a URL).
- :class:`ClientErrorsLogged` makes BentoML's log of a client's mistake on its typed APIs (a
  validation error, a refused content type) one INFO line instead of an ERROR with a traceback:
  the error log is for the server's own failures.
- :func:`cors` applies BentoML's own ``http.cors`` settings ahead of every route (off by default).
- :func:`read_body` reads a protocol route's body for the front door (serving/frontdoor.py), with
  the limits :class:`BodyLimit` applies to the other routes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from http import HTTPStatus
from typing import Any

from bentoml._internal.configuration.containers import BentoMLContainer
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware

from serving.codecs import check_form_fields
from serving.errors import PayloadTooLarge, RequestTimeout, ServingError, UnsupportedMediaType, error_body

# On a refused body: the client should stop sending the rest of it.
CLOSE = {"Connection": "close"}


class _Refused(Exception):
    """Raised into the app by BodyLimit's receive; BodyLimit answers instead."""


class BodyLimit:
    """Refuses a body over ``max_bytes`` (413), and one still arriving ``max_seconds`` after the
    request began (408): a slow client holds its connection and concurrency slot only that long.

    uvicorn has no timeout for request headers; a proxy in front (nginx: ``client_header_timeout``,
    ``client_body_timeout``) covers slow headers. Both refusals close the connection.
    """

    def __init__(self, app, max_bytes: int, max_seconds: float | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            too_large = PayloadTooLarge(f"body of {int(declared)} bytes exceeds the limit of {self.max_bytes} bytes", CLOSE)
            return await too_large.to_response()(scope, receive, send)
        deadline = asyncio.get_running_loop().time() + self.max_seconds if self.max_seconds else None
        received = 0
        complete = False
        refusal: ServingError | None = None

        async def guarded_receive():
            nonlocal received, complete, refusal
            if complete:  # past the body: the disconnect, waited for as long as the app likes
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                refusal = RequestTimeout(f"body not received within {self.max_seconds:g} seconds", CLOSE)
                raise _Refused() from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    refusal = PayloadTooLarge(f"body exceeds the limit of {self.max_bytes} bytes", CLOSE)
                    raise _Refused()
            return message

        async def guarded_send(message):
            if refusal is None:  # once refused, whatever the app answers is replaced by the refusal
                await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except _Refused:
            pass
        if refusal is not None:
            await refusal.to_response()(scope, receive, send)


async def read_body(scope, receive, max_bytes: int) -> bytes:
    """A request's whole body, refused past ``max_bytes`` (413, closing the connection): the front
    door's reading of a protocol route's body (its deadline is the front door's)."""
    declared = next((value for name, value in scope["headers"] if name == b"content-length"), b"")
    if declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"body of {int(declared)} bytes exceeds the limit of {max_bytes} bytes", CLOSE)
    chunks: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""  # the client went away; nothing will read the answer
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > max_bytes:
            raise PayloadTooLarge(f"body exceeds the limit of {max_bytes} bytes", CLOSE)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class TypedContentTypes:
    """``accepted``: the one media type each typed API route takes, by path (BentoML's own ``mime_type()``)."""

    def __init__(self, app, accepted: dict[str, str]):
        self.app = app
        self.accepted = accepted

    async def __call__(self, scope, receive, send):
        expected = self.accepted.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if expected is None:
            return await self.app(scope, receive, send)
        kind = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
        if kind == expected:
            return await self.app(scope, receive, send)
        message = f"content type {kind or 'none'} is not accepted by {scope['path']}; use {expected}"
        await UnsupportedMediaType(message).to_response()(scope, receive, send)


class TypedFormFields:
    """``file_fields``: for each typed API route that takes multipart, the names of its file fields."""

    def __init__(self, app, file_fields: dict[str, frozenset[str]]):
        self.app = app
        self.file_fields = file_fields

    async def __call__(self, scope, receive, send):
        files = self.file_fields.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if files is None:
            return await self.app(scope, receive, send)
        chunks = []
        while True:  # bounded by BodyLimit, outside
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            await check_form_fields(Headers(scope=scope), body, files)
        except ServingError as exc:
            return await exc.to_response()(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # the disconnect, when the client goes
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def cors(app):
    """BentoML's CORS settings (``http.cors`` of the entry service, BentoML's schema), ahead of every
    route; ``app`` itself when CORS is off (the default), so that it costs nothing.

    BentoML puts its own CORS middleware inside the service's middleware, where the course's routes
    (answered by the front door) and the API token check keep requests from reaching it: preflights
    to ``/models/...`` were refused with 405 and answers carried no grant. This applies the same
    settings outside them; BentoML's inner copy then only repeats the headers on its own routes.
    """
    if not BentoMLContainer.http.cors.enabled.get():
        return app
    options: dict[str, Any] = BentoMLContainer.access_control_options.get()  # keyword arguments of CORSMiddleware, by BentoML's schema
    return ErrorEnvelope(CORSMiddleware(app, **options))  # its refusals (a plain-text 400) in the one envelope too


class ErrorEnvelope:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        held: dict | None = None
        chunks: list[bytes] = []

        async def enveloping_send(message):
            nonlocal held
            if message["type"] == "http.response.start" and message["status"] >= 400:
                held = message
                return
            if held is None or message["type"] != "http.response.body":
                return await send(message)
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            status, body = envelope(held["status"], b"".join(chunks))
            headers = [(k, v) for k, v in held["headers"] if k.lower() not in (b"content-length", b"content-type")]
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, enveloping_send)


class ClientErrorsLogged(logging.Filter):
    """On BentoML's ``Exception on <path> [<method>]`` records: a client's mistake (pydantic's
    ``ValidationError`` of a request's model, a ``BentoMLException`` under 500) becomes one INFO line naming it."""

    LOGGER = "bentoml._internal.server.http_app"  # where BentoML's log_exception writes

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and _clients_mistake(exc):
            where = record.getMessage().removeprefix("Exception on ")
            record.msg, record.args = "%s refused: %s", (where, " ".join(str(exc).split())[:500])
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _clients_mistake(exc: BaseException) -> bool:
    from bentoml.exceptions import BentoMLException
    from pydantic import ValidationError

    # BentoML's request models are "Input" (an API's fields) or "<type>IODescriptor" (a root input); any
    # other model's error (a response the server built) is the server's own failure.
    request = isinstance(exc, ValidationError) and (exc.title == "Input" or exc.title.endswith("IODescriptor"))
    return request or (isinstance(exc, BentoMLException) and int(exc.error_code) < 500)


def envelope(status: int, body: bytes) -> tuple[int, bytes]:
    """(status, body) of an error response rewritten as ``{"error": "..."}``."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = body.decode("utf-8", "replace").strip()
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    if isinstance(payload, dict) and isinstance(payload.get("detail"), list):
        problems = "; ".join(_problem(item) for item in payload["detail"])
        # A body that is not JSON at all (syntax, nesting too deep) stays 400, as on our own routes.
        unreadable = all(isinstance(item, dict) and item.get("type") == "json_invalid" for item in payload["detail"])
        return status if unreadable else 422 if status == 400 else status, error_body(f"invalid input: {problems}")
    if isinstance(payload, dict) and "error" in payload:
        return status, error_body(str(payload["error"]))
    if isinstance(payload, dict) and "detail" in payload:
        return status, error_body(str(payload["detail"]))
    return status, error_body(str(payload) if payload else HTTPStatus(status).phrase)


def _problem(item) -> str:
    if not isinstance(item, dict):
        return str(item)
    where = ".".join(str(part) for part in item.get("loc", ()) if part != "body") or "body"
    return f"{where}: {item.get('msg', 'invalid')}"
