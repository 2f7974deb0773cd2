"""The Open Inference Protocol, v2 (kserve/open-inference-protocol), over the data plane, with Triton's
binary tensor data, classification and model repository (index) extensions.

    GET  /v2                                           server name, version, extensions
    GET  /v2/health/live, /v2/health/ready             liveness, readiness (503 until every version can answer)
    GET  /v2/models/{name}[/versions/{version}]        inputs and outputs: name, datatype, shape (from the card)
    GET  /v2/models/{name}[/versions/{version}]/ready  200 when that version can answer, else 503
    POST /v2/models/{name}[/versions/{version}]/infer  inference
    POST /v2/repository/index                          every served version with its state

Versions are the server's version names and aliases; without one, the model's default version.
Each model has one input, ``input`` (shape ``[-1, *card shape]``; a grey image may come as
``[N, H, W]``), in any of the numeric datatypes (converted; ``UINT8`` suits images), holding the
card's raw values (0..255 for images: the server scales them). Its one output, ``probabilities``, is
FP32 ``[N, classes]``; with the ``classification`` parameter it is BYTES ``[N, k]`` of
``"<score>:<index>:<label>"``, best first.

Binary tensors (what tritonclient sends by default): the JSON request, then each binary input's
bytes in order; ``Inference-Header-Content-Length`` gives the JSON's length and each input's
``binary_data_size`` parameter its byte count. Lengths, shapes and byte counts that disagree are a
400 naming them, before anything is allocated. Outputs are binary when ``binary_data`` (per output)
or ``binary_data_output`` (per request) asks. Errors are ``{"error": "..."}``: 400, 404 for an unknown
model or version, 503 (Retry-After) when it cannot answer now; 413 and 415 as on every route.

    client = tritonclient.http.InferenceServerClient("localhost:3000")
    tensor = tritonclient.http.InferInput("input", [1, 28, 28, 1], "UINT8")
    result = client.infer("clothes", [tensor.set_data_from_numpy(image)]).as_numpy("probabilities")
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection
from typing import Any

import bentoml
import numpy as np
import orjson
from starlette.requests import Request

from config import Config
from models.card import DATATYPES as CARD_DATATYPES
from models.card import DYNAMIC, ModelCard, TensorSpec
from models.card import OUTPUT_TENSORS as ANSWER_TENSORS
from serving import codecs, schemas
from serving.codecs.tensors import NUMBER_DATATYPES, TENSOR_CODECS, count, datatype_of, raw_tensor, shape_of, tensor_from_bytes, tensor_from_json
from serving.core import ABSTAINED_OUTPUT, INPUT, OOD_OUTPUT, OUTPUT, Default, InferenceRequest, Input, Named, Selector, VersionState, check_batch
from serving.dataplane import DataPlane
from serving.errors import BadRequest, InvalidInput, ServingError, Unavailable, UnsupportedMediaType
from serving.live import IndexRow, ServingState
from serving.openapi import error_responses, held_values, narrowed, ok_response, operation, ref
from serving.pipelines import STEP_OUTPUT
from serving.protocols import Reply, Route, json_reply
from serving.protocols.tensors import card_values, parse_json_object, statuses, variant

PROTOCOL = "v2"
SERVER_NAME = "model-server"
EXTENSIONS = ["binary_tensor_data", "classification", "model_repository"]  # load and unload: serving/protocols/repository.py
BINARY = "application/octet-stream"
HEADER_LENGTH = "inference-header-content-length"
ACCEPTED = ("", codecs.JSON, BINARY)  # tritonclient sends binary requests without a content type
STATES = schemas.V2_STATES  # VersionState -> the Open Inference Protocol's model states
SHARED_MEMORY = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")
REMAP: dict[type, type[ServingError]] = {InvalidInput: BadRequest}
ADDRESSING = {"default": "", "version": "/versions/{version}"}


@dataclasses.dataclass(frozen=True)
class Output:
    binary: bool
    classes: int = 0  # 0: the values; k: the top k classes as strings (the classification extension)
    name: str = OUTPUT


# The output tensors a version may have, with their datatypes: its answer (named by its task: the
# probabilities of a classifier, a regressor's values, ...), then per example its OOD score and abstention.
PER_EXAMPLE = {OOD_OUTPUT: "FP32", ABSTAINED_OUTPUT: "BOOL", STEP_OUTPUT: "INT32"}
OUTPUT_TENSORS = {**dict.fromkeys(ANSWER_TENSORS.values(), "FP32"), **PER_EXAMPLE}


def output_metadata(name: str, card: ModelCard) -> dict:
    if name in PER_EXAMPLE:
        return {"name": name, "datatype": PER_EXAMPLE[name], "shape": [-1]}
    named = {spec.name: spec for spec in card.outputs}
    if name in named:
        return {"name": name, "datatype": named[name].datatype, "shape": [-1, *named[name].shape]}
    return {"name": name, "datatype": "FP32", "shape": [-1, *card.output.answer_shape]}


def input_metadata(card: ModelCard) -> list[dict]:
    """The inputs a version takes: ``input`` (any numeric datatype, converted), or its named tensors."""
    if card.inputs:
        return [{"name": spec.name, "datatype": spec.datatype, "shape": [-1, *spec.shape]} for spec in card.inputs]
    return [{"name": INPUT, "datatype": "FP32", "shape": [-1, *card.input.shape]}]


def answer_names(card: ModelCard) -> tuple[str, ...]:
    """The names of a version's answer tensors: its named outputs, or its one answer (probabilities, values, ...)."""
    return tuple(spec.name for spec in card.outputs) if card.outputs else (card.output.tensor,)


