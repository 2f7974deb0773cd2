"""Ground truth and live accuracy (serving/feedback.py joins; lifecycle/outcomes.py computes).

    POST /models/{name}/feedback              {"feedback": [{"id": "<X-Request-Id>", "label": "Sneaker"}, ...]}
    GET  /models/{name}/{version}/live        live accuracy of a version (or alias): per class, alias and
                                              slice, calibration and a time series, with 95% intervals

A request may also carry its own ground truth, ``X-Label: Sneaker`` (one label per example,
comma-separated; gRPC metadata ``x-label``), so that a labelled set replayed through the server is an
evaluation stream. Feedback changes no serving, so it needs what predictions need: the API token when
one is configured.

    curl -X POST localhost:3000/models/clothes/feedback -H 'content-type: application/json' \\
         -d '{"feedback": [{"id": "3f2a...", "label": "Sneaker"}, {"id": "order-7", "labels": [3, 7]}]}'
"""

from __future__ import annotations

import orjson
from pydantic import ValidationError
from starlette.requests import Request

from config import Config
from serving import schemas
from serving.dataplane import DataPlane
from serving.errors import BadRequest
from serving.openapi import error_responses, ok_response, operation, ref
from serving.protocols import Reply, Route, documented, json_reply

PROTOCOL = "feedback"


def _describe_feedback(model, config):
    body = {"required": True, "content": {"application/json": {"schema": ref(schemas.FeedbackRequest)}}}
    return operation(
        f"feedback_{model.name}",
        f"Tell the server the true {'values' if _regressor(model) else 'labels'} of requests {model.name} answered, by request id: live {'error' if _regressor(model) else 'accuracy'} joins them.",
        {200: ok_response(ref(schemas.FeedbackAnswer)), **error_responses(400, 404, 413)},
        requestBody=body,
    )


def _regressor(model) -> bool:
    return model.card is not None and model.card.output.kind == "regression"


def _describe_live(model, config):
    if _regressor(model):
        return operation(
            f"live_{model.name}",
            f"Live error (MAE, RMSE) of a version of {model.name} from the feedback joined so far, beside its held-out error.",
            {200: ok_response(ref(schemas.RegressionLiveReport)), **error_responses(400, 404, 503)},
        )
    return operation(
        f"live_{model.name}",
        f"Live accuracy of a version of {model.name} from the feedback joined so far, beside its held-out accuracy.",
        {200: ok_response(ref(schemas.LiveReport)), **error_responses(400, 404, 503)},
    )


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5])


@documented(_describe_feedback)
async def feedback(plane: DataPlane, request: Request, name: str) -> Reply:
    try:
        body = schemas.FeedbackRequest.model_validate(orjson.loads(await request.body() or b"null"))
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"invalid JSON: {exc}") from None
    except ValidationError as exc:
        raise BadRequest(
            f'expected {{"feedback": [{{"id": "<request id>", "label": <label> or "labels": [...] (a regressor: "value" or "values")}}, ...]}}: {_problems(exc)}'
        ) from None
    return json_reply(await plane.feedback(name, [item.model_dump() for item in body.feedback]))


@documented(_describe_live)
async def live(plane: DataPlane, request: Request, name: str, version: str) -> Reply:
    return json_reply(await plane.live_accuracy(name, version))


def routes(config: Config) -> list[Route]:
    return [
        Route("/models/{name}/feedback", {"POST": feedback}, PROTOCOL),
        Route("/models/{name}/{version}/live", {"GET": live}, PROTOCOL),
    ]
