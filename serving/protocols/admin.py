"""Admin routes: traffic, shadows, promotions and the fleet of a running server (serving/fleet/ does the work).

    PUT    /models/{name}/aliases/{alias}     {"version": "v2"}, or a split: {"weights": {"v1": 90, "v2": 10}}
    GET    /models/{name}/shadow              the shadow setting and what the candidate did so far
    PUT    /models/{name}/shadow              {"alias": "stable", "candidate": "v2", "share": 0.1}
    DELETE /models/{name}/shadow              stop shadowing
    POST   /models/{name}/promote             {"version": "v2"}: the promoted alias (promotion.alias) serves it, recorded
    POST   /models/{name}/rollback            the promoted alias serves what it served before its last promotion
    POST   /models/{name}/rollouts            {"alias": "stable", "candidate": "v2", "steps": [5, 25, 50, 100], ...}: a rollout
    GET    /models/{name}/rollouts            every alias's last rollout, with each step and decision
    POST   /models/{name}/rollouts/{alias}/pause|resume|abort
    GET    /fleet                             the desired state, and what each replica serves

Every change is written to the desired state that every replica follows, and answers with the
generation it made. A client that sends ``If-Match: <generation>`` gets 409 (with the current
generation) when the state has moved on since; without it, concurrent changes are applied one after
the other, none lost.

Loading and unloading are the Open Inference Protocol's repository extension (serving/protocols/v2.py).
Every route here but the shadow summary changes what the server serves: with an API token configured
they need it (as every route does); without one they are off (403) unless ``live.admin_without_token``
says otherwise, since anyone who reaches the port could then move traffic.

    curl -X PUT localhost:3000/models/clothes/aliases/stable -H 'content-type: application/json' -d '{"weights": {"v1": 90, "v2": 10}}'
"""

from __future__ import annotations

import orjson
from pydantic import ValidationError
from starlette.requests import Request

from config import Config
from serving import schemas
from serving.dataplane import DataPlane
from serving.errors import BadRequest, Forbidden, NotFound
from serving.openapi import error_responses, ok_response, operation, ref
from serving.protocols import Reply, Route, documented, json_reply

PROTOCOL = "admin"
VERSION = {"type": "string", "pattern": r"^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$"}
SHADOW = {
    "type": "object",
    "required": ["alias", "candidate", "share"],
    "properties": {"alias": VERSION, "candidate": VERSION, "share": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}},
}


def _body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _describe_alias(model, config):
    parameter = {"name": "alias", "in": "path", "required": True, "schema": VERSION}
    body = _body(
        {
            "oneOf": [
                {"type": "object", "required": ["version"], "properties": {"version": VERSION}},
                {
                    "type": "object",
                    "required": ["weights"],
                    "properties": {"weights": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 100}}},
                },
            ]
        }
    )
    return operation(
        f"set_alias_{model.name}",
        f"Point an alias of {model.name} at a serving version, or split it by weights (admin).",
        {200: ok_response(ref(schemas.AliasAnswer)), **error_responses(400, 403, 404, 409)},
        parameters=[parameter],
        requestBody=body,
    )


def _describe_shadow_summary(model, config):
    return operation(
        f"shadow_{model.name}", f"The shadow of {model.name}: its setting, agreement, latency, errors.", {200: ok_response(ref(schemas.ShadowSummary)), **error_responses(404)}
    )


def _describe_set_shadow(model, config):
    return operation(
        f"set_shadow_{model.name}",
        f"Send a share of an alias's requests of {model.name} to a candidate too (admin).",
        {200: ok_response(ref(schemas.ShadowAnswer)), **error_responses(400, 403, 404, 409)},
        requestBody=_body(SHADOW),
    )


def _describe_stop_shadow(model, config):
    return operation(f"stop_shadow_{model.name}", f"Stop shadowing {model.name} (admin).", {200: ok_response(ref(schemas.ShadowAnswer)), **error_responses(403, 404)})


def _describe_promote(model, config):
    body = _body({"type": "object", "required": ["version"], "properties": {"version": VERSION}})
    return operation(
        f"promote_{model.name}",
        f"Make a serving version what {model.name}'s promoted alias serves, recorded for a rollback (admin).",
        {200: ok_response(ref(schemas.PromotionAnswer)), **error_responses(400, 403, 404, 409)},
        requestBody=body,
    )


def _describe_rollback(model, config):
    return operation(
        f"rollback_{model.name}",
        f"Give {model.name}'s promoted alias back what it served before its last promotion (admin).",
        {200: ok_response(ref(schemas.PromotionAnswer)), **error_responses(403, 404, 409)},
    )


def _describe_fleet(model, config):
    return {
        **operation("fleet", "The desired state, and what each replica serves, with its health and drift.", {200: ok_response(ref(schemas.FleetStatus)), **error_responses(503)}),
        "tags": ["Infrastructure"],
    }


def _describe_start_rollout(model, config):
    return operation(
        f"start_rollout_{model.name}",
        f"Start moving an alias of {model.name} to a candidate step by step while its gates hold (admin).",
        {200: ok_response(ref(schemas.RolloutAnswer)), **error_responses(400, 403, 404, 409)},
        requestBody={"required": True, "content": {"application/json": {"schema": ref(schemas.RolloutPlan)}}},
    )


def _describe_rollouts(model, config):
    return operation(
        f"rollouts_{model.name}",
        f"Every alias's last rollout of {model.name}: steps, gates and each decision.",
        {200: ok_response(ref(schemas.RolloutList)), **error_responses(404)},
    )


