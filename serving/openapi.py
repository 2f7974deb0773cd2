"""The service's OpenAPI document, served at ``GET /docs.json`` (the Swagger UI reads it).

BentoML generates a document for its typed APIs (``/classify``, ``/classify_image``) and its
infrastructure routes, but it does not know the protocol routes (``serving.protocols`` answers them
ahead of its router), and it documents errors its middleware never lets out: every error leaves as
``{"error": "..."}`` (``serving.errors``), validation errors as 422. :func:`build_spec` starts from
BentoML's document, corrects its responses and adds every route of the route tables, once per
served model, with the request bodies and answers that model's card gives it (shape, value range,
labels). Every JSON answer's schema is a pydantic model of ``serving.schemas``, published once as a
component (:func:`components`) and narrowed per served model by a small overlay on it
(:func:`narrowed`: the card's labels, class count, shapes, the model's name and versions). Request
bodies' media types come from the body codecs (``BodyCodec.openapi_media``), datatypes from the tensor
codecs. Limits and names come from the configuration, so the document describes the deployment it
is served with. ``tests/e2e/test_fuzz.py`` fuzzes the running service from this document.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any

import numpy as np
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema
from starlette.responses import Response

from config import Config
from models import store
from models.card import DATATYPES, DYNAMIC, ModelCard
from models.preprocessing import Invert, example_text
from serving import codecs, errors, schemas
from serving.codecs.bodies import IMAGE_ENCODING
from serving.paths import HEALTH_PATHS, INFRASTRUCTURE_PATHS, METRICS_PATH, PAGE_PATHS, SPEC_PATH

OPENAPI_VERSION = "3.1.0"  # JSON Schema 2020-12, as pydantic writes it
SCHEMAS = "#/components/schemas/"
TEXT = "text/plain"
HTML = "text/html"
SOURCE_REFERENCE = re.compile(r"\s*\((?:see )?[\w/]+\.py\)")  # "(serving/auth.py)": for the code's readers, not the API's


def public_text(text: str) -> str:
    """Text of the code's docstrings as the API's readers see it: Markdown code (`x`, not RST's ``x``),
    without references to source files."""
    return SOURCE_REFERENCE.sub("", text).replace("``", "`")


# "- 400: the body cannot be read ..." lines of the status policy in serving/errors.py
STATUS_POLICY = {int(code): public_text(text) for code, text in re.findall(r"^- (\d{3}): (.+?)[;.]?$", errors.__doc__, re.M)}
TITLE = "Model server API"
SUMMARY_MAX = 90  # Swagger UI shows a summary on the operation's one line; more goes in its description
TAGS = [
    {
        "name": "Models",
        "description": "What is served, each version's card, report and drift, and classifying with it; TF Serving's REST API and the Open Inference Protocol v2 too.",
    },
    {"name": "Service APIs", "description": "The typed API that BentoML's Python client (`bentoml.SyncHTTPClient`) calls."},
    {"name": "Page", "description": "The web page at `/` and this documentation."},
    {"name": "Infrastructure", "description": "Health checks, metrics and this document."},
]
# BentoML's own operations, in words for the API's readers (BentoML gives its Python docstrings, or none).
BENTOML_OPERATIONS = {
    "/classify": (
        "Classify examples with a model (BentoML's client)",
        "What `client.classify(images=[...], model=..., version=...)` of BentoML's Python client calls: examples in the "
        "model card's shape and value range, answered as `POST /models/{name}/{version}` answers. Without a version, the "
        "model's default version answers.",
    ),
    "/classify_image": (
        "Classify one image file with a model (BentoML's client)",
        "What `client.classify_image(image=Path(...), model=..., version=...)` calls: an image file of any size, colour or "
        "grey, converted as the model card's preprocessing says (`invert`: grey models only).",
    ),
    "/healthz": ("Health check (deprecated: use /livez)", "200 while the server process answers."),
    "/livez": ("Liveness: the server process answers", "200 while the server process answers; for Kubernetes' liveness probe."),
    "/readyz": ("Readiness: the served versions can answer", "200 once every served version can answer, 503 until then; for Kubernetes' readiness probe."),
}


def api_description(served: list[Served], config: Config) -> str:
    """The document's description (Markdown): what the API does, where to start, and its errors."""
    names = ", ".join(f"`{m.name}`" for m in served) or "none"
    statuses = "\n".join(f"- {code}: {text}" for code, text in sorted(STATUS_POLICY.items()))
    return (
        f"Trained Keras classifiers, every version side by side (served here: {names}).\n\n"
        "Start with `GET /models` (what is served), `GET /models/{name}/{version}` (a version's card: its input, labels "
        "and metrics) and `POST /models/{name}/{version}` (classify one example, a batch, or an image file). A version "
        "may be named by an alias (`stable`). The same models answer TF Serving's REST API (`/v1/...`) and the Open "
        "Inference Protocol v2 (`/v2/...`). The web page at `/` tries them in a browser.\n\n"
        f'Every error answers `{{"error": "..."}}`, naming the field and what was expected:\n\n{statuses}.'
    )


UNIT = {"type": "number", "minimum": 0, "maximum": 1}
FLOAT32_MAX = 3.4028234663852886e38


class OpenAPIDocument:
    """ASGI middleware: answers ``GET /docs.json`` with :func:`build_spec`'s document instead of BentoML's."""

    def __init__(self, app, service, config: Config, router):
        self.app = app
        self._sources = (service, config, router)
        self._body: bytes | None = None  # built on the first request: not on every worker's start-up path

    @property
    def body(self) -> bytes:
        if self._body is None:
            self._body = json.dumps(build_spec(*self._sources)).encode()
        return self._body

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] == SPEC_PATH and scope["method"] in ("GET", "HEAD"):
            return await Response(self.body, media_type="application/json")(scope, receive, send)
        return await self.app(scope, receive, send)


