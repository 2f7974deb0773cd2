"""TensorFlow Serving's REST API in-process, with the bodies g3doc/api_rest.md writes, for a grey softmax
card (ten classes), a colour sigmoid card (two labels) and a tensor card; the runners are fakes that
answer class ``int(mean) % classes`` with 0.9 (conftest)."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from starlette.testclient import TestClient

from serving.errors import Overloaded
from serving.protocols import Router, tfserving, v2
from tests.unit.serving.conftest import InProcess, assert_error, encoded, make_card, request_count, write_config

GREY = np.full((28, 28), 30).tolist()  # mean 30: class 0 ("a") of ten
GREY_31 = np.full((28, 28), 31).tolist()  # class 1 ("b")
GREY_CHANNEL = np.full((28, 28, 1), 31).tolist()  # the same with its channel axis
COLOUR = np.full((32, 32, 3), 1).tolist()  # class 1 of two: no_damage
VECTOR = [1.5, -2, 7, 300]  # mean 76.6: class 1 ("y") of three


def protocol_app(served: InProcess):
    """The entry's routes of every protocol over the fixture's data plane, behind the entry's middleware (serving/app.py)."""
    return served.app


@pytest.fixture
def tf(served):
    with TestClient(protocol_app(served)) as client:
        client.portal.call(served.probe)
        yield client


def b64(pixels: np.ndarray, fmt: str = "PNG") -> dict:
    return {"b64": base64.b64encode(encoded(pixels, fmt)).decode()}


def probabilities(winner: int, classes: int) -> list[float]:
    """The fake runner's answer as TF Serving writes float32 numbers: shortest, 0.9 rather than 0.8999999761581421."""
    row = [float(str(np.float32(0.1 / (classes - 1))))] * classes
    row[winner] = 0.9
    return row


# --- model status -------------------------------------------------------------------------------------


