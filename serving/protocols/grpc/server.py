"""gRPC in the entry process: every gRPC service on one port, over the one data plane.

    GRPCInferenceService   the Open Inference Protocol with Triton's repository extension (v2.py)
    PredictionService      TensorFlow Serving's Predict, Classify, GetModelMetadata (tfserving.py)
    ModelService           TensorFlow Serving's GetModelStatus (tfserving.py)
    Health                 grpc.health.v1, for Kubernetes' gRPC probes (health.py)

Each method is a plain ``async def method(plane, request, call) -> response`` registered with
:func:`method`, which does what every call needs around it, as the REST middleware does for HTTP:
the API token (``authorization: Bearer <token>`` metadata; health checks are open), admin
authorization, the caller's traffic key, errors as gRPC statuses with the message of the one error
hierarchy, the request's id (``x-request-id``, the caller's when well formed) and the answering version in
trailing metadata (``x-model-name``, ``x-model-version``), and
``serving_requests_total`` with the protocol and method. The limits: message size (``limits.max_body_bytes``,
grpc refuses larger ones) and calls in flight (``limits.max_requests_in_flight``, refused at once with
RESOURCE_EXHAUSTED, health checks aside); a graceful stop
lets calls in flight finish (``grpc.grace_seconds``).

    server = await start(plane, config)        # in the entry service's on_startup
    await server.stop(config.grpc.grace_seconds)
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from config import Config
from serving import monitoring, request_ids
from serving.dataplane import CALLER, Caller, DataPlane
from serving.errors import BadRequest, ServingError, Unauthorized, as_serving_error
from serving.protocols.admin import allowed
from serving.protocols.grpc import messages
from serving.request_ids import request_id

log = logging.getLogger(__name__)

# The one error hierarchy's statuses as gRPC status codes (what a client sends never becomes INTERNAL).
STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    405: grpc.StatusCode.UNIMPLEMENTED,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


class TooManyCalls(ServingError):
    """Past ``limits.max_requests_in_flight``: refused at once, as HTTP's 503, rather than queued."""

    status = 429  # RESOURCE_EXHAUSTED


Method = Callable[[DataPlane, Any, "Call"], Awaitable[Any]]


@dataclasses.dataclass
class Call:
    """What a method may know of its call besides the request message."""

    metadata: dict[str, str]
    traffic_key: str | None = None  # the caller's key (live.traffic_key_header, lower-case, as metadata): a split answers it with one version
    model: str | None = None  # the model the request names, for the metrics


@dataclasses.dataclass(frozen=True)
class Registered:
    function: Method
    open: bool = False  # no API token needed (health checks)
    admin: bool = False  # changes what is served: admin authorization too
    remap: dict[type[ServingError], grpc.StatusCode] = dataclasses.field(default_factory=dict)  # this protocol's own codes


def method(open: bool = False, admin: bool = False, remap: dict[type[ServingError], grpc.StatusCode] | None = None):
    """Register an adapter method; ``remap`` gives some errors (and their subclasses) another code in this protocol."""

    def register(function: Method) -> Registered:
        return Registered(function, open, admin, remap or {})

    return register


