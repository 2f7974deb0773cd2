"""The Open Inference Protocol over gRPC: ``inference.GRPCInferenceService``, as tritonclient.grpc calls it.

    ServerLive, ServerReady, ServerMetadata           the server
    ModelReady, ModelMetadata                         a model's version (its name, an alias, or the default)
    ModelInfer                                        inference: typed contents or raw_input_contents in,
                                                      raw_output_contents out (classification parameter too)
    RepositoryIndex, RepositoryModelLoad/Unload       Triton's repository extension (load and unload: admin)

The answers are those of the REST routes (serving/protocols/v2.py), from the same data plane; the
answering version is ``model_version`` and trailing metadata ``x-model-version``.

    client = tritonclient.grpc.InferenceServerClient("localhost:8001")
    tensor = tritonclient.grpc.InferInput("input", [1, 28, 28, 1], "UINT8")
    tensor.set_data_from_numpy(image)
    client.infer("clothes", [tensor], model_version="stable").as_numpy("probabilities")
"""

from __future__ import annotations

import math

import bentoml
import numpy as np

from models.card import DATATYPES as CARD_DATATYPES
from serving.codecs.tensors import codec_of, raw_tensor, shape_of, tensor_from_array, tensor_from_bytes, typed_values
from serving.core import INPUT, OUTPUT, Default, InferenceRequest, Named, Selector, Tensor, Tensors, VersionState
from serving.dataplane import DataPlane
from serving.errors import BadRequest
from serving.protocols import v2 as rest
from serving.protocols import well_formed
from serving.protocols.grpc.messages import message
from serving.protocols.grpc.server import Call, method

SERVICE = "inference.GRPCInferenceService"
PROTOCOL = "grpc-v2"


def selector(name: str, version: str) -> Selector:
    well_formed("name", name)
    if version:
        well_formed("version", version)
        return Named(version)
    return Default()


@method(open=True)
async def server_live(plane: DataPlane, request, call: Call):
    return message("inference.ServerLiveResponse")(live=True)


@method(open=True)
async def server_ready(plane: DataPlane, request, call: Call):
    return message("inference.ServerReadyResponse")(ready=plane.ready())


@method()
async def server_metadata(plane: DataPlane, request, call: Call):
    return message("inference.ServerMetadataResponse")(name=rest.SERVER_NAME, version=bentoml.__version__, extensions=rest.EXTENSIONS)


@method()
async def model_ready(plane: DataPlane, request, call: Call):
    call.model = request.name
    view = plane.describe(request.name, selector(request.name, request.version))
    return message("inference.ModelReadyResponse")(ready=view.state is VersionState.READY)


@method()
async def model_metadata(plane: DataPlane, request, call: Call):
    call.model = request.name
    view = plane.describe(request.name, selector(request.name, request.version), available=True)
    card = view.available_card
    Tensor_ = message("inference.ModelMetadataResponse.TensorMetadata")
    return message("inference.ModelMetadataResponse")(
        name=request.name,
        versions=plane.versions(request.name),
        platform=view.engine or "keras",
        inputs=[Tensor_(**entry) for entry in rest.input_metadata(card)],
        outputs=[Tensor_(**rest.output_metadata(name, card)) for name in view.outputs],
    )


@method()
async def model_infer(plane: DataPlane, request, call: Call):
    call.model = request.model_name
    if not request.inputs:
        raise BadRequest(f"inputs: expecting one input, {INPUT!r} (got none)")
    if request.raw_input_contents and len(request.raw_input_contents) != len(request.inputs):
        raise BadRequest(f"raw_input_contents: {len(request.raw_input_contents)} given for {len(request.inputs)} inputs")
    named: dict[str, Tensor] = {}
    for index, item in enumerate(request.inputs):
        if item.name in named:
            raise BadRequest(f"inputs[{index}]: {item.name[:64]!r} is given twice")
        named[item.name] = Tensor(input_array(request, index), f"inputs[{index}]")
    requested = requested_outputs(request)
    shown = next(iter(named))[:64]
    one_input = (
        f"inputs: expecting one input, {INPUT!r} (got {len(named)})"
        if len(named) > 1
        else f"inputs: unexpected input {shown!r} for model {request.model_name}; its input is {INPUT!r}"
    )
    inference = InferenceRequest(
        request.model_name,
        selector(request.model_name, request.model_version),
        {INPUT: Tensors(named, one_input)},
        outputs=tuple(name for name, _ in requested) or None,
        traffic_key=call.traffic_key,
        id=request.id or None,
    )
    response = await plane.infer(inference)
    Output = message("inference.ModelInferResponse.InferOutputTensor")
    outputs, raws = [], []
    for name, classes in requested or [(name, 0) for name in response.outputs]:
        if classes:
            if not rest.has_classes(response.card):
                raise BadRequest(f"parameters.classification: {response.card.tag} answers {response.card.task}, not classes")
            tensor, datatype = rest.classifications(response.answers, min(classes, response.card.classes), response.card), "BYTES"
            raw = raw_tensor(tensor, "BYTES")
        else:
            datatype = rest.output_datatype(name, response.card)
            tensor = np.asarray(response.outputs[name], dtype=CARD_DATATYPES[datatype])
            raw = raw_tensor(tensor, datatype)
        outputs.append(Output(name=name, datatype=datatype, shape=list(tensor.shape)))
        raws.append(raw)
    return message("inference.ModelInferResponse")(model_name=request.model_name, model_version=response.version, id=response.id or "", outputs=outputs, raw_output_contents=raws)


