"""The one app factory: every protocol's route table and the middleware in one declared order.

``service.py`` installs it on the BentoML entry service; the in-process tests wrap a stand-in app
with the same function, so what they test is what serves.

    >>> router = make_router(config)
    >>> for middleware, options in middleware_stack(config, router, service=ModelServer):
    ...     ModelServer.add_asgi_middleware(middleware, **options)
    >>> app = build(not_found, config, plane=lambda: plane)              # in-process, with a data plane of its own
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from config import Config
from serving.frontdoor import FrontDoor
from serving.middleware import BodyLimit, ClientErrorsLogged, ErrorEnvelope, TypedContentTypes, TypedFormFields, cors
from serving.openapi import OpenAPIDocument
from serving.paths import SPEC_PATH
from serving.process import is_arbiter
from serving.protocols import ProtocolRoutes, Router, admin, course, current_plane, feedback, page, prometheus, repository, tfserving, v2

# The REST protocols, each a route table over the one data plane (serving/protocols/), and Prometheus's scrape.
PROTOCOLS = (admin, feedback, repository, course, page, tfserving, v2, prometheus)
# BentoML's own routes, counted by path in /metrics (any other path not ours: "other").
BENTOML_PATHS = frozenset({"/docs", SPEC_PATH, "/schema.json", "/livez", "/readyz", "/healthz"})


def make_router(config: Config) -> Router:
    return Router([route for protocol in PROTOCOLS for route in protocol.routes(config)])


def middleware_stack(config: Config, router: Router, service=None, plane: Callable[[], Any] = current_plane) -> list[tuple[Callable, dict]]:
    """The middleware, outermost first: CORS (when on), the front door (shedding, the token, the protocol
    routes), then what only the other routes pay for. With a BentoML ``service``: its typed APIs'
    guards and the OpenAPI document too."""
    routes = ProtocolRoutes(
        router,
        plane=plane,
        traffic_key_header=config.live.traffic_key_header,
        timeout=config.request_timeout(),
        label_header=config.feedback.label_header,
        slice_header=config.feedback.slice_header,
    )
    known = BENTOML_PATHS | ({api.route for api in service.apis.values()} if service is not None else set())
    limits = config.limits
    stack: list[tuple[Callable, dict]] = [
        (cors, {}),
        (FrontDoor, {"routes": routes, "limits": limits, "security": config.security, "known_paths": frozenset(known)}),
        (ErrorEnvelope, {}),
        (BodyLimit, {"max_bytes": limits.max_body_bytes, "max_seconds": limits.body_timeout_seconds}),
    ]
    if service is not None:
        apis = service.apis.values()
        stack += [
            (TypedContentTypes, {"accepted": {api.route: api.input_spec.mime_type() for api in apis}}),
            (TypedFormFields, {"file_fields": {api.route: frozenset(api.input_spec.multipart_fields) for api in apis if api.input_spec.multipart_fields}}),
            (OpenAPIDocument, {"service": service, "config": config, "router": router}),
        ]
    return stack


def install(service, config: Config) -> Router:
    """Put the stack on a BentoML service (BentoML hands the list to Starlette in order: the first added is
    the outermost), the front door before BentoML's own layers."""
    router = make_router(config)
    for middleware, options in middleware_stack(config, router, service=service):
        service.add_asgi_middleware(middleware, **options)
    if not is_arbiter():  # it builds no app: BentoML's app module (150 ms of imports) would only slow its start
        front_door_first(OUTERMOST)
    logging.getLogger(ClientErrorsLogged.LOGGER).addFilter(ClientErrorsLogged())
    return router


OUTERMOST = (cors, FrontDoor)


def front_door_first(outermost: tuple) -> None:
    """Put ``outermost`` (CORS and the front door) before the layers BentoML adds to every request.

    BentoML puts its OpenTelemetry and timeout middleware ahead of a service's and has no setting to
    drop them (``traffic.timeout`` must be positive): per request a task, a future, a timer and a URL
    check (docs/benchmarks.md). The protocol routes need neither: the front door answers them, with
    their deadline (``ProtocolRoutes.timeout``); every other path still goes through both.
    """
    from _bentoml_impl.server.app import ServiceAppFactory

    built = ServiceAppFactory.middlewares
    if getattr(built.fget, "outermost", None) == outermost:
        return

    def middlewares(factory) -> list:
        stack = built.fget(factory)
        return [m for m in stack if m.cls in outermost] + [m for m in stack if m.cls not in outermost]

    middlewares.outermost = outermost  # type: ignore[attr-defined]
    ServiceAppFactory.middlewares = property(middlewares)


def build(app, config: Config, plane: Callable[[], Any] = current_plane, router: Router | None = None):
    """``app`` wrapped in the stack, as an ASGI app (the in-process tests; no BentoML service)."""
    for middleware, options in reversed(middleware_stack(config, router or make_router(config), plane=plane)):
        app = middleware(app, **options)
    return app