class Served:
    """One served model as the document sees it: its name, versions, aliases and card."""

    def __init__(self, name: str, config: Config):
        settings = config.models[name]
        self.name = name
        self.versions = list(settings.versions)
        self.aliases = dict(settings.aliases)
        self.names = [*self.versions, *self.aliases]
        cards = [_card(name, v) for v in self.versions]
        # Every stored version's card; the versions of one model share their input and output.
        self.card: ModelCard | None = next((c for c in cards if c is not None), None)

    def ref(self, schema: str) -> dict:
        return {"$ref": f"{SCHEMAS}{self.name}.{schema}"}


def _card(name: str, version: str) -> ModelCard | None:
    try:
        return store.load_card(name, version)
    except store.ModelStoreError:
        return None


def build_spec(service, config: Config, router) -> dict:
    """The published document: BentoML's for ``service``, corrected, plus every protocol route."""
    spec = service.openapi_spec.asdict()
    spec["openapi"] = OPENAPI_VERSION
    served = [Served(name, config) for name in config.models]
    spec["info"] = {
        "title": TITLE,
        "version": str(service.bento.tag.version) if service.bento else "dev",  # the Bento's version once built
        "description": api_description(served, config),
    }
    for path, item in spec["paths"].items():
        for operation in item.values():
            if "x-bentoml-name" in operation:
                _fix_typed_api(operation, served, config)
            elif path in INFRASTRUCTURE_PATHS:
                operation["responses"] = _infrastructure_responses(path)
    kept = _referenced_schemas(spec["paths"], spec.get("components", {}).get("schemas", {}))
    spec["components"] = {
        "schemas": {**kept, **shared_schemas(served)},
        "headers": {
            "Retry-After": {"description": "seconds to wait before retrying", "required": True, "schema": {"type": "string", "pattern": r"^\d+$"}},
            "WWW-Authenticate": {"description": "the scheme to authenticate with", "required": True, "schema": {"type": "string"}},
            "Allow": {"description": "the methods the route offers", "required": True, "schema": {"type": "string"}},
        },
    }
    for model in served:
        if model.card is not None:
            spec["components"]["schemas"].update(model_schemas(model, config))
    spec["paths"].update(route_paths(router, served, config))
    spec["paths"][SPEC_PATH] = {"get": {"tags": ["Infrastructure"], "summary": "This document (OpenAPI 3.1).", "responses": {"200": ok_response({"type": "object"})}}}
    _add_middleware_responses(spec, config)
    spec["tags"] = TAGS
    for path, (summary, description) in BENTOML_OPERATIONS.items():
        for method, operation in spec["paths"].get(path, {}).items():
            if method != "parameters":
                operation["summary"], operation["description"] = summary, description
    readable(spec)
    return spec


