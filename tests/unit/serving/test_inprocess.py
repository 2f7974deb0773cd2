"""serving/inprocess.py: a slot's engine inside this process, loaded in parallel with the others, called
off the event loop, following the slot's desired state, and emptied without the process exiting."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from config import RunnerSettings
from serving import inprocess, slots
from serving.errors import Unavailable
from serving.inprocess import InProcessRunner
from serving.slots import Slot, SlotState


class Engine:
    name = "onnxruntime"

    def __init__(self, version):
        self.version = version
        self.threads: list[str] = []

    def __call__(self, values):
        self.threads.append(threading.current_thread().name)
        return np.full((len(values), 2), int(self.version[1:]), np.float32)


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    monkeypatch.setenv(slots.RUNTIME_ENV, str(tmp_path))
    monkeypatch.setattr(slots, "FOLLOW_SECONDS", 0.02)
    return tmp_path


def slot(name, initial):
    return Slot(name, RunnerSettings(placement="inprocess"), initial)


def wait_for(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_sessions_are_created_in_parallel(runtime):
    together = threading.Barrier(2, timeout=10)  # broken (an error) unless both loads run at once

    def load(model, version, engine, threads):
        together.wait()
        return Engine(version)

    runners = [InProcessRunner(slot("m-v1", ("m", "v1")), load), InProcessRunner(slot("m-v2", ("m", "v2")), load)]
    inprocess.start(runners)
    assert [r.worker.hosting for r in runners] == [("m", "v1"), ("m", "v2")]
    for runner in runners:
        runner.stop()


def test_predictions_run_on_the_slot_thread_not_the_event_loop(runtime):
    runner = InProcessRunner(slot("m-v3", ("m", "v3")), lambda m, v, e, t: Engine(v))
    inprocess.start([runner])

    async def call():
        return await runner.predict(np.zeros((4, 1), np.float32)), threading.current_thread().name

    answer, loop_thread = asyncio.run(call())
    assert answer.shape == (4, 2) and (answer == 3).all()
    assert runner.worker.engine.threads == ["engine-m-v3_0"] and loop_thread not in runner.worker.engine.threads
    status = asyncio.run(runner.status())
    assert (status["status"], status["model"], status["version"], status["engine"]) == ("ready", "m", "v3", "onnxruntime")
    runner.stop()


def test_an_empty_or_failed_slot_answers_unavailable_with_the_reason(runtime):
    def load(model, version, engine, threads):
        raise RuntimeError("model.onnx is damaged")

    spare = InProcessRunner(slot("spare-1", None), load)
    broken = InProcessRunner(slot("m-v6", ("m", "v6")), load)
    inprocess.start([spare, broken])
    with pytest.raises(Unavailable, match="runner spare-1 is empty"):
        asyncio.run(spare.predict(np.zeros((1, 1))))
    with pytest.raises(Unavailable, match="m:v6 failed to load: model.onnx is damaged"):
        asyncio.run(broken.predict(np.zeros((1, 1))))
    assert asyncio.run(broken.status())["status"] == "unavailable"
    spare.stop()
    broken.stop()


def test_a_live_load_and_unload_are_followed_without_the_process_exiting(runtime):
    runner = InProcessRunner(slot("spare-1", None), lambda m, v, e, t: Engine(v))
    inprocess.start([runner])
    state = SlotState(runtime, "spare-1")
    state.assign("m", "v4")
    wait_for(lambda: runner.worker.hosting == ("m", "v4"))
    assert (asyncio.run(runner.predict(np.zeros((1, 1)))) == 4).all()
    generation = state.assign(None, None)  # the process would exit here if the slot were a runner's
    wait_for(lambda: runner.worker.generation == generation)
    assert runner.worker.engine is None and state.reports()[next(iter(state.reports()))]["state"] == "empty"
    with pytest.raises(Unavailable):
        asyncio.run(runner.predict(np.zeros((1, 1))))
    runner.stop()
