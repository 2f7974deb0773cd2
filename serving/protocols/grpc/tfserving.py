"""TensorFlow Serving over gRPC: ``tensorflow.serving.PredictionService`` and ``ModelService``, as
tensorflow-serving-api's stubs call them.

    Predict            inputs {"input": TensorProto} -> outputs {"probabilities": TensorProto (DT_FLOAT)}
    Classify           tf.Example features ("input": a float list of the card's values, or one image file's bytes)
    GetModelMetadata   metadata["signature_def"]: a SignatureDefMap packed in Any, the SavedModel's own
    GetModelStatus     every numbered version, or the one named

A ``model_spec`` names the version as TF Serving does: ``version`` (a number: ``v<n>`` or ``<n>``),
``version_label`` (an alias, a weighted split too, or a version without a number), or neither (the
latest: the highest number that is ready). Answers equal the REST routes' (serving/protocols/tfserving.py);
a full queue is RESOURCE_EXHAUSTED, as TF Serving answers.

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel("localhost:8001"))
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="clothes", version_label="stable"))
    request.inputs["input"].CopyFrom(tf.make_tensor_proto(image))
    stub.Predict(request).outputs["probabilities"]
"""

from __future__ import annotations

import math

import grpc
import numpy as np
from google.protobuf import json_format

from models.card import DATATYPES as CARD_DATATYPES
from models.card import OUTPUT_TENSORS as ANSWER_TENSORS
from models.card import ModelCard
from models.preprocessing import values_from_image
from serving.codecs.tensors import BY_TF_DTYPE, TENSOR_CODECS, shape_of, tensor_from_array, tensor_from_bytes, typed_values
from serving.core import INPUT, OUTPUT, InferenceRequest, Input, Label, Latest, Number, Selector, Tensor, Tensors, check_batch
from serving.dataplane import DataPlane, version_number
from serving.errors import BadRequest, Overloaded, ServingError
from serving.protocols import tfserving as rest
from serving.protocols import well_formed
from serving.protocols.grpc.messages import message, pack_any
from serving.protocols.grpc.server import Call, method

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"
PROTOCOL = "grpc-tfserving"
REMAP: dict[type[ServingError], grpc.StatusCode] = {Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED}
FP16 = TENSOR_CODECS["FP16"]


def selector(spec) -> Selector:
    well_formed("name", spec.name)
    if spec.HasField("version"):
        return Number(spec.version.value)
    if spec.version_label:
        well_formed("version", spec.version_label)
        return Label(spec.version_label)
    return Latest()


def check_signature(name: str) -> None:
    rest.check_signature({"signature_name": name})


def model_spec(name: str, version: str, signature: bool = True):
    spec = message("tensorflow.serving.ModelSpec")(name=name, signature_name=rest.SIGNATURE if signature else "")
    number = version_number(version)
    if number is not None:
        spec.version.value = number
    return spec


# --- tensors ----------------------------------------------------------------------------------------------


def ndarray(tensor, field: str) -> np.ndarray:
    """A TensorProto as an array: its shape checked against its contents before anything is allocated."""
    codec = BY_TF_DTYPE.get(tensor.dtype)
    if codec is None:
        raise BadRequest(f"{field}.dtype: {tensor.dtype} is not accepted; use one of {', '.join(f'DT_{name}' for name in _tf_names())}")
    if tensor.tensor_shape.unknown_rank:
        raise BadRequest(f"{field}.tensor_shape: the rank must be known")
    sizes = [dim.size for dim in tensor.tensor_shape.dim]
    if any(size < 0 for size in sizes):
        raise BadRequest(f"{field}.tensor_shape: sizes must be known (non-negative), got {sizes}")
    shape = shape_of(sizes, f"{field}.tensor_shape")
    if tensor.tensor_content and codec.dtype.kind == "O":
        raise BadRequest(f"{field}: DT_STRING values go in string_val, not tensor_content")
    if tensor.tensor_content:
        return tensor_from_bytes(tensor.tensor_content, shape, codec.dtype, field)
    values = getattr(tensor, codec.tf_contents)
    if len(values) != math.prod(shape):  # TF's one-value fill is not offered: values must fill the shape
        raise BadRequest(f"{field}: shape {list(shape)} needs {math.prod(shape)} values, {len(values)} given in {codec.tf_contents}")
    array = np.asarray(values, dtype=np.uint16).view(np.float16) if codec is FP16 else typed_values(values, codec)
    return tensor_from_array(array, shape, codec.dtype, field)


