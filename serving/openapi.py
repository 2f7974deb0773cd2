"""The service's OpenAPI document, served at ``GET /docs.json`` (the Swagger UI at ``/`` reads it).

BentoML generates a document for its typed APIs (``/classify``, ``/classify_image``) and its
infrastructure routes, but it does not know the ``/models`` routes (``serving.routes`` answers them
ahead of its router), and it documents errors its middleware never lets out: every error leaves as
``{"error": "..."}`` (``serving.errors``), validation errors as 422. :func:`build_spec` starts from
BentoML's document, corrects its responses and adds our routes with every request body they accept
and every response they give. Versions, limits, shapes and class names come from the settings and
``models.specs``, so the document describes the configuration it is served with.
``tests/e2e/test_fuzz.py`` fuzzes the running service from this document.
"""

from __future__ import annotations

import inspect
import json
import re
from http import HTTPStatus

from starlette.responses import Response

from models.preprocessing import Invert
from models.specs import CLASS_NAMES, IMAGE_HEIGHT, IMAGE_WIDTH, INPUT_SHAPE, MODEL_NAME, NUM_CLASSES, PIXEL_MAX, PIXEL_MIN
from serving import decoding, errors
from serving.auth import HEALTH_PATHS, METRICS_PATH
from serving.middleware import ConcurrencyLimit
from serving.settings import Settings

SPEC_PATH = "/docs.json"
OPENAPI_VERSION = "3.1.0"  # JSON Schema 2020-12, as pydantic writes it
SCHEMAS = "#/components/schemas/"
TEXT = "text/plain"
HTML = "text/html"
# "- 400: the body cannot be read ..." lines of the status policy in serving/errors.py
STATUS_POLICY = {int(code): text for code, text in re.findall(r"^- (\d{3}): (.+?)[;.]?$", errors.__doc__, re.M)}
INFRASTRUCTURE = ("/readyz", "/livez", "/healthz", "/metrics")


class OpenAPIDocument:
    """ASGI middleware: answers ``GET /docs.json`` with :func:`build_spec`'s document instead of BentoML's."""

    def __init__(self, app, service, settings: Settings):
        self.app = app
        self.body = json.dumps(build_spec(service, settings)).encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] == SPEC_PATH and scope["method"] in ("GET", "HEAD"):
            return await Response(self.body, media_type="application/json")(scope, receive, send)
        return await self.app(scope, receive, send)


def build_spec(service, settings: Settings) -> dict:
    """The published document: BentoML's for ``service``, corrected, plus the ``/models`` routes."""
    spec = service.openapi_spec.asdict()
    spec["openapi"] = OPENAPI_VERSION
    spec["info"] = {
        "title": MODEL_NAME,
        "version": str(service.bento.tag.version) if service.bento else "dev",  # the Bento's version once built
        "description": "\n\n".join(inspect.cleandoc(doc) for doc in (service.inner.__doc__, decoding.__doc__, errors.__doc__) if doc),
    }
    for path, item in spec["paths"].items():
        for operation in item.values():
            if "x-bentoml-name" in operation:
                _fix_typed_api(operation, settings)
            elif path in INFRASTRUCTURE:
                operation["responses"] = _infrastructure_responses(path)
    kept = _referenced_schemas(spec["paths"], spec.get("components", {}).get("schemas", {}))
    spec["components"] = {
        "schemas": {**kept, **schemas(settings)},
        "headers": {
            "Retry-After": {"description": "seconds to wait before retrying", "required": True, "schema": {"type": "string", "pattern": r"^\d+$"}},
            "WWW-Authenticate": {"description": "the scheme to authenticate with", "required": True, "schema": {"type": "string"}},
        },
    }
    spec["paths"].update(model_paths(settings))
    spec["paths"][SPEC_PATH] = {"get": {"tags": ["Infrastructure"], "summary": "This document.", "responses": {"200": _ok({"type": "object"})}}}
    _add_middleware_responses(spec, settings)
    return spec


