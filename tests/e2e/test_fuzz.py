"""Property-based fuzzing of the running service from its own published OpenAPI document (schemathesis).

Schemathesis reads ``GET /docs.json`` (serving/openapi.py) and sends requests generated from it to
every documented operation: valid ones (positive mode) and ones that break the document (negative
mode: wrong types, shapes, missing fields, unknown versions). Every answer must be documented: no
5xx, a documented status code, content type, headers (Retry-After on 503) and body schema. The
server must still be ready afterwards. Generation is derandomised, so a CI run is reproducible.

Schemathesis' strategies run under plain Hypothesis, one operation and mode at a time: its pytest
plugin (``@schema.parametrize()``) reads ``Function._nodeid``, which pytest 9 no longer has.
The figures (requests by status and operation) are printed for docs/reliability.md.
"""

from __future__ import annotations

import collections
import time

import numpy as np
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from models.specs import IMAGE_SHAPE, MODEL_NAME
from serving.decoding import ACCEPTED
from tests.e2e.conftest import report_figures

TIMEOUT = 30
# Examples per operation and mode. Operations without inputs have one request to send; the typed
# JSON API's valid bodies (batches of 28x28 arrays of floats) take ~0.6 s each to generate, so it
# gets fewer. In all about 2,300 requests, in about 2 minutes on 2 cores.
MAX_EXAMPLES = 300
FEWER_EXAMPLES = {("POST /classify", GenerationMode.POSITIVE): 60, ("POST /classify", GenerationMode.NEGATIVE): 150}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,  # what breaks the document is refused with a 4xx
]


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


def test_every_answer_is_documented(api_schema, session, url, trained_versions, subtests, capsys):
    """Fuzz every operation in both modes, then check the server is still ready and predicting."""
    sent = collections.Counter()  # (operation, status) of every request
    for result in api_schema.get_all_operations():
        operation = result.ok()
        # Negative data needs something to break: a parameter or a body.
        inputs = [operation.path_parameters, operation.query, operation.headers, operation.cookies, operation.body]
        modes = list(GenerationMode) if any(len(i) for i in inputs) else [GenerationMode.POSITIVE]
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
    blank = np.zeros(IMAGE_SHAPE).tolist()
    response = requests.post(f"{url}/models/{MODEL_NAME}/{trained_versions[0]}", json={"image": blank}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text


def fuzz(operation, mode: GenerationMode, session: requests.Session, sent: collections.Counter) -> None:
    @settings(
        max_examples=FEWER_EXAMPLES.get((operation.label, mode), MAX_EXAMPLES),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def call_and_check(case):
        response = case.call(session=session, timeout=TIMEOUT)
        sent[(operation.label, response.status_code)] += 1
        case.validate_response(response, checks=CHECKS)

    call_and_check()


def report(sent: collections.Counter) -> None:
    """The figures for docs/reliability.md: requests sent, by status and by operation."""
    by_status = collections.Counter()
    for (_, status), n in sent.items():
        by_status[status] += n
    report_figures(f"\nfuzzing: {sum(sent.values())} requests; by status: {dict(sorted(by_status.items()))}")
    for (operation, status), n in sorted(sent.items()):
        report_figures(f"  {operation:45} {status}: {n}")