def input_array(request, index: int) -> np.ndarray:
    """Input ``index`` of a request as an array of its declared datatype, from its raw contents or its typed contents."""
    item, field = request.inputs[index], f"inputs[{index}]"
    shared = [name for name in rest.SHARED_MEMORY if name in item.parameters]
    if shared:
        raise BadRequest(f"{field}.parameters: {shared[0]}: shared memory is not supported; send the data in the request")
    shape = shape_of(list(item.shape), f"{field}.shape")
    codec = codec_of(item.datatype, f"{field}.datatype")
    if request.raw_input_contents:
        if item.HasField("contents"):
            raise BadRequest(f"{field}: both contents and raw_input_contents given; send one")
        return tensor_from_bytes(request.raw_input_contents[index], shape, codec.dtype, field)
    values = getattr(item.contents, codec.v2_contents)
    if len(values) != math.prod(shape):  # checked before any conversion: the shape may claim 2**40 elements
        raise BadRequest(f"{field}: shape {list(shape)} needs {math.prod(shape)} values, {len(values)} given in contents.{codec.v2_contents}")
    return tensor_from_array(typed_values(values, codec), shape, codec.dtype, f"{field}.contents")


def requested_outputs(request) -> list[tuple[str, int]]:
    """The outputs asked for, each with the classification extension's class count (0: the values); none: every output."""
    requested: list[tuple[str, int]] = []
    for index, output in enumerate(request.outputs):
        field = f"outputs[{index}]"
        if not output.name:
            raise BadRequest(f"{field}: an output needs its name")
        if any(name == output.name for name, _ in requested):
            raise BadRequest(f"{field}: {output.name} is asked for twice")
        parameter = output.parameters.get("classification")
        classes = 0
        if parameter is not None:
            if output.name != OUTPUT:
                raise BadRequest(f"{field}.parameters.classification: only {OUTPUT} has classes")
            if parameter.WhichOneof("parameter_choice") not in ("int64_param", "uint64_param") or getattr(parameter, parameter.WhichOneof("parameter_choice")) < 0:
                raise BadRequest(f"{field}.parameters.classification: expecting a number of classes")
            classes = int(getattr(parameter, parameter.WhichOneof("parameter_choice")))
        requested.append((output.name, classes))
    return requested


@method()
async def repository_index(plane: DataPlane, request, call: Call):
    Index = message("inference.RepositoryIndexResponse.ModelIndex")
    rows = [Index(name=row["name"], version=row["version"], state=rest.index_state(row), reason=row["reason"] or "") for row in plane.index()]
    return message("inference.RepositoryIndexResponse")(models=[row for row in rows if row.state == "READY" or not request.ready])


def _parameter(request, name: str, kind: str):
    parameter = request.parameters.get(name)
    if parameter is None:
        return None
    if parameter.WhichOneof("parameter_choice") != kind:
        raise BadRequest(f"parameters.{name}: expecting a {'string' if kind == 'string_param' else 'boolean'}")
    return getattr(parameter, kind)


@method(admin=True)
async def repository_model_load(plane: DataPlane, request, call: Call):
    call.model = request.model_name
    well_formed("name", request.model_name)
    await plane.load(request.model_name, _parameter(request, "version", "string_param"))
    return message("inference.RepositoryModelLoadResponse")()


@method(admin=True)
async def repository_model_unload(plane: DataPlane, request, call: Call):
    call.model = request.model_name
    well_formed("name", request.model_name)
    version = _parameter(request, "version", "string_param")
    if version is None:
        raise BadRequest("parameters.version: name the version to unload (a string parameter 'version')")
    await plane.unload(request.model_name, version, force=bool(_parameter(request, "force", "bool_param")))
    return message("inference.RepositoryModelUnloadResponse")()


METHODS = {
    "ServerLive": server_live,
    "ServerReady": server_ready,
    "ServerMetadata": server_metadata,
    "ModelReady": model_ready,
    "ModelMetadata": model_metadata,
    "ModelInfer": model_infer,
    "RepositoryIndex": repository_index,
    "RepositoryModelLoad": repository_model_load,
    "RepositoryModelUnload": repository_model_unload,
}