def _add_middleware_responses(spec: dict, settings: Settings) -> None:
    """What the middleware in front of every route answers (service.py adds it; serving/middleware.py, serving/auth.py).

    Any route but the health checks and metrics: 503 when too many requests are in flight. A body:
    408 when it arrives too slowly, 413 when too large. With an API token: 401 without it.
    """
    open_paths = HEALTH_PATHS if settings.security.protect_metrics else HEALTH_PATHS | {METRICS_PATH}
    if settings.security.api_token:
        spec["components"]["securitySchemes"] = {"token": {"type": "http", "scheme": "bearer", "description": "the API token (serving/auth.py)"}}
        spec["security"] = [{"token": []}]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            responses = operation["responses"]
            if path not in ConcurrencyLimit.EXEMPT:
                responses.update(_errors(503))
            if "requestBody" in operation:
                responses.update(_errors(408, 413))
            if settings.security.api_token and path in open_paths:
                operation["security"] = []
            elif settings.security.api_token:
                responses.update(_errors(401))


def schemas(settings: Settings) -> dict:
    """Our components: requests and responses of every route, the error envelope."""
    versions = list(settings.versions)
    unit = {"type": "number", "minimum": 0, "maximum": 1}
    count = {"type": "integer", "minimum": 0}
    shares = {"type": "array", "items": unit, "minItems": NUM_CLASSES, "maxItems": NUM_CLASSES}
    alias_map = {"type": "object", "additionalProperties": {"enum": versions}}
    return {
        "Error": {
            "type": "object",
            "description": "Every error: the field that is wrong and what was expected.",
            "required": ["error"],
            "properties": {"error": {"type": "string", "minLength": 1}},
            "additionalProperties": False,
        },
        "Invert": {"type": "string", "enum": [i.value for i in Invert], "default": Invert.AUTO.value},
        "Pixel": {"type": "number", "minimum": PIXEL_MIN, "maximum": PIXEL_MAX},
        "Image": _rows(_rows({"$ref": SCHEMAS + "Pixel"}, IMAGE_WIDTH), IMAGE_HEIGHT)
        | {"description": f"{IMAGE_HEIGHT} rows of {IMAGE_WIDTH} intensities, {PIXEL_MIN}..{PIXEL_MAX}, light garment on dark"},
        "PredictRequest": {
            # "image" wins when both are sent, as in serving.decoding
            "oneOf": [
                {"type": "object", "required": ["image"], "properties": {"image": {"$ref": SCHEMAS + "Image"}}},
                {
                    "type": "object",
                    "required": ["images"],
                    "not": {"required": ["image"]},
                    # The batch limit is not a maxItems: past it the answer is 413 (the status policy), while
                    # a schema violation promises 400/422.
                    "properties": {"images": {"type": "array", "items": {"$ref": SCHEMAS + "Image"}, "minItems": 1, "description": f"at most {settings.max_batch_images} images; more get 413"}},
                },
            ]
        },
        "ImageUpload": {
            "type": "object",
            "required": ["image"],
            "properties": {
                "image": {"type": "string", "format": "binary", "description": "an image file (PNG, JPEG, ...): any size, colour or grey"},
                "invert": {"$ref": SCHEMAS + "Invert"},
            },
        },
        "Prediction": {
            "type": "object",
            "required": ["class_id", "label", "confidence"],
            "properties": {"class_id": {"type": "integer", "minimum": 0, "maximum": NUM_CLASSES - 1}, "label": {"enum": list(CLASS_NAMES)}, "confidence": unit},
        },
        "PredictResponse": {
            "type": "object",
            "required": ["model", "version", "result", "predictions"],
            "properties": {
                "model": {"const": MODEL_NAME},
                "version": {"enum": versions},
                "result": _batch(shares, settings.max_batch_images) | {"description": "one row of class probabilities per image, as model.predict(...).tolist()"},
                "predictions": _batch({"$ref": SCHEMAS + "Prediction"}, settings.max_batch_images),
            },
        },
        "ModelList": {
            "type": "object",
            "required": ["models"],
            "properties": {
                "models": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "versions", "aliases"],
                        "properties": {"name": {"const": MODEL_NAME}, "versions": {"type": "array", "items": {"enum": versions}}, "aliases": alias_map},
                    },
                }
            },
        },
        "VersionList": {
            "type": "object",
            "required": ["name", "versions", "aliases"],
            "properties": {
                "name": {"const": MODEL_NAME},
                "versions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["version", "aliases", "status", "reason"],
                        "properties": {
                            "version": {"enum": versions},
                            "aliases": {"type": "array", "items": {"enum": list(settings.aliases)}},
                            "status": {"enum": ["ready", "loading", "unavailable"]},
                            "reason": {"type": ["string", "null"]},
                        },
                    },
                },
                "aliases": alias_map,
            },
        },
        "ModelInfo": {
            "type": "object",
            "description": "The version's metadata from the model store, with its aliases and endpoints.",
            "required": ["name", "version", "tag", "created", "class_names", "input_spec", "number_of_parameters", "metrics", "aliases", "endpoints"],
            "properties": {
                "name": {"const": MODEL_NAME},
                "version": {"enum": versions},
                "tag": {"type": "string", "pattern": f"^{MODEL_NAME}:"},
                "created": {"type": "string", "format": "date-time"},
                "class_names": {"const": list(CLASS_NAMES)},
                "input_spec": {
                    "type": "object",
                    "required": ["shape", "range"],
                    "properties": {"shape": {"const": list(INPUT_SHAPE)}, "range": {"const": [PIXEL_MIN, PIXEL_MAX]}},
                },
                "number_of_parameters": {"type": "integer", "minimum": 1},
                "metrics": {"type": "object", "required": ["accuracy"], "properties": {"accuracy": unit}},
                "aliases": {"type": "array", "items": {"enum": list(settings.aliases)}},
                "endpoints": {
                    "type": "object",
                    "required": ["predict", "report", "drift"],
                    "additionalProperties": {"type": "string", "pattern": f"^/models/{MODEL_NAME}/"},
                },
            },
        },
        "DriftReport": {
            "type": "object",
            "required": ["model", "version", "window", "drifted", "verdict", "statistics", "class_shares", "reference_images"],
            "properties": {
                "model": {"const": MODEL_NAME},
                "version": {"enum": versions},
                "window": {
                    "type": "object",
                    "required": ["size", "capacity", "min_samples", "predictions_seen"],
                    "properties": {"size": count, "capacity": {"const": settings.monitoring.window}, "min_samples": {"const": settings.monitoring.thresholds.min_samples}, "predictions_seen": count},
                },
                "drifted": {"type": "boolean"},
                "verdict": {"type": "string"},
                "statistics": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["test", "value", "drifted"],
                        "properties": {"test": {"type": "string"}, "value": {"type": "number"}, "p_value": unit, "drifted": {"type": "boolean"}},
                    },
                },
                "class_shares": {"type": "object", "required": ["window", "reference"], "properties": {"window": shares, "reference": shares}},
                "reference_images": count,
            },
        },
    }