def output_datatype(name: str, card: ModelCard) -> str:
    named = {spec.name: spec.datatype for spec in card.outputs}
    return named.get(name) or OUTPUT_TENSORS.get(name, "FP32")


def has_classes(card: ModelCard) -> bool:
    """The classification extension applies: the answer is a probability per label."""
    return bool(card.output.labels)


def selector(version: str | None) -> Selector:
    return Named(version) if version is not None else Default()


# --- server and model metadata, health ---------------------------------------------------------------


async def server_metadata(plane: DataPlane, request: Request) -> Reply:
    return json_reply({"name": SERVER_NAME, "version": bentoml.__version__, "extensions": EXTENSIONS})


async def server_live(plane: DataPlane, request: Request) -> Reply:
    return json_reply({"live": True})


async def server_ready(plane: DataPlane, request: Request) -> Reply:
    if not plane.ready():
        waiting = [f"{view.tag} ({view.state.value})" for view in plane.waiting()]
        raise Unavailable(f"not ready: {', '.join(waiting) or 'no version is ready'}")
    return json_reply({"ready": True})


@statuses(REMAP)
async def model_metadata(plane: DataPlane, request: Request, name: str, version: str | None = None) -> Reply:
    view = plane.describe(name, selector(version), available=True)
    card = view.available_card
    return json_reply(
        {
            "name": name,
            "versions": plane.versions(name),
            "platform": view.engine or "keras",
            "inputs": input_metadata(card),
            "outputs": [output_metadata(name, card) for name in view.outputs],
        }
    )


@statuses(REMAP)
async def model_ready(plane: DataPlane, request: Request, name: str, version: str | None = None) -> Reply:
    view = plane.describe(name, selector(version), available=True)  # 503 with the reason when it failed
    if view.state is not VersionState.READY:
        raise Unavailable(f"{view.tag} is not ready: {view.reason or view.state.value}")
    return json_reply({"name": name, "ready": True})


@statuses(REMAP)
async def repository_index(plane: DataPlane, request: Request) -> Reply:
    kind = codecs.media_type(request)
    if kind not in ("", codecs.JSON):
        raise UnsupportedMediaType(f"content type {kind} is not accepted here; send JSON (application/json) or nothing")
    body = await request.body()
    ready_only = parse_json_object(body, "body").get("ready", False) if body.strip() else False
    if not isinstance(ready_only, bool):
        raise BadRequest("ready: expecting true or false")
    index = [{"name": row["name"], "version": row["version"], "state": index_state(row), "reason": row["reason"] or ""} for row in plane.index()]
    return json_reply([entry for entry in index if entry["state"] == "READY" or not ready_only])