def readable(spec: dict) -> None:
    """Every operation with a short summary (one line in Swagger UI; a longer one moves whole into the
    description), and every description in the API's words (:func:`public_text`)."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            full = public_text(operation.get("summary") or "").strip()
            summary = full.rstrip(".")
            description = public_text(operation.get("description") or "")
            if len(summary) > SUMMARY_MAX:
                description = f"{full}\n\n{description}".strip()
                summary = short_summary(full)
            operation["summary"] = summary or f"{method.upper()} {path}"
            if description:
                operation["description"] = description
            else:
                operation.pop("description", None)

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "description" and isinstance(value, str):
                    node[key] = public_text(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec.get("components", {}))


def short_summary(text: str) -> str:
    """At most SUMMARY_MAX characters of ``text``: its first sentence, without its asides in brackets when
    too long, else up to the last clause that fits."""
    first = re.split(r"(?<=\.)\s+", text.strip(), maxsplit=1)[0].rstrip(".")
    if len(first) <= SUMMARY_MAX:
        return first
    first = re.sub(r"\s*\([^()]*\)", "", first)
    if len(first) <= SUMMARY_MAX:
        return first
    cuts = [m.start() for m in re.finditer(r" \(|; |, ", first) if 0 < m.start() <= SUMMARY_MAX]
    if cuts:
        return first[: cuts[-1]]
    return first[: first.rfind(" ", 0, SUMMARY_MAX - 1)] + "…"


def route_paths(router, served: list[Served], config: Config) -> dict:
    """Every route of the tables: a route with ``{name}`` once per served model (its card sizes the bodies)."""
    paths = {}
    for _, route in router.routes:
        models = served if "{name}" in route.path else [next((m for m in served if m.name == route.params.get("name")), None)]
        for model in models:
            if model is not None and model.card is None:
                continue  # no version of it is in the store: nothing to describe but its 503s
            path = route.path.replace("{name}", model.name) if model is not None and "{name}" in route.path else route.path
            item = {}
            for method, handler in route.methods.items():
                describe = getattr(handler, "openapi", None) or DESCRIBE[handler.__name__]
                item[method.lower()] = describe(model, config)
            own = {p["name"] for operation in item.values() for p in operation.get("parameters", []) if p.get("in") == "path"}
            if model is not None and "{version}" in path and "version" not in own:  # the course's versions and aliases; a describer may name its own
                item["parameters"] = [_version_parameter(model)]
            paths[path] = item
    return paths


def _version_parameter(model: Served) -> dict:
    return {
        "name": "version",
        "in": "path",
        "required": True,
        "description": "a served version or an alias of one",
        "schema": {"type": "string", "enum": model.names},
    }


# --- operations, by handler name -------------------------------------------------------------
# The course's routes are described here; another protocol's handler carries its own describer
# (``serving.protocols.documented``): describe(served model or None, config) -> an OpenAPI operation.


def _list_models(model, config):
    names = narrowed(schemas.ModelList, {"properties": {"models": {"items": {"properties": {"name": {"enum": list(config.models)}}}}}})
    return operation("list_models", "Models served, with their versions and aliases.", {200: ok_response(names)})


def _list_versions(model, config):
    return operation(f"list_versions_{model.name}", f"Served versions of {model.name} with their status and aliases.", {200: ok_response(model.ref("VersionList"))})


def _model_info(model, config):
    return operation(
        f"model_info_{model.name}",
        f"The card of a version of {model.name}: input, labels, metrics, how it was made.",
        {200: ok_response(model.ref("ModelInfo")), **error_responses(404)},
    )


def _predict(model, config):
    card = model.card
    limit = config.limits.max_batch_images
    content = {kind: codecs.BODY_CODECS[kind].openapi_media(card, limit) for kind in codecs.accepted(card)}
    body: dict[str, Any] = {"required": True, "content": content}
    parameters = []
    if card.is_image:
        parameters.append(
            {
                "name": "invert",
                "in": "query",
                "required": False,
                "schema": {"$ref": SCHEMAS + "Invert"},
                "description": "image files only: invert the levels (auto: as the model's card says)",
            }
        )
    return operation(
        f"predict_{model.name}",
        f"Classify one {example_text(card)} example of {model.name} or a batch of at most {limit}.",
        {200: ok_response(model.ref("PredictResponse")), **error_responses(400, 404, 413, 415, 422)},
        parameters=parameters,
        requestBody=body,
    )


def _summary(model, config):
    return operation("summary", f"Project 3's summary: the card of the {model.name} version the configuration names.", {200: ok_response(model.ref("ModelInfo"))})


def _inference(model, config):
    described = _predict(model, config)
    described["operationId"] = "inference"
    described["summary"] = f"Project 3's inference: classify with {model.name}; `prediction` is the label (a list for several examples)."
    described["responses"]["200"] = ok_response(model.ref("InferenceResponse"))
    return described


def _report(model, config):
    return operation(f"report_{model.name}", "The evaluation report stored with the version (HTML).", {200: ok_response({"type": "string"}, HTML), **error_responses(404)})


def _drift(model, config):
    return operation(
        f"drift_{model.name}",
        "Drift of the version's recent traffic against its reference (its predictions on held-out images).",
        {200: ok_response(model.ref("DriftReport")), **error_responses(404)},
    )


DESCRIBE = {
    "list_models": _list_models,
    "list_versions": _list_versions,
    "model_info": _model_info,
    "predict": _predict,
    "report": _report,
    "drift": _drift,
    "summary": _summary,
    "inference": _inference,
}


# --- schemas ------------------------------------------------------------------------------------


class _Generator(GenerateJsonSchema):
    """pydantic's JSON Schema without a title on every field (the models keep theirs)."""

    def field_title_should_be_set(self, schema) -> bool:
        return False


