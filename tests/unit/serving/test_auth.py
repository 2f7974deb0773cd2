"""The API token, checked by the front door (serving/frontdoor.py) before any route, driven by ASGI
messages over a stand-in app that answers every path.
(Where the token comes from, ``security`` in the configuration: tests/unit/config/test_settings.py.)"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import pytest

from config import Limits, Security
from serving.auth import bearer_token
from serving.frontdoor import FrontDoor
from serving.paths import HEALTH_PATHS, INFRASTRUCTURE_PATHS, METRICS_PATH, PAGE_PATHS, SPEC_PATH
from serving.protocols import ProtocolRoutes, Router

TOKEN = "s3cret-token-0123456789"
MISSING = "missing API token; send the header Authorization: Bearer <token>"


async def reached(scope, receive, send):
    """The app behind the middleware: answering means the request got through."""
    if scope["type"] == "websocket":
        return await send({"type": "websocket.accept"})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"reached"})


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str

    def json(self):
        return json.loads(self.text)


class Client:
    def __init__(self, token: str | None = TOKEN, protect_metrics: bool = False):
        self.app = FrontDoor(reached, ProtocolRoutes(Router([])), Limits(), Security(api_token=token, protect_metrics=protect_metrics))

    def request(self, path: str, method: str = "GET", authorization: str | None = None, kind: str = "http") -> list[dict]:
        headers = [(b"authorization", authorization.encode())] if authorization is not None else []
        scope = {"type": kind, "method": method, "path": path, "headers": headers}
        first = {"type": "websocket.connect"} if kind == "websocket" else {"type": "http.request", "body": b"{}"}
        sent: list[dict] = []

        async def receive():
            return first

        async def send(message):
            sent.append(message)

        asyncio.run(self.app(scope, receive, send))
        return sent

    def get(self, path: str, method: str = "GET", authorization: str | None = None) -> Answer:
        start, body = self.request(path, method, authorization)
        headers = {k.decode(): v.decode() for k, v in start["headers"]}
        return Answer(start["status"], headers, body["body"].decode())


def assert_refused(response: Answer, message: str, error: str | None = None):
    assert response.status == 401, response.text
    assert response.json() == {"error": message}
    challenge = 'Bearer realm="model-server"' + (f', error="{error}"' if error else "")
    assert response.headers["www-authenticate"] == challenge
    assert response.headers["content-type"] == "application/json"


PROTECTED = [
    "/models",
    "/models/clothes",
    "/models/clothes/v1",
    "/models/clothes/v1/report",
    "/models/clothes/v1/drift",
    "/models/colours/stable",
    "/summary",
    "/inference",
    "/classify",
    "/classify_image",
    SPEC_PATH,
    "/docs",
    "/schema.json",
    "/page/logic.test.mjs",
    "/page/",
    "/models/clothes/v1/input.png",
    "/livez/",
    "/LIVEZ",
    "/metrics/",
    "/nowhere",
]


@pytest.mark.parametrize("path", PROTECTED)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_protected_paths_need_the_token(path, method):
    client = Client()
    assert_refused(client.get(path, method), MISSING)
    assert client.get(path, method, authorization=f"Bearer {TOKEN}").text == "reached"


@pytest.mark.parametrize(
    "header",
    [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer x", f"Bearer {TOKEN.upper()}", f"Bearer {TOKEN} {TOKEN}"],
)
def test_wrong_tokens_are_refused(header):
    assert_refused(Client().get("/models", authorization=header), "invalid API token", "invalid_token")


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer   ", f"Basic {TOKEN}", TOKEN, f"Token {TOKEN}"])
def test_no_bearer_credentials_is_missing(header):
    assert_refused(Client().get("/models", authorization=header), MISSING)


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER   {TOKEN}  "])
def test_the_scheme_is_case_insensitive(header):
    assert Client().get("/models/clothes/v1", authorization=header).text == "reached"


@pytest.mark.parametrize("path", sorted(INFRASTRUCTURE_PATHS))
def test_health_checks_and_metrics_stay_open_by_default(path):
    assert Client().get(path).text == "reached"


def test_the_open_paths_are_the_health_checks_and_metrics():
    assert HEALTH_PATHS == {"/livez", "/readyz", "/healthz", "/v2/health/live", "/v2/health/ready"} and METRICS_PATH == "/metrics"
    assert INFRASTRUCTURE_PATHS == HEALTH_PATHS | {METRICS_PATH} and SPEC_PATH not in INFRASTRUCTURE_PATHS


@pytest.mark.parametrize("path", sorted(PAGE_PATHS))
def test_the_page_files_are_open_to_read_only(path):
    client = Client(protect_metrics=True)
    assert client.get(path).text == "reached" and client.get(path, method="HEAD").text == "reached"
    assert_refused(client.get(path, method="POST"), MISSING)


def test_protect_metrics():
    client = Client(protect_metrics=True)
    assert_refused(client.get("/metrics"), MISSING)
    assert client.get("/metrics", authorization=f"Bearer {TOKEN}").text == "reached"
    for path in HEALTH_PATHS:
        assert client.get(path).text == "reached"


@pytest.mark.parametrize(
    "headers,expected",
    [
        ([(b"authorization", b"Bearer abc")], b"abc"),
        ([(b"Authorization", b"  bearer   abc  ")], b"abc"),
        ([(b"authorization", b"Basic abc")], None),
        ([(b"authorization", b"Bearer")], None),
        ([(b"x-token", b"Bearer abc")], None),
        ([], None),
    ],
)
def test_bearer_token(headers, expected):
    assert bearer_token(headers) == expected


def test_no_token_configured_lets_everything_through():
    client = Client(token=None)
    assert client.get("/models").text == "reached" and client.get("/classify", "POST").text == "reached"


def test_websockets_need_the_token_too():
    client = Client()
    assert client.request("/anything", kind="websocket") == [{"type": "websocket.close", "code": 1008}]
    assert client.request("/anything", authorization=f"Bearer {TOKEN}", kind="websocket") == [{"type": "websocket.accept"}]
