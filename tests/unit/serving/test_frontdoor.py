"""serving/frontdoor.py: shedding, the token, a protocol route's body bounded in size and time, and
the other routes counted under bounded labels, driven with ASGI messages."""

from __future__ import annotations

import asyncio
import json

from config import Limits, Security
from serving.frontdoor import FrontDoor
from serving.monitoring import REQUESTS
from serving.paths import INFRASTRUCTURE_PATHS
from serving.protocols import ProtocolRoutes, Route, Router, json_reply


async def echo_length(plane, request, name, version):
    return json_reply({"bytes": len(await request.body())})


async def hold(plane, request):
    await GATE.wait()
    return json_reply({"held": True})


GATE = asyncio.Event()
ROUTER = Router([Route("/models/{name}/{version}", {"POST": echo_length}, "course"), Route("/hold", {"GET": hold}, "course")])


class Plane:
    def metric_labels(self, name, version):
        return name or "unknown", version or "unknown"


async def not_ours(scope, receive, send):
    await send({"type": "http.response.start", "status": 404 if scope["path"] != "/livez" else 200, "headers": []})
    await send({"type": "http.response.body", "body": b"plain"})


def door(max_requests=4, max_body_bytes=10, body_seconds=0.2, token=None):
    limits = Limits(max_requests_in_flight=max_requests, max_body_bytes=max_body_bytes, body_timeout_seconds=body_seconds)
    return FrontDoor(not_ours, ProtocolRoutes(ROUTER, plane=Plane), limits, Security(api_token=token))


async def request(app, path, method="POST", chunks=(b"",), headers=(), gap=0.0):
    scope = {"type": "http", "method": method, "path": path, "headers": list(headers), "query_string": b""}
    pending = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent = []

    async def receive():
        if not pending:
            await asyncio.sleep(3600)
        if gap and len(pending) < len(chunks):
            await asyncio.sleep(gap)
        return pending.pop(0)

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, body


def run(app, *args, **kwargs):
    return asyncio.run(request(app, *args, **kwargs))


def test_a_protocol_route_gets_its_body_read_whole():
    assert run(door(), "/models/m/v1", chunks=(b"12345", b"67890"))[0:3:2] == (200, b'{"bytes":10}')


def test_a_body_over_the_limit_is_refused_by_its_declared_length_and_by_what_arrives():
    status, headers, body = run(door(), "/models/m/v1", chunks=(b"x",), headers=[(b"content-length", b"11")])
    assert status == 413 and headers["connection"] == "close" and json.loads(body) == {"error": "body of 11 bytes exceeds the limit of 10 bytes"}
    status, headers, body = run(door(), "/models/m/v1", chunks=(b"123456", b"789012"))
    assert status == 413 and headers["connection"] == "close" and "exceeds the limit of 10 bytes" in json.loads(body)["error"]


def test_a_body_arriving_too_slowly_is_refused_with_408():
    status, headers, body = run(door(body_seconds=0.1), "/models/m/v1", chunks=(b"12", b"34"), gap=0.5)
    assert status == 408 and headers["connection"] == "close" and json.loads(body) == {"error": "body not received within 0.1 seconds"}


def test_the_token_is_checked_before_any_route_and_health_stays_open():
    app = door(token="a-token-of-16-chars")
    status, headers, body = run(app, "/models/m/v1", chunks=(b"{}",))
    assert status == 401 and headers["www-authenticate"].startswith("Bearer") and "missing API token" in json.loads(body)["error"]
    assert run(app, "/models/m/v1", chunks=(b"{}",), headers=[(b"authorization", b"Bearer a-token-of-16-chars")])[0] == 200
    assert run(app, "/livez", method="GET")[0] == 200


def test_shedding_spares_the_infrastructure_paths():
    async def main():
        GATE.clear()
        app = door(max_requests=1)
        held = asyncio.ensure_future(request(app, "/hold", method="GET"))
        await asyncio.sleep(0.01)
        shed = await request(app, "/models/m/v1", chunks=(b"{}",))
        infrastructure = [await request(app, path, method="GET") for path in INFRASTRUCTURE_PATHS]
        GATE.set()
        return shed, infrastructure, await held

    shed, infrastructure, held = asyncio.run(main())
    assert shed[0] == 503 and shed[1]["retry-after"] == "1"
    assert all(status != 503 for status, _, _ in infrastructure) and held[0] == 200


