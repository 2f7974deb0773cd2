"""The Open Inference Protocol's model repository extension: load and unload versions while serving.

    POST /v2/repository/models/{name}/load      {"parameters": {"version": "v3"}}   (default: the newest stored version not served)
    POST /v2/repository/models/{name}/unload    {"parameters": {"version": "v1", "force": false}}

A load answers once the version serves (every worker of its runner has loaded it and answered its
warm-up); one that fails answers 400 with the reason, and everything that served still serves. An
unload takes the version out of the routing, lets it finish its requests, then empties its runner;
the last version an alias serves needs ``force`` (409 otherwise). Both are admin operations
(serving/protocols/admin.py says when they are allowed). ``POST /v2/repository/index`` lists every
version with its state (serving/protocols/v2.py).

    curl -X POST localhost:3000/v2/repository/models/clothes/load -d '{"parameters": {"version": "v3"}}'
"""

from __future__ import annotations

from starlette.requests import Request

from config import Config
from serving import schemas
from serving.dataplane import DataPlane
from serving.errors import BadRequest
from serving.openapi import error_responses, ok_response, operation, ref
from serving.protocols import Reply, Route, documented, json_reply
from serving.protocols.admin import allowed, based_on, json_body

PROTOCOL = "v2"
PARAMETERS = {
    "type": "object",
    "properties": {
        "parameters": {
            "type": "object",
            "properties": {"version": {"type": "string", "pattern": r"^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$"}, "force": {"type": "boolean"}},
        }
    },
}


def _describe(action: str, summary: str, statuses: tuple[int, ...]):
    answer = schemas.LoadAnswer if action == "load" else schemas.UnloadAnswer

    def describe(model, config):
        return operation(
            f"repository_{action}_{model.name}",
            summary,
            {200: ok_response(ref(answer)), **error_responses(*statuses)},
            requestBody={"required": False, "content": {"application/json": {"schema": PARAMETERS}}},
        )

    return describe


async def parameters(request: Request) -> dict:
    body = await json_body(request)
    found = body.get("parameters", {})
    if not isinstance(found, dict):
        raise BadRequest("parameters: expected an object")
    if "version" in found and not isinstance(found["version"], str):
        raise BadRequest("parameters.version: expected a version name")
    if "force" in found and not isinstance(found["force"], bool):
        raise BadRequest("parameters.force: expected true or false")
    return found


@documented(_describe("load", "Load a stored version while serving; answers once it serves (admin).", (400, 403, 404, 409)))
async def load(plane: DataPlane, request: Request, name: str) -> Reply:
    allowed(plane.config)
    found = await parameters(request)
    return json_reply(await plane.load(name, found.get("version"), based_on=based_on(request)))


@documented(_describe("unload", "Unload a version: it finishes its requests, then its runner is emptied (admin).", (400, 403, 404, 409)))
async def unload(plane: DataPlane, request: Request, name: str) -> Reply:
    allowed(plane.config)
    found = await parameters(request)
    if "version" not in found:
        raise BadRequest("parameters.version: name the version to unload")
    return json_reply(await plane.unload(name, found["version"], force=found.get("force", False), based_on=based_on(request)))


def routes(config: Config) -> list[Route]:
    return [
        Route("/v2/repository/models/{name}/load", {"POST": load}, PROTOCOL),
        Route("/v2/repository/models/{name}/unload", {"POST": unload}, PROTOCOL),
    ]