def index_state(row: IndexRow) -> str:
    """The repository index's state of a version: READY, LOADING, UNLOADING or UNAVAILABLE."""
    if row["state"] == ServingState.SERVING:
        return STATES[row["status"]]
    return {ServingState.LOADING: "LOADING", ServingState.UNLOADING: "UNLOADING"}.get(row["state"], "UNAVAILABLE")


# --- inference ----------------------------------------------------------------------------------------


class InferBody(Input):
    """A v2 inference request (JSON, or JSON then binary tensor data), read against the answering
    version's card; it keeps the request's id and the outputs asked for, for the answer."""

    def __init__(self, kind: str, body: bytes, header_length: str | None):
        self.kind, self.body, self.header_length = kind, body, header_length
        self.request_id: str | None = None
        self.outputs: list[Output] | None = None  # None: every output the answering version has
        self.binary_output = False

    def _read(self, card: ModelCard) -> tuple[dict, bytes, memoryview | None]:
        """The request's JSON (its id, parameters and outputs kept for the answer), and its binary part."""
        if self.kind not in ACCEPTED:
            raise UnsupportedMediaType(f"content type {self.kind} is not accepted here; send JSON, or the binary tensor format ({BINARY} or none)")
        header, binary = split(self.body, self.header_length)
        payload = parse_json_object(header, "inference request")
        request_id = payload.get("id")
        if request_id is not None and not isinstance(request_id, str):
            raise BadRequest("id: expecting a string")
        self.request_id = request_id
        parameters = parameters_of(payload, "parameters")
        self.binary_output = flag(parameters, "binary_data_output", "parameters")
        self.outputs = requested_outputs(payload.get("outputs"), self.binary_output, card)
        return payload, header, binary

    async def values(self, card: ModelCard, max_examples: int) -> np.ndarray:
        payload, header, binary = self._read(card)
        inputs = payload.get("inputs")
        if not isinstance(inputs, list) or len(inputs) != 1:
            raise BadRequest(f"inputs: expecting a list of one input, {INPUT!r} ({card.tag} has one input)")
        values = input_values(inputs[0], card, binary, b"true" in header or b"false" in header)
        check_batch(len(values), max_examples, "inputs[0]")
        return values

    async def tensors(self, card: ModelCard, max_examples: int) -> dict[str, tuple[np.ndarray, str]]:
        payload, header, binary = self._read(card)
        inputs = payload.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise BadRequest(f"inputs: expecting a list of the inputs of {card.tag}: {', '.join(spec.name for spec in card.inputs)}")
        tensors: dict[str, tuple[np.ndarray, str]] = {}
        offset, booleans = 0, b"true" in header or b"false" in header
        for index, item in enumerate(inputs):
            field = f"inputs[{index}]"
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str):
                raise BadRequest(f"{field}: expecting an object with name, shape, datatype and data")
            if name in tensors:
                raise BadRequest(f"{field}: {name[:64]!r} is given twice")
            tensor, offset = input_tensor(item, field, binary, offset, booleans)
            tensors[name] = (tensor, field)
        if binary is not None and offset != len(binary):
            raise BadRequest(f"{len(binary) - offset} bytes follow the JSON beyond the inputs' binary_data_size")
        return tensors


@statuses(REMAP)
async def infer(plane: DataPlane, request: Request, name: str, version: str | None = None) -> Reply:
    body = InferBody(codecs.media_type(request), await request.body(), request.headers.get(HEADER_LENGTH))
    response = await plane.infer(InferenceRequest(name, selector(version), {INPUT: body}))
    head = {"model_name": name, "model_version": response.version, "id": body.request_id if body.request_id is not None else response.id}
    outputs = body.outputs if body.outputs is not None else [Output(body.binary_output, 0, output) for output in response.outputs]
    for output in outputs:
        if output.name not in response.outputs:
            raise BadRequest(f"outputs: {response.card.tag} has no output {output.name!r}; its outputs: {', '.join(response.outputs)}")
    return infer_reply(head, response.outputs, outputs, response.card)


