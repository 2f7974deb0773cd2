"""Security of the served API, against real `bentoml serve` processes.

- Content types: only the documented ones get in; pickle never does, on any route that takes a body.
- Names from URLs and the typed APIs' ``version`` field: malformed ones are refused before any lookup.
- CORS: off by default; BentoML's ``http.cors`` turns it on for the listed origins, on every route.
- The optional API token (serving/auth.py), and CORS working with it (one dedicated server for both:
  a browser on another origin is the case where they meet).
- Monitoring data logs are bounded by their rotation (a dedicated server with a tiny rotation).
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import pickle
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests
import yaml
from PIL import Image

from tests.e2e.conftest import CLOTHES as MODEL_NAME
from tests.e2e.conftest import LIMITS, ROOT, Server, assert_error, clothes, free_port, write_config

TIMEOUT = 30
IMAGE_SHAPE = (28, 28)
IMAGE = np.zeros(IMAGE_SHAPE, dtype=np.uint8).tolist()
TYPED = {"images": [IMAGE], "model": MODEL_NAME}  # a valid body of /classify
PICKLE_TYPES = ["application/vnd.bentoml+pickle", "application/python-pickle", "application/x-python-serialize", "application/x-pickle"]


def png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros(IMAGE_SHAPE, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


# --- content types: documented ones only, pickle never ------------------------------------------


class Canary:
    """Unpickling this creates a directory: proof that a server unpickled a client's body."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


@pytest.fixture
def canary(tmp_path):
    path = tmp_path / "unpickled"
    pickle.loads(pickle.dumps(Canary(path)))  # the canary works: loading it leaves its mark
    assert path.is_dir()
    path.rmdir()
    yield path, pickle.dumps({"image": Canary(path), "images": [Canary(path)]})
    assert not path.exists(), "the server unpickled a request body"


@pytest.mark.parametrize("content_type", [*PICKLE_TYPES, "text/plain", "application/x-www-form-urlencoded", None])
def test_model_route_refuses_other_types(url, canary, content_type):
    _, body = canary
    headers = {"content-type": content_type} if content_type else {}
    response = requests.post(f"{url}/models/{MODEL_NAME}/v1", data=body, headers=headers, timeout=TIMEOUT)
    assert_error(response, 415, f"content type {content_type or 'none'} is not accepted", "application/json", "application/x-npy")


@pytest.mark.parametrize(
    "content_type,status,message",
    [("application/octet-stream", 422, "multiple of 784 bytes"), ("application/x-npy", 400, "invalid .npy body"), ("application/json", 400, "invalid JSON")],
)
def test_model_route_never_unpickles_an_accepted_type(url, canary, content_type, status, message):
    _, body = canary
    response = requests.post(f"{url}/models/{MODEL_NAME}/v1", data=body, headers={"content-type": content_type}, timeout=TIMEOUT)
    assert_error(response, status, message)


def test_model_route_multipart_with_a_pickled_part(url, canary):
    _, body = canary
    files = {"image": ("x.pkl", body, "application/vnd.bentoml+pickle")}
    assert_error(requests.post(f"{url}/models/{MODEL_NAME}/v1", files=files, timeout=TIMEOUT), 422, "image", "decodable")


@pytest.mark.parametrize(
    "route,content_type,expected",
    [
        *[("/classify", t, "application/json") for t in [*PICKLE_TYPES, "application/octet-stream", "text/plain", "application/x-www-form-urlencoded", None]],
        *[("/classify_image", t, "multipart/form-data") for t in [*PICKLE_TYPES, "application/octet-stream", "application/json", None]],
    ],
)
def test_typed_routes_take_only_their_own_type(url, canary, route, content_type, expected):
    _, body = canary
    headers = {"content-type": content_type} if content_type else {}
    response = requests.post(f"{url}{route}", data=body, headers=headers, timeout=TIMEOUT)
    assert_error(response, 415, f"content type {content_type or 'none'} is not accepted by {route}; use {expected}")


