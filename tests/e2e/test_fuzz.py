"""Property-based fuzzing of the running service from its own published OpenAPI document (schemathesis).

Schemathesis reads ``GET /docs.json`` (serving/openapi.py) and sends requests generated from it to
every documented operation: valid ones (positive mode) and ones that break the document (negative
mode: wrong types, shapes, missing fields, unknown versions). Every one of schemathesis' checks runs
(the CLI's ``--checks all``): no 5xx; a documented status code, content type, headers (Retry-After on
503, Allow on 405) and body schema; what breaks the document is refused and what follows it is
accepted. Raw bytes and ``.npy`` bodies must hold whole examples of the model's card, which the
document says in words (JSON Schema cannot state it for binary data): their positive bodies come from
strategies registered per model (``binary_strategies``), sized by the model's card. The server must
still be ready afterwards. Generation is derandomised, so a CI run is reproducible.

Schemathesis' strategies run under plain Hypothesis, one operation and mode at a time: its pytest
plugin (``@schema.parametrize()``) reads ``Function._nodeid``, which pytest 9 no longer has.
The figures (requests by status and operation) are printed for docs/reliability.md.
"""

from __future__ import annotations

import collections
import io
import time

import numpy as np
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS

from serving.codecs import ACCEPTED, NPY, RAW
from tests.e2e.conftest import CLOTHES as MODEL_NAME
from tests.e2e.conftest import report_figures

TIMEOUT = 30
# Examples per operation and mode. Operations without inputs have one request to send; the typed
# JSON API's valid bodies (batches of 28x28 arrays of floats) take ~0.6 s each to generate, so it
# gets fewer. In all about 2,300 requests, in about 2 minutes on 2 cores.
MAX_EXAMPLES = 300
FEWER_EXAMPLES = {("POST /classify", GenerationMode.POSITIVE): 60, ("POST /classify", GenerationMode.NEGATIVE): 150}
# TF Serving's :predict and :classify and v2's /infer (serving/protocols/tfserving.py, v2.py) take whole
# examples too, once per way of naming the version (latest or default, number, label or version).
PROTOCOL_EXAMPLES = 50


def examples(label: str, mode: GenerationMode) -> int:
    if label.startswith("POST /v1/models/") or (label.startswith("POST /v2/models/") and label.endswith("/infer")):
        return PROTOCOL_EXAMPLES
    return FEWER_EXAMPLES.get((label, mode), MAX_EXAMPLES)


ALL_CHECKS = CHECKS.get_all()  # the CLI's --checks all


def binary_strategies(card_input: dict) -> None:
    """Register whole-example raw and .npy bodies for the model whose card input is ``card_input``."""
    shape = tuple(card_input["shape"])
    size = int(np.prod(shape))

    def npy(array: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue()

    count = st.integers(1, 3)
    schemathesis.openapi.media_type(RAW, count.flatmap(lambda n: st.binary(min_size=n * size, max_size=n * size)))
    schemathesis.openapi.media_type(
        NPY, st.tuples(count, st.integers(0, 2**32 - 1)).map(lambda seed: npy(np.random.default_rng(seed[1]).integers(0, 256, (seed[0], *shape)).astype(np.uint8)))
    )


@pytest.fixture(scope="module")
def document(url) -> dict:
    response = requests.get(f"{url}/docs.json", timeout=TIMEOUT)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    return response.json()


@pytest.fixture(scope="module")
def api_schema(url, document):
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=url)
    return schema


@pytest.fixture(scope="module")
def session():
    with requests.Session() as s:
        yield s


def test_document_is_valid_openapi(document):
    validate(document)


def test_document_covers_every_route(document):
    """BentoML's routes and ours, by their real paths, with every body and error the service has."""
    base = f"/models/{MODEL_NAME}"
    ours = {"/models", base, f"{base}/{{version}}", f"{base}/{{version}}/report", f"{base}/{{version}}/drift"}
    assert ours | {"/classify", "/classify_image", "/readyz", "/livez", "/healthz", "/metrics"} <= set(document["paths"])
    predict = document["paths"][f"{base}/{{version}}"]["post"]
    assert set(predict["requestBody"]["content"]) == set(ACCEPTED)
    assert set(predict["responses"]) == {"200", "400", "404", "408", "413", "415", "422", "503"}
    assert predict["responses"]["503"]["headers"] == {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}
    for path in (f"{base}/{{version}}", "/classify", "/classify_image"):
        for status, response in document["paths"][path]["post"]["responses"].items():
            if status != "200":
                assert response["content"] == {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}, (path, status)