def split(body: bytes, header_length: str | None) -> tuple[bytes, memoryview | None]:
    """(the JSON request, the binary tensor data after it, or None without Inference-Header-Content-Length)."""
    if header_length is None:
        return body, None
    if not header_length.isdecimal() or len(header_length) > 18:
        raise BadRequest("Inference-Header-Content-Length: expecting the JSON part's length in bytes")
    length = int(header_length)
    if length > len(body):
        raise BadRequest(f"Inference-Header-Content-Length: {length} exceeds the body's {len(body)} bytes")
    return body[:length], memoryview(body)[length:]


def parameters_of(holder: dict, field: str) -> dict:
    """An object's ``parameters``: names to strings, numbers or booleans; shared memory is not offered."""
    parameters = holder.get("parameters", {})
    if not isinstance(parameters, dict) or not all(isinstance(value, (str, int, float)) for value in parameters.values()):
        raise BadRequest(f"{field}: expecting an object of strings, numbers or booleans")
    used = [name for name in SHARED_MEMORY if name in parameters]
    if used:
        raise BadRequest(f"{field}: {used[0]}: shared memory is not supported; send the data in the body")
    return parameters


def flag(parameters: dict, name: str, field: str) -> bool:
    value = parameters.get(name, False)
    if not isinstance(value, bool):
        raise BadRequest(f"{field}.{name}: expecting true or false")
    return value


def input_values(item: object, card: ModelCard, binary: memoryview | None, booleans: bool) -> np.ndarray:
    """The one input as values checked against the card (N, *shape), from its JSON data or its binary data."""
    field = "inputs[0]"
    if not isinstance(item, dict):
        raise BadRequest(f"{field}: expecting an object with name, shape, datatype and data")
    if item.get("name") != INPUT:
        shown = item.get("name") if isinstance(item.get("name"), str) else None
        raise BadRequest(f"{field}: unexpected input {shown[:64] if shown else 'without a name'!r} for model {card.name}; its input is {INPUT!r}")
    if binary is not None and len(binary) and "binary_data_size" not in parameters_of(item, f"{field}.parameters"):
        raise BadRequest(f"{len(binary)} bytes follow the JSON, but no input declares binary_data_size")
    tensor, used = input_tensor(item, field, binary, 0, booleans, NUMBER_DATATYPES.keys())
    if binary is not None and used != len(binary):
        raise BadRequest(f"{field}: binary_data_size is {used} bytes, but {len(binary)} bytes follow the JSON")
    return card_values(tensor, card, field)


def input_tensor(item: dict, field: str, binary: memoryview | None, offset: int, booleans: bool, accepted: Collection[str] = TENSOR_CODECS.keys()) -> tuple[np.ndarray, int]:
    """An input in its declared datatype (one of ``accepted``), from its JSON data or its share of the
    binary part (which holds the binary inputs in order, from ``offset``); and the offset after it."""
    shape = shape_of(item.get("shape"), f"{field}.shape")
    dtype = datatype_of(item.get("datatype"), f"{field}.datatype", accepted)
    parameters = parameters_of(item, f"{field}.parameters")
    if "binary_data_size" not in parameters:
        if "data" not in item:
            raise BadRequest(f"{field}: missing data")
        return tensor_from_json(item["data"], shape, dtype, f"{field}.data", booleans), offset
    size = count(parameters["binary_data_size"])
    if size is None:
        raise BadRequest(f"{field}.parameters.binary_data_size: expecting a byte count")
    if binary is None:
        raise BadRequest(f"{field}: binary_data_size given, but the request has no binary part (no Inference-Header-Content-Length)")
    if "data" in item:
        raise BadRequest(f"{field}: both data and binary_data_size given; send one")
    if offset + size > len(binary):
        raise BadRequest(f"{field}: binary_data_size is {size} bytes, but {len(binary) - offset} bytes follow the JSON{' and the inputs before it' if offset else ''}")
    return tensor_from_bytes(binary[offset : offset + size], shape, dtype, field), offset + size