def _tf_names() -> list[str]:
    names = {1: "FLOAT", 2: "DOUBLE", 3: "INT32", 4: "UINT8", 5: "INT16", 6: "INT8", 7: "STRING", 9: "INT64", 10: "BOOL", 17: "UINT16", 19: "HALF", 22: "UINT32", 23: "UINT64"}
    return [names[dtype] for dtype in BY_TF_DTYPE if dtype in names]


def tensor_proto(array: np.ndarray, datatype: str = "FP32"):
    """An array as a TensorProto of the card's datatype (FP32: DT_FLOAT), its bytes in tensor_content;
    strings (BYTES: DT_STRING) in string_val, as UTF-8."""
    codec = TENSOR_CODECS[datatype]
    if codec.dtype.kind == "O":
        proto = message("tensorflow.TensorProto")(dtype=codec.tf_dtype, string_val=[value.encode() if isinstance(value, str) else value for value in array.flat])
    else:
        proto = message("tensorflow.TensorProto")(dtype=codec.tf_dtype, tensor_content=np.asarray(array, dtype=CARD_DATATYPES[datatype]).tobytes())
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    return proto


# --- methods -------------------------------------------------------------------------------------------------


@method(remap=REMAP)
async def predict(plane: DataPlane, request, call: Call):
    call.model = request.model_spec.name
    check_signature(request.model_spec.signature_name)
    names = sorted(request.inputs)
    shown = ", ".join(repr(name[:64]) for name in names) or "none"
    if not names:
        raise BadRequest(f"inputs: expecting one input, {INPUT!r} (the signature's one input); got {shown}")
    inference = InferenceRequest(
        request.model_spec.name,
        selector(request.model_spec),
        {
            INPUT: Tensors(
                {name: Tensor(ndarray(request.inputs[name], f"inputs[{name[:64]!r}]"), f"inputs[{name[:64]!r}]") for name in names},
                f"inputs: expecting one input, {INPUT!r} (the signature's one input); got {shown}",
            )
        },
        traffic_key=call.traffic_key,
    )
    response = await plane.infer(inference)
    answer = message("tensorflow.serving.PredictResponse")(model_spec=model_spec(request.model_spec.name, response.version))
    card = response.card
    if not card.outputs:
        unknown = [name for name in request.output_filter if name not in ANSWER_TENSORS.values()]
        if unknown:
            raise BadRequest(f"output_filter: {unknown[0][:64]!r} is not an output of the signature; its output is {OUTPUT!r}")
        tensor = card.output.tensor
        if any(name != tensor for name in request.output_filter):
            raise BadRequest(f"output_filter: {card.tag}'s signature has one output, {tensor!r}")
        answer.outputs[tensor].CopyFrom(tensor_proto(response.answers))
        return answer
    names = [spec.name for spec in card.outputs]
    unknown = [name for name in request.output_filter if name not in names]
    if unknown:
        raise BadRequest(f"output_filter: {unknown[0][:64]!r} is not an output of the signature; its outputs are {', '.join(names)}")
    for spec in card.outputs:
        if not request.output_filter or spec.name in request.output_filter:
            answer.outputs[spec.name].CopyFrom(tensor_proto(response.outputs[spec.name], spec.datatype))
    return answer


