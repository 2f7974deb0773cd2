"""TensorFlow Serving's REST API (tensorflow/serving, g3doc/api_rest.md) over the data plane.

    GET  /v1/models/{name}[/versions/{n}|/labels/{label}]               model status
    GET  /v1/models/{name}[/versions/{n}|/labels/{label}]/metadata      signature "serving_default", from the card
    POST /v1/models/{name}[/versions/{n}|/labels/{label}]:predict       {"instances": [...]} or {"inputs": ...}
    POST /v1/models/{name}[/versions/{n}|/labels/{label}]:classify      {"examples": [{"input": [...]}, ...]}

Versions are numbers here: a served version named ``v<n>`` or ``<n>`` is version ``<n>``. Labels are
the model's aliases, and the names of its versions that have no number (so every version is
reachable). Without either, the latest version is used: the highest number that is ready.

Inputs are the card's raw values (0..255 for images; the server scales them), in the card's shape
with the batch first (a grey image may leave out its channel axis), or image files as
``{"b64": "<base64 of a PNG or JPEG>"}``, decoded and resized as the card's preprocessing says.
``:predict`` answers class probabilities, ``{"predictions": [[p0, ...], ...]}`` (row format) or
``{"outputs": ...}`` (columnar); ``:classify`` answers ``{"results": [[[label, score], ...], ...]}``
(the key TF Serving's server writes; api_rest.md says ``result``). Errors are ``{"error": "..."}``
with TF Serving's statuses: 400 invalid argument, 404 unknown model or version, 429 the version's
queue is full (Retry-After), 503 unavailable; 413 and 415 as on every route.

    curl -d '{"instances": [[[0, ...], ...]]}' localhost:3000/v1/models/clothes/versions/1:predict
"""

from __future__ import annotations

import math

import numpy as np
from starlette.requests import Request

from config import Config
from models.card import ModelCard
from serving import codecs, schemas
from serving.codecs.tensors import json_tensor, numbers
from serving.core import INPUT, InferenceRequest, Input, Label, Latest, Number, Selector, VersionState, VersionView, check_batch
from serving.dataplane import DataPlane, version_number
from serving.errors import BadRequest, InvalidInput, Overloaded, ServingError, UnsupportedMediaType
from serving.openapi import SCHEMAS, batch_of, error_responses, narrowed, ok_response, operation, output_values, ref
from serving.protocols import Reply, Route, json_reply, well_formed
from serving.protocols.tensors import ResourceExhausted, card_values, image_from_b64, is_b64, json_values, parse_json_object, parse_number, statuses, variant

PROTOCOL = "tfserving"
SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
# TF Serving reads any body as JSON; curl -d, as its documentation calls it, sends a form content type.
JSON_TYPES = ("", "application/json", "application/x-www-form-urlencoded", "text/plain")
STATES = schemas.TFSERVING_STATES  # VersionState -> TF Serving's ModelVersionStatus.State
REMAP: dict[type, type[ServingError]] = {InvalidInput: BadRequest, Overloaded: ResourceExhausted}
FLOAT32_MAX = float(np.finfo(np.float32).max)
ADDRESSING = {"latest": "", "version": "/versions/{number}", "label": "/labels/{label}"}


# --- versions -------------------------------------------------------------------------------------


def selector(number: str | None, label: str | None) -> Selector:
    """How the URL names the version: a number, a label, or neither (the latest)."""
    if number is not None:
        return Number(parse_number(number))
    if label is not None:
        well_formed("version", label)
        return Label(label)
    return Latest()


def _number(version: str) -> str:
    """A version's number as TF Serving writes an int64 in JSON; "0" (the unset value) for one without."""
    return str(version_number(version) or 0)


# --- handlers -------------------------------------------------------------------------------------


@statuses(REMAP)
async def model_status(plane: DataPlane, request: Request, name: str, number: str | None = None, label: str | None = None) -> Reply:
    if number is None and label is None:
        views = plane.numbered_versions(name)
    else:
        views = [plane.describe(name, selector(number, label))]
    return json_reply({"model_version_status": [version_status(view) for view in views]})