def requested_outputs(outputs: object, binary_output: bool, card: ModelCard) -> list[Output] | None:
    """The outputs a request asks for (None: every output the version has), each at most once."""
    if outputs is None or outputs == []:
        return None
    if not isinstance(outputs, list) or not all(isinstance(output, dict) for output in outputs):
        raise BadRequest(f'outputs: expecting a list of requested outputs, each {{"name": ...}}: {", ".join(OUTPUT_TENSORS)}')
    requested: list[Output] = []
    possible = (*answer_names(card), *PER_EXAMPLE)
    for index, output in enumerate(outputs):
        field = f"outputs[{index}]"
        name = output.get("name")
        if name not in possible:
            shown = name if isinstance(name, str) else None
            raise BadRequest(f"{field}: unexpected output {shown[:64] if shown else 'without a name'!r} for model {card.name}; outputs: {', '.join(possible)}")
        if any(earlier.name == name for earlier in requested):
            raise BadRequest(f"{field}: {name} is asked for twice")
        parameters = parameters_of(output, f"{field}.parameters")
        binary = flag(parameters, "binary_data", f"{field}.parameters") if "binary_data" in parameters else binary_output
        classes = count(parameters.get("classification", 0))
        if classes is None:
            raise BadRequest(f"{field}.parameters.classification: expecting a number of classes")
        if classes and (name != card.output.tensor or not has_classes(card)):
            raise BadRequest(f"{field}.parameters.classification: only {OUTPUT} has classes{'' if has_classes(card) else f' ({card.tag} answers {card.task})'}")
        requested.append(Output(binary, min(classes, card.classes), name))
    return requested


def infer_reply(response: dict, tensors: dict[str, np.ndarray], outputs: list[Output], card: ModelCard) -> Reply:
    described, chunks = [], []
    for output in outputs:
        if output.classes:
            tensor, datatype = classifications(tensors[card.output.tensor], output.classes, card), "BYTES"
        else:
            datatype = output_datatype(output.name, card)
            tensor = np.asarray(tensors[output.name], dtype=CARD_DATATYPES[datatype])
        entry: dict[str, Any] = {"name": output.name, "datatype": datatype, "shape": list(tensor.shape)}
        if output.binary:
            raw = raw_tensor(tensor, datatype)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = tensor.reshape(-1).tolist() if datatype in ("BYTES", "BOOL", "FP16") else tensor.reshape(-1)
        described.append(entry)
    response = {**response, "outputs": described}
    if not chunks:
        return json_reply(response)
    header = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    return Reply(header + b"".join(chunks), content_type=BINARY, headers={"Inference-Header-Content-Length": str(len(header))})


def classifications(probabilities: np.ndarray, count: int, card: ModelCard) -> np.ndarray:
    """The classification extension: the top ``count`` classes of each example as "<score>:<index>:<label>"."""
    best = np.argsort(-probabilities, axis=1, kind="stable")[:, :count]
    scores = probabilities.astype(np.float32, copy=False)  # printed as float32 is: 0.9, not 0.8999999761581421
    text = [[f"{scores[row, index]!s}:{index}:{card.labels[index]}" for index in indices] for row, indices in enumerate(best)]
    return np.array(text, dtype=object).reshape(len(probabilities), count)


# --- the route table and its OpenAPI description ----------------------------------------------------


def routes(config: Config) -> list[Route]:
    table = [
        Route("/v2", {"GET": variant(server_metadata, _describe_server)}, PROTOCOL),
        Route("/v2/health/live", {"GET": variant(server_live, _describe_health("live"))}, PROTOCOL),
        Route("/v2/health/ready", {"GET": variant(server_ready, _describe_health("ready"))}, PROTOCOL),
        Route("/v2/repository/index", {"POST": variant(repository_index, _describe_index)}, PROTOCOL),
    ]
    for addressing, suffix in ADDRESSING.items():
        base = "/v2/models/{name}" + suffix
        table += [
            Route(base, {"GET": variant(model_metadata, _describe("metadata", addressing))}, PROTOCOL),
            Route(base + "/ready", {"GET": variant(model_ready, _describe("ready", addressing))}, PROTOCOL),
            Route(base + "/infer", {"POST": variant(infer, _describe("infer", addressing))}, PROTOCOL),
        ]
    return table


def _describe_server(model, config: Config) -> dict:
    schema = narrowed(schemas.V2ServerMetadata, {"properties": {"name": {"const": SERVER_NAME}, "extensions": {"const": EXTENSIONS}}})
    return operation("v2_server_metadata", "Open Inference Protocol: the server's name, version and extensions.", {200: ok_response(schema)})