def components(models: tuple[type[BaseModel], ...] = schemas.RESPONSES) -> dict:
    """The answers' schemas as components: each model's, and the models it uses, by class name."""
    found: dict[str, dict] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=SCHEMAS + "{model}", schema_generator=_Generator, mode="serialization")
        found.update(schema.pop("$defs", {}))
        found[model.__name__] = schema
    return found


def ref(model: type[BaseModel]) -> dict:
    return {"$ref": SCHEMAS + model.__name__}


def narrowed(model: type[BaseModel], overlay: dict) -> dict:
    """A model's component as one served model answers it: the overlay adds what its card and the
    configuration say (it may only narrow: both must hold)."""
    return {"allOf": [ref(model)], **overlay}


def shared_schemas(served: list[Served]) -> dict:
    """Every answer's component, and the invert choices; each served model's own come from :func:`model_schemas`."""
    return {**components(), "Invert": {"type": "string", "enum": [i.value for i in Invert], "default": Invert.AUTO.value}}


def example_forms(card: ModelCard) -> list[dict]:
    """The JSON forms one example may take, sized by the card: a grey image with or without its channel axis."""
    low, high = card.input.value_range or (-FLOAT32_MAX, FLOAT32_MAX)  # the model takes float32: larger values are refused
    value = {"type": "number", "minimum": low, "maximum": high}
    nested = value
    for dim in reversed(card.input.shape):
        nested = _rows(nested, dim)
    if card.is_image and card.input.channels == 1:
        height, width, _ = card.input.shape
        return [_rows(_rows(value, width), height) | {"description": f"{height} rows of {width} levels"}, nested | {"description": f"{height}x{width}x1 levels"}]
    return [nested | {"description": f"{example_text(card)} values"}]


def _one_of(forms: list[dict]) -> dict:
    return forms[0] if len(forms) == 1 else {"anyOf": forms}