def version_status(view: VersionView) -> dict:
    code, message = "OK", ""
    if view.state is VersionState.UNAVAILABLE:  # TF Serving reports a version that failed to load as END with the error
        code, message = ("NOT_FOUND" if view.card is None else "UNKNOWN"), view.reason or ""
    return {"version": _number(view.version), "state": STATES[view.state], "status": {"error_code": code, "error_message": message}}


@statuses(REMAP)
async def model_metadata(plane: DataPlane, request: Request, name: str, number: str | None = None, label: str | None = None) -> Reply:
    view = plane.describe(name, selector(number, label), available=True)
    return json_reply(
        {
            "model_spec": {"name": name, "signature_name": "", "version": _number(view.version)},
            "metadata": {"signature_def": {"signature_def": {SIGNATURE: signature_def(view.available_card)}}},
        }
    )


# TensorFlow's names of the datatypes a named tensor may have (types.proto).
TF_DATATYPES = {
    "FP16": "DT_HALF",
    "FP32": "DT_FLOAT",
    "FP64": "DT_DOUBLE",
    "INT8": "DT_INT8",
    "INT16": "DT_INT16",
    "INT32": "DT_INT32",
    "INT64": "DT_INT64",
    "UINT8": "DT_UINT8",
    "UINT16": "DT_UINT16",
    "UINT32": "DT_UINT32",
    "UINT64": "DT_UINT64",
    "BOOL": "DT_BOOL",
    "BYTES": "DT_STRING",
}


def signature_def(card: ModelCard) -> dict:
    """The serving signature as TF Serving prints a SavedModel's (training/export.py writes the same one)."""
    if card.inputs:
        inputs = {spec.name: _tensor_info(f"{SIGNATURE}_{spec.name}:0", spec.shape, TF_DATATYPES[spec.datatype]) for spec in card.inputs}
    else:
        inputs = {INPUT: _tensor_info(f"{SIGNATURE}_{INPUT}:0", card.input.shape)}
    if card.outputs:
        outputs = {spec.name: _tensor_info(f"StatefulPartitionedCall:{i}", spec.shape, TF_DATATYPES[spec.datatype]) for i, spec in enumerate(card.outputs)}
    else:
        outputs = {card.output.tensor: _tensor_info("StatefulPartitionedCall:0", card.output.answer_shape)}
    return {"inputs": inputs, "outputs": outputs, "method_name": PREDICT_METHOD, "defaults": {}}


def _tensor_info(name: str, shape: tuple[int, ...], dtype: str = "DT_FLOAT") -> dict:
    dims = [{"size": str(size), "name": ""} for size in (-1, *shape)]  # int64 sizes are strings in proto JSON
    return {"name": name, "dtype": dtype, "tensor_shape": {"dim": dims, "unknown_rank": False}}


class PredictBody(Input):
    """A ``:predict`` body, read against the answering version's card: the row format
    (``instances``) or the columnar one (``inputs``), which also picks the answer's key."""

    def __init__(self, kind: str, body: bytes):
        self.kind, self.body = kind, body
        self.key = "predictions"

    def _read(self) -> tuple[dict, bool]:
        """The body as JSON, its signature checked, with one of its two formats; and whether it holds true or false."""
        body, booleans = read_json(self.kind, self.body)
        check_signature(body)
        if "instances" in body and "inputs" in body:
            raise BadRequest("body: expecting only one of 'inputs' or 'instances' keys")
        return body, booleans

    async def values(self, card: ModelCard, max_examples: int) -> np.ndarray:
        body, booleans = self._read()
        if "instances" in body:
            return rows(body["instances"], card, max_examples, booleans)
        if "inputs" in body:
            self.key = "outputs"
            return columns(body["inputs"], card, max_examples, booleans)
        raise BadRequest("body: missing 'inputs' or 'instances' key")

    async def tensors(self, card: ModelCard, max_examples: int) -> dict[str, tuple[np.ndarray, str]]:
        """A model with named inputs: ``instances`` as objects of one example per input name, or
        ``inputs`` as an object of one batch per input name."""
        body, _ = self._read()
        names = ", ".join(spec.name for spec in card.inputs)
        if "instances" in body:
            instances = body["instances"]
            if not isinstance(instances, list) or not instances or not all(isinstance(item, dict) for item in instances):
                raise BadRequest(f"instances: expecting a non-empty list of objects, each with the inputs of {card.tag} by name ({names})")
            check_batch(len(instances), max_examples, "instances")
            keys = set(instances[0])
            for i, item in enumerate(instances):
                if set(item) != keys:
                    raise BadRequest(f"instances[{i}]: expecting the same inputs in every instance ({', '.join(sorted(keys))})")
            return {key: (json_tensor([item[key] for item in instances], f"instances[].{key}"), f"instances[].{key}") for key in keys}
        if "inputs" in body:
            self.key = "outputs"
            inputs = body["inputs"]
            if not isinstance(inputs, dict):
                raise BadRequest(f"inputs: expecting an object of the inputs of {card.tag} by name ({names}), each a batch")
            return {key: (json_tensor(value, f"inputs.{key}"), f"inputs.{key}") for key, value in inputs.items()}
        raise BadRequest("body: missing 'inputs' or 'instances' key")