def _describe_health(kind: str):
    def describe(model, config: Config) -> dict:
        schema = ref(schemas.V2Live if kind == "live" else schemas.V2Ready)
        errors = error_responses(503) if kind == "ready" else {}
        summary = "the server answers" if kind == "live" else "every served version that has a model can answer (503 until then)"
        return operation(f"v2_server_{kind}", f"Open Inference Protocol: {summary}.", {200: ok_response(schema), **errors})

    return describe


def _describe_index(model, config: Config) -> dict:
    body = {
        "required": False,
        "content": {codecs.JSON: {"schema": {"type": "object", "properties": {"ready": {"type": "boolean", "description": "only the versions ready for inference"}}}}},
    }
    return operation(
        "v2_repository_index",
        "Open Inference Protocol (model repository extension): every served version and its state.",
        {200: ok_response(ref(schemas.V2RepositoryIndex)), **error_responses(400, 415)},
        requestBody=body,
    )


def _describe(kind: str, addressing: str):
    def describe(model, config: Config) -> dict:
        card = model.card
        which = "the default version" if addressing == "default" else "a version"
        operation_id = f"v2_{kind}_{model.name}_{addressing}"
        if kind == "metadata":
            return operation(
                operation_id,
                f"Open Inference Protocol: the inputs and outputs of {which} of {model.name}.",
                {200: ok_response(_metadata_schema(model, config)), **error_responses(404)},
            )
        if kind == "ready":
            schema = narrowed(schemas.V2ModelReady, {"properties": {"name": {"const": model.name}}})
            return operation(
                operation_id, f"Open Inference Protocol: 200 when {which} of {model.name} can answer (503 otherwise).", {200: ok_response(schema), **error_responses(404)}
            )
        body = {"required": True, "content": {codecs.JSON: {"schema": _infer_request(card, model_outputs(config, model.card))}}}
        ok = ok_response(_infer_response(model, config))
        ok["content"][BINARY] = {"schema": {"type": "string", "format": "binary", "description": "the JSON response, then the binary outputs (Inference-Header-Content-Length)"}}
        ok["headers"] = {HEADER_LENGTH.title(): {"description": "binary responses: the JSON part's length", "schema": {"type": "string", "pattern": r"^\d+$"}}}
        return operation(
            operation_id,
            f"Open Inference Protocol: inference with {which} of {model.name}, at most "
            f"{config.limits.max_batch_images} examples. The binary tensor data extension is taken too "
            "(Inference-Header-Content-Length and binary_data_size), though not described here.",
            {200: ok, **error_responses(400, 404, 413, 415)},
            requestBody=body,
        )

    return describe


def model_outputs(config: Config, card: ModelCard) -> tuple[str, ...]:
    """The outputs a model's versions may have: its answer, and a classifier's OOD score and abstentions as configured."""
    settings = config.models.get(card.name)
    ood = settings.ood if settings is not None else None
    if ood is None or not ood.enabled or not card.is_classifier or card.named_inputs:
        return answer_names(card)
    return (card.output.tensor, OOD_OUTPUT, *((ABSTAINED_OUTPUT,) if ood.abstain_above is not None else ()))


def _metadata_schema(model, config: Config) -> dict:
    card = model.card
    possible = model_outputs(config, model.card)
    return narrowed(
        schemas.V2ModelMetadata,
        {
            "properties": {
                "name": {"const": model.name},
                "versions": {"const": model.versions},
                "inputs": {"const": input_metadata(card)},
                "outputs": {"minItems": 1, "maxItems": len(possible), "items": {"enum": [output_metadata(name, card) for name in possible]}},
            }
        },
    )


def _value_bounds(card: ModelCard, dtype: np.dtype) -> dict:
    """The values a datatype can carry within the card's range (all of them are accepted)."""
    info = np.iinfo(dtype) if dtype.kind in "ui" else np.finfo(np.float16 if dtype.itemsize == 2 else np.float32)
    low, high = float(info.min), float(info.max)
    if card.input.value_range is not None:
        low, high = max(low, card.input.value_range[0]), min(high, card.input.value_range[1])
    if dtype.kind in "ui":
        return {"type": "integer", "minimum": int(np.ceil(low)), "maximum": int(np.floor(high))}
    return {"type": "number", "minimum": low, "maximum": high}


