"""The routes answer byte for byte as they did before the protocol-neutral core (issue 18's redesign).

``golden.json`` beside this file was recorded from the code before the redesign (commit 14cbac54) with
``python -m tests.unit.serving.test_regression --record``: every protocol's routes (course, Project 3,
TF Serving REST, Open Inference Protocol v2, admin, page) over the in-process data plane with fake
runners, successes and one error of each kind. Each request is sent again here; status, body bytes
and the headers a client reads must be the same.
"""

from __future__ import annotations

import base64
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from tests.unit.serving.conftest import encoded, served_models

GOLDEN = Path(__file__).with_name("golden.json")
HEADERS = ("content-type", "x-model-name", "x-model-version", "retry-after", "allow", "inference-header-content-length", "www-authenticate")


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def multipart(field: str, data: bytes, extra: dict | None = None) -> tuple[bytes, str]:
    boundary = "regressionboundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="x.png"\r\nContent-Type: image/png\r\n\r\n'.encode() + data + b"\r\n"]
    for name, value in (extra or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def binary_v2(array: np.ndarray, datatype: str, outputs: list | None = None) -> tuple[bytes, dict]:
    header = {"inputs": [{"name": "input", "shape": list(array.shape), "datatype": datatype, "parameters": {"binary_data_size": array.nbytes}}]}
    if outputs is not None:
        header["outputs"] = outputs
    text = json.dumps(header).encode()
    return text + array.tobytes(), {"Inference-Header-Content-Length": str(len(text))}


GREY = np.full((28, 28), 30).tolist()
GREY_31 = np.full((28, 28), 31).tolist()
COLOUR = np.full((32, 32, 3), 1).tolist()
VECTOR = [1.5, -2, 7, 300]
PNG_GREY = encoded(np.full((28, 28), 200))
PNG_COLOUR = encoded(np.full((40, 30, 3), 7))
JSON = {"content-type": "application/json"}


def corpus() -> list[dict]:
    """(name, method, path, body bytes, headers): one entry per request."""
    cases: list[dict] = []

    def add(name, method, path, body=b"", headers=None):
        cases.append({"name": name, "method": method, "path": path, "body": body, "headers": headers or {}})

    def js(value) -> bytes:
        return json.dumps(value).encode()

    # course routes
    add("list models", "GET", "/models")
    add("list versions", "GET", "/models/grey")
    add("model info", "GET", "/models/grey/v1")
    add("model info by alias", "GET", "/models/grey/stable")
    add("model info missing", "GET", "/models/grey/v3")
    add("unknown model", "GET", "/models/nope/v1")
    add("unknown version", "GET", "/models/grey/v9")
    add("malformed name", "GET", "/models/Grey!/v1")
    add("predict json", "POST", "/models/grey/v1", js({"image": GREY}), JSON)
    add("predict json alias", "POST", "/models/grey/stable", js({"image": GREY_31}), JSON)
    add("predict batch", "POST", "/models/grey/v2", js({"images": [GREY, GREY_31]}), JSON)
    add("predict png", "POST", "/models/grey/v1", *reversed_ct(multipart("image", PNG_GREY)))
    add("predict png invert false", "POST", "/models/grey/v1?invert=false", *reversed_ct(multipart("image", PNG_GREY)))
    add("predict raw", "POST", "/models/grey/v1", np.full((2, 28, 28, 1), 31, np.uint8).tobytes(), {"content-type": "application/octet-stream"})
    add("predict npy", "POST", "/models/grey/v1", npy(np.full((3, 28, 28), 30.0, np.float32)), {"content-type": "application/x-npy"})
    add("predict colour sigmoid", "POST", "/models/colour/v1", js({"image": COLOUR}), JSON)
    add("predict vector", "POST", "/models/vector/v1", js({"input": VECTOR}), JSON)
    add("predict vector batch", "POST", "/models/vector/v1", js({"inputs": [VECTOR, [0, 0, 0, 0]]}), JSON)
    add("predict wrong shape", "POST", "/models/grey/v1", js({"image": [[1, 2], [3, 4]]}), JSON)
    add("predict out of range", "POST", "/models/grey/v1", js({"image": np.full((28, 28), 300).tolist()}), JSON)
    add("predict nan", "POST", "/models/grey/v1", b'{"image": [[NaN]]}', JSON)
    add("predict booleans", "POST", "/models/vector/v1", js({"input": [True, 1, 2, 3]}), JSON)
    add("predict invalid json", "POST", "/models/grey/v1", b"{nope", JSON)
    add("predict empty", "POST", "/models/grey/v1", b"", JSON)
    add("predict missing field", "POST", "/models/grey/v1", js({"picture": GREY}), JSON)
    add("predict 415", "POST", "/models/grey/v1", b"x", {"content-type": "text/csv"})
    add("predict vector raw 415", "POST", "/models/vector/v1", b"xxxx", {"content-type": "application/octet-stream"})
    add("predict too many", "POST", "/models/grey/v1", js({"images": [GREY] * 9}), JSON)
    add("predict missing version", "POST", "/models/grey/v3", js({"image": GREY}), JSON)
    add("predict not an image", "POST", "/models/grey/v1", *reversed_ct(multipart("image", b"not an image")))
    add("predict bad invert", "POST", "/models/grey/v1?invert=maybe", js({"image": GREY}), JSON)
    add("method not allowed", "DELETE", "/models/grey/v1")
    add("report missing", "GET", "/models/grey/v1/report")
    add("drift", "GET", "/models/grey/v1/drift")
    add("summary", "GET", "/summary")
    add("inference", "POST", "/inference", *reversed_ct(multipart("image", PNG_COLOUR)))
    add("inference batch", "POST", "/inference", js({"images": [COLOUR, COLOUR]}), JSON)
    # TensorFlow Serving REST
    add("tfs status", "GET", "/v1/models/grey")
    add("tfs status number", "GET", "/v1/models/grey/versions/2")
    add("tfs status label", "GET", "/v1/models/grey/labels/stable")
    add("tfs status unknown number", "GET", "/v1/models/grey/versions/7")
    add("tfs status unknown label", "GET", "/v1/models/grey/labels/nope")
    add("tfs status unnumbered", "GET", "/v1/models/vector/labels/stable")
    add("tfs metadata", "GET", "/v1/models/grey/versions/1/metadata")
    add("tfs metadata latest", "GET", "/v1/models/colour/metadata")
    add("tfs predict rows", "POST", "/v1/models/grey/versions/1:predict", js({"instances": [GREY, GREY_31]}))
    add("tfs predict named rows", "POST", "/v1/models/grey/labels/stable:predict", js({"instances": [{"input": GREY}]}))
    add("tfs predict columns", "POST", "/v1/models/grey:predict", js({"inputs": [GREY]}))
    add("tfs predict named columns", "POST", "/v1/models/grey:predict", js({"inputs": {"input": [GREY_31]}}))
    add("tfs predict b64", "POST", "/v1/models/colour:predict", js({"instances": [{"b64": base64.b64encode(PNG_COLOUR).decode()}]}))
    add("tfs predict b64 columns", "POST", "/v1/models/colour:predict", js({"inputs": {"b64": base64.b64encode(PNG_COLOUR).decode()}}))
    add("tfs predict vector", "POST", "/v1/models/vector:predict", js({"instances": [VECTOR]}))
    add("tfs predict both keys", "POST", "/v1/models/grey:predict", js({"instances": [GREY], "inputs": [GREY]}))
    add("tfs predict no key", "POST", "/v1/models/grey:predict", js({"signature_name": "serving_default"}))
    add("tfs predict bad signature", "POST", "/v1/models/grey:predict", js({"signature_name": "other", "instances": [GREY]}))
    add("tfs predict wrong shape", "POST", "/v1/models/grey:predict", js({"instances": [[1, 2, 3]]}))
    add("tfs predict too many", "POST", "/v1/models/grey:predict", js({"instances": [GREY] * 9}))
    add("tfs predict 415", "POST", "/v1/models/grey:predict", b"x", {"content-type": "image/png"})
    add("tfs predict missing version", "POST", "/v1/models/grey/versions/3:predict", js({"instances": [GREY]}))
    add("tfs classify", "POST", "/v1/models/grey/versions/2:classify", js({"examples": [{"input": np.full(784, 31).tolist()}]}))
    add("tfs classify context", "POST", "/v1/models/vector:classify", js({"context": {"input": VECTOR}, "examples": [{}, {"other": 1}]}))
    add("tfs classify no examples", "POST", "/v1/models/grey:classify", js({}))
    # Open Inference Protocol v2
    add("v2 server", "GET", "/v2")
    add("v2 live", "GET", "/v2/health/live")
    add("v2 ready", "GET", "/v2/health/ready")
    add("v2 metadata", "GET", "/v2/models/grey")
    add("v2 metadata version", "GET", "/v2/models/colour/versions/v1")
    add("v2 metadata alias", "GET", "/v2/models/grey/versions/stable")
    add("v2 model ready", "GET", "/v2/models/grey/versions/v2/ready")
    add("v2 model ready missing", "GET", "/v2/models/grey/versions/v3/ready")
    add("v2 unknown model", "GET", "/v2/models/nope")
    add(
        "v2 infer json",
        "POST",
        "/v2/models/grey/infer",
        js({"id": "r-1", "inputs": [{"name": "input", "shape": [1, 28, 28, 1], "datatype": "UINT8", "data": np.full(784, 30).tolist()}]}),
    )
    add("v2 infer json fp32 shaped", "POST", "/v2/models/vector/versions/v1/infer", js({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [VECTOR]}]}))
    add("v2 infer binary", "POST", "/v2/models/grey/versions/v1/infer", *binary_v2(np.full((2, 28, 28, 1), 31, np.uint8), "UINT8"))
    add(
        "v2 infer binary output",
        "POST",
        "/v2/models/colour/infer",
        *binary_v2(np.full((1, 32, 32, 3), 1, np.uint8), "UINT8", [{"name": "probabilities", "parameters": {"binary_data": True}}]),
    )
    add(
        "v2 infer classification",
        "POST",
        "/v2/models/grey/infer",
        js(
            {
                "inputs": [{"name": "input", "shape": [1, 28, 28], "datatype": "INT32", "data": np.full(784, 31).tolist()}],
                "outputs": [{"name": "probabilities", "parameters": {"classification": 3}}],
            }
        ),
    )
    add("v2 infer wrong input name", "POST", "/v2/models/grey/infer", js({"inputs": [{"name": "x", "shape": [1, 28, 28], "datatype": "UINT8", "data": [0]}]}))
    add("v2 infer wrong datatype", "POST", "/v2/models/grey/infer", js({"inputs": [{"name": "input", "shape": [1, 28, 28], "datatype": "BYTES", "data": ["a"]}]}))
    add("v2 infer lying shape", "POST", "/v2/models/grey/infer", *binary_v2_lying())
    add("v2 infer out of range", "POST", "/v2/models/grey/infer", js({"inputs": [{"name": "input", "shape": [1, 28, 28], "datatype": "FP32", "data": np.full(784, 400).tolist()}]}))
    add("v2 infer missing version", "POST", "/v2/models/grey/versions/v3/infer", js({"inputs": []}))
    add("v2 infer 415", "POST", "/v2/models/grey/infer", b"x", {"content-type": "text/plain"})
    add("v2 index", "POST", "/v2/repository/index", b"")
    add("v2 index ready", "POST", "/v2/repository/index", js({"ready": True}), JSON)
    # admin routes refuse without a token (403)
    add("admin alias", "PUT", "/models/grey/aliases/stable", js({"version": "v2"}), JSON)
    add("admin load", "POST", "/v2/repository/models/grey/load", js({"parameters": {"version": "v2"}}), JSON)
    # the page's input image
    add("page input png", "POST", "/models/grey/v1/input.png", js({"image": GREY}), JSON)
    add("page input multipart", "POST", "/models/colour/v1/input.png", *reversed_ct(multipart("image", PNG_COLOUR)))
    add("page input 415", "POST", "/models/grey/v1/input.png", b"xx", {"content-type": "application/octet-stream"})
    return cases