def test_status_lists_every_numbered_version_latest_first(tf):
    assert tf.get("/v1/models/grey").json() == {
        "model_version_status": [
            {"version": "3", "state": "END", "status": {"error_code": "NOT_FOUND", "error_message": "grey:v3 is not in the model store"}},
            {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
        ]
    }


def test_status_of_one_version_by_number_or_label(tf):
    one = {"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert tf.get("/v1/models/grey/versions/1").json() == one
    assert tf.get("/v1/models/grey/labels/stable").json() == one


def test_a_loading_version_is_loading(served, tf):
    served.runners["grey", "v2"].state = "loading"
    tf.portal.call(served.probe)
    assert tf.get("/v1/models/grey/versions/2").json()["model_version_status"][0]["state"] == "LOADING"


@pytest.fixture
def named(tmp_path):
    """Versions named v1, 2 and candidate (no number), with the aliases stable and next."""
    config = write_config(tmp_path, {"shapes": {"versions": ["v1", "2", "candidate"], "aliases": {"stable": "v1", "next": "candidate"}}})
    cards = {("shapes", v): make_card("shapes", v, shape=(4,), labels=("x", "y", "z"), tensor=True) for v in ("v1", "2", "candidate")}
    served = InProcess(config, cards)
    with TestClient(protocol_app(served)) as client:
        client.portal.call(served.probe)
        yield client


def test_versions_are_numbers_and_labels_are_aliases_and_unnumbered_versions(named):
    assert [s["version"] for s in named.get("/v1/models/shapes").json()["model_version_status"]] == ["2", "1"]
    assert named.get("/v1/models/shapes/versions/1").json()["model_version_status"][0]["version"] == "1"  # v1
    assert named.get("/v1/models/shapes/versions/2").json()["model_version_status"][0]["version"] == "2"  # 2
    # a version without a number is reachable by its name as a label; "0" is the int64 TF Serving prints for none
    assert named.get("/v1/models/shapes/labels/candidate").json()["model_version_status"][0]["version"] == "0"
    assert named.get("/v1/models/shapes/labels/next").json()["model_version_status"][0]["version"] == "0"
    assert named.post("/v1/models/shapes/labels/next:predict", json={"instances": [VECTOR]}).status_code == 200
    assert_error(named.get("/v1/models/shapes/labels/v1"), 404, "v1 is version 1: /versions/1", "candidate, next, stable")


def test_without_a_version_the_latest_ready_one_answers(served, tf):
    assert tf.get("/v1/models/grey/metadata").json()["model_spec"]["version"] == "2"  # v3 is not in the store
    served.runners["grey", "v2"].state = "loading"
    tf.portal.call(served.probe)
    assert tf.get("/v1/models/grey/metadata").json()["model_spec"]["version"] == "1"
    tf.post("/v1/models/grey:predict", json={"instances": [GREY]})
    assert len(served.runners["grey", "v1"].calls) == 1 and not served.runners["grey", "v2"].calls


@pytest.mark.parametrize(
    "path,fragments",
    [
        ("/v1/models/nope", ["unknown model 'nope'", "grey, colour, vector"]),
        ("/v1/models/grey/versions/9", ["version 9 of model grey is not served", "versions: 1, 2, 3", "labels: stable"]),
        ("/v1/models/grey/versions/v1", ["versions are numbers in this API"]),
        ("/v1/models/grey/versions/01", ["versions are numbers in this API"]),
        ("/v1/models/grey/labels/latest", ["unknown label 'latest' of model grey", "labels: stable"]),
        ("/v1/models/grey/labels/-x", ["no such version"]),
        ("/v1/models/GREY/metadata", ["no such model"]),
        ("/v1/models/grey/versions/9/metadata", ["version 9 of model grey is not served"]),
    ],
)
def test_unknown_models_versions_and_labels_are_404(tf, path, fragments):
    assert_error(tf.get(path), 404, *fragments)


# --- metadata -----------------------------------------------------------------------------------------


def _dims(*sizes):
    return {"dim": [{"size": str(s), "name": ""} for s in sizes], "unknown_rank": False}


@pytest.mark.parametrize("model,shape,classes", [("grey", (28, 28, 1), 10), ("colour", (32, 32, 3), 2), ("vector", (4,), 3)])
def test_metadata_is_the_serving_signature_from_the_card(tf, model, shape, classes):
    assert tf.get(f"/v1/models/{model}/versions/1/metadata").json() == {
        "model_spec": {"name": model, "signature_name": "", "version": "1"},
        "metadata": {
            "signature_def": {
                "signature_def": {
                    "serving_default": {
                        "inputs": {"input": {"name": "serving_default_input:0", "dtype": "DT_FLOAT", "tensor_shape": _dims(-1, *shape)}},
                        "outputs": {"probabilities": {"name": "StatefulPartitionedCall:0", "dtype": "DT_FLOAT", "tensor_shape": _dims(-1, classes)}},
                        "method_name": "tensorflow/serving/predict",
                        "defaults": {},
                    }
                }
            }
        },
    }


# --- predict ------------------------------------------------------------------------------------------


def test_row_format_as_the_documentation_writes_it(served, tf):
    response = tf.post("/v1/models/grey/versions/1:predict", json={"instances": [GREY, GREY_31]})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [probabilities(0, 10), probabilities(1, 10)]}
    assert served.runners["grey", "v1"].calls[-1].shape == (2, 28, 28, 1)
    assert tf.post("/v1/models/grey/versions/1:predict", json={"instances": [GREY_CHANNEL]}).json() == {"predictions": [probabilities(1, 10)]}


def test_columnar_format_answers_outputs(served, tf):
    assert tf.post("/v1/models/colour/versions/1:predict", json={"inputs": [COLOUR]}).json() == {"outputs": [probabilities(1, 2)]}
    assert tf.post("/v1/models/vector:predict", json={"inputs": {"input": [VECTOR]}}).json() == {"outputs": [probabilities(1, 3)]}


def test_named_rows_and_signature_name(tf):
    body = {"signature_name": "serving_default", "instances": [{"input": VECTOR}, {"input": [0, 0, 0, 0]}]}
    assert tf.post("/v1/models/vector:predict", json=body).json() == {"predictions": [probabilities(1, 3), probabilities(0, 3)]}
    assert_error(tf.post("/v1/models/vector:predict", json={"signature_name": "classify", "instances": [VECTOR]}), 400, '"classify" not found', "serving_default")
    assert_error(tf.post("/v1/models/vector:predict", json={"signature_name": 7, "instances": [VECTOR]}), 400, "signature_name")


def test_b64_image_files_in_every_format(served, tf):
    """A JPEG or PNG as {"b64": ...}, the way TF Serving users send images: decoded, resized, per card."""
    photo = np.zeros((90, 60, 3), dtype=np.uint8)
    photo[..., 0] = 200
    for body in ({"instances": [b64(photo, "JPEG"), b64(photo)]}, {"instances": [{"input": b64(photo)}]}, {"inputs": b64(photo)}, {"inputs": [b64(photo)]}):
        response = tf.post("/v1/models/colour/versions/1:predict", json=body)
        assert response.status_code == 200, response.text
        sent = served.runners["colour", "v1"].calls[-1]
        assert sent.shape[1:] == (32, 32, 3) and sent.dtype == np.uint8 and sent[0, 16, 16, 0] > 150
    tf.post("/v1/models/grey/versions/1:predict", json={"instances": [b64(np.full((50, 50), 250))]})
    assert served.runners["grey", "v1"].calls[-1].shape == (1, 28, 28, 1)
    assert served.runners["grey", "v1"].calls[-1].max() == 5  # the card's invert=auto: a light background inverts


@pytest.mark.parametrize(
    "body,fragments",
    [
        ({"instances": [{"b64": "not base64!"}]}, ["instances[0]", "not valid base64"]),
        ({"instances": [{"b64": base64.b64encode(b"not an image").decode()}]}, ["instances[0]", "not a decodable image"]),
        ({"instances": [GREY], "inputs": [GREY]}, ["only one of 'inputs' or 'instances'"]),
        ({"signature_name": "serving_default"}, ["missing 'inputs' or 'instances'"]),
        ({"instances": []}, ["instances: no values"]),
        ({"instances": [1, 2]}, ["instances", "28x28"]),
        ({"instances": [GREY, {"input": GREY}]}, ["not a mix"]),
        ({"instances": [{"image": GREY}]}, ["exactly the key 'input'"]),
        ({"inputs": {"image": [GREY]}}, ["missing named input 'input'"]),
        ({"instances": [[[300] * 28] * 28]}, ["instances", "0..255"]),
        ({"instances": [[[True] * 28] * 28]}, ["instances", "numbers"]),
        ({"instances": [[[1] * 28] * 27]}, ["instances", "28x28"]),
        ({"instances": [[1, [2]]]}, ["instances", "ragged"]),
    ],
)
def test_invalid_arguments_are_400(tf, body, fragments):
    assert_error(tf.post("/v1/models/grey/versions/1:predict", json=body), 400, *fragments)


def test_unreadable_bodies_are_400_and_other_content_types_415(tf):
    for content in (b"", b"{", b"[1, 2]", b'{"instances": [NaN]}'):
        assert_error(tf.post("/v1/models/grey:predict", content=content, headers={"content-type": "application/json"}), 400)
    # curl -d, as api_rest.md calls it, sends application/x-www-form-urlencoded: read as JSON like TF Serving does
    assert tf.post("/v1/models/vector:predict", content=b'{"instances": [[1.0, 2.0, 5.0, 0]]}', headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 200
    for kind in ("multipart/form-data; boundary=x", "application/x-npy", "application/python-pickle"):
        assert_error(tf.post("/v1/models/vector:predict", content=b"{}", headers={"content-type": kind}), 415, "JSON")


def test_a_tensor_model_takes_no_image_files(tf):
    assert_error(tf.post("/v1/models/vector:predict", json={"instances": [b64(np.zeros((4, 4)))]}), 400, "vector:v1 takes tensor values")


def test_limits_and_unavailable_versions(tf):
    assert_error(tf.post("/v1/models/grey:predict", json={"instances": [GREY] * 9}), 413, "9 examples exceed the limit of 8")
    assert_error(tf.post("/v1/models/grey:classify", json={"examples": [{"input": [0] * 784}] * 9}), 413, "examples")
    response = tf.post("/v1/models/grey/versions/3:predict", json={"instances": [GREY]})
    assert_error(response, 503, "grey:v3 is not in the model store")
    assert response.headers["retry-after"] == "30"


def test_a_full_queue_is_resource_exhausted_429(served, tf, monkeypatch):
    async def full(values, request_id=None):
        raise Overloaded("overloaded: 64 images already queued for this version", retry_after=1)

    monkeypatch.setattr(served.registry.resolve("grey", "v1").batcher, "submit_scored", full)
    response = tf.post("/v1/models/grey/versions/1:predict", json={"instances": [GREY]})
    assert_error(response, 429, "overloaded")
    assert response.headers["retry-after"] == "1"


# --- classify -----------------------------------------------------------------------------------------


def test_classify_answers_label_score_pairs_per_example(tf):
    body = {"examples": [{"input": [30] * 784}, {"input": [31] * 784}]}
    response = tf.post("/v1/models/grey/versions/1:classify", json=body)
    assert response.status_code == 200, response.text
    labels = list("abcdefghij")
    assert response.json() == {"results": [[list(pair) for pair in zip(labels, probabilities(winner, 10), strict=True)] for winner in (0, 1)]}


def test_classify_with_context_and_image_files(served, tf):
    body = {"context": {"input": VECTOR}, "examples": [{}, {"caption": "ignored, as tf.parse_example ignores unknown features"}]}
    assert [max(r, key=lambda p: p[1])[0] for r in tf.post("/v1/models/vector:classify", json=body).json()["results"]] == ["y", "y"]
    body = {"examples": [{"input": b64(np.zeros((40, 40, 3)))}, {"input": [b64(np.ones((40, 40, 3)))]}]}
    assert [r[0][0] for r in tf.post("/v1/models/colour:classify", json=body).json()["results"]] == ["damage", "damage"]
    assert served.runners["colour", "v1"].calls[-1].shape == (2, 32, 32, 3)


@pytest.mark.parametrize(
    "body,fragments",
    [
        ({"instances": [GREY]}, ["key 'examples' is expected"]),
        ({"examples": []}, ["non-empty list"]),
        ({"examples": [[0] * 784]}, ["examples[0]", "object of features"]),
        ({"examples": [{"pixels": [0] * 784}]}, ["feature 'input' is required"]),
        ({"examples": [{"input": GREY}]}, ["a feature is a flat list", "784 values"]),
        ({"examples": [{"input": [0] * 783}]}, ["784 values"]),
        ({"examples": [{"input": [0] * 784}], "context": {"input": [0] * 784}}, ["must not appear in examples: input"]),
        ({"examples": [{"input": [999] * 784}]}, ["examples[0].input", "0..255"]),
    ],
)
def test_classify_errors(tf, body, fragments):
    assert_error(tf.post("/v1/models/grey/versions/1:classify", json=body), 400, *fragments)


# --- routes, methods, metrics ---------------------------------------------------------------------------


def test_methods_a_route_does_not_offer_are_405(tf):
    for method, path, allowed in (
        ("POST", "/v1/models/grey", "GET, HEAD"),
        ("GET", "/v1/models/grey:predict", "POST"),
        ("PUT", "/v1/models/grey/labels/stable/metadata", "GET, HEAD"),
    ):
        response = tf.request(method, path)
        assert_error(response, 405, method)
        assert response.headers["allow"] == allowed


def test_requests_are_counted_with_the_protocol_and_the_version_they_resolved_to(tf):
    labels = {"model": "grey", "protocol": "tfserving", "endpoint": "predict"}
    before = {v: request_count(version=v, status="200", **labels) for v in ("v1", "v2")}
    invalid = request_count(version="v1", status="400", **labels)
    tf.post("/v1/models/grey/labels/stable:predict", json={"instances": [GREY]})
    tf.post("/v1/models/grey:predict", json={"instances": [GREY]})  # the latest: v2
    tf.post("/v1/models/grey/versions/1:predict", json={"instances": []})
    assert request_count(version="v1", status="200", **labels) == before["v1"] + 1
    assert request_count(version="v2", status="200", **labels) == before["v2"] + 1
    assert request_count(version="v1", status="400", **labels) == invalid + 1


# --- the published document -------------------------------------------------------------------------------


class Described:
    """A served model as serving/openapi.py's ``Served`` is one: name, versions, aliases, card."""

    def __init__(self, handle_model):
        self.name, self.versions, self.aliases = handle_model.name, list(handle_model.handles), dict(handle_model.aliases)
        self.names = [*self.versions, *self.aliases]
        self.card = next(h.card for h in handle_model.handles.values() if h.card)

    def ref(self, schema: str) -> dict:
        return {"$ref": f"#/components/schemas/{self.name}.{schema}"}


def document(served) -> dict:
    """An OpenAPI document of the TF Serving and v2 routes, built as serving/openapi.py builds the served one."""
    from serving.openapi import _add_middleware_responses, model_schemas, route_paths, shared_schemas

    config = served.plane.config
    models = [Described(model) for model in served.registry.models.values()]
    schemas = shared_schemas(models)
    for model in models:
        schemas.update(model_schemas(model, config))
    header = {"description": "", "required": True, "schema": {"type": "string"}}
    spec = {
        "openapi": "3.1.0",
        "info": {"title": "protocols", "version": "1"},
        "paths": route_paths(Router([*tfserving.routes(config), *v2.routes(config)]), models, config),
        "components": {"schemas": schemas, "headers": {"Retry-After": header, "WWW-Authenticate": header, "Allow": header}},
    }
    _add_middleware_responses(spec, config)
    return spec


def test_the_document_describes_every_route_once_per_model_and_is_valid(served):
    from jsonschema import Draft202012Validator
    from openapi_spec_validator import validate

    spec = document(served)
    validate(spec)
    ids = [operation["operationId"] for item in spec["paths"].values() for key, operation in item.items() if key != "parameters"]
    assert len(ids) == len(set(ids)) == 3 * 12 + 4 + 3 * 6
    assert spec["paths"]["/v1/models/grey/versions/{number}"]["get"]["parameters"][0]["schema"]["enum"] == ["1", "2", "3"]
    assert spec["paths"]["/v1/models/grey/labels/{label}:predict"]["post"]["parameters"][0]["schema"]["enum"] == ["stable"]
    assert spec["paths"]["/v2/models/grey/versions/{version}/infer"]["parameters"][0]["schema"]["enum"] == ["v1", "v2", "v3", "stable"]

    # The bodies these tests send are the documented ones; their broken twins are not.
    def valid(path: str, body: dict) -> bool:
        schema = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        return Draft202012Validator({**schema, "components": spec["components"]}).is_valid(body)  # its refs: #/components/...

    assert valid("/v1/models/grey:predict", {"instances": [GREY, GREY_31]}) and valid("/v1/models/vector:predict", {"inputs": {"input": [VECTOR]}})
    assert not valid("/v1/models/grey:predict", {"instances": [GREY], "inputs": [GREY]})
    assert valid("/v1/models/grey:classify", {"examples": [{"input": [30] * 784}]}) and not valid("/v1/models/grey:classify", {"examples": [{"input": GREY}]})
    body = {
        "id": "1",
        "inputs": [{"name": "input", "shape": [1, 28, 28], "datatype": "UINT8", "data": [30] * 784}],
        "outputs": [{"name": "probabilities", "parameters": {"classification": 2}}],
    }
    assert valid("/v2/models/grey/infer", body)
    body["inputs"][0]["datatype"] = "BOOL"
    assert not valid("/v2/models/grey/infer", body)


# --- the SavedModel export (training/export.py) ----------------------------------------------------------------


@pytest.mark.parametrize("card_name", ["clothes", "sigmoid", "tensor"])
def test_the_savedmodel_export_has_the_signature_the_metadata_describes(tmp_path, card_name):
    """TF Serving describes a SavedModel by its signature_def: the export's is the one GET .../metadata answers,
    and it answers Keras' class probabilities from the raw values clients send."""
    import tensorflow as tf
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    from models.inference import predict_probabilities
    from tests.unit.cards import ALL_CARDS, keras_model_for
    from training.export import probe_examples, tfserving_export

    card = ALL_CARDS[card_name]()
    model = keras_model_for(card)
    path = tfserving_export(model, card, tmp_path, 7)
    assert path == tmp_path / card.name / "7" and (path / "variables").is_dir()
    saved = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    signature = json_format.MessageToDict(saved.meta_graphs[0].signature_def["serving_default"], preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    assert signature == tfserving.signature_def(card)
    examples = probe_examples(card, 16)
    exported = tf.saved_model.load(str(path)).signatures["serving_default"](input=tf.constant(examples))["probabilities"].numpy()
    np.testing.assert_allclose(exported, predict_probabilities(model, examples, card), atol=1e-6)
    with pytest.raises(FileExistsError):
        tfserving_export(model, card, tmp_path, 7)