@statuses(REMAP)
async def predict(plane: DataPlane, request: Request, name: str, number: str | None = None, label: str | None = None) -> Reply:
    body = PredictBody(codecs.media_type(request), await request.body())
    response = await plane.infer(InferenceRequest(name, selector(number, label), {INPUT: body}))
    if not response.card.outputs:
        return json_reply({body.key: response.answers})
    named = {spec.name: response.outputs[spec.name] for spec in response.card.outputs}
    if body.key == "outputs":  # the columnar format: an object of tensors
        return json_reply({"outputs": {key: value.tolist() for key, value in named.items()}})
    rows = [dict(zip(named, values, strict=True)) for values in zip(*(value.tolist() for value in named.values()), strict=True)]
    return json_reply({"predictions": rows})  # the row format: one object per example


def rows(instances: object, card: ModelCard, limit: int, booleans: bool) -> np.ndarray:
    """The row format: a list of examples, of image files ({"b64": ...}), or of objects naming the input."""
    if not isinstance(instances, list):
        raise BadRequest("instances: expecting a list")
    if not instances:
        raise BadRequest("instances: no values in the list")
    objects = [isinstance(item, dict) for item in instances]
    if any(objects) and not all(objects):
        raise BadRequest("instances: expecting all values, or all objects, not a mix")
    if all(objects) and all(map(is_b64, instances)):
        return images(instances, card, "instances", limit)
    if all(objects):
        for i, item in enumerate(instances):
            if set(item) != {INPUT}:
                raise BadRequest(f"instances[{i}]: an object must have exactly the key {INPUT!r}, the signature's one input")
        return rows([item[INPUT] for item in instances], card, limit, booleans)
    return checked(json_values(instances, card, "instances", batch=True, booleans=booleans), limit, "instances")


def columns(inputs: object, card: ModelCard, limit: int, booleans: bool) -> np.ndarray:
    """The columnar format: the input tensor (batch first), or an object naming it."""
    if isinstance(inputs, dict) and not is_b64(inputs):
        if INPUT not in inputs:
            raise BadRequest(f"inputs: missing named input {INPUT!r} in the 'inputs' object")
        return columns(inputs[INPUT], card, limit, booleans)
    if is_b64(inputs):
        return image_from_b64(inputs, card, "inputs")
    if isinstance(inputs, list) and inputs and all(map(is_b64, inputs)):
        return images(inputs, card, "inputs", limit)
    return checked(json_values(inputs, card, "inputs", batch=True, booleans=booleans), limit, "inputs")


def checked(values: np.ndarray, limit: int, field: str) -> np.ndarray:
    """Values within the batch limit: counted after their shape is checked, so a malformed body is a 400, not a 413."""
    check_batch(len(values), limit, field)
    return values


def images(values: list, card: ModelCard, field: str, limit: int) -> np.ndarray:
    check_batch(len(values), limit, field)  # before decoding any
    return np.concatenate([image_from_b64(value, card, f"{field}[{i}]") for i, value in enumerate(values)])


