"""The protocols the entry service speaks: each module is a table of routes over the one data plane.

A :class:`Route` maps a path template and its methods to handlers ``handler(plane, request,
**params) -> Reply``; :class:`ProtocolRoutes` answers every route of the tables ahead of BentoML's
router (the front door, serving/frontdoor.py, hands it what matches), renders errors as
``{"error": "..."}`` with their status (405s with ``Allow``), and counts every request in
``/metrics`` with its protocol, endpoint and duration. Any other path goes on to BentoML's app.

BentoML's own API routes are POST-only, and every request through them pays for its router,
request context and schema handling; these routes are the hot path, so they are matched here, with
responses serialised by orjson.

    >>> router = Router([*course.routes(config), ...])
    >>> routes = ProtocolRoutes(router, plane=lambda: plane)
    >>> await routes.answer(scope, receive, send, *router.match(scope["path"]), body=b"...")
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import bentoml
import orjson
from starlette.requests import Request

from models.card import NAME_PATTERN
from serving import monitoring, request_ids
from serving.dataplane import CALLER, Caller
from serving.deadlines import Deadlines
from serving.errors import GatewayTimeout, MethodNotAllowed, NotFound, ServingError, as_serving_error, error_body
from serving.request_ids import request_id

log = logging.getLogger(__name__)
JSON = "application/json"
NAME_PARAMETERS = ("name", "version")  # checked against NAME_PATTERN before any lookup


@dataclasses.dataclass(frozen=True)
class Reply:
    body: bytes
    status: int = 200
    content_type: str = JSON
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


def json_reply(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY), status, JSON, headers or {})


Handler = Callable[..., Awaitable[Reply]]


def documented(describe: Callable):
    """Attach a handler's OpenAPI description: ``describe(served model or None, config) -> operation``
    (serving/openapi.py builds the published document from the route tables)."""

    def attach(handler: Handler) -> Handler:
        handler.openapi = describe  # type: ignore[attr-defined]  # a function attribute, read by serving/openapi.py
        return handler

    return attach


@dataclasses.dataclass(frozen=True)
class Route:
    path: str  # a template: /models/{name}/{version}
    methods: dict[str, Handler]  # "GET": handler, "POST": handler; HEAD follows GET
    protocol: str  # the metrics label
    params: dict[str, str] = dataclasses.field(default_factory=dict)  # fixed parameters (a route bound to one model)

    @property
    def allowed(self) -> list[str]:
        methods = set(self.methods) | ({"HEAD"} if "GET" in self.methods else set())
        return sorted(methods)

    def handler(self, method: str) -> Handler:
        handler = self.methods.get("GET" if method == "HEAD" else method)
        if handler is None:
            raise MethodNotAllowed(method, self.allowed)
        return handler


def _pattern(template: str) -> re.Pattern:
    """``/v1/models/{name}:predict`` -> a regex; parameters never span '/' or ':'; a trailing '/' is optional."""
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/:]+)" for i, part in enumerate(parts))
    return re.compile(f"^{regex}/?$")


class Router:
    """Path -> route by table lookup: a path without parameters is one dict lookup; others are tried only
    among the templates of the same number of segments and first segment (a few, not all 40), in table
    order, so the first template that matches wins as in a scan."""

    def __init__(self, routes: list[Route]):
        self.routes = [(_pattern(route.path), route) for route in routes]
        self.exact: dict[str, Route] = {}
        self.buckets: dict[tuple[int, str], list[tuple[int, re.Pattern, Route]]] = {}
        for index, (pattern, route) in enumerate(self.routes):
            count, first = _shape(route.path)
            if "{" not in route.path:
                shadowed = any(earlier.match(route.path) for earlier, _ in self.routes[:index])
                if not shadowed:
                    self.exact.setdefault(route.path.rstrip("/") or "/", route)
                    continue
            self.buckets.setdefault((count, "{" if "{" in first else first), []).append((index, pattern, route))

    def match(self, path: str) -> tuple[Route, dict[str, str]] | None:
        route = self.exact.get(path.rstrip("/") or "/")
        if route is not None:
            return route, dict(route.params)
        count, first = _shape(path)
        candidates = self.buckets.get((count, first), [])
        wildcards = self.buckets.get((count, "{"))
        for _, pattern, candidate in sorted(candidates + wildcards) if wildcards else candidates:
            found = pattern.match(path)
            if found:
                return candidate, {**candidate.params, **found.groupdict()}
        return None


def _shape(path: str) -> tuple[int, str]:
    """(number of segments, first segment) of a path or template; a trailing '/' is not a segment."""
    segments = path.strip("/").split("/")
    return len(segments), segments[0]


def current_plane():
    """The data plane of the entry service this worker runs (``ModelServer.plane``)."""
    return bentoml.get_current_service().plane


REQUEST_ID_HEADER = request_ids.HEADER.lower().encode()


class ProtocolRoutes:
    """The routes of ``router`` answered over a data plane (by default the entry service's; in-process
    tests pass their own). The front door (serving/frontdoor.py) hands it the requests it matched,
    their bodies read.

    Every request gets a :class:`~serving.dataplane.Caller` with its traffic key (the header named by
    ``traffic_key_header``), its id (``X-Request-Id``, kept when well formed: serving/request_ids.py), and
    its own ground truth and slice when it carries them (``feedback.label_header``, ``feedback.slice_header``);
    every answer carries the id, and an answer a version gave says which in ``X-Model-Version`` (and
    ``X-Model-Name``), whatever the protocol.
    """

    def __init__(
        self,
        router: Router,
        plane: Callable[[], Any] = current_plane,
        traffic_key_header: str = "X-Traffic-Key",
        timeout: float | None = None,
        label_header: str = "X-Label",
        slice_header: str = "X-Slice",
    ):
        self.router = router
        self.timeout = timeout  # seconds a request may take (entry.traffic.timeout): then 504
        self.deadlines = Deadlines()  # the front door's body deadlines too
        self._plane = plane
        self._resolved = None  # the plane, once found: one per worker, for its life
        self.key_header = traffic_key_header.lower().encode()
        self.label_header, self.slice_header = label_header.lower().encode(), slice_header.lower().encode()

    def plane(self):
        if self._resolved is None:
            self._resolved = self._plane()
        return self._resolved

    async def answer(self, scope, receive, send, route: Route, params: dict[str, str], body: bytes | None, started: float | None = None) -> None:
        """``body``: read already (None: not read, as for a GET); ``started``: when the request came in (``time.perf_counter``)."""
        started = started or time.perf_counter()
        plane = self.plane()
        handler = None
        task = self.deadlines.set(started + self.timeout) if self.timeout else None
        key = given = truth = slice_name = None
        for name, value in scope["headers"]:
            if name == self.key_header:
                key = value.decode("latin-1")
            elif name == REQUEST_ID_HEADER:
                given = value.decode("latin-1")
            elif name == self.label_header:
                truth = value.decode("latin-1")
            elif name == self.slice_header:
                slice_name = value.decode("latin-1")
        rid = request_id(given)
        current = Caller(key=key, request_id=rid, truth=truth, slice=slice_name)
        CALLER.set(current)
        try:
            handler = route.handler(scope["method"])
            for name in NAME_PARAMETERS:
                well_formed(name, params.get(name))
            request = Request(scope, receive)
            if body is not None:
                request._body = body  # read by the front door; Starlette's body(), stream() and form() use it
            reply = await handler(plane, request, **params)
        except asyncio.CancelledError:
            if task is None or not self.deadlines.expired(task):
                raise
            reply = error_reply(GatewayTimeout(f"not answered within {self.timeout:g} s (entry.traffic.timeout)"), scope)
        except Exception as exc:
            reply = error_reply(exc, scope)
        finally:
            if task is not None:
                self.deadlines.clear(task)
        reply.headers[request_ids.HEADER] = rid
        if current.answered is not None:
            reply.headers.update({"X-Model-Name": current.answered.name, "X-Model-Version": current.answered.version})
        model, version = plane.metric_labels(params.get("name"), current.answered.version if current.answered else params.get("version"))
        endpoint = handler.__name__ if handler else "method_not_allowed"
        # Counted before it is sent: a client reading /metrics right after its answer sees it counted.
        monitoring.record_request(model, version, route.protocol, endpoint, reply.status, time.perf_counter() - started)
        await send_reply(send, reply, head=scope["method"] == "HEAD")


def well_formed(kind: str, name: str | None) -> None:
    """404 for a name no model or version can have, before any lookup, without echoing it (it may be a
    path, control characters or kilobytes)."""
    if name is not None and not NAME_PATTERN.fullmatch(name):
        raise NotFound(f"no such {'model' if kind == 'name' else kind}: names are 1 to 63 characters of a-z, 0-9, '.', '_', '-', starting and ending with a letter or digit")


def error_reply(exc: Exception, scope) -> Reply:
    error = as_serving_error(exc)
    if not isinstance(exc, ServingError) and error.status >= 500:
        log.exception("unexpected error on %s %s", scope["method"], scope["path"])
    return Reply(error_body(error.message), error.status, JSON, dict(error.headers))


async def send_reply(send, reply: Reply, head: bool = False) -> None:
    headers = {"content-type": reply.content_type, **reply.headers, "content-length": str(len(reply.body))}
    await send({"type": "http.response.start", "status": reply.status, "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]})
    await send({"type": "http.response.body", "body": b"" if head else reply.body})