def test_document_covers_the_tfserving_and_v2_routes(document):
    """TF Serving's REST API and the Open Inference Protocol, per served model, with their errors."""
    tf = f"/v1/models/{MODEL_NAME}"
    tf_paths = {tf + suffix + tail for suffix in ("", "/versions/{number}", "/labels/{label}") for tail in ("", "/metadata", ":predict", ":classify")}
    v2 = f"/v2/models/{MODEL_NAME}"
    v2_paths = {"/v2", "/v2/health/live", "/v2/health/ready", "/v2/repository/index"} | {v2 + s + t for s in ("", "/versions/{version}") for t in ("", "/ready", "/infer")}
    assert tf_paths | v2_paths <= set(document["paths"])
    assert set(document["paths"][f"{tf}:predict"]["post"]["responses"]) == {"200", "400", "404", "408", "413", "415", "429", "503"}
    assert set(document["paths"][f"{v2}/infer"]["post"]["responses"]) == {"200", "400", "404", "408", "413", "415", "503"}
    assert set(document["paths"][f"{v2}/infer"]["post"]["responses"]["200"]["content"]) == {"application/json", "application/octet-stream"}
    operation_ids = [op["operationId"] for item in document["paths"].values() for method, op in item.items() if method != "parameters" and "operationId" in op]
    assert len(operation_ids) == len(set(operation_ids)) and all(f"_{MODEL_NAME}_" in i for i in operation_ids if i.startswith(("tfserving_", "v2_infer")))


def test_every_answer_is_documented(api_schema, session, url, trained_versions, subtests, capsys):
    """Fuzz every operation in both modes, then check the server is still ready and predicting."""
    cards = {
        m["name"]: requests.get(f"{url}/models/{m['name']}/{m['default_version']}", timeout=TIMEOUT).json()["input"]
        for m in requests.get(f"{url}/models", timeout=TIMEOUT).json()["models"]
    }
    sent = collections.Counter()  # (operation, status) of every request
    for result in api_schema.get_all_operations():
        operation = result.ok()
        # Negative data needs something to break: a parameter or a body.
        inputs = [operation.path_parameters, operation.query, operation.headers, operation.cookies, operation.body]
        modes = list(GenerationMode) if any(len(i) for i in inputs) else [GenerationMode.POSITIVE]
        model = operation.path.split("/")[2] if operation.path.startswith("/models/") and operation.path.count("/") >= 2 else None
        if model is not None and model in cards:
            binary_strategies(cards[model])
        for mode in modes:
            with subtests.test(operation=operation.label, mode=mode.value):
                fuzz(operation, mode, session, sent)
    with capsys.disabled():
        report(sent)
    assert sum(sent.values()) >= 2000
    assert {200, 404, 422} <= {status for _, status in sent}
    deadline = time.monotonic() + 30
    while requests.get(f"{url}/readyz", timeout=TIMEOUT).status_code != 200:
        assert time.monotonic() < deadline, "not ready after fuzzing"
        time.sleep(0.5)
    blank = np.zeros((28, 28)).tolist()
    response = requests.post(f"{url}/models/{MODEL_NAME}/{trained_versions[0]}", json={"image": blank}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text


def fuzz(operation, mode: GenerationMode, session: requests.Session, sent: collections.Counter) -> None:
    @settings(
        max_examples=examples(operation.label, mode),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def call_and_check(case):
        response = case.call(session=session, timeout=TIMEOUT)
        sent[(operation.label, response.status_code)] += 1
        case.validate_response(response, checks=ALL_CHECKS)

    call_and_check()


def report(sent: collections.Counter) -> None:
    """The figures for docs/reliability.md: requests sent, by status and by operation."""
    by_status = collections.Counter()
    for (_, status), n in sent.items():
        by_status[status] += n
    report_figures(f"\nfuzzing: {sum(sent.values())} requests; by status: {dict(sorted(by_status.items()))}")
    for (operation, status), n in sorted(sent.items()):
        report_figures(f"  {operation:45} {status}: {n}")


UNLISTED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "TRACE")


def test_methods_the_document_does_not_list_are_405_with_allow(document, url, session):
    """What schemathesis' coverage phase checks (``unsupported_method``, ``allow_header_conformance``),
    over every documented path: a method it does not list answers 405 and ``Allow`` names the listed ones."""
    checked = 0
    for template, item in document["paths"].items():
        listed = {method.upper() for method in item if method != "parameters"}
        path = template.replace("{version}", "v1")
        for method in UNLISTED_METHODS:
            if method in listed or (method == "GET" and "HEAD" in listed):
                continue
            response = session.request(method, f"{url}{path}", timeout=TIMEOUT)
            assert response.status_code == 405, (method, path, response.status_code, response.text)
            allowed = {m.strip() for m in response.headers["Allow"].split(",")}
            assert listed <= allowed <= listed | {"HEAD", "OPTIONS"}, (method, path, allowed, listed)
            assert list(response.json()) == ["error"]
            checked += 1
    assert checked > 40