class ClassifyBody(Input):
    """A ``:classify`` body: examples as tf.Example features, the input a flat list of the card's values or an image file."""

    def __init__(self, kind: str, body: bytes):
        self.kind, self.body = kind, body

    async def values(self, card: ModelCard, max_examples: int) -> np.ndarray:
        body, booleans = read_json(self.kind, self.body)
        check_signature(body)
        context = body.get("context", {})
        if not isinstance(context, dict):
            raise BadRequest("context: expecting an object of features")
        examples = body.get("examples")
        if examples is None:
            raise BadRequest("body: when method is classify, key 'examples' is expected and was not found")
        if not isinstance(examples, list) or not examples:
            raise BadRequest("examples: expecting a non-empty list of objects")
        features = [feature(example, context, f"examples[{i}]") for i, example in enumerate(examples)]
        if any(map(is_b64, features)):
            check_batch(len(features), max_examples, "examples")  # before decoding any image file
        values = [feature_values(value, card, f"examples[{i}].{INPUT}", booleans) for i, value in enumerate(features)]
        return checked(np.concatenate(values), max_examples, "examples")


@statuses(REMAP)
async def classify(plane: DataPlane, request: Request, name: str, number: str | None = None, label: str | None = None) -> Reply:
    body = ClassifyBody(codecs.media_type(request), await request.body())
    response = await plane.infer(InferenceRequest(name, selector(number, label), {INPUT: body}))
    return json_reply({"results": [list(zip(response.card.labels, row, strict=True)) for row in labelled(response)]})


def labelled(response) -> np.ndarray:
    """The answer of a model whose answer is a probability per label; BadRequest for another task (``:classify`` needs labels)."""
    if not response.card.output.labels:
        raise BadRequest(f"{response.card.tag} answers {response.card.task}, not classes: call :predict")
    return response.answers


def feature(example: object, context: dict, field: str) -> object:
    """The input feature of an example, or of the context. Other features are ignored, as tf.parse_example
    ignores the features a signature does not read."""
    if not isinstance(example, dict):
        raise BadRequest(f"{field}: expecting an object of features")
    if INPUT in example and INPUT in context:
        raise BadRequest(f"{field}: features in 'context' must not appear in examples: {INPUT}")
    if INPUT not in example and INPUT not in context:
        raise BadRequest(f"{field}: feature {INPUT!r} is required but could not be found")
    value = example.get(INPUT, context.get(INPUT))
    if isinstance(value, list) and len(value) == 1 and is_b64(value[0]):
        return value[0]  # a bytes feature holds a list of values: here, one image file
    return value


def feature_values(value: object, card: ModelCard, field: str, booleans: bool) -> np.ndarray:
    if is_b64(value):
        return image_from_b64(value, card, field)
    flat = numbers(value, field, booleans)
    size = math.prod(card.input.shape)
    if flat.ndim != 1 or flat.size != size:
        raise BadRequest(f"{field}: a feature is a flat list; expected {size} values ({'x'.join(map(str, card.input.shape))}, row-major), got shape {list(flat.shape)}")
    return card_values(flat.reshape(1, *card.input.shape), card, field)


def read_json(kind: str, body: bytes) -> tuple[dict, bool]:
    """The JSON body, and whether it may hold true or false (which are not numbers)."""
    if kind not in JSON_TYPES:
        raise UnsupportedMediaType(f"content type {kind} is not accepted here; send JSON (application/json)")
    return parse_json_object(body), b"true" in body or b"false" in body


def check_signature(body: dict) -> None:
    name = body.get("signature_name", "")
    if not isinstance(name, str):
        raise BadRequest("signature_name: expecting a string")
    if name not in ("", SIGNATURE):
        raise BadRequest(f'serving signature name: "{name[:64]}" not found in signature def; this model has "{SIGNATURE}"')


# --- the route table and its OpenAPI description ----------------------------------------------------


def routes(config: Config) -> list[Route]:
    table = []
    for addressing, suffix in ADDRESSING.items():
        base = "/v1/models/{name}" + suffix
        table += [
            Route(base, {"GET": variant(model_status, _describe("status", addressing))}, PROTOCOL),
            Route(base + "/metadata", {"GET": variant(model_metadata, _describe("metadata", addressing))}, PROTOCOL),
            Route(base + ":predict", {"POST": variant(predict, _describe("predict", addressing))}, PROTOCOL),
            Route(base + ":classify", {"POST": variant(classify, _describe("classify", addressing))}, PROTOCOL),
        ]
    return table