def reversed_ct(pair: tuple[bytes, str]) -> tuple[bytes, dict]:
    body, content_type = pair
    return body, {"content-type": content_type}


def binary_v2_lying() -> tuple[bytes, dict]:
    header = json.dumps({"inputs": [{"name": "input", "shape": [1024, 1024, 1024, 1024], "datatype": "UINT8", "parameters": {"binary_data_size": 16}}]}).encode()
    return header + bytes(16), {"Inference-Header-Content-Length": str(len(header))}


def served_app(tmp_path):
    """The fixture's models (conftest ``served``, the tensor model with an alias too) behind every protocol's routes."""
    return served_models(tmp_path, vector_aliases={"stable": "v1"})


def answers(tmp_path) -> list[dict]:
    served = served_app(tmp_path)
    found = []
    with TestClient(served.app) as client:
        client.portal.call(served.probe)
        for case in corpus():
            response = client.request(case["method"], case["path"], content=case["body"], headers=case["headers"])
            found.append(
                {
                    "name": case["name"],
                    "status": response.status_code,
                    "headers": {name: response.headers[name] for name in HEADERS if name in response.headers},
                    "body": base64.b64encode(response.content).decode(),
                }
            )
    return found


@pytest.mark.parametrize("golden", json.loads(GOLDEN.read_text()) if GOLDEN.exists() else [], ids=lambda g: g["name"])
def test_every_route_answers_as_before_the_redesign(golden, recorded):
    now = recorded[golden["name"]]
    body, headers = without_request_id(base64.b64decode(now["body"]), dict(now["headers"]), base64.b64decode(golden["body"]))
    assert (now["status"], headers) == (golden["status"], golden["headers"])
    assert body == base64.b64decode(golden["body"]), body[:400]