def model_paths(settings: Settings) -> dict:
    """The routes of ``serving.routes``: listing, model info, prediction, report and drift."""
    base = f"/models/{MODEL_NAME}"
    version = {
        "name": "version",
        "in": "path",
        "required": True,
        "description": "a served version or an alias of one",
        "schema": {"type": "string", "enum": [*settings.versions, *settings.aliases]},
    }
    invert = {
        "name": "invert",
        "in": "query",
        "required": False,
        "description": "image files only: invert the grey levels (auto: when the border is light)",
        "schema": {"$ref": SCHEMAS + "Invert"},
    }
    binary = {"type": "string", "format": "binary"}
    image_bytes = IMAGE_HEIGHT * IMAGE_WIDTH
    predict_body = {
        "required": True,
        "content": {
            decoding.JSON: {"schema": {"$ref": SCHEMAS + "PredictRequest"}},
            decoding.MULTIPART: {"schema": {"$ref": SCHEMAS + "ImageUpload"}},
            decoding.RAW: {
                "schema": binary
                | {"description": f"raw uint8 pixels, N x {IMAGE_HEIGHT} x {IMAGE_WIDTH} row-major: a multiple of {image_bytes} bytes, at most {settings.max_batch_images} images"}
            },
            decoding.NPY: {"schema": binary | {"description": f"a NumPy .npy array of shape (N, {IMAGE_HEIGHT}, {IMAGE_WIDTH}) or ({IMAGE_HEIGHT}, {IMAGE_WIDTH}), no pickled objects"}},
        },
    }
    return {
        "/models": {"get": _operation("list_models", "Models served, with their versions and aliases.", {200: _ok({"$ref": SCHEMAS + "ModelList"})})},
        base: {"get": _operation("list_versions", "Served versions with their status and aliases.", {200: _ok({"$ref": SCHEMAS + "VersionList"})})},
        f"{base}/{{version}}": {
            "parameters": [version],
            "get": _operation("model_info", "Model info: metadata, metrics and input spec of a version.", {200: _ok({"$ref": SCHEMAS + "ModelInfo"}), **_errors(404)}),
            "post": _operation(
                "predict",
                f"Classify one image or a batch of at most {settings.max_batch_images}.",
                {200: _ok({"$ref": SCHEMAS + "PredictResponse"}), **_errors(400, 404, 415, 422)},
                parameters=[invert],
                requestBody=predict_body,
            ),
        },
        f"{base}/{{version}}/report": {
            "parameters": [version],
            "get": _operation("report", "The evaluation report stored with the version (HTML).", {200: _ok({"type": "string"}, HTML), **_errors(404)}),
        },
        f"{base}/{{version}}/drift": {
            "parameters": [version],
            "get": _operation("drift", "Drift of the version's recent traffic against its training reference.", {200: _ok({"$ref": SCHEMAS + "DriftReport"}), **_errors(404)}),
        },
    }