def model_schemas(model: Served, config: Config) -> dict:
    """The components of one model: its requests and answers, sized by its card."""
    card, prefix, limit = model.card, f"{model.name}.", config.limits.max_batch_images
    assert card is not None, model.name  # only models with a card get schemas (openapi_spec)
    one, many = codecs.json_fields(card)
    classes, labels = card.classes, {"enum": list(card.labels)}
    shares = {"type": "array", "items": UNIT, "minItems": classes, "maxItems": classes}
    forms = example_forms(card)
    batch_note = f"at most {limit}; more get 413"
    own = {
        "Example": _one_of(forms),
        # A batch holds examples of one form: rows of equal depth (NumPy reads it as one array).
        "Batch": _one_of([{"type": "array", "items": form, "minItems": 1, "description": batch_note} for form in forms]),
        "PredictRequest": {
            # the single field wins when both are sent, as in serving.codecs
            "oneOf": [
                {"type": "object", "required": [one], "properties": {one: model.ref("Example")}},
                {
                    "type": "object",
                    "required": [many],
                    "not": {"required": [one]},
                    # The batch limit is not a maxItems: past it the answer is 413 (the status policy), while
                    # a schema violation promises 400/422.
                    "properties": {many: model.ref("Batch")},
                },
            ]
        },
        "Prediction": narrowed(schemas.Prediction, {"properties": {"class_id": {"maximum": classes - 1}, "label": labels}}),
        "PredictResponse": narrowed(
            schemas.PredictResponse,
            {
                "properties": {
                    "model": {"const": model.name},
                    "version": {"enum": model.versions},
                    "result": batch_of(shares, limit),
                    "predictions": batch_of(model.ref("Prediction"), limit),
                }
            },
        ),
        "InferenceResponse": {
            "allOf": [ref(schemas.InferenceResponse), model.ref("PredictResponse")],
            "properties": {"prediction": {"anyOf": [labels, {"type": "array", "items": labels, "minItems": 2}]}},
        },
        "VersionList": narrowed(
            schemas.VersionList,
            {
                "properties": {
                    "name": {"const": model.name},
                    "versions": {"items": {"properties": {"version": {"enum": model.versions}, "aliases": {"items": {"enum": list(model.aliases)}}}}},
                    "aliases": {"additionalProperties": _alias_target(model)},
                    "default_version": {"enum": model.names},
                }
            },
        ),
        "ModelInfo": narrowed(
            schemas.ModelInfo,
            {
                "properties": {
                    "name": {"const": model.name},
                    "version": {"enum": model.versions},
                    "tag": {"pattern": f"^{re.escape(model.name)}:"},
                    "input": {"properties": {"kind": {"const": card.input.kind}, "shape": {"const": list(card.input.shape)}}},
                    "output": {"properties": {"labels": {"const": list(card.labels)}}},
                    "aliases": {"items": {"enum": list(model.aliases)}},
                    "endpoints": {"additionalProperties": {"type": "string", "pattern": f"^/models/{re.escape(model.name)}/"}},
                }
            },
        ),
        "DriftReport": _drift_report(model, config, shares),
    }
    if card.named_inputs:
        own.update(_named_schemas(model, limit))
    if card.is_image:
        own["Upload"] = {
            "type": "object",
            "required": ["image"],
            "properties": {
                "image": {"type": "string", "format": "binary", "description": "an image file (PNG, JPEG, ...): any size, colour or grey"},
                "invert": {"$ref": SCHEMAS + "Invert"},
            },
        }
    return {prefix + name: schema for name, schema in own.items()}


def _drift_report(model: Served, config: Config, shares: dict) -> dict:
    """A version's drift report: a classifier's class shares sized by its classes, a regressor's targets by name."""
    card = model.card
    assert card is not None
    window = {"properties": {"capacity": {"const": config.monitoring.window}, "min_samples": {"const": config.monitoring.min_samples}}}
    common = {"model": {"const": model.name}, "version": {"enum": model.versions}, "window": window}
    if card.output.kind == "regression":
        targets = {"enum": [target.name for target in card.output.targets]}
        names = {"drifted_targets": {"items": targets}, "predicted_values": {"propertyNames": targets}}
        if card.input.names:
            names["drifted_inputs"] = {"items": {"enum": list(card.input.names)}}
        return narrowed(schemas.RegressionDriftReport, {"properties": {**common, **names}})
    return narrowed(schemas.DriftReport, {"properties": {**common, "class_shares": {"properties": {"window": shares, "reference": shares}}}})