ANSWER_ID = re.compile(rb'"id":"[0-9a-f]{32}",')  # a v2 answer's id: the request's id (serving/request_ids.py), made per request


def without_request_id(body: bytes, headers: dict, golden: bytes) -> tuple[bytes, dict]:
    """A v2 answer as it was before answers carried the request's id (issue 22): the id taken out, the
    binary format's header length with it; anything else as it is."""
    if b'"id":' in golden or not body.startswith(b'{"model_name"'):
        return body, headers
    found = ANSWER_ID.search(body)
    assert found is not None, body[:200]  # every v2 answer carries one now
    if "inference-header-content-length" in headers:
        headers["inference-header-content-length"] = str(int(headers["inference-header-content-length"]) - len(found.group()))
    return body[: found.start()] + body[found.end() :], headers


def test_the_golden_file_covers_the_whole_corpus():
    assert [g["name"] for g in json.loads(GOLDEN.read_text())] == [case["name"] for case in corpus()]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return {answer["name"]: answer for answer in answers(tmp_path_factory.mktemp("regression"))}


if __name__ == "__main__" and "--record" in sys.argv:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        GOLDEN.write_text(json.dumps(answers(Path(tmp)), indent=1) + "\n")
    print(f"recorded {len(corpus())} answers in {GOLDEN}")


