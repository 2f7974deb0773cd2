"""The API token middleware and its settings, driven by ASGI messages over a stand-in app that answers every path."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import pytest
import yaml

from serving.auth import ApiToken
from serving.settings import MIN_TOKEN_CHARS, Security, SettingsError, load_settings

TOKEN = "s3cret-token-0123456789"
ENV = "CLOTHES_TEST_TOKEN"
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
        self.app = ApiToken(reached, Security(api_token=token, protect_metrics=protect_metrics))

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
    challenge = 'Bearer realm="clothes"' + (f', error="{error}"' if error else "")
    assert response.headers["www-authenticate"] == challenge
    assert response.headers["content-type"] == "application/json"


PROTECTED = ["/models", "/models/clothes", "/models/clothes/v1", "/models/clothes/v1/report", "/models/clothes/v1/drift",
             "/classify", "/classify_image", "/docs.json", "/", "/schema.json", "/livez/", "/nowhere"]


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


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/healthz", "/metrics"])
def test_health_checks_and_metrics_stay_open_by_default(path):
    assert Client().get(path).text == "reached"


def test_protect_metrics():
    client = Client(protect_metrics=True)
    assert_refused(client.get("/metrics"), MISSING)
    assert client.get("/metrics", authorization=f"Bearer {TOKEN}").text == "reached"
    assert client.get("/readyz").text == "reached"


def test_no_token_configured_lets_everything_through():
    client = Client(token=None)
    assert client.get("/models").text == "reached" and client.get("/classify", "POST").text == "reached"


def test_websockets_need_the_token_too():
    client = Client()
    assert client.request("/anything", kind="websocket") == [{"type": "websocket.close", "code": 1008}]
    assert client.request("/anything", authorization=f"Bearer {TOKEN}", kind="websocket") == [{"type": "websocket.accept"}]


# --- settings: clothes.security ---------------------------------------------------------------


def write(tmp_path, security) -> str:
    path = tmp_path / "configuration.yaml"
    path.write_text(yaml.safe_dump({"clothes": {"versions": ["v1"], "security": security}}))
    return path


def test_off_by_default_and_in_the_shipped_configuration(monkeypatch):
    monkeypatch.delenv("CLOTHES_API_TOKEN", raising=False)
    assert load_settings().security == Security()
    assert Security().api_token is None and Security().protect_metrics is False


def test_token_comes_from_the_named_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, f"  {TOKEN}\n")  # as a mounted secret file often has it
    security = load_settings(write(tmp_path, {"api_token_env": ENV, "protect_metrics": True})).security
    assert security == Security(api_token=TOKEN, api_token_env=ENV, protect_metrics=True)
    assert TOKEN not in repr(security)


@pytest.mark.parametrize(
    "security,value,message",
    [
        ({"api_token_env": ENV}, None, f"security.api_token_env names {ENV}, but {ENV} is not set"),
        ({"api_token_env": ENV}, "   ", f"security.api_token_env names {ENV}, but {ENV} is not set"),
        ({"api_token_env": ENV}, "x" * (MIN_TOKEN_CHARS - 1), f"{ENV} is shorter than {MIN_TOKEN_CHARS} characters"),
        ({"api_token": TOKEN}, None, "the token must not be in the file"),
        ({"protect_metrics": "no"}, None, "security.protect_metrics must be true or false, got 'no'"),
    ],
)
def test_misconfigured_security_stops_the_service(tmp_path, monkeypatch, security, value, message):
    if value is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, value)
    with pytest.raises(SettingsError, match="security") as error:
        load_settings(write(tmp_path, security))
    assert message in str(error.value)