def _named_schemas(model: Served, limit: int) -> dict:
    """A model with named inputs takes an object of them by name; with named outputs, answers one too."""
    card = model.card
    assert card is not None
    example = {spec.name: nested_rows(_value(spec), spec.shape, spec.smallest, spec.bound) for spec in card.inputs}
    names = [spec.name for spec in card.inputs]
    own = {
        "Example": {"type": "object", "required": names, "properties": example, "additionalProperties": False},
        "Batch": {
            "type": "object",
            "required": names,
            "properties": {name: {"type": "array", "items": form, "minItems": 1, "description": f"at most {limit}; more get 413"} for name, form in example.items()},
            "additionalProperties": False,
        },
    }
    if card.outputs:
        rows = {spec.name: batch_of(output_values(spec), limit) for spec in card.outputs}
        own["PredictResponse"] = narrowed(
            schemas.PredictResponse,
            {
                "properties": {
                    "model": {"const": model.name},
                    "version": {"enum": model.versions},
                    "result": {"type": "object", "required": list(rows), "properties": rows},
                    "predictions": {"type": "null"},
                }
            },
        )
    return own


def held_values(own: np.dtype, sent: np.dtype) -> dict:
    """The JSON values of datatype ``sent`` that an input of datatype ``own`` takes (v2's named tensors; ``sent``
    is ``own`` on routes whose bodies name no datatype)."""
    if own.kind == "b":
        return {"type": "integer", "minimum": 0, "maximum": 1}
    if own.kind == "f" and sent.kind == "f":
        high = float(min(np.finfo(own).max, np.finfo(sent).max))
        return {"type": "number", "minimum": -high, "maximum": high}
    if own.kind == "f":
        info = np.iinfo(sent)
        return {"type": "integer", "minimum": int(info.min), "maximum": int(info.max)}
    bounds = [np.iinfo(own)] + ([np.iinfo(sent)] if sent.kind != "f" else [])
    # Whole numbers past 2**53 lose their last digits in a JSON float: kept within what a double holds exactly.
    return {"type": "integer", "minimum": max(max(int(b.min) for b in bounds), -(2**53)), "maximum": min(min(int(b.max) for b in bounds), 2**53)}


def _value(spec) -> dict:
    """One value of a named input as the course route and TF Serving's JSON take it: a string for BYTES,
    true or false (or 1 or 0) for BOOL, else a number its datatype holds."""
    if spec.datatype == "BYTES":
        # {"b64": ...} is taken too but said in words only: an engine that takes text refuses bytes that are
        # not UTF-8, which a schema cannot say, and a fuzzer would send them as valid.
        return {"type": "string", "description": f'at most {spec.max_bytes} bytes of UTF-8 (TF Serving\'s {{"b64": ...}} is taken too: base64 of such bytes)'}
    own = np.dtype(DATATYPES[spec.datatype])
    return {"anyOf": [{"type": "boolean"}, held_values(own, own)]} if own.kind == "b" else held_values(own, own)


def output_values(spec) -> dict:
    """One example's values of a named output: nested arrays of numbers, of strings for BYTES, of true or false for BOOL."""
    return nested_rows({"type": {"BYTES": "string", "BOOL": "boolean"}.get(spec.datatype, "number")}, spec.shape)


def nested_rows(value: dict, shape: tuple[int, ...], smallest: tuple[int, ...] | None = None, bound: tuple[int, ...] | None = None) -> dict:
    """Nested arrays in ``shape``; a dynamic dimension (-1) from its ``smallest`` size to its ``bound``."""
    for dim, least, most in reversed(list(zip(shape, smallest or shape, bound or shape, strict=True))):
        value = {"type": "array", "items": value, "minItems": least, "maxItems": most} if dim == DYNAMIC else _rows(value, dim)
    return value


def _alias_target(model: Served) -> dict:
    """What an alias of the model points at: a version, or a split between versions by weight."""
    return {"anyOf": [{"enum": model.versions}, {"type": "object", "propertyNames": {"enum": model.versions}}]}


# --- BentoML's own routes and the middleware ------------------------------------------------------