class Examples(Input):
    """tf.Example features: the input a float or int64 list of the card's values, row-major, or one image file's bytes."""

    def __init__(self, examples: list, context):
        self.examples, self.context = examples, context

    async def values(self, card: ModelCard, max_examples: int) -> np.ndarray:
        if not self.examples:
            raise BadRequest("input: expecting at least one example")
        check_batch(len(self.examples), max_examples, "examples")
        return np.concatenate([self._example(example, card, f"examples[{i}]") for i, example in enumerate(self.examples)])

    def _example(self, example, card: ModelCard, field: str) -> np.ndarray:
        features = example.features.feature
        context = self.context.features.feature if self.context is not None else {}
        if INPUT in features and INPUT in context:
            raise BadRequest(f"{field}: features in 'context' must not appear in examples: {INPUT}")
        if INPUT not in features and INPUT not in context:
            raise BadRequest(f"{field}: feature {INPUT!r} is required but could not be found")
        feature = features[INPUT] if INPUT in features else context[INPUT]
        kind = feature.WhichOneof("kind")
        if kind == "bytes_list":
            if len(feature.bytes_list.value) != 1:
                raise BadRequest(f"{field}.{INPUT}: a bytes feature holds one image file")
            return values_from_image(feature.bytes_list.value[0], card, field=f"{field}.{INPUT}")
        flat = np.asarray(getattr(feature, kind).value if kind else [], dtype=np.float64)
        size = math.prod(card.input.shape)
        if flat.size != size:
            raise BadRequest(f"{field}.{INPUT}: a feature is a flat list; expected {size} values ({'x'.join(map(str, card.input.shape))}, row-major), got {flat.size}")
        return rest.card_values(flat.reshape(1, *card.input.shape), card, f"{field}.{INPUT}")


@method(remap=REMAP)
async def classify(plane: DataPlane, request, call: Call):
    call.model = request.model_spec.name
    check_signature(request.model_spec.signature_name)
    kind = request.input.WhichOneof("kind")
    if kind is None:
        raise BadRequest("input: expecting example_list or example_list_with_context")
    examples = getattr(request.input, kind)
    context = examples.context if kind == "example_list_with_context" else None
    inference = InferenceRequest(
        request.model_spec.name,
        selector(request.model_spec),
        {INPUT: Examples(list(examples.examples), context)},
        traffic_key=call.traffic_key,
    )
    response = await plane.infer(inference)
    Class = message("tensorflow.serving.Class")
    Classifications = message("tensorflow.serving.Classifications")
    result = [Classifications(classes=[Class(label=label, score=float(score)) for label, score in zip(response.card.labels, row, strict=True)]) for row in rest.labelled(response)]
    answer = message("tensorflow.serving.ClassificationResponse")(model_spec=model_spec(request.model_spec.name, response.version))
    answer.result.classifications.extend(result)
    return answer


@method(remap=REMAP)
async def get_model_metadata(plane: DataPlane, request, call: Call):
    call.model = request.model_spec.name
    fields = list(request.metadata_field)
    if fields != ["signature_def"]:
        raise BadRequest(f"metadata_field: expecting ['signature_def'] (the only metadata served), got {fields}")
    view = plane.describe(request.model_spec.name, selector(request.model_spec), available=True)
    signatures = message("tensorflow.serving.SignatureDefMap")()
    json_format.ParseDict(rest.signature_def(view.available_card), signatures.signature_def[rest.SIGNATURE])
    answer = message("tensorflow.serving.GetModelMetadataResponse")(model_spec=model_spec(request.model_spec.name, view.version, signature=False))
    answer.metadata["signature_def"].CopyFrom(pack_any(signatures))
    return answer


@method(remap=REMAP)
async def get_model_status(plane: DataPlane, request, call: Call):
    call.model = request.model_spec.name
    spec = request.model_spec
    well_formed("name", spec.name)
    if spec.HasField("version") or spec.version_label:
        views = [plane.describe(spec.name, selector(spec))]
    else:
        views = plane.numbered_versions(spec.name)
    answer = message("tensorflow.serving.GetModelStatusResponse")()
    for view in views:
        json_format.ParseDict(rest.version_status(view), answer.model_version_status.add())
    return answer


PREDICTION_METHODS = {"Predict": predict, "Classify": classify, "GetModelMetadata": get_model_metadata}
MODEL_METHODS = {"GetModelStatus": get_model_status}
