"""serving/slots.py: a slot's workers follow its desired state, report what they did, and do not retry a
load that killed them."""

from __future__ import annotations

import os
import time

import pytest

from config import RunnerSettings
from serving import slots
from serving.slots import Slot, SlotState, SlotWorker


class Engine:
    def __init__(self, tag, name="onnxruntime"):
        self.tag, self.name = tag, name

    def __call__(self, values):
        return self.tag


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    monkeypatch.setenv(slots.RUNTIME_ENV, str(tmp_path))
    monkeypatch.setattr(slots, "FOLLOW_SECONDS", 0.02)
    return tmp_path


def wait_for(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def loader(calls, fail=()):
    def load(model, version, engine, threads):
        calls.append((model, version, engine, threads))
        if version in fail:
            raise RuntimeError(f"{version} is broken")
        return Engine(f"{model}:{version}")

    return load


def test_a_configured_slot_loads_its_version_then_follows_changes(runtime):
    calls, exits = [], []
    worker = SlotWorker(Slot("clothes-v1", RunnerSettings(threads=2), ("clothes", "v1")), loader(calls), exit=exits.append)
    assert worker.hosting == ("clothes", "v1") and worker.engine(None) == "clothes:v1" and calls == [("clothes", "v1", "onnxruntime", 2)]
    state = SlotState(runtime, "clothes-v1")
    assert [r["state"] for r in state.reports().values()] == ["ready"]

    generation = state.assign("clothes", "v3", engine="tensorflow", threads=1)
    wait_for(lambda: worker.hosting == ("clothes", "v3"))
    assert calls[-1] == ("clothes", "v3", "tensorflow", 1)
    assert state.reports()[os.getpid()] | {"at": 0} == {
        "generation": generation,
        "state": "ready",
        "reason": None,
        "model": "clothes",
        "version": "v3",
        "engine": "onnxruntime",
        "pid": os.getpid(),
        "at": 0,
    }
    state.assign(None, None)
    wait_for(lambda: exits == [0])  # a worker that hosted a version exits when emptied: a fresh one returns its memory
    assert worker.status["state"] == "empty" and worker.engine is None and worker.hosting is None


def test_a_spare_starts_empty_and_reports_it(runtime):
    worker = SlotWorker(Slot("spare-1", RunnerSettings(), None), loader([]), exit=pytest.fail)
    assert worker.engine is None and worker.status == {"state": "empty", "reason": None}
    assert SlotState(runtime, "spare-1").reports()[os.getpid()]["state"] == "empty"


def test_a_failed_load_is_reported_with_its_reason_and_the_worker_goes_on(runtime):
    calls = []
    worker = SlotWorker(Slot("spare-1", RunnerSettings(), None), loader(calls, fail={"bad"}), exit=pytest.fail)
    state = SlotState(runtime, "spare-1")
    generation = state.assign("clothes", "bad")
    wait_for(lambda: worker.status["state"] == "failed")
    assert worker.status["reason"] == "clothes:bad failed to load: bad is broken" and worker.engine is None
    # the failure is the failed version's own: the entry marks clothes:bad unavailable, not "loading"
    assert worker.describe() | {"generation": 0} == {
        "status": "unavailable",
        "reason": worker.status["reason"],
        "engine": None,
        "model": "clothes",
        "version": "bad",
        "state": "failed",
        "generation": 0,
    }
    assert state.reports()[os.getpid()]["generation"] == generation
    state.assign("clothes", "v2")
    wait_for(lambda: worker.hosting == ("clothes", "v2"))


def test_a_load_that_killed_workers_twice_is_not_tried_again(runtime):
    state = SlotState(runtime, "spare-1")
    generation = state.assign("clothes", "crash")
    for dead in (2**22 + 1, 2**22 + 2):  # pids no process has: two workers that died while loading it
        (state.reports_dir / f"{dead}.json").write_text(f'{{"generation": {generation}, "state": "loading", "pid": {dead}}}')
    assert state.died_loading(generation) == 2 and state.reports() == {}
    calls = []
    worker = SlotWorker(Slot("spare-1", RunnerSettings(), None), loader(calls), exit=pytest.fail)
    assert calls == [] and worker.status["state"] == "failed" and "died 2 times while loading clothes:crash" in worker.status["reason"]


def test_the_plan_has_a_slot_per_configured_version_and_the_spares(tmp_path):
    from tests.unit.serving.conftest import write_config

    config = write_config(tmp_path, {"grey": {"versions": {"v1": {"workers": 2}, "v2": {}}}}, live={"spare_runners": 2})
    planned = slots.plan(config)
    assert [(s.name, s.initial, s.settings.workers) for s in planned] == [
        ("grey-v1", ("grey", "v1"), 2),
        ("grey-v2", ("grey", "v2"), 1),
        ("spare-1", None, 1),
        ("spare-2", None, 1),
    ]


def _ensure_at_once(runtime, barrier, results):
    barrier.wait()
    results.put(SlotState(runtime, "clothes-v1").ensure(("clothes", "v1"), "onnxruntime", 1))


def test_workers_creating_a_slots_state_at_the_same_moment_all_read_the_initial_version(tmp_path):
    """Two entry workers start together and both create the slot's desired state: neither may read the
    other's file empty or half-written (which said "host nothing": the container's v2 answered 503)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for attempt in range(20):
        runtime = tmp_path / str(attempt)
        barrier, results = context.Barrier(6), context.Queue()
        processes = [context.Process(target=_ensure_at_once, args=(runtime, barrier, results)) for _ in range(6)]
        for process in processes:
            process.start()
        states = [results.get(timeout=30) for _ in processes]
        for process in processes:
            process.join(timeout=30)
        assert all(state["generation"] == 1 and (state["model"], state["version"]) == ("clothes", "v1") for state in states), states
        assert sorted(p.name for p in (runtime / "slots").iterdir()) == ["clothes-v1", "clothes-v1.json"]  # no temporary file left
