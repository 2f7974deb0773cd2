"""An optional API token on the entry service: ``Authorization: Bearer <token>``.

Off unless ``security.api_token_env`` names an environment variable holding the token
(config/settings.py; the token never sits in the configuration file). With a token, every path
needs it except:

- the health checks ``/livez``, ``/readyz``, ``/healthz``: orchestrators probe them without
  credentials, and they tell nothing but up or down;
- ``/metrics``, unless ``protect_metrics`` is true: scrapers usually reach it from inside the
  cluster, and configuring one with a token is a choice of the deployment;
- the web page's own files (``paths.PAGE_PATHS``: ``/`` and its script and styles), to GET and HEAD
  only: a browser cannot send the header when it loads a page, and they hold no data; the page then
  asks for the token and sends it with every request.

Everything else needs the token: every protocol's routes (predictions, reports, drift, listings,
model info, the image as the model sees it), the typed APIs ``/classify`` and ``/classify_image``,
and the docs (``/docs``, ``/docs.json``, ``/schema.json``). Open paths are an allow-list, so a route added later is protected by default, and
a caller without the token learns nothing of the deployment, not even which versions it serves.

CORS preflights never reach this check when CORS is on: ``middleware.cors`` answers them outside it
(browsers send no credentials in a preflight).
"""

from __future__ import annotations

import hmac

from serving.errors import error_response
from serving.paths import HEALTH_PATHS, METRICS_PATH, PAGE_PATHS

REALM = 'Bearer realm="model-server"'


class TokenCheck:
    """Whether a request may pass: None, or the refusal to answer with (401 and ``WWW-Authenticate``)."""

    def __init__(self, security):
        self.token = security.api_token.encode() if security.api_token else None
        self.open_paths = HEALTH_PATHS if security.protect_metrics else HEALTH_PATHS | {METRICS_PATH}

    def refusal(self, scope):
        if self.token is None or scope["type"] not in ("http", "websocket") or scope["path"] in self.open_paths:
            return None
        if scope["type"] == "http" and scope["path"] in PAGE_PATHS and scope["method"] in ("GET", "HEAD"):
            return None
        presented = bearer_token(scope["headers"])
        if presented is not None and hmac.compare_digest(presented, self.token):
            return None
        if scope["type"] == "websocket":
            return _close_policy_violation
        if presented is None:
            message, challenge = "missing API token; send the header Authorization: Bearer <token>", REALM
        else:
            message, challenge = "invalid API token", f'{REALM}, error="invalid_token"'
        return error_response(401, message, {"WWW-Authenticate": challenge})


async def _close_policy_violation(scope, receive, send):
    await send({"type": "websocket.close", "code": 1008})


def bearer_token(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The credentials of an ``Authorization: Bearer ...`` header (scheme case-insensitive), or None."""
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, credentials = value.strip().partition(b" ")
            return credentials.strip() if scheme.lower() == b"bearer" and credentials.strip() else None
    return None
