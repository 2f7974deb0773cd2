"""A real grpc.aio server on loopback, its services built with messages.handler, answering the stock
clients: grpcio-health-checking's Health stub and tritonclient.grpc's InferenceServerClient. Run once on
asyncio's default event loop and once on uvloop's, the loop uvicorn runs BentoML's services on."""

from __future__ import annotations

import asyncio

import grpc
import pytest
import tritonclient.grpc
import uvloop
from grpc_health.v1 import health_pb2, health_pb2_grpc

from serving.protocols.grpc import messages


async def check(request, context):
    return messages.message("grpc.health.v1.HealthCheckResponse")(status="SERVING")


async def server_live(request, context):
    return messages.message("inference.ServerLiveResponse")(live=True)


async def serve_and_call() -> tuple[int, bool]:
    """Start the server on an ephemeral loopback port, call it with both stock clients, stop it."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [
            messages.handler("grpc.health.v1.Health", {"Check": check}),
            messages.handler("inference.GRPCInferenceService", {"ServerLive": server_live}),
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)

        def live() -> bool:  # tritonclient.grpc's client blocks: run it off the server's loop
            client = tritonclient.grpc.InferenceServerClient(f"127.0.0.1:{port}")
            try:
                return client.is_server_live(client_timeout=10)
            finally:
                client.close()

        return health.status, await asyncio.to_thread(live)
    finally:
        await server.stop(None)


@pytest.mark.parametrize("loop_factory", [None, uvloop.new_event_loop], ids=["asyncio", "uvloop"])
def test_stock_clients_call_the_server(loop_factory):
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        if loop_factory is not None:
            assert isinstance(runner.get_loop(), uvloop.Loop)
        status, live = runner.run(serve_and_call())
    assert status == health_pb2.HealthCheckResponse.SERVING
    assert live is True