def count(**labels) -> float:
    return sum(
        sample.value for metric in REQUESTS.collect() for sample in metric.samples if sample.name.endswith("_total") and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def test_paths_no_route_has_are_counted_as_other_so_clients_cannot_grow_the_label_set():
    app = door()
    before = count(protocol="bentoml", endpoint="other", status="404")
    for i in range(5):
        assert run(app, f"/random-{i}", method="GET")[0] == 404
    assert count(protocol="bentoml", endpoint="other", status="404") == before + 5
    assert not any("random" in sample.labels.get("endpoint", "") for metric in REQUESTS.collect() for sample in metric.samples)
    livez = count(protocol="bentoml", endpoint="/livez")
    run(app, "/livez", method="GET")
    assert count(protocol="bentoml", endpoint="/livez") == livez + 1


def test_a_protocol_route_not_answered_within_the_timeout_gets_504_and_the_door_goes_on():
    async def never(plane, request):
        await asyncio.sleep(3600)

    router = Router([Route("/never", {"GET": never}, "course"), Route("/models/{name}/{version}", {"POST": echo_length}, "course")])
    limits = Limits(max_requests_in_flight=4, max_body_bytes=10, body_timeout_seconds=1)
    app = FrontDoor(not_ours, ProtocolRoutes(router, plane=Plane, timeout=0.05), limits, Security())
    status, _, body = run(app, "/never", method="GET")
    assert (status, json.loads(body)) == (504, {"error": "not answered within 0.05 s (entry.traffic.timeout)"})
    assert app.in_flight == 0
    assert run(app, "/models/clothes/v1", chunks=(b"abc",))[0] == 200


def test_a_timeout_the_handler_raises_itself_is_not_the_deadline():
    async def times_out(plane, request):
        raise TimeoutError("the runner did not answer")

    routes = ProtocolRoutes(Router([Route("/slow", {"GET": times_out}, "course")]), plane=Plane, timeout=10)
    status, _, _ = run(FrontDoor(not_ours, routes, Limits(), Security()), "/slow", method="GET")
    assert status == 500


# --- request ids ----------------------------------------------------------------------------------------


GREY_BODY = {"image": [[30] * 28] * 28}  # class 0 of ten on the fake runner


def test_every_answer_carries_a_request_id_the_clients_when_well_formed(client):
    body = GREY_BODY
    kept = client.post("/models/grey/v1", json=body, headers={"X-Request-Id": "order-7:try-1"})
    assert kept.status_code == 200 and kept.headers["x-request-id"] == "order-7:try-1"
    for bad in ("has spaces", "x" * 129, "-starts-with-a-dash", "semi;colon"):
        replaced = client.post("/models/grey/v1", json=body, headers={"X-Request-Id": bad})
        assert replaced.headers["x-request-id"] != bad and len(replaced.headers["x-request-id"]) == 32
    ids = {client.post("/models/grey/v1", json=body).headers["x-request-id"] for _ in range(20)}
    assert len(ids) == 20  # a new one per request
    assert client.get("/models/nothing", headers={"X-Request-Id": "e-1"}).headers["x-request-id"] == "e-1"  # errors too
    assert client.get("/no/such/route", headers={"X-Request-Id": "e-2"}).headers["x-request-id"] == "e-2"  # past the protocol routes too


def test_the_v2_answer_id_is_the_body_s_id_or_the_request_id(client):
    tensor = {"name": "input", "shape": [1, 28, 28], "datatype": "UINT8", "data": [GREY_BODY["image"]]}
    echoed = client.post("/v2/models/grey/versions/v1/infer", json={"id": "my own", "inputs": [tensor]}, headers={"X-Request-Id": "header-id"})
    assert echoed.json()["id"] == "my own" and echoed.headers["x-request-id"] == "header-id"
    given = client.post("/v2/models/grey/versions/v1/infer", json={"inputs": [tensor]})
    assert given.json()["id"] == given.headers["x-request-id"]
