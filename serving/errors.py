"""One error hierarchy for the HTTP side. Every error leaves as ``{"error": "..."}`` with its status.

Status policy:

- 400: the body cannot be read as its declared type (invalid JSON, empty body, broken multipart);
- 401: a token is configured and the request lacks it or has another (serving/auth.py);
  carries ``WWW-Authenticate: Bearer``;
- 403: an admin operation (load, unload, traffic, shadow) while they are off: no token configured;
- 404: unknown model, version or route (the message lists what exists);
- 405: a method the route does not offer; carries ``Allow``;
- 408: the body did not arrive in time (a slow or stalled client);
- 409: an admin operation that would leave an alias without a version, or names a version not loaded;
- 413: the body exceeds the configured size limit;
- 415: a content type the route does not accept (pickle is never accepted);
- 422: the body parses but its fields are wrong (missing field, shape, range, NaN, not an image);
- 503: the version cannot answer now (still loading, failed to load, overloaded); carries Retry-After.
"""

from __future__ import annotations

import json

from starlette.responses import Response

from models.preprocessing import InvalidInput as InvalidPixels


class ServingError(Exception):
    status = 500

    def __init__(self, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def to_response(self) -> Response:
        return error_response(self.status, self.message, self.headers)


class BadRequest(ServingError):
    status = 400


class Unauthorized(ServingError):
    status = 401


class Forbidden(ServingError):
    status = 403


class NotFound(ServingError):
    status = 404


class ModelNotFound(NotFound):
    def __init__(self, name: str, known: list[str]):
        super().__init__(f"unknown model {name!r}; available: {', '.join(known) or 'none'}")
        self.name = name


class VersionNotFound(NotFound):
    def __init__(self, name: str, version: str, known: list[str]):
        super().__init__(f"unknown version {version!r} of model {name}; available: {', '.join(known)}")
        self.name, self.version = name, version


class MethodNotAllowed(ServingError):
    """Carries the ``Allow`` header RFC 9110 requires on a 405."""

    status = 405

    def __init__(self, method: str, allowed: list[str]):
        super().__init__(f"method {method} not allowed here; use {' or '.join(allowed)}", {"Allow": ", ".join(allowed)})


class RequestTimeout(ServingError):
    status = 408


class Conflict(ServingError):
    status = 409


class PayloadTooLarge(ServingError):
    status = 413


class UnsupportedMediaType(ServingError):
    status = 415


class InvalidInput(ServingError):
    status = 422


class Unavailable(ServingError):
    status = 503

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message, {"Retry-After": str(retry_after)})


class Overloaded(Unavailable):
    """The version's queue is full: shed at once rather than time out."""


class GatewayTimeout(ServingError):
    """Not answered within the entry's ``traffic.timeout``."""

    status = 504


def error_body(message: str) -> bytes:
    """The one envelope's bytes, the same from every layer that answers an error."""
    return json.dumps({"error": message}).encode()


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(error_body(message), status_code=status, headers=headers, media_type="application/json")


def as_serving_error(exc: Exception) -> ServingError:
    """Map the model package's input errors onto HTTP ones; anything else stays a 500."""
    if isinstance(exc, ServingError):
        return exc
    if isinstance(exc, InvalidPixels):
        return InvalidInput(str(exc))
    return ServingError("internal error; see the server log")