def _describe(kind: str, addressing: str):
    def describe(model, config: Config) -> dict:
        card, limit = model.card, config.limits.max_batch_images
        which = {"latest": "the latest version", "version": "a version by number", "label": "a version by label"}[addressing]
        parameters = _path_parameters(model, addressing)
        operation_id = f"tfserving_{kind}_{model.name}_{addressing}"
        if kind == "status":
            return operation(
                operation_id,
                f"TF Serving: status of {'every numbered version' if addressing == 'latest' else which} of {model.name}.",
                {200: ok_response(ref(schemas.TFServingStatus)), **error_responses(404)},
                parameters=parameters,
            )
        if kind == "metadata":
            return operation(
                operation_id,
                f"TF Serving: the serving signature of {which} of {model.name}.",
                {200: ok_response(_metadata_schema(model)), **error_responses(404)},
                parameters=parameters,
            )
        errors = {**error_responses(400, 404, 413, 415), "429": _too_many()}
        if kind == "predict":
            body = {"required": True, "content": {codecs.JSON: {"schema": _predict_request(model)}}}
            return operation(
                operation_id,
                f"TF Serving: class probabilities from {which} of {model.name}, at most {limit} examples "
                '(an image file may be sent as {"b64": "<base64>"} in place of an example).',
                {200: ok_response(_predict_response(card, limit)), **errors},
                parameters=parameters,
                requestBody=body,
            )
        body = {"required": True, "content": {codecs.JSON: {"schema": _classify_request(model)}}}
        return operation(
            operation_id,
            f"TF Serving: [label, score] of every class from {which} of {model.name}, at most {limit} examples.",
            {200: ok_response(_classify_response(card, limit)), **errors},
            parameters=parameters,
            requestBody=body,
        )

    return describe


def _path_parameters(model, addressing: str) -> list[dict]:
    if addressing == "latest":
        return []
    if addressing == "version":
        numbers_ = sorted({n for v in model.versions if (n := version_number(v)) is not None})
        schema = {"type": "string", "enum": [str(n) for n in numbers_]} if numbers_ else {"type": "string", "pattern": r"^[0-9]+$"}
        return [{"name": "number", "in": "path", "required": True, "description": "a version number: v<n> or <n> is version <n>", "schema": schema}]
    known = sorted({v for v in model.versions if version_number(v) is None} | set(model.aliases))
    schema = {"type": "string", "enum": known} if known else {"type": "string", "pattern": r"^[a-z0-9][a-z0-9._-]*$"}
    return [{"name": "label", "in": "path", "required": True, "description": "an alias, or a version without a number", "schema": schema}]


def _too_many() -> dict:
    response = error_responses(429)["429"]
    response["description"] = "resource exhausted: the version's queue is full"
    response["headers"] = {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}
    return response


def _metadata_schema(model) -> dict:
    signature = signature_def(model.card)
    return narrowed(
        schemas.TFServingMetadata,
        {"properties": {"model_spec": {"properties": {"name": {"const": model.name}}}, "metadata": {"const": {"signature_def": {"signature_def": {SIGNATURE: signature}}}}}},
    )


def _signature_name() -> dict:
    return {"enum": ["", SIGNATURE], "description": "optional: the default serving signature is the only one"}


def _predict_request(model) -> dict:
    batch = {"$ref": f"{SCHEMAS}{model.name}.Batch"}
    if model.card.named_inputs:  # rows: an object of every input per example; columns: an object of every input's batch
        rows_ = {"type": "array", "items": {"$ref": f"{SCHEMAS}{model.name}.Example"}, "minItems": 1}
        return {
            "oneOf": [
                {"type": "object", "required": ["instances"], "not": {"required": ["inputs"]}, "properties": {"signature_name": _signature_name(), "instances": rows_}},
                {"type": "object", "required": ["inputs"], "not": {"required": ["instances"]}, "properties": {"signature_name": _signature_name(), "inputs": batch}},
            ]
        }
    named = {"type": "object", "required": [INPUT], "properties": {INPUT: {"$ref": f"{SCHEMAS}{model.name}.Example"}}, "additionalProperties": False}
    named_rows = {"type": "array", "items": named, "minItems": 1}
    named_columns = {"type": "object", "required": [INPUT], "properties": {INPUT: batch}, "additionalProperties": False}
    return {
        "oneOf": [
            {
                "type": "object",
                "required": ["instances"],
                "not": {"required": ["inputs"]},
                "properties": {"signature_name": _signature_name(), "instances": {"anyOf": [batch, named_rows]}},
            },
            {
                "type": "object",
                "required": ["inputs"],
                "not": {"required": ["instances"]},
                "properties": {"signature_name": _signature_name(), "inputs": {"anyOf": [batch, named_columns]}},
            },
        ]
    }