def _nested(item: dict, shape: tuple[int, ...]) -> dict:
    for size in reversed(shape):
        item = {"type": "array", "items": item, "minItems": size, "maxItems": size}
    return item


def _infer_request(card: ModelCard, possible: tuple[str, ...]) -> dict:
    """One example per request in the document (JSON Schema cannot tie the data's length to the shape's
    first dimension); the server takes any batch up to the limit."""
    if card.inputs:
        return _named_infer_request(card, possible)
    shapes = [(1, *card.input.shape)]
    if card.is_image and card.input.channels == 1:
        shapes.append((1, *card.input.shape[:2]))
    scalar = {"type": ["string", "number", "boolean"]}
    parameters = {"type": "object", "additionalProperties": scalar, "not": {"anyOf": [{"required": [name]} for name in ("binary_data_size", *SHARED_MEMORY)]}}
    groups: dict[tuple, list[str]] = {}  # datatypes that carry the same values for this card share a variant
    for datatype, dtype in NUMBER_DATATYPES.items():
        groups.setdefault(tuple(_value_bounds(card, dtype).items()), []).append(datatype)
    variants = []
    for shape in shapes:
        size = int(np.prod(shape))
        for bounds, datatypes in groups.items():
            value = dict(bounds)
            variants.append(
                {
                    "type": "object",
                    "required": ["name", "shape", "datatype", "data"],
                    "properties": {
                        "name": {"const": INPUT},
                        "shape": {"const": list(shape)},
                        "datatype": {"enum": datatypes},
                        "data": {"anyOf": [_nested(value, shape), {"type": "array", "items": value, "minItems": size, "maxItems": size}]},
                        "parameters": parameters,
                    },
                }
            )
    output_parameters = {
        "type": "object",
        "additionalProperties": scalar,
        "properties": {"binary_data": {"type": "boolean"}, "classification": {"type": "integer", "minimum": 0, "description": "the top k classes as strings"}},
        "not": {"anyOf": [{"required": [name]} for name in SHARED_MEMORY]},
    }
    plain_parameters = {
        "type": "object",
        "additionalProperties": scalar,
        "properties": {"binary_data": {"type": "boolean"}},
        "not": {"anyOf": [{"required": [name]} for name in ("classification", *SHARED_MEMORY)]},
    }
    return {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string", "description": "echoed in the response"},
            "parameters": {
                "type": "object",
                "additionalProperties": scalar,
                "properties": {"binary_data_output": {"type": "boolean"}},
                "not": {"anyOf": [{"required": [name]} for name in SHARED_MEMORY]},
            },
            "inputs": {"type": "array", "items": {"anyOf": variants}, "minItems": 1, "maxItems": 1},
            "outputs": {
                "type": "array",
                "maxItems": len(possible),
                "uniqueItems": True,
                "items": {
                    "anyOf": [
                        {
                            "type": "object",
                            "required": ["name"],
                            "properties": {"name": {"const": possible[0]}, "parameters": output_parameters if has_classes(card) else plain_parameters},
                        },
                        *({"type": "object", "required": ["name"], "properties": {"name": {"const": name}, "parameters": plain_parameters}} for name in possible[1:]),
                    ]
                },
            },
        },
    }


def _named_infer_request(card: ModelCard, possible: tuple[str, ...]) -> dict:
    """Every named input once, one example each, in any numeric datatype (converted to the input's own),
    or as BOOL (true and false: 1 and 0)."""
    variants = [
        {
            "type": "object",
            "required": ["name", "shape", "datatype", "data"],
            "properties": {
                "name": {"const": spec.name},
                "shape": _example_shape(spec),
                "datatype": datatypes,
                "data": {"type": "array", "items": items, "minItems": _smallest(spec), "maxItems": spec.size, "description": f"{spec.datatype} values, row-major"},
            },
        }
        for spec in card.inputs
        for datatypes, items in _named_variants(spec)
    ]
    scalar = {"type": ["string", "number", "boolean"]}
    parameters = {
        "type": "object",
        "additionalProperties": scalar,
        "properties": {"binary_data": {"type": "boolean"}},
        "not": {"anyOf": [{"required": [name]} for name in SHARED_MEMORY]},
    }
    outputs = {"type": "object", "required": ["name"], "properties": {"name": {"enum": list(possible)}, "parameters": parameters}}
    return {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string", "description": "echoed in the response"},
            "inputs": {"type": "array", "items": {"anyOf": variants}, "minItems": len(card.inputs), "maxItems": len(card.inputs), "uniqueItems": True},
            "outputs": {"type": "array", "maxItems": len(possible), "uniqueItems": True, "items": outputs},
        },
    }


