"""Request ids: every answer on every protocol carries one (``X-Request-Id``; ``id`` in OIP v2; gRPC
trailing metadata ``x-request-id``), and sampled payload records carry it too, so that a client, a log
line and a data-log record of one request can be matched.

A client's own id is kept when it is well formed (1 to 128 characters of letters, digits and
``._:-``, starting with a letter or digit); anything else, or none, gets a new one (a random UUID's hex).

    >>> request_id("order-1234:try-2")   # kept
    >>> request_id("x" * 500)            # replaced: 32 hex digits
"""

from __future__ import annotations

import re
import uuid

HEADER = "X-Request-Id"
METADATA = HEADER.lower()  # gRPC metadata keys are lower-case
WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def request_id(given: str | None) -> str:
    """The client's id when it is well formed, else a new one."""
    if given is not None and WELL_FORMED.fullmatch(given):
        return given
    return uuid.uuid4().hex
