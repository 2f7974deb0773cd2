"""The course's routes: URL-versioned models, plus Project 3's grader routes when configured.

    GET  /models                              models with their versions and aliases
    GET  /models/{name}                       versions with status and aliases
    GET  /models/{name}/{version}             model info: the card (version or alias)
    POST /models/{name}/{version}             classify: JSON example(s), an image file, raw or .npy batches
    GET  /models/{name}/{version}/report      the evaluation report stored with the model (HTML)
    GET  /models/{name}/{version}/drift       drift of recent traffic against the training reference

Project 3's grader routes, answered by the model and version ``course.project3`` names (off without it):

    GET  /summary                             the model info of that version
    POST /inference                           classify: {"prediction": "<label>", ...}, the bodies of POST /models/...
"""

from __future__ import annotations

from starlette.requests import Request

from config import Config
from serving.codecs import Body
from serving.core import INPUT, InferenceRequest, Named
from serving.dataplane import DataPlane
from serving.pipelines import STEP_OUTPUT
from serving.protocols import Reply, Route, json_reply
from serving.schemas import named_prediction_body, prediction_body

PROTOCOL = "course"
HTML = "text/html; charset=utf-8"


async def list_models(plane: DataPlane, request: Request) -> Reply:
    return json_reply(plane.list_models())


async def list_versions(plane: DataPlane, request: Request, name: str) -> Reply:
    return json_reply(plane.list_versions(name))


async def model_info(plane: DataPlane, request: Request, name: str, version: str) -> Reply:
    return json_reply(plane.model_info(name, version))


async def classify(plane: DataPlane, request: Request, name: str, version: str) -> dict:
    """The prediction body for whatever body the request holds (its content type picks the codec)."""
    response = await plane.infer(InferenceRequest(name, Named(version), {INPUT: await Body.of(request)}))
    if response.card.outputs:
        return named_prediction_body(response.card, response.outputs)
    return prediction_body(response.card, response.answers, response.ood_scores, response.abstained, response.outputs.get(STEP_OUTPUT))


async def predict(plane: DataPlane, request: Request, name: str, version: str) -> Reply:
    return json_reply(await classify(plane, request, name, version))


async def summary(plane: DataPlane, request: Request, name: str, version: str) -> Reply:
    return json_reply(plane.model_info(name, version))


async def inference(plane: DataPlane, request: Request, name: str, version: str) -> Reply:
    """The prediction body with ``prediction``: the label when one example was sent, else their list
    (the course's grader reads ``response.json()["prediction"]``)."""
    body = await classify(plane, request, name, version)
    if body["predictions"] is None:  # an embedding or a tensor: its values are the answer
        return json_reply(body)
    readings = [reading(p) for p in body["predictions"]]
    return json_reply({"prediction": readings[0] if len(readings) == 1 else readings, **body})


def reading(prediction: dict):
    """One example's answer in a word: its label; a regressor's value (its values by target, for several); a tagger's labels."""
    if "values" in prediction:
        values = prediction["values"]
        return next(iter(values.values())) if len(values) == 1 else values
    return prediction["labels"] if "labels" in prediction else prediction["label"]


async def report(plane: DataPlane, request: Request, name: str, version: str) -> Reply:
    return Reply(plane.report(name, version), content_type=HTML)


async def drift(plane: DataPlane, request: Request, name: str, version: str) -> Reply:
    # On the event loop, as the window's updates are: a report reads the window whole (7 ms for a window of 1,000; 42 ms for a regressor of 64 inputs).
    return json_reply(plane.drift(name, version))


def routes(config: Config) -> list[Route]:
    table = [
        Route("/models", {"GET": list_models}, PROTOCOL),
        Route("/models/{name}", {"GET": list_versions}, PROTOCOL),
        Route("/models/{name}/{version}", {"GET": model_info, "POST": predict}, PROTOCOL),
        Route("/models/{name}/{version}/report", {"GET": report}, PROTOCOL),
        Route("/models/{name}/{version}/drift", {"GET": drift}, PROTOCOL),
    ]
    project3 = config.course.project3
    if project3 is not None:
        bound = {"name": project3.model, "version": project3.version}
        table += [Route("/summary", {"GET": summary}, PROTOCOL, bound), Route("/inference", {"POST": inference}, PROTOCOL, bound)]
    return table
