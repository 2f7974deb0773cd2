"""Prometheus's scrape: ``GET /metrics``, every process's metrics of this server in one text exposition.

BentoML's own ``/metrics`` comes with its HTTP metrics middleware, which labels requests by their raw
path: every distinct path a client sends adds series to every scrape, for ever (50 random paths added
1,000 lines). The entry turns it off (``entry.metrics.enabled: false``) and serves the same
exposition here; requests are counted by serving/monitoring.py under bounded labels.

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
    return Reply(await asyncio.to_thread(client.generate_latest), content_type=client.CONTENT_TYPE_LATEST)


def routes(config: Config) -> list[Route]:
    return [Route(METRICS_PATH, {"GET": metrics}, PROTOCOL)]