def test_classify_refuses_multipart_with_a_pickled_part(url, canary):
    _, body = canary
    files = {"images": ("x.pkl", body, "application/vnd.bentoml+pickle")}
    response = requests.post(f"{url}/classify", files=files, timeout=TIMEOUT)
    assert_error(response, 415, "content type multipart/form-data is not accepted by /classify; use application/json")


def test_classify_image_refuses_a_pickled_file_part(url, canary):
    _, body = canary
    files = {"image": ("x.pkl", body, "application/vnd.bentoml+pickle"), "model": (None, MODEL_NAME)}
    response = requests.post(f"{url}/classify_image", files=files, timeout=TIMEOUT)
    assert_error(response, 422, "image", "application/vnd.bentoml+pickle", "image/*")


def test_classify_image_refuses_a_pickled_form_field(url, canary):
    _, body = canary
    files = {"image": ("x.png", png(), "image/png"), "model": (None, MODEL_NAME), "version": (None, body)}
    response = requests.post(f"{url}/classify_image", files=files, timeout=TIMEOUT)
    assert_error(response, 422, "version: String should match pattern")


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
def test_typed_json_still_accepted(url, content_type):
    body = json.dumps({**TYPED, "version": "v1"})
    response = requests.post(f"{url}/classify", data=body, headers={"content-type": content_type}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == "v1"


# --- names: malformed ones refused before any lookup --------------------------------------------

MALFORMED = "no such version: names are 1 to 63 characters"
# (path segment as sent on the wire, what the answer says)
VERSION_SEGMENTS = [
    ("v9.9", "unknown version 'v9.9'"),  # well formed, so looked up among the served names, and unknown
    ("..", MALFORMED),
    ("%2e%2e", MALFORMED),
    ("v1.", MALFORMED),
    ("%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "Not Found"),  # decoded to more path segments: no route
    ("..%2f..%2fmodels", "Not Found"),
    ("v1%2F..%2F..", "Not Found"),
    ("..%5c..%5cservice.py", MALFORMED),
    ("v1%00", MALFORMED),
    ("%00", MALFORMED),
    ("v1%0A", MALFORMED),
    ("%20v1", MALFORMED),
    ("v%C3%A9", MALFORMED),
    ("%EF%BD%96%EF%BC%91", MALFORMED),  # fullwidth "v1"
    ("V1", MALFORMED),
    ("STABLE", MALFORMED),
    ("v" * 64, MALFORMED),
    ("v" * 5000, MALFORMED),
    ("~root", MALFORMED),
    ("v1;rm", MALFORMED),
]


def raw_request(url: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """A request with the path exactly as given (clients such as requests normalise dot segments)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.parametrize("segment,message", VERSION_SEGMENTS)
@pytest.mark.parametrize(
    "method,template",
    [("GET", "/models/clothes/{}"), ("POST", "/models/clothes/{}"), ("GET", "/models/clothes/{}/report"), ("GET", "/models/clothes/{}/drift")],
)
def test_malformed_versions_in_urls(url, method, template, segment, message):
    body = json.dumps({"image": IMAGE}).encode() if method == "POST" else None
    status, payload = raw_request(url, method, template.format(segment), body, {"content-type": "application/json"})
    assert status == 404 and set(payload) == {"error"} and message in payload["error"], (status, payload)
    assert len(payload["error"]) < 200  # a long name is not echoed back


@pytest.mark.parametrize("segment,message", [(s, m.replace("version", "model")) for s, m in VERSION_SEGMENTS])
@pytest.mark.parametrize("template", ["/models/{}", "/models/{}/v1"])
def test_malformed_models_in_urls(url, template, segment, message):
    status, payload = raw_request(url, "GET", template.format(segment))
    assert status == 404 and set(payload) == {"error"} and message in payload["error"], (status, payload)


def test_a_well_formed_served_version_still_answers(url):
    status, payload = raw_request(url, "GET", "/models/clothes/v1")
    assert status == 200 and payload["version"] == "v1"


@pytest.mark.parametrize("version", ["..", "../v1", "v1/..", "V1", "v1\x00", "v1\n", "vé", "", "v" * 64, "v" * 5000, "v1 "])
def test_malformed_version_field_of_the_typed_apis(url, version):
    response = requests.post(f"{url}/classify", json={**TYPED, "version": version}, timeout=TIMEOUT)
    assert_error(response, 422, "version: String should match pattern")
    files = {"image": ("x.png", png(), "image/png"), "model": (None, MODEL_NAME), "version": (None, version)}
    assert_error(requests.post(f"{url}/classify_image", files=files, timeout=TIMEOUT), 422, "version: String should match pattern")


@pytest.mark.parametrize("model", ["..", "Clothes", "clothes/v1", ""])
def test_malformed_model_field_of_the_typed_apis(url, model):
    response = requests.post(f"{url}/classify", json={**TYPED, "model": model}, timeout=TIMEOUT)
    assert_error(response, 422, "model: String should match pattern")


def test_well_formed_unknown_version_field_is_404(url):
    response = requests.post(f"{url}/classify", json={**TYPED, "version": "v9.9"}, timeout=TIMEOUT)
    assert_error(response, 404, "unknown version 'v9.9'", "available: ", "v1", "v2", "stable", "latest")


# --- CORS: off unless configured ------------------------------------------------------------------

FOREIGN = "https://evil.example"


def granted(response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


@pytest.mark.parametrize("method,path", [("GET", "/models/clothes/v1"), ("POST", "/models/clothes/v1"), ("POST", "/classify"), ("GET", "/readyz")])
def test_no_cors_grant_by_default(url, method, path):
    response = requests.request(method, f"{url}{path}", json=TYPED, headers={"Origin": FOREIGN}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert granted(response) == {}


@pytest.mark.parametrize("path,allowed", [("/models/clothes/v1", "GET or HEAD or POST"), ("/classify", "Method Not Allowed")])
def test_no_preflight_granted_by_default(url, path, allowed):
    headers = {"Origin": FOREIGN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    response = requests.options(f"{url}{path}", headers=headers, timeout=TIMEOUT)
    assert_error(response, 405, allowed)
    assert granted(response) == {}


# --- the API token, with CORS on for one origin ---------------------------------------------------

TOKEN = "e2e-token-" + "7" * 24
TOKEN_ENV = "MODEL_SERVER_E2E_API_TOKEN"
APP_ORIGIN = "https://app.example"
MISSING = "missing API token; send the header Authorization: Bearer <token>"


@pytest.fixture(scope="module")
def guarded(trained_versions, tmp_path_factory):
    """Token required (read from TOKEN_ENV), CORS on for APP_ORIGIN; serves v1 only."""
    tmp = tmp_path_factory.mktemp("guarded")
    config = write_config(tmp / "configuration.yaml", {MODEL_NAME: clothes(["v1"], {"stable": "v1"})}, security={"api_token_env": TOKEN_ENV})
    raw = yaml.safe_load(config.read_text())
    raw["entry"]["http"] = {
        "cors": {
            "enabled": True,
            "access_control_allow_origins": [APP_ORIGIN],
            "access_control_allow_methods": ["GET", "POST"],
            "access_control_allow_headers": ["authorization", "content-type"],
        }
    }
    config.write_text(yaml.safe_dump(raw))
    with pytest.MonkeyPatch.context() as env:
        env.setenv(TOKEN_ENV, TOKEN)  # the server's environment only; the file names the variable
        server = Server(config, free_port(), tmp / "serve.log")
    try:
        server.wait_ready()
        yield server.url
    finally:
        server.stop()


PROTECTED = [
    ("GET", "/models"),
    ("GET", "/models/clothes"),
    ("GET", "/models/clothes/v1"),
    ("POST", "/models/clothes/v1"),
    ("GET", "/models/clothes/v1/report"),
    ("GET", "/models/clothes/v1/drift"),
    ("POST", "/classify"),
    ("POST", "/classify_image"),
    ("GET", "/docs.json"),
    ("GET", "/schema.json"),
    ("GET", "/docs"),
    ("POST", "/"),
    ("POST", "/models/clothes/v1/input.png"),
    ("GET", "/nowhere"),
]


@pytest.mark.parametrize("method,path", PROTECTED)
def test_token_required(guarded, method, path):
    body = TYPED
    response = requests.request(method, f"{guarded}{path}", json=body, timeout=TIMEOUT)
    assert_error(response, 401, MISSING)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="model-server"'
    wrong = requests.request(method, f"{guarded}{path}", json=body, headers={"Authorization": f"Bearer {TOKEN[:-1]}x"}, timeout=TIMEOUT)
    assert_error(wrong, 401, "invalid API token")
    assert wrong.headers["WWW-Authenticate"] == 'Bearer realm="model-server", error="invalid_token"'


def test_token_opens_the_routes(guarded):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert requests.get(f"{guarded}/models/clothes/v1", headers=auth, timeout=TIMEOUT).json()["version"] == "v1"
    predicted = requests.post(f"{guarded}/models/clothes/stable", json={"image": IMAGE}, headers=auth, timeout=TIMEOUT)
    assert predicted.status_code == 200 and predicted.json()["version"] == "v1"
    assert requests.get(f"{guarded}/models/clothes/v1/report", headers=auth, timeout=TIMEOUT).status_code == 200
    assert requests.get(f"{guarded}/docs.json", headers=auth, timeout=TIMEOUT).status_code == 200
    # errors behind the token keep their own status and envelope
    assert_error(requests.get(f"{guarded}/models/clothes/V1", headers=auth, timeout=TIMEOUT), 404, MALFORMED)


def test_generated_client_with_the_token(guarded):
    import bentoml

    with bentoml.SyncHTTPClient(guarded, token=TOKEN) as client:
        assert client.classify(images=[IMAGE], model=MODEL_NAME, version="v1")["version"] == "v1"


@pytest.mark.parametrize("path", ["/", "/page/app.mjs", "/page/logic.mjs", "/page/page.css"])
def test_the_page_files_open_without_token(guarded, path):
    """They hold no data: a browser loads the page, which then asks for the token (tests/e2e/test_page.py)."""
    response = requests.get(f"{guarded}{path}", timeout=TIMEOUT)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/healthz", "/metrics"])
def test_health_and_metrics_open_without_token(guarded, path):
    response = requests.get(f"{guarded}{path}", timeout=TIMEOUT)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/models/clothes/v1", "/classify"])
def test_cors_preflight_granted_to_the_listed_origin(guarded, path):
    headers = {"Origin": APP_ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"}
    response = requests.options(f"{guarded}{path}", headers=headers, timeout=TIMEOUT)  # browsers send no token here
    assert response.status_code == 200, response.text
    assert response.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()


@pytest.mark.parametrize("path", ["/models/clothes/v1", "/classify"])
def test_cors_preflight_refused_to_other_origins(guarded, path):
    headers = {"Origin": FOREIGN, "Access-Control-Request-Method": "POST"}
    response = requests.options(f"{guarded}{path}", headers=headers, timeout=TIMEOUT)
    assert_error(response, 400, "Disallowed CORS origin")
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("method,path", [("GET", "/models/clothes/v1"), ("POST", "/models/clothes/v1"), ("POST", "/classify")])
def test_cors_answers_carry_the_grant(guarded, method, path):
    body = TYPED
    ok = requests.request(method, f"{guarded}{path}", json=body, headers={"Origin": APP_ORIGIN, "Authorization": f"Bearer {TOKEN}"}, timeout=TIMEOUT)
    assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    # a 401 carries it too, so that the page can read why
    refused = requests.request(method, f"{guarded}{path}", json=body, headers={"Origin": APP_ORIGIN}, timeout=TIMEOUT)
    assert_error(refused, 401, MISSING)
    assert refused.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    foreign = requests.request(method, f"{guarded}{path}", json=body, headers={"Origin": FOREIGN, "Authorization": f"Bearer {TOKEN}"}, timeout=TIMEOUT)
    assert foreign.status_code == 200 and "Access-Control-Allow-Origin" not in foreign.headers


# --- monitoring data logs are bounded ---------------------------------------------------------------

MAX_BYTES = 200_000
BACKUPS = 2
FLOOD_IMAGES = 3000


@pytest.fixture(scope="module")
def tiny_rotation(trained_versions, tmp_path_factory):
    """Every prediction logged, into files rotated at MAX_BYTES keeping BACKUPS; serves v1 only."""
    tmp = tmp_path_factory.mktemp("rotation")
    logging_config = yaml.safe_load((ROOT / "serving/monitoring-logging.yaml").read_text())
    for handler in logging_config["handlers"].values():
        handler.update(maxBytes=MAX_BYTES, backupCount=BACKUPS)
    (tmp / "monitoring-logging.yaml").write_text(yaml.safe_dump(logging_config))
    monitoring = {**yaml.safe_load((ROOT / "configuration.yaml").read_text())["monitoring"], "log_sample_rate": 1.0, "log_max_per_second": 1_000_000}
    config = write_config(tmp / "configuration.yaml", {MODEL_NAME: clothes(["v1"], {"stable": "v1"})}, monitoring=monitoring)
    raw = yaml.safe_load(config.read_text())
    raw["entry"]["monitoring"]["options"]["log_config_file"] = str(tmp / "monitoring-logging.yaml")
    config.write_text(yaml.safe_dump(raw))
    server = Server(config, free_port(), tmp / "serve.log")
    try:
        server.wait_ready()
        yield server.url, tmp / "monitoring", raw["entry"]["workers"]
    finally:
        server.stop()


def test_monitoring_logs_stay_bounded_under_a_flood(tiny_rotation):
    url, monitoring, workers = tiny_rotation
    batch = LIMITS["max_batch_images"]
    images = np.random.default_rng(0).integers(0, 256, size=(batch, *IMAGE_SHAPE), dtype=np.uint8).tobytes()
    data = monitoring / "predictions" / "data"
    largest_data, largest_all, logged, started = 0, 0, 0, time.monotonic()
    while logged < FLOOD_IMAGES and time.monotonic() - started < 120:
        response = requests.post(f"{url}/models/clothes/v1", data=images, headers={"content-type": "application/octet-stream"}, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        logged += batch
        largest_data = max(largest_data, size_of(data))
        largest_all = max(largest_all, size_of(monitoring))
    assert logged >= FLOOD_IMAGES, f"only {logged} images in 120 s"
    kept = settled(data)
    logs = {name.split(".log")[0] for name in kept}  # one data.<worker>.log per worker
    assert len(logs) == workers and kept == sorted(f"{log}.log{suffix}" for log in logs for suffix in ["", ".1", ".2"]), kept  # rotated, no more
    records = [len(line) + 1 for f in data.iterdir() for line in f.read_bytes().splitlines()]
    per_worker = (BACKUPS + 1) * MAX_BYTES + max(records)  # each file stops below MAX_BYTES; one record may tip it
    assert logged * min(records) > 2 * workers * per_worker, "the flood must write well past what is kept"
    assert largest_data <= workers * per_worker, (largest_data, per_worker)
    assert largest_all <= 2 * workers * per_worker, (largest_all, per_worker)  # with the schema log, rotated the same way


def settled(directory: Path, quiet: float = 0.5, timeout: float = 10) -> list[str]:
    """The file names in ``directory`` once the log writer's thread is done: it writes (and rotates) after the
    answers, so a listing taken mid-rotation can miss the file being renamed."""
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            listing = sorted((f.name, f.stat().st_size) for f in directory.iterdir())
        except FileNotFoundError:  # renamed between the listing and its stat: rotating now
            listing = None
        if listing is not None and listing == seen:
            break
        seen = listing
        time.sleep(quiet)
    return [name for name, _ in seen or []]


def size_of(directory: Path) -> int:
    """Bytes of the files under ``directory``; a file rotated away between listing and reading counts as gone."""
    total = 0
    for f in directory.rglob("*"):
        with contextlib.suppress(FileNotFoundError):
            total += f.stat().st_size if f.is_file() else 0
    return total
