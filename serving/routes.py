"""The course's routes, answered by a plain ASGI middleware on the entry service.

    GET  /models                            models and their versions
    GET  /models/clothes                    versions with status and aliases
    GET  /models/clothes/{version}          model info (version or alias)
    POST /models/clothes/{version}          classify: JSON image(s), a multipart image file, raw or .npy batches

BentoML's own API routes are POST-only, and every request through them pays for its router,
request context and schema handling. These routes are the hot path, so they are matched here, ahead
of BentoML's router, with responses serialised by orjson; every other path goes on to BentoML's app.
Handlers reach the entry service through ``bentoml.get_current_service()``; it owns the runners.
"""

from __future__ import annotations

import logging
import re

import bentoml
import orjson
from starlette.requests import Request

from models.specs import MODEL_NAME
from serving import monitoring
from serving.decoding import decode
from serving.errors import MethodNotAllowed, NotFound, ServingError, as_serving_error
from serving.schemas import predict_response

log = logging.getLogger(__name__)
ROUTE = re.compile(r"^/models(?:/(?P<model>[^/]+))?(?:/(?P<version>[^/]+))?/?$")


class ModelRoutes:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        match = ROUTE.match(scope["path"]) if scope["type"] == "http" else None
        if match is None:
            return await self.app(scope, receive, send)
        label = "unknown"  # metric label: only served versions, so clients cannot grow the label set
        try:
            model, requested = match["model"], match["version"]
            gateway = bentoml.get_current_service()
            if model is not None and model != MODEL_NAME:
                raise NotFound(f"unknown model {model!r}; available: {MODEL_NAME}")
            if requested is None:
                _allow(scope, "GET")
                body = await list_versions(gateway) if model else list_models(gateway)
            else:
                version = label = gateway.resolve(requested)
                if scope["method"] == "POST":
                    request = Request(scope, receive)
                    pixels = await decode(request, gateway.settings.max_batch_images)
                    body = predict_response(MODEL_NAME, version, await gateway.infer(version, pixels))
                else:
                    _allow(scope, "GET", "POST")
                    body = gateway.model_info(version)
            status, headers, content = 200, {}, orjson.dumps(body)
        except Exception as exc:
            error = as_serving_error(exc)
            if not isinstance(exc, ServingError):
                log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            status, headers, content = error.status, error.headers, orjson.dumps({"error": error.message})
        await send({"type": "http.response.start", "status": status, "headers": _headers(content, headers)})
        await send({"type": "http.response.body", "body": content})
        monitoring.record_request(label, scope["method"], status)


def list_models(gateway) -> dict:
    settings = gateway.settings
    return {"models": [{"name": MODEL_NAME, "versions": list(settings.versions), "aliases": settings.aliases}]}


async def list_versions(gateway) -> dict:
    return {"name": MODEL_NAME, "versions": await gateway.version_statuses(), "aliases": gateway.settings.aliases}


def _allow(scope, *methods: str) -> None:
    if scope["method"] not in methods:
        raise MethodNotAllowed(f"method {scope['method']} not allowed here; use {' or '.join(methods)}")


def _headers(content: bytes, extra: dict[str, str]) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    return headers + [(k.lower().encode(), v.encode()) for k, v in extra.items()]
