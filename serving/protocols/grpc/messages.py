"""gRPC message classes and services from the committed descriptor set, kept in a private descriptor pool.

``protos/descriptors.binpb`` (protos/README.md) holds Triton's ``inference`` package (the Open Inference
Protocol's ``GRPCInferenceService`` and Triton's repository extensions), TensorFlow Serving's
``tensorflow.serving`` APIs with the TensorFlow protos they use, and ``grpc.health.v1``. It is loaded
into a private ``DescriptorPool``, not the default one where tritonclient.grpc and
tensorflow_serving.apis register their own copies of the same names, so those packages can be imported
beside this module in either order. Nothing here imports TensorFlow.

    import grpc
    from serving.protocols.grpc import messages

    ServerLiveResponse = messages.message("inference.ServerLiveResponse")

    async def server_live(request, context):
        return ServerLiveResponse(live=True)

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [messages.handler(messages.service("inference.GRPCInferenceService"), {"ServerLive": server_live})]
    )
    server.add_insecure_port("127.0.0.1:8001")
    await server.start()
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message

DESCRIPTORS = Path(__file__).with_name("protos") / "descriptors.binpb"
TYPE_URL_PREFIX = "type.googleapis.com/"

# The grpc method handler factory for each (client streaming, server streaming).
_METHOD_HANDLERS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


@functools.cache
def pool() -> descriptor_pool.DescriptorPool:
    """The private pool holding every file of descriptors.binpb (loaded once)."""
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTORS.read_bytes())
    private = descriptor_pool.DescriptorPool()
    for file in files.file:  # dependencies come first
        private.Add(file)
    return private


@functools.cache
def message(full_name: str) -> type[Message]:
    """The message class of this full name, e.g. ``message("inference.ModelInferRequest")``."""
    return message_factory.GetMessageClass(pool().FindMessageTypeByName(full_name))


def service(full_name: str) -> ServiceDescriptor:
    """The service of this full name, e.g. ``service("tensorflow.serving.PredictionService")``."""
    return pool().FindServiceByName(full_name)


def handler(descriptor: ServiceDescriptor | str, functions: Mapping[str, Callable]) -> grpc.GenericRpcHandler:
    """A generic handler serving these (async) functions, keyed by method name, as methods of this service.

    Requests are parsed and responses serialized with this module's classes; methods left out answer
    UNIMPLEMENTED. A name that is not a method of the service raises ``KeyError``.
    """
    if isinstance(descriptor, str):
        descriptor = service(descriptor)
    unknown = sorted(set(functions) - set(descriptor.methods_by_name))
    if unknown:
        raise KeyError(f"not methods of {descriptor.full_name}: {', '.join(unknown)}")
    handlers = {}
    for name, function in functions.items():
        method = descriptor.methods_by_name[name]
        make = _METHOD_HANDLERS[(method.client_streaming, method.server_streaming)]
        handlers[name] = make(
            function,
            request_deserializer=_lenient(message(method.input_type.full_name)),
            response_serializer=message(method.output_type.full_name).SerializeToString,
        )
    return grpc.method_handlers_generic_handler(descriptor.full_name, handlers)


class Malformed:
    """A request whose bytes do not parse as its message: handed to the method, which answers INVALID_ARGUMENT
    (a deserializer that raises makes grpc answer UNKNOWN)."""

    def __init__(self, type_name: str, error: Exception):
        self.message = f"request: not a valid {type_name} message ({error})"


def _lenient(cls: type[Message]) -> Callable[[bytes], Message | Malformed]:
    def parse(data: bytes) -> Message | Malformed:
        try:
            return cls.FromString(data)
        except DecodeError as exc:
            return Malformed(cls.DESCRIPTOR.full_name, exc)

    return parse


def pack_any(msg: Message) -> Message:
    """A ``google.protobuf.Any`` (this pool's class) holding this message, type URL ``type.googleapis.com/<full name>``."""
    return message("google.protobuf.Any")(type_url=TYPE_URL_PREFIX + msg.DESCRIPTOR.full_name, value=msg.SerializeToString(deterministic=True))
