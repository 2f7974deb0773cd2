"""The web page's routes in-process (serving/protocols/page.py): its files, Swagger UI at /docs, and
the image as the model sees it, for the conftest's grey 28x28, colour 32x32x3 and tensor models."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from config import Security
from models.preprocessing import values_from_image
from serving.auth import TokenCheck
from serving.protocols import Router, page
from tests.unit.serving.conftest import assert_error, encoded, make_card, request_count

WEB = Path(page.__file__).resolve().parents[2] / "web"


def decoded(response) -> Image.Image:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


@pytest.fixture
def client(served):
    """Every protocol's routes behind the entry's middleware, as service.py serves them (serving/app.py)."""
    with TestClient(served.app) as client:
        client.portal.call(served.probe)
        yield client


# --- the page's files ------------------------------------------------------------------------------


@pytest.mark.parametrize("static", page.STATIC_FILES, ids=lambda s: s.path)
def test_each_file_is_served_with_its_type_and_validators(client, static):
    response = client.get(static.path)
    assert response.status_code == 200
    assert response.content == (WEB / static.file).read_bytes()
    assert response.headers["content-type"] == static.content_type
    assert response.headers["cache-control"] == "no-cache" and response.headers["x-content-type-options"] == "nosniff"
    etag = response.headers["etag"]
    again = client.get(static.path, headers={"If-None-Match": f'"other", {etag}'})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert client.get(static.path, headers={"If-None-Match": '"other"'}).status_code == 200
    head = client.head(static.path)
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) == len(response.content)


def test_the_page_is_at_the_root_with_a_policy_of_this_origin_only(client):
    response = client.get("/")
    assert "<title>Model server</title>" in response.text
    policy = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["script-src"] == "'self'" and policy["connect-src"] == "'self'"
    assert response.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" not in client.get("/page/app.mjs").headers  # the policy is the document's


def test_the_page_is_self_contained():
    """Every file it loads is one the routes serve; no file names another origin."""
    served_paths = {static.path for static in page.STATIC_FILES}
    index = (WEB / "index.html").read_text()
    references = re.findall(r'(?:src|href)="([^"#]+)"', index)
    assert {"/page/app.mjs", "/page/page.css", "/docs"} <= set(references)
    assert all(ref in served_paths or ref.startswith("data:") for ref in references), references
    for module in ("app.mjs", "logic.mjs"):
        for imported in re.findall(r'^import .* from "\./([^"]+)";$', (WEB / module).read_text(), re.M):
            assert f"/page/{imported}" in served_paths, imported
    for static in page.STATIC_FILES:
        text = (WEB / static.file).read_text()
        origins = set(re.findall(r"\b(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text)) - {"http://www.w3.org"}  # the SVG namespace, not a download
        assert not origins, (static.file, origins)


def test_files_of_web_that_are_not_the_page_are_not_served(client):
    for path in ("/page/logic.test.mjs", "/page/../service.py", "/page/", "/page/index.html", "/web/app.mjs"):
        assert_error(client.get(path), 404, "Not Found")


def test_swagger_ui_moves_to_docs_over_the_published_document(client):
    html = client.get("/docs").text
    assert 'url: "/docs.json"' in html and "googletagmanager" not in html
    from bentoml._internal import server

    assets = Path(server.__file__).parent / "static_content"
    for asset in re.findall(r'(?:src|href)="/static_content/([^"]+)"', html):
        assert (assets / asset).is_file(), f"BentoML no longer bundles {asset}"
    assert client.get("/docs/").status_code == 200  # absolute asset paths: a trailing slash works too


def test_a_missing_file_stops_start_up(tmp_path, served):
    (tmp_path / "index.html").write_text("<!doctype html>")
    with pytest.raises(FileNotFoundError, match="app.mjs.*bentofile.yaml must include web"):
        page.routes(served.plane.config, web_dir=tmp_path)


def test_the_page_files_open_together_or_not_at_all():
    """With the API token on, the page's own files (no data) may be left open by the deployment's
    allow-list (serving/paths.py), all of them or none; Swagger UI and every data route never are."""
    token = TokenCheck(Security(api_token="t0ken", protect_metrics=False))
    opened = page.STATIC_PATHS & token.open_paths
    assert opened in (frozenset(), page.STATIC_PATHS)
    assert "/docs" not in token.open_paths and "/docs" not in page.STATIC_PATHS
    assert not {p for p in token.open_paths if p.startswith("/models")}


# --- the image as the model sees it ------------------------------------------------------------------


def test_an_upload_is_shown_exactly_as_predict_decodes_it(served, client):
    photo = np.zeros((90, 60, 3), dtype=np.uint8)
    photo[20:70, 10:50] = (200, 40, 90)
    upload = encoded(photo)
    image = decoded(client.post("/models/grey/v1/input.png", files={"image": ("p.png", upload, "image/png")}))
    assert image.mode == "L" and image.size == (28, 28)
    expected = values_from_image(upload, served.registry.resolve("grey", "v1").card)
    assert np.array_equal(np.asarray(image), expected[0, ..., 0])
    assert not served.runners["grey", "v1"].calls  # no inference


def test_colour_models_get_a_colour_image_of_their_size(client):
    photo = np.zeros((40, 80, 3), dtype=np.uint8)
    photo[..., 0] = 220
    image = decoded(client.post("/models/colour/v1/input.png", files={"image": ("p.jpg", encoded(photo, "JPEG"), "image/jpeg")}))
    assert image.mode == "RGB" and image.size == (32, 32)
    red, green, _ = np.asarray(image)[16, 16]
    assert red > 180 and green < 40


def test_inversion_as_predict_does_it(client):
    light = encoded(np.full((28, 28), 250, dtype=np.uint8))
    auto = decoded(client.post("/models/grey/stable/input.png", files={"image": ("l.png", light, "image/png")}))
    assert np.asarray(auto).max() == 5  # grey's card inverts light backgrounds
    kept = decoded(client.post("/models/grey/v1/input.png?invert=false", files={"image": ("l.png", light, "image/png")}))
    assert np.asarray(kept).min() == 250
    field = decoded(client.post("/models/grey/v1/input.png", files={"image": ("l.png", light, "image/png")}, data={"invert": "false"}))
    assert np.asarray(field).min() == 250


@pytest.mark.parametrize(
    "image",
    [
        [[r * 9 for _ in range(28)] for r in range(28)],
        [[[r * 9] for _ in range(28)] for r in range(28)],
        [[r * 9 + 0.4 for _ in range(28)] for r in range(28)],
    ],
)
def test_a_json_example_is_shown_as_its_levels(client, image):
    shown = np.asarray(decoded(client.post("/models/grey/v1/input.png", json={"image": image})))
    assert shown.shape == (28, 28) and shown[:, 0].tolist() == [r * 9 for r in range(28)]


def test_values_in_other_ranges_span_the_grey_levels():
    card = make_card("unit", "v1")
    unit = card.model_copy(update={"input": card.input.model_copy(update={"value_range": (0.0, 1.0)})})
    levels = np.asarray(Image.open(io.BytesIO(page.encode_png(np.linspace(0, 1, 784, dtype=np.float32).reshape(28, 28, 1), unit))))
    assert levels.min() == 0 and levels.max() == 255 and levels.dtype == np.uint8
    free = card.model_copy(update={"input": card.input.model_copy(update={"value_range": None})})
    flat = np.asarray(Image.open(io.BytesIO(page.encode_png(np.full((28, 28, 1), -3.0, dtype=np.float32), free))))
    assert flat.max() == 0
    spread = np.asarray(Image.open(io.BytesIO(page.encode_png(np.arange(-392, 392, dtype=np.float32).reshape(28, 28, 1), free))))
    assert spread.min() == 0 and spread.max() == 255


def test_errors_are_the_envelope_with_the_status_policy(client):
    path = "/models/grey/v1/input.png"
    assert_error(client.post(path, files={"image": ("notes.txt", b"not an image at all", "text/plain")}), 422, "image: not a decodable image")
    assert_error(client.post(path, files={"other": ("p.png", b"x", "image/png")}), 422, "image: missing")
    assert_error(client.post(path, content=b"x", headers={"content-type": "text/plain"}), 415, "text/plain", "application/json, multipart/form-data")
    assert_error(client.post(path, content=b"\x00" * 784, headers={"content-type": "application/octet-stream"}), 415)
    assert_error(client.post(path, json={"images": [[[0] * 28] * 28] * 2}), 422, "expected one 28x28 image, got 2")
    assert_error(client.post(path, json={"image": [[0] * 27] * 28}), 422, "image", "28x28")
    assert_error(client.post(path, content=b"{", headers={"content-type": "application/json"}), 400, "invalid JSON")
    assert_error(client.post(path + "?invert=maybe", json={"image": [[0] * 28] * 28}), 422, "invert")
    assert_error(client.post(path, content=b"0" * 300_000, headers={"content-type": "application/json"}), 413)
    assert_error(client.post("/models/vector/v1/input.png", json={"input": [1, 2, 3, 4]}), 404, "vector:v1 takes tensor values, not images")
    assert_error(client.post("/models/grey/v9/input.png", json={}), 404, "unknown version 'v9'")
    assert_error(client.post("/models/grey/v3/input.png", json={}), 503, "not in the model store")
    response = client.get(path)
    assert_error(response, 405, "GET")
    assert response.headers["allow"] == "POST"


def test_requests_are_counted_under_the_page_protocol(client):
    before = request_count(model="grey", version="v1", protocol="page", endpoint="input_image", status="200")
    pages = request_count(protocol="page", endpoint="page", status="200")
    response = client.post("/models/grey/stable/input.png", json={"image": [[0] * 28] * 28})
    assert response.headers["x-model-version"] == "v1"  # the version whose card decoded it
    client.get("/")
    assert request_count(model="grey", version="v1", protocol="page", endpoint="input_image", status="200") == before + 1
    assert request_count(protocol="page", endpoint="page", status="200") == pages + 1


# --- the published document -------------------------------------------------------------------------


class Described:
    """A served model as serving/openapi.py's route_paths sees one (its ``Served``), from a card."""

    def __init__(self, card, versions=("v1",), aliases=None):
        self.name, self.card = card.name, card
        self.versions, self.aliases = list(versions), dict(aliases or {})
        self.names = [*self.versions, *self.aliases]

    def ref(self, schema: str) -> dict:
        return {"$ref": f"#/components/schemas/{self.name}.{schema}"}


def test_routes_describe_themselves_for_the_document(served):
    from serving.openapi import route_paths

    config = served.plane.config
    models = [Described(served.registry.resolve(name, "v1").card) for name in ("grey", "colour", "vector")]
    paths = route_paths(Router(page.routes(config)), models, config)
    for static in page.STATIC_FILES:
        operation = paths[static.path]["get"]
        assert operation["tags"] == ["Page"] and list(operation["responses"]["200"]["content"]) == [static.content_type.split(";")[0]]
    ids = [paths[s.path]["get"]["operationId"] for s in page.STATIC_FILES]
    assert len(set(ids)) == len(ids)
    grey = paths["/models/grey/{version}/input.png"]
    assert grey["parameters"][0]["schema"]["enum"] == ["v1"]
    assert set(grey["post"]["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert set(grey["post"]["responses"]) == {"200", "400", "404", "413", "415", "422"}
    assert list(grey["post"]["responses"]["200"]["content"]) == ["image/png"]
    vector = paths["/models/vector/{version}/input.png"]["post"]
    assert set(vector["responses"]) == {"404"} and "requestBody" not in vector