def _fix_typed_api(operation: dict, settings: Settings) -> None:
    """BentoML's typed API: its real answers (ours, through ``service._error`` and the middleware)."""
    operation["responses"] = {"200": _ok({"$ref": SCHEMAS + "PredictResponse"}), **_errors(400, 404, 413, 415, 422)}
    operation["requestBody"]["required"] = True
    for content in operation["requestBody"]["content"].values():
        properties = content["schema"].get("properties", {})
        if "version" in properties:
            properties["version"]["enum"] = [*settings.versions, *settings.aliases]
        if "images" in properties:  # more get 413 (service.py): said, but not as a maxItems (see above)
            properties["images"]["description"] = f"at most {settings.max_batch_images} images; more get 413"


def _infrastructure_responses(path: str) -> dict:
    responses = {"200": _ok({"type": "string"}, TEXT)}
    if path == "/readyz":  # while a runner is loading or failed; a probe retries by itself
        responses.update(_errors(503, retry=False))
    return responses


def _referenced_schemas(paths: dict, components: dict) -> dict:
    """BentoML's component schemas that its request bodies still use (the rest we replace)."""
    names = set(re.findall(re.escape(SCHEMAS) + r"(\w+)", json.dumps(paths)))
    return {name: schema for name, schema in components.items() if name in names}


def _operation(operation_id: str, summary: str, responses: dict, **extra) -> dict:
    return {"operationId": operation_id, "summary": summary, "tags": ["Models"], "responses": {str(k): v for k, v in responses.items()}, **extra}


def _ok(schema: dict, media_type: str = "application/json") -> dict:
    return {"description": "OK", "content": {media_type: {"schema": schema}}}


def _errors(*statuses: int, retry: bool = True) -> dict:
    """Error responses, all ``{"error": "..."}``; a 503 says when to retry unless ``retry`` is off."""
    responses = {}
    for status in statuses:
        response = {
            "description": STATUS_POLICY.get(status, HTTPStatus(status).phrase),
            "content": {"application/json": {"schema": {"$ref": SCHEMAS + "Error"}}},
        }
        if status == 503 and retry:
            response["headers"] = {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}
        if status == 401:
            response["headers"] = {"WWW-Authenticate": {"$ref": "#/components/headers/WWW-Authenticate"}}
        responses[str(status)] = response
    return responses


def _rows(item: dict, length: int) -> dict:
    return {"type": "array", "items": item, "minItems": length, "maxItems": length}


def _batch(item: dict, limit: int | None = None) -> dict:
    return {"type": "array", "items": item, "minItems": 1} | ({"maxItems": limit} if limit else {})
