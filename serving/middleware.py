"""ASGI middleware on the entry service, covering BentoML's own routes as well as ours.

- :class:`BodyLimit` refuses bodies over the configured size with 413 (BentoML sets no limit).
- :class:`ErrorEnvelope` turns every error BentoML renders by itself (pydantic errors as a
  ``detail`` list, ``InvalidArgument`` as a one-element array, plain-text 404s) into the one
  ``{"error": "..."}`` envelope. Validation errors of the native APIs become 422, as ours are.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from serving.errors import PayloadTooLarge


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(scope, receive, send, f"body of {int(declared)} bytes exceeds the limit of {self.max_bytes} bytes")
        received = 0
        exceeded = False

        async def counting_receive():
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message):
            if not exceeded:  # once over the limit, whatever the app answers is replaced by 413
                await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            pass
        if exceeded:
            await self._refuse(scope, receive, send, f"body exceeds the limit of {self.max_bytes} bytes")

    async def _refuse(self, scope, receive, send, message: str):
        # Connection: close, so the client stops sending the rest of the body.
        response = PayloadTooLarge(message, headers={"Connection": "close"}).to_response()
        await response(scope, receive, send)


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
        return 422 if status == 400 else status, _dump(f"invalid input: {problems}")
    if isinstance(payload, dict) and "error" in payload:
        return status, _dump(str(payload["error"]))
    if isinstance(payload, dict) and "detail" in payload:
        return status, _dump(str(payload["detail"]))
    return status, _dump(str(payload) if payload else HTTPStatus(status).phrase)


def _problem(item) -> str:
    if not isinstance(item, dict):
        return str(item)
    where = ".".join(str(part) for part in item.get("loc", ()) if part != "body") or "body"
    return f"{where}: {item.get('msg', 'invalid')}"


def _dump(message: str) -> bytes:
    return json.dumps({"error": message}).encode()