def _fix_typed_api(operation: dict, served: list[Served], config: Config) -> None:
    """BentoML's typed API: its real answers (ours, through ``service._error`` and the middleware), and its
    body per served model. BentoML's schema takes any nested lists; each model's card sizes them, so the
    JSON body is one variant per model. The multipart body (an image file, any size) is one schema for
    every image model: a version another model has is a 404."""
    operation["responses"] = {"200": ok_response(ref(schemas.PredictResponse)), **error_responses(400, 404, 413, 415, 422)}
    operation["requestBody"]["required"] = True
    for media_type, content in operation["requestBody"]["content"].items():
        base = content["schema"]
        properties = base.get("properties", {})
        models = [m for m in served if m.card is not None and (m.card.is_image or "image" not in properties)]
        if media_type == codecs.MULTIPART:
            content["encoding"] = {**content.get("encoding", {}), **IMAGE_ENCODING}
            properties["model"] = {"enum": [m.name for m in models]}
            properties["version"] = {"anyOf": [{"enum": sorted({n for m in models for n in m.names})}, {"type": "null"}], "default": None}
            continue
        variants = []
        for model in models:
            variant = {**properties, "model": {"const": model.name}, "version": {"anyOf": [{"enum": model.names}, {"type": "null"}], "default": None}}
            if "images" in properties:  # more get 413 (service.py): said, but not as a maxItems (see above)
                variant["images"] = model.ref("Batch")
            variants.append({"type": "object", "required": base.get("required", []), "properties": variant})
        content["schema"] = {"oneOf": variants} if variants else base


def _infrastructure_responses(path: str) -> dict:
    responses = {"200": ok_response({"type": "string"}, TEXT)}
    if path == "/readyz":  # while a runner is loading or failed; a probe retries by itself
        responses.update(error_responses(503, retry=False))
    return responses


def _add_middleware_responses(spec: dict, config: Config) -> None:
    """What the middleware in front of every route answers (service.py adds it; serving/middleware.py, serving/auth.py).

    Any route but the health checks and metrics: 503 when too many requests are in flight. A body:
    408 when it arrives too slowly, 413 when too large. With an API token: 401 without it (not on the
    health checks, metrics unless protected, and the web page's own files).
    """
    security = config.security
    open_paths = (HEALTH_PATHS if security.protect_metrics else HEALTH_PATHS | {METRICS_PATH}) | PAGE_PATHS
    if security.api_token:
        spec["components"]["securitySchemes"] = {"token": {"type": "http", "scheme": "bearer", "description": "the API token (serving/auth.py)"}}
        spec["security"] = [{"token": []}]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            responses = operation["responses"]
            if path not in INFRASTRUCTURE_PATHS:
                responses.update(error_responses(503))
            if "requestBody" in operation:
                responses.update(error_responses(408, 413))
            if security.api_token and path in open_paths:
                operation["security"] = []
            elif security.api_token:
                responses.update(error_responses(401))


def _referenced_schemas(paths: dict, components: dict) -> dict:
    """BentoML's component schemas that its request bodies still use (the rest we replace)."""
    names = set(re.findall(re.escape(SCHEMAS) + r"(\w+)", json.dumps(paths)))
    return {name: schema for name, schema in components.items() if name in names}


def operation(operation_id: str, summary: str, responses: dict, **extra) -> dict:
    return {"operationId": operation_id, "summary": summary, "tags": ["Models"], "responses": {str(k): v for k, v in responses.items()}, **extra}


def ok_response(schema: dict, media_type: str = "application/json") -> dict:
    return {"description": "OK", "content": {media_type: {"schema": schema}}}


def error_responses(*statuses: int, retry: bool = True) -> dict:
    """Error responses, all ``{"error": "..."}``; a 503 says when to retry unless ``retry`` is off; a 405 says what is allowed."""
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
        if status == 405:
            response["headers"] = {"Allow": {"$ref": "#/components/headers/Allow"}}
        responses[str(status)] = response
    return responses


def _rows(item: dict, length: int) -> dict:
    return {"type": "array", "items": item, "minItems": length, "maxItems": length}


def batch_of(item: dict, limit: int | None = None) -> dict:
    return {"type": "array", "items": item, "minItems": 1} | ({"maxItems": limit} if limit else {})
