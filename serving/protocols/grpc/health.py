"""``grpc.health.v1.Health``: what Kubernetes' gRPC probes and grpc_health_probe call.

``Check`` with service "" (the server) or any of this port's services answers SERVING once the
server is ready (``/readyz``'s rule), else NOT_SERVING; an unknown service is NOT_FOUND. Open without
the API token, as the HTTP health checks are.

    grpc_health_probe -addr=localhost:8001
"""

from __future__ import annotations

from serving.dataplane import DataPlane
from serving.errors import NotFound
from serving.protocols.grpc.messages import message
from serving.protocols.grpc.server import Call, method

SERVICE = "grpc.health.v1.Health"
PROTOCOL = "grpc-health"
SERVICES = ("", "inference.GRPCInferenceService", "tensorflow.serving.PredictionService", "tensorflow.serving.ModelService", SERVICE)


@method(open=True)
async def check(plane: DataPlane, request, call: Call):
    if request.service not in SERVICES:
        raise NotFound(f"unknown service {request.service[:128]!r}; this port serves {', '.join(s for s in SERVICES if s)}")
    Response = message("grpc.health.v1.HealthCheckResponse")
    return Response(status=Response.SERVING if plane.ready() else Response.NOT_SERVING)


METHODS = {"Check": check}
