"""The course's routes, mounted on the entry service as an ASGI app (BentoML's own APIs are POST-only).

    GET  /models                            models and their versions
    GET  /models/clothes                    versions with status and aliases
    GET  /models/clothes/{version}          model info (version or alias)
    POST /models/clothes/{version}          classify: JSON image(s) or a multipart image file

Endpoints reach the entry service through ``bentoml.get_current_service()``; it owns the runners.
"""

from __future__ import annotations

import logging

import bentoml
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from models.specs import MODEL_NAME
from serving import monitoring
from serving.decoding import decode
from serving.errors import MethodNotAllowed, NotFound, ServingError, as_serving_error, error_response
from serving.schemas import predict_response

log = logging.getLogger(__name__)


def _check_model(name: str) -> None:
    if name != MODEL_NAME:
        raise NotFound(f"unknown model {name!r}; available: {MODEL_NAME}")


async def list_models(request: Request) -> JSONResponse:
    gateway = bentoml.get_current_service()
    return JSONResponse({"models": [{"name": MODEL_NAME, "versions": list(gateway.settings.versions), "aliases": gateway.settings.aliases}]})


async def list_versions(request: Request) -> JSONResponse:
    try:
        _check_model(request.path_params["model"])
    except ServingError as exc:
        return exc.to_response()
    gateway = bentoml.get_current_service()
    return JSONResponse({"name": MODEL_NAME, "versions": await gateway.version_statuses(), "aliases": gateway.settings.aliases})


async def model_version(request: Request) -> JSONResponse:
    label = "unknown"  # metric label: only served versions, so clients cannot grow the label set
    try:
        _check_model(request.path_params["model"])
        gateway = bentoml.get_current_service()
        version = label = gateway.resolve(request.path_params["version"])
        if request.method == "GET":
            response = JSONResponse(gateway.model_info(version))
        elif request.method == "POST":
            pixels = await decode(request, gateway.settings.max_batch_images)
            probabilities = await gateway.infer(version, pixels)
            response = JSONResponse(predict_response(MODEL_NAME, version, probabilities))
        else:
            raise MethodNotAllowed(f"method {request.method} not allowed; use GET for model info or POST to classify")
    except Exception as exc:
        error = as_serving_error(exc)
        if not isinstance(exc, ServingError):
            log.exception("unexpected error on %s %s", request.method, request.url.path)
        response = error.to_response()
    monitoring.record_request(label, request.method, response.status_code)
    return response


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return error_response(exc.status_code, exc.detail)


app = Starlette(
    routes=[
        Route("/models", list_models, methods=["GET"]),
        Route("/models/{model}", list_versions, methods=["GET"]),
        Route("/models/{model}/{version}", model_version, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ],
    exception_handlers={HTTPException: http_error},
)
