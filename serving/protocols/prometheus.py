"""Prometheus's scrape: ``GET /metrics``, every process's metrics of this server in one text exposition.

BentoML's own ``/metrics`` comes with its HTTP metrics middleware, which labels requests by their raw
path: every distinct path a client sends adds series to every scrape, for ever (50 random paths added
1,000 lines). The entry turns it off (``entry.metrics.enabled: false``) and serves the same
exposition here; requests are counted by serving/monitoring.py under bounded labels. Every sample
carries the replica's name (``replica``, state.replica): a fleet's series stay apart.

    curl localhost:3000/metrics
"""

from __future__ import annotations

import asyncio

from bentoml._internal.configuration.containers import BentoMLContainer
from starlette.requests import Request

from config import Config
from serving.dataplane import DataPlane
from serving.openapi import ok_response, operation
from serving.paths import METRICS_PATH
from serving.protocols import Reply, Route, documented

PROTOCOL = "prometheus"


def _describe(model, config: Config) -> dict:
    responses = {200: ok_response({"type": "string"}, "text/plain")}
    return {**operation("metrics", "Prometheus metrics of every process of this server (text exposition).", responses), "tags": ["Infrastructure"]}


@documented(_describe)
async def metrics(plane: DataPlane, request: Request) -> Reply:
    client = BentoMLContainer.metrics_client.get()  # reads every worker's files (multiprocess mode): off the event loop
    exposition = await asyncio.to_thread(client.generate_latest)
    if plane.fleet is not None:
        exposition = with_label(exposition, "replica", plane.fleet.replica)
    return Reply(exposition, content_type=client.CONTENT_TYPE_LATEST)


def with_label(exposition: bytes, name: str, value: str) -> bytes:
    """Every sample of a text exposition with one label more (the replica's name: a fleet's series stay
    apart however they are scraped); comments and blank lines as they were. ``value`` needs no escaping
    (state.replica's pattern)."""
    label = f'{name}="{value}"'.encode()
    lines = []
    for line in exposition.split(b"\n"):
        if not line or line.startswith(b"#"):
            lines.append(line)
            continue
        brace, space = line.find(b"{"), line.find(b" ")
        if brace != -1 and (space == -1 or brace < space):
            separator = b"" if line[brace + 1 : brace + 2] == b"}" else b","
            lines.append(line[: brace + 1] + label + separator + line[brace + 1 :])
        else:
            lines.append(line[:space] + b"{" + label + b"}" + line[space:])
    return b"\n".join(lines)


def routes(config: Config) -> list[Route]:
    return [Route(METRICS_PATH, {"GET": metrics}, PROTOCOL)]
