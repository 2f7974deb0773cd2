"""The front door: what every request to the entry meets first, in one ASGI layer.

1. Shedding: past ``limits.max_requests_in_flight`` requests in this worker, 503 with Retry-After
   at once (health checks and ``/metrics`` are never shed, so probes see an overloaded replica as
   alive and ready). BentoML's own ``traffic.max_concurrency`` refuses with a 429 without
   Retry-After, outside the service's middleware.
2. The API token (serving/auth.py), when one is configured.
3. A protocol route (serving/protocols/): its body read whole, bounded in size (413) and time
   (408), then answered over the data plane and counted in ``/metrics``.
4. Anything else (BentoML's typed APIs, its docs and health checks) goes on through the inner
   stack (serving/app.py: the error envelope, the body limit, the typed APIs' guards), counted under
   bounded labels: its route, or "other".

Every answer carries the request's id, ``X-Request-Id`` (serving/request_ids.py).

One layer, because each ASGI layer costs every request a call and a wrapped ``send``, and the
protocol routes are the hot path (docs/benchmarks.md: the hot path, measured).

    app = FrontDoor(inner, routes=ProtocolRoutes(router), limits=config.limits, security=config.security)
"""

from __future__ import annotations

import asyncio
import time

from config import Limits, Security
from serving import monitoring
from serving.auth import TokenCheck
from serving.dataplane import CALLER, Caller
from serving.errors import Overloaded, RequestTimeout, ServingError
from serving.middleware import CLOSE, read_body
from serving.paths import INFRASTRUCTURE_PATHS
from serving.protocols import REQUEST_ID_HEADER, ProtocolRoutes
from serving.request_ids import request_id

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OTHER = "other"  # the endpoint label of a path no route has: clients cannot grow the label set
UNKNOWN = "unknown"


class FrontDoor:
    EXEMPT = INFRASTRUCTURE_PATHS  # never shed

    def __init__(self, app, routes: ProtocolRoutes, limits: Limits, security: Security, known_paths: frozenset[str] = frozenset()):
        self.app = app
        self.routes = routes
        self.max_requests = limits.max_requests_in_flight
        self.max_body_bytes = limits.max_body_bytes
        self.body_seconds = limits.body_timeout_seconds
        self.token = TokenCheck(security)
        self.known_paths = known_paths | INFRASTRUCTURE_PATHS  # the inner stack's routes, counted by path
        self.in_flight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            refusal = self.token.refusal(scope)
            return await (refusal or self.app)(scope, receive, send)
        started = time.perf_counter()
        exempt = scope["path"] in self.EXEMPT
        if not exempt and self.in_flight >= self.max_requests:
            refusal = Overloaded(f"overloaded: {self.in_flight} requests in flight, the limit of this server", retry_after=1)
            return await refusal.to_response()(scope, receive, send)
        self.in_flight += 1
        try:
            refusal = self.token.refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return monitoring.record_request(UNKNOWN, UNKNOWN, "auth", "refused", 401)
            found = self.routes.router.match(scope["path"])
            if found is None:
                return await self._inner(scope, receive, send, started)
            body = None
            if scope["method"] in BODY_METHODS:
                try:
                    body = await self._read_body(scope, receive, started)
                except ServingError as exc:
                    await exc.to_response()(scope, receive, send)
                    return monitoring.record_request(UNKNOWN, UNKNOWN, found[0].protocol, "refused", exc.status)
            await self.routes.answer(scope, receive, send, *found, body=body, started=started)
        finally:
            self.in_flight -= 1

    async def _read_body(self, scope, receive, started: float) -> bytes:
        deadlines = self.routes.deadlines
        task = deadlines.set(started + self.body_seconds)
        try:
            return await read_body(scope, receive, self.max_body_bytes)
        except asyncio.CancelledError:
            if not deadlines.expired(task):
                raise
            raise RequestTimeout(f"body not received within {self.body_seconds:g} seconds", CLOSE) from None
        finally:
            deadlines.clear(task)

    async def _inner(self, scope, receive, send, started: float) -> None:
        status = 500
        given = next((value.decode("latin-1") for name, value in scope["headers"] if name == REQUEST_ID_HEADER), None)
        rid = request_id(given)
        CALLER.set(Caller(request_id=rid))  # BentoML's typed APIs reach the data plane with it

        async def noting_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        finally:
            endpoint = scope["path"] if scope["path"] in self.known_paths else OTHER
            monitoring.record_request(UNKNOWN, UNKNOWN, "bentoml", endpoint, status, time.perf_counter() - started)
