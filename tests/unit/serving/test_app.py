"""serving/app.py: the front door goes before the layers BentoML adds to every request."""

from __future__ import annotations

import bentoml
from _bentoml_impl.server.app import ServiceAppFactory

from serving.app import front_door_first


class Outer:
    def __init__(self, app):
        self.app = app


@bentoml.service(name="app-order-test")
class Tiny:
    @bentoml.api
    def echo(self, value: int) -> int:
        return value


def test_the_outermost_layers_come_before_bentomls_timeout_and_tracing(monkeypatch):
    monkeypatch.setattr(ServiceAppFactory, "middlewares", ServiceAppFactory.middlewares)  # restored after the test
    Tiny.add_asgi_middleware(Outer)
    Tiny.inject_config()
    before = [m.cls.__name__ for m in ServiceAppFactory(Tiny, is_main=True).middlewares]
    assert before.index("TimeoutMiddleware") < before.index("Outer") and before.index("OpenTelemetryMiddleware") < before.index("Outer")

    front_door_first((Outer,))
    wrapped = ServiceAppFactory.middlewares.fget
    front_door_first((Outer,))  # once only, however often a service is installed
    assert ServiceAppFactory.middlewares.fget is wrapped
    after = [m.cls.__name__ for m in ServiceAppFactory(Tiny, is_main=True).middlewares]
    assert after[0] == "Outer" and sorted(after) == sorted(before)
    assert after[1:] == [name for name in before if name != "Outer"]
