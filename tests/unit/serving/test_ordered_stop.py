"""serving/ordered_stop.py: `bentoml serve` (and the container) stops the entry service before its runners,
and still leans on what BentoML and circus do in the pinned versions (an upgrade that renames them fails here)."""

from __future__ import annotations

import inspect

import pytest
from circus.arbiter import Arbiter
from tornado import gen
from tornado.ioloop import IOLoop

from serving import ordered_stop


@pytest.fixture
def ordered(monkeypatch):
    monkeypatch.setattr(Arbiter, "_stop_watchers", Arbiter._stop_watchers)  # restored after the test
    ordered_stop.install()


class FakeWatcher:
    def __init__(self, name, events):
        self.name, self.events = name, events

    @gen.coroutine
    def _stop(self, close_output_streams=False):
        self.events.append(("stopping", self.name))
        yield gen.sleep(0.05)
        self.events.append(("stopped", self.name))


class FakeArbiter:
    def __init__(self, watchers):
        self.watchers = watchers

    def iter_watchers(self, reverse=True):
        return list(self.watchers)


def stop(arbiter):
    return IOLoop(make_current=False).run_sync(lambda: Arbiter._stop_watchers(arbiter, close_output_streams=True))


def test_entry_service_stops_before_runners(ordered):
    events = []
    runners = ["service_clothes-v1", "service_colours-v1", "service_clothes-v2"]  # one per served model version
    stop(FakeArbiter([FakeWatcher(runners[0], events), FakeWatcher("service", events), *(FakeWatcher(name, events) for name in runners[1:])]))
    assert events[:2] == [("stopping", "service"), ("stopped", "service")]
    assert sorted(events[2:]) == sorted([(s, name) for s in ("stopping", "stopped") for name in runners])
    assert [e[0] for e in events[2:5]] == ["stopping"] * 3  # the runners stop together


def test_without_an_entry_watcher_all_stop_together(ordered):
    events = []
    stop(FakeArbiter([FakeWatcher("a", events), FakeWatcher("b", events)]))
    assert [e[0] for e in events] == ["stopping", "stopping", "stopped", "stopped"]


def test_pinned_bentoml_and_circus_still_match():
    from _bentoml_impl.server import serving

    assert 'name="service"' in inspect.getsource(serving)  # the entry service's watcher
    assert 'name=f"service_{svc.name}"' in inspect.getsource(serving)  # each runner's: service_<model>-<version>
    assert {"close_output_streams", "watcher_iter_func"} <= set(inspect.signature(Arbiter._stop_watchers).parameters)
    assert "gen.multi" in inspect.getsource(Arbiter._stop_watchers)  # still stops every watcher at once