def _example_shape(spec: TensorSpec) -> dict:
    """One example's shape: [1, *shape], a dynamic dimension (-1) within its bounds."""
    if not spec.dynamic:
        return {"const": [1, *spec.shape]}
    dims = [
        {"const": dim} if dim != DYNAMIC else {"type": "integer", "minimum": least, "maximum": most} for dim, least, most in zip(spec.shape, spec.smallest, spec.bound, strict=True)
    ]
    return {"type": "array", "prefixItems": [{"const": 1}, *dims], "minItems": len(dims) + 1, "maxItems": len(dims) + 1}


def _smallest(spec: TensorSpec) -> int:
    """Values of the smallest example."""
    return math.prod(spec.smallest)


def _named_variants(spec: TensorSpec) -> tuple[tuple[dict, dict], ...]:
    """(datatype, data item) schemas a named input's data may come in: strings for BYTES; else numbers in
    any numeric datatype that the input's own datatype holds (whole ones for an integer or BOOL input,
    within both datatypes' ranges), or BOOL."""
    if spec.datatype == "BYTES":
        return (({"const": "BYTES"}, {"type": "string", "description": f"at most {spec.max_bytes} bytes of UTF-8"}),)
    own = np.dtype(CARD_DATATYPES[spec.datatype])
    by_item: dict[str, list[str]] = {}
    for name, dtype in NUMBER_DATATYPES.items():
        item = held_values(own, dtype)
        by_item.setdefault(orjson.dumps(item, option=orjson.OPT_SORT_KEYS).decode(), []).append(name)
    variants = tuple(({"enum": names}, orjson.loads(item)) for item, names in by_item.items())
    return (*variants, ({"const": "BOOL"}, {"type": "boolean"}))


def _infer_response(model, config: Config) -> dict:
    card, limit = model.card, config.limits.max_batch_images
    possible = model_outputs(config, model.card)
    if card.outputs:
        named = [
            {"properties": {"name": {"const": spec.name}, "datatype": {"const": spec.datatype}, "shape": {"description": f"[examples, {', '.join(map(str, spec.shape))}]"}}}
            for spec in card.outputs
        ]
        return narrowed(
            schemas.V2InferResponse,
            {"properties": {"model_name": {"const": model.name}, "model_version": {"enum": model.versions}, "outputs": {"items": {"anyOf": named}, "maxItems": len(named)}}},
        )
    if has_classes(card):
        answer = {
            "properties": {
                "name": {"const": possible[0]},
                "datatype": {"enum": ["FP32", schemas.V2_CLASSIFICATION]},
                "shape": {
                    "items": {"maximum": max(limit, card.classes)},
                    "minItems": 2,
                    "maxItems": 2,
                    "description": f"[examples, classes] (classes: {card.classes}, or the classification count)",
                },
            }
        }
    else:
        answer = {
            "properties": {"name": {"const": possible[0]}, "datatype": {"const": "FP32"}, "shape": {"description": f"[examples, {', '.join(map(str, card.output.answer_shape))}]"}}
        }
    per_example = [
        {"properties": {"name": {"const": name}, "datatype": {"const": OUTPUT_TENSORS[name]}, "shape": {"items": {"maximum": limit}, "minItems": 1, "maxItems": 1}}}
        for name in possible[1:]
    ]
    return narrowed(
        schemas.V2InferResponse,
        {
            "properties": {
                "model_name": {"const": model.name},
                "model_version": {"enum": model.versions},
                "outputs": {"items": {"anyOf": [answer, *per_example]}, "maxItems": len(possible)},
            }
        },
    )