class Services:
    """The registered methods of every service, bound to a data plane and a configuration."""

    def __init__(self, plane: DataPlane, config: Config):
        self.plane, self.config = plane, config
        self.token = config.security.api_token.encode() if config.security.api_token else None
        self.key_header = config.live.traffic_key_header.lower()
        self.label_header, self.slice_header = config.feedback.label_header.lower(), config.feedback.slice_header.lower()
        self.in_flight = 0  # calls being answered now, health checks aside
        self.max_in_flight = config.limits.max_requests_in_flight

    def handler(self, service: str, protocol: str, methods: dict[str, Registered]) -> grpc.GenericRpcHandler:
        return messages.handler(service, {name: self._wrap(protocol, name, registered) for name, registered in methods.items()})

    def _wrap(self, protocol: str, name: str, registered: Registered):
        async def serve(request, context: grpc.aio.ServicerContext):
            metadata = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
            call = Call(metadata, metadata.get(self.key_header))
            current = Caller(
                key=call.traffic_key, request_id=request_id(metadata.get(request_ids.METADATA)), truth=metadata.get(self.label_header), slice=metadata.get(self.slice_header)
            )
            CALLER.set(current)
            code = grpc.StatusCode.OK
            counted = not registered.open
            self.in_flight += counted
            try:
                if counted and self.in_flight > self.max_in_flight:
                    raise TooManyCalls(f"{self.in_flight - 1} calls in flight, the limit (limits.max_requests_in_flight); retry shortly")
                if not registered.open:
                    self._authenticate(metadata)
                if registered.admin:
                    allowed(self.config)
                if isinstance(request, messages.Malformed):
                    raise BadRequest(request.message)
                response = await registered.function(self.plane, request, call)
            except Exception as exc:
                error = as_serving_error(exc)
                if not isinstance(exc, ServingError) and error.status >= 500:
                    log.exception("unexpected error in gRPC %s/%s", protocol, name)
                code = next((registered.remap[cls] for cls in type(error).__mro__ if cls in registered.remap), None)
                code = code or STATUS_CODES.get(error.status, grpc.StatusCode.INTERNAL)
                self._answered(context, current, error.headers)
                self._count(call, current, protocol, name, code)
                await context.abort(code, error.message)
            finally:
                self.in_flight -= counted
            self._answered(context, current, {})
            self._count(call, current, protocol, name, code)
            return response

        return serve

    def _authenticate(self, metadata: dict[str, str]) -> None:
        if self.token is None:
            return
        scheme, _, credentials = metadata.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise Unauthorized("missing API token; send the metadata authorization: Bearer <token>")
        if not hmac.compare_digest(credentials.strip().encode(), self.token):
            raise Unauthorized("invalid API token")

    @staticmethod
    def _answered(context: grpc.aio.ServicerContext, current: Caller, headers: dict[str, str]) -> None:
        trailing = [(name.lower(), value) for name, value in headers.items()] + [(request_ids.METADATA, current.request_id or "")]
        if current.answered is not None:
            trailing += [("x-model-name", current.answered.name), ("x-model-version", current.answered.version)]
        context.set_trailing_metadata(trailing)

    def _count(self, call: Call, current: Caller, protocol: str, name: str, code: grpc.StatusCode) -> None:
        answered = current.answered.version if current.answered else None
        model, version = self.plane.metric_labels(call.model, answered)
        monitoring.record_request(model, version, protocol, name, code.name)


async def start(plane: DataPlane, config: Config) -> grpc.aio.Server:
    """Every gRPC service, listening on ``grpc.host:grpc.port``; several entry workers share the port."""
    from serving.protocols.grpc import health, tfserving, v2

    workers = int(config.entry.get("workers", 1) or 1)
    options = [
        ("grpc.max_receive_message_length", config.limits.max_body_bytes),
        ("grpc.so_reuseport", 1 if workers > 1 else 0),  # one port for every worker; a second server on it fails to start
    ]
    server = grpc.aio.server(options=options)  # its maximum_concurrent_rpcs queues calls past the limit: Services refuses them instead
    services = Services(plane, config)
    server.add_generic_rpc_handlers(
        [
            services.handler(v2.SERVICE, v2.PROTOCOL, v2.METHODS),
            services.handler(tfserving.PREDICTION_SERVICE, tfserving.PROTOCOL, tfserving.PREDICTION_METHODS),
            services.handler(tfserving.MODEL_SERVICE, tfserving.PROTOCOL, tfserving.MODEL_METHODS),
            services.handler(health.SERVICE, health.PROTOCOL, health.METHODS),
        ]
    )
    address = f"{config.grpc.host}:{config.grpc.port}"
    server.add_insecure_port(address)  # raises when the port is taken
    await server.start()
    log.info("gRPC listening on %s", address)
    return server
