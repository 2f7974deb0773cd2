"""The course's routes, answered by a plain ASGI middleware on the entry service.

    GET  /models                            models and their versions
    GET  /models/clothes                    versions with status and aliases
    GET  /models/clothes/{version}          model info (version or alias)
    POST /models/clothes/{version}          classify: JSON image(s), a multipart image file, raw or .npy batches
    GET  /models/clothes/{version}/report   the evaluation report stored with the model (HTML)
    GET  /models/clothes/{version}/drift    drift of recent traffic against the training reference

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

from models.specs import MODEL_NAME, NAME_PATTERN
from serving import monitoring
from serving.decoding import decode
from serving.errors import MethodNotAllowed, NotFound, ServingError, as_serving_error
from serving.schemas import predict_response

log = logging.getLogger(__name__)
ROUTE = re.compile(r"^/models(?:/(?P<model>[^/]+))?(?:/(?P<version>[^/]+)(?:/(?P<resource>report|drift))?)?/?$")
HTML = "text/html; charset=utf-8"


class ModelRoutes:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        match = ROUTE.match(scope["path"]) if scope["type"] == "http" else None
        if match is None:
            return await self.app(scope, receive, send)
        # Metric label: only served versions, so clients cannot grow the label set.
        label = bentoml.get_current_service().settings.resolve(match["version"] or "") or "unknown"
        try:
            status, headers, content = 200, {}, await self.respond(scope, receive, match)
            if isinstance(content, tuple):
                headers, content = content
        except Exception as exc:
            error = as_serving_error(exc)
            if not isinstance(exc, ServingError):
                log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            status, headers, content = error.status, error.headers, orjson.dumps({"error": error.message})
        await _send(send, status, headers, content)
        monitoring.record_request(label, scope["method"], status)

    @staticmethod
    async def respond(scope, receive, match) -> bytes | tuple[dict, bytes]:
        """The body of a successful response (JSON), or its headers and body; errors raise."""
        model, requested = well_formed("model", match["model"]), well_formed("version", match["version"])
        gateway = bentoml.get_current_service()
        if model is not None and model != MODEL_NAME:
            raise NotFound(f"unknown model {model!r}; available: {MODEL_NAME}")
        if requested is None:
            _allow(scope, "GET")
            return orjson.dumps(await list_versions(gateway) if model else list_models(gateway))
        version = gateway.resolve(requested)
        if match["resource"] == "report":
            _allow(scope, "GET")
            return {"content-type": HTML}, gateway.report(version)
        if match["resource"] == "drift":
            _allow(scope, "GET")
            return orjson.dumps(gateway.drift(version))
        if scope["method"] == "POST":
            pixels = await decode(Request(scope, receive), gateway.settings.max_batch_images)
            return orjson.dumps(predict_response(MODEL_NAME, version, await gateway.infer(version, pixels)))
        _allow(scope, "GET", "POST")
        return orjson.dumps(gateway.model_info(version))


def well_formed(kind: str, name: str | None) -> str | None:
    """The name, if it is one a model or version can have; otherwise 404 before any lookup, without
    echoing it (it may be a path, control characters or kilobytes)."""
    if name is not None and not NAME_PATTERN.fullmatch(name):
        raise NotFound(f"no such {kind}: names are 1 to 64 characters of a-z, 0-9, '.', '_', '-'")
    return name


def list_models(gateway) -> dict:
    settings = gateway.settings
    return {"models": [{"name": MODEL_NAME, "versions": list(settings.versions), "aliases": settings.aliases}]}


async def list_versions(gateway) -> dict:
    return {"name": MODEL_NAME, "versions": await gateway.version_statuses(), "aliases": gateway.settings.aliases}


def _allow(scope, *methods: str) -> None:
    if scope["method"] not in methods:
        raise MethodNotAllowed(f"method {scope['method']} not allowed here; use {' or '.join(methods)}")


async def _send(send, status: int, headers: dict[str, str], content: bytes) -> None:
    headers = {"content-type": "application/json", **headers, "content-length": str(len(content))}
    await send({"type": "http.response.start", "status": status, "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]})
    await send({"type": "http.response.body", "body": content})