def _probabilities(card: ModelCard, limit: int) -> dict:
    if not card.output.labels:
        width = card.output.units
        row = {"type": "array", "items": {"type": "number"}, "minItems": width, "maxItems": width} if card.output.kind != "tensor" else {"type": "array"}
        return {"type": "array", "items": row, "minItems": 1, "maxItems": limit, "description": f"one row of {card.output.tensor} per example"}
    row = {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}, "minItems": card.classes, "maxItems": card.classes}
    return {"type": "array", "items": row, "minItems": 1, "maxItems": limit, "description": f"one row of class probabilities per example: {', '.join(card.labels)}"}


def _predict_response(card: ModelCard, limit: int) -> dict:
    if card.output.labels:
        rows_ = _probabilities(card, limit)
        return narrowed(schemas.TFServingPredictResponse, {"properties": {"predictions": rows_, "outputs": rows_}})
    if card.outputs:  # named outputs: one object per example (rows), or one object of batches (columns)
        values = {spec.name: output_values(spec) for spec in card.outputs}
        row = {"type": "object", "required": list(values), "properties": values, "additionalProperties": False}
        predictions = batch_of(row, limit)
        outputs = {"type": "object", "required": list(values), "properties": {name: batch_of(value, limit) for name, value in values.items()}, "additionalProperties": False}
    else:  # a regressor's or a tensor's values: numbers of any size, not class probabilities
        predictions = outputs = _probabilities(card, limit)
    return {
        "oneOf": [
            {"type": "object", "required": ["predictions"], "properties": {"predictions": predictions}, "additionalProperties": False},
            {"type": "object", "required": ["outputs"], "properties": {"outputs": outputs}, "additionalProperties": False},
        ]
    }


def _classify_request(model) -> dict:
    """The input feature in every example, or once in the context (features in both are refused)."""
    card = model.card
    low, high = card.input.value_range or (-FLOAT32_MAX, FLOAT32_MAX)
    size = math.prod(card.input.shape)
    flat = {
        "type": "array",
        "items": {"type": "number", "minimum": low, "maximum": high},
        "minItems": size,
        "maxItems": size,
        "description": f"{'x'.join(map(str, card.input.shape))} values, row-major",
    }
    without = {"type": "object", "not": {"required": [INPUT]}}
    in_examples = {
        "type": "object",
        "required": ["examples"],
        "properties": {"context": without, "examples": {"type": "array", "items": {"type": "object", "required": [INPUT], "properties": {INPUT: flat}}, "minItems": 1}},
    }
    in_context = {
        "type": "object",
        "required": ["examples", "context"],
        "properties": {"context": {"type": "object", "required": [INPUT], "properties": {INPUT: flat}}, "examples": {"type": "array", "items": without, "minItems": 1}},
    }
    return {
        "allOf": [{"type": "object", "properties": {"signature_name": _signature_name()}}, {"oneOf": [in_examples, in_context]}],
        "description": f'tf.Example features: "{INPUT}" a flat list of values, or an image file as {{"b64": "<base64>"}}; other features are ignored',
    }


def _classify_response(card: ModelCard, limit: int) -> dict:
    pair = {"prefixItems": [{"enum": list(card.labels)}, {"type": "number", "minimum": 0, "maximum": 1}], "description": "[label, score]"}
    example = {"items": pair, "minItems": card.classes, "maxItems": card.classes}
    return narrowed(schemas.TFServingClassifyResponse, {"properties": {"results": {"items": example, "maxItems": limit}}})