def _describe_rollout_action(model, config):
    parameters = [
        {"name": "alias", "in": "path", "required": True, "schema": VERSION},
        {"name": "action", "in": "path", "required": True, "schema": {"type": "string", "enum": list(ROLLOUT_ACTIONS)}},
    ]
    return operation(
        f"rollout_action_{model.name}",
        f"Pause, resume or abort a rollout of {model.name} (abort: the alias serves its baseline again; admin).",
        {200: ok_response(ref(schemas.RolloutAnswer)), **error_responses(403, 404, 409)},
        parameters=parameters,
    )


ROLLOUT_ACTIONS = ("pause", "resume", "abort")


def based_on(request: Request) -> int | None:
    """The generation a change is based on, from ``If-Match`` (an ETag, quoted or not), or None."""
    header = request.headers.get("if-match")
    if header is None:
        return None
    value = header.strip().removeprefix("W/").strip('"')
    if not value.isdigit() or len(value) > 18:
        raise BadRequest(f"If-Match: expected a generation of the desired state (a number), got {header!r}")
    return int(value)


def allowed(config: Config) -> None:
    """Admin operations: with a token (the middleware checked it), or where the configuration turns them on."""
    if not (config.security.api_token or config.live.admin_without_token):
        raise Forbidden("admin operations are off: configure an API token (security.api_token_env), or set live.admin_without_token")


async def json_body(request: Request) -> dict:
    try:
        body = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"invalid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("expected a JSON object")
    return body


@documented(_describe_alias)
async def set_alias(plane: DataPlane, request: Request, name: str, alias: str) -> Reply:
    allowed(plane.config)
    body = await json_body(request)
    if "version" in body and isinstance(body["version"], str):
        target = body["version"]
    elif isinstance(body.get("weights"), dict) and all(isinstance(w, int) and not isinstance(w, bool) and 0 <= w <= 100 for w in body["weights"].values()):
        target = body["weights"]
    else:
        raise BadRequest('expected {"version": "<version>"} or {"weights": {"<version>": <0..100>, ...}}')
    return json_reply(await plane.set_alias(name, alias, target, based_on=based_on(request)))


@documented(_describe_shadow_summary)
async def get_shadow(plane: DataPlane, request: Request, name: str) -> Reply:
    return json_reply(plane.shadow_summary(name))


@documented(_describe_set_shadow)
async def set_shadow(plane: DataPlane, request: Request, name: str) -> Reply:
    allowed(plane.config)
    body = await json_body(request)
    alias, candidate, share = body.get("alias"), body.get("candidate"), body.get("share")
    if not isinstance(alias, str) or not isinstance(candidate, str) or not isinstance(share, (int, float)) or isinstance(share, bool):
        raise BadRequest('expected {"alias": "<alias>", "candidate": "<version>", "share": <0..1>}')
    return json_reply(await plane.set_shadow(name, {"alias": alias, "candidate": candidate, "share": float(share)}, based_on=based_on(request)))


@documented(_describe_stop_shadow)
async def stop_shadow(plane: DataPlane, request: Request, name: str) -> Reply:
    allowed(plane.config)
    return json_reply(await plane.set_shadow(name, None, based_on=based_on(request)))


@documented(_describe_promote)
async def promote(plane: DataPlane, request: Request, name: str) -> Reply:
    allowed(plane.config)
    version = (await json_body(request)).get("version")
    if not isinstance(version, str):
        raise BadRequest('expected {"version": "<version>"}')
    return json_reply(await plane.promote(name, version, based_on=based_on(request)))


@documented(_describe_rollback)
async def rollback(plane: DataPlane, request: Request, name: str) -> Reply:
    allowed(plane.config)
    return json_reply(await plane.rollback(name, based_on=based_on(request)))


@documented(_describe_start_rollout)
async def start_rollout(plane: DataPlane, request: Request, name: str) -> Reply:
    allowed(plane.config)
    try:
        plan = schemas.RolloutPlan.model_validate(await json_body(request))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5])
        raise BadRequest(f'expected {{"candidate": "<version>", "alias"?, "steps"?, "min_dwell_seconds"?, "min_requests"?, "gates"?}}: {problems}') from None
    return json_reply(await plane.start_rollout(name, plan.model_dump(), based_on=based_on(request)))


@documented(_describe_rollouts)
async def get_rollouts(plane: DataPlane, request: Request, name: str) -> Reply:
    answer = await plane.rollouts(name)
    try:
        allowed(plane.config)
        answer["admin"] = {"allowed": True, "reason": None}
    except Forbidden as exc:
        answer["admin"] = {"allowed": False, "reason": exc.message}
    return json_reply(answer)


@documented(_describe_rollout_action)
async def rollout_action(plane: DataPlane, request: Request, name: str, alias: str, action: str) -> Reply:
    allowed(plane.config)
    if action not in ROLLOUT_ACTIONS:
        raise NotFound(f"no rollout action {action[:32]!r}: {', '.join(ROLLOUT_ACTIONS)}")
    return json_reply(await plane.rollout_action(name, alias, action, based_on=based_on(request)))


@documented(_describe_fleet)
async def fleet(plane: DataPlane, request: Request) -> Reply:
    return json_reply(await plane.fleet_status())


def routes(config: Config) -> list[Route]:
    return [
        Route("/models/{name}/aliases/{alias}", {"PUT": set_alias}, PROTOCOL),
        Route("/models/{name}/shadow", {"GET": get_shadow, "PUT": set_shadow, "DELETE": stop_shadow}, PROTOCOL),
        Route("/models/{name}/promote", {"POST": promote}, PROTOCOL),
        Route("/models/{name}/rollback", {"POST": rollback}, PROTOCOL),
        Route("/models/{name}/rollouts", {"GET": get_rollouts, "POST": start_rollout}, PROTOCOL),
        Route("/models/{name}/rollouts/{alias}/{action}", {"POST": rollout_action}, PROTOCOL),
        Route("/fleet", {"GET": fleet}, PROTOCOL),
    ]