# --- the published document describes these answers -------------------------------------------------------


class Described:
    """A served model as serving/openapi.py's ``Served`` is one: name, versions, aliases, card."""

    def __init__(self, model):
        self.name, self.versions, self.aliases = model.name, list(model.handles), dict(model.aliases)
        self.names = [*self.versions, *self.aliases]
        self.card = next((h.card for h in model.handles.values() if h.card), None)

    def ref(self, schema: str) -> dict:
        return {"$ref": f"#/components/schemas/{self.name}.{schema}"}


def test_every_recorded_json_answer_is_one_the_document_describes(tmp_path):
    """Each answer's schema (serving/schemas.py, narrowed per model by serving/openapi.py) holds for what the
    handlers answered when the golden file was recorded: successes and errors alike."""
    import re

    from jsonschema import Draft202012Validator

    from serving.openapi import _add_middleware_responses, model_schemas, route_paths, shared_schemas

    served = served_app(tmp_path)
    config = served.plane.config
    models = [Described(model) for model in served.registry.models.values()]
    schemas = shared_schemas(models)
    for model in models:
        schemas.update(model_schemas(model, config))
    header = {"description": "", "required": True, "schema": {"type": "string"}}
    spec = {
        "paths": route_paths(served.router, models, config),
        "components": {"schemas": schemas, "headers": {"Retry-After": header, "WWW-Authenticate": header, "Allow": header}},
    }
    _add_middleware_responses(spec, config)
    by_fixed_first = sorted(spec["paths"].items(), key=lambda pair: pair[0].count("{"))  # /models/grey/shadow before /models/grey/{version}
    templates = [(re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/:]+", re.escape(path)) + "/?$"), item) for path, item in by_fixed_first]
    checked = 0
    for case, golden in zip(corpus(), json.loads(GOLDEN.read_text()), strict=True):
        if golden["headers"].get("content-type") != "application/json":
            continue
        item = next((item for pattern, item in templates if pattern.match(case["path"].split("?")[0])), None)
        responses = item.get(case["method"].lower(), {}).get("responses", {}) if item else {}
        if str(golden["status"]) not in responses:
            continue  # a status the document does not promise for this route (the fuzz test holds the server to it)
        schema = responses[str(golden["status"])]["content"]["application/json"]["schema"]
        errors = [e.message[:200] for e in Draft202012Validator({**schema, "components": spec["components"]}).iter_errors(json.loads(base64.b64decode(golden["body"])))]
        assert not errors, (golden["name"], errors)
        checked += 1
    assert checked > 60, checked
