"""RunnerHealth, driven with a real asyncio loop and a runner stand-in whose status can stop answering."""

import asyncio

import pytest

from serving.errors import Unavailable
from serving.runner_health import RunnerHealth


class Runner:
    def __init__(self):
        self.answering = True
        self.status = {"status": "ready", "reason": None}

    async def probe(self) -> dict:
        if not self.answering:
            await asyncio.sleep(3600)  # as a killed runner's socket backlog: no answer
        return self.status

    async def predict(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "done"


def test_calls_fail_at_once_until_the_runner_answers_ready():
    runner = Runner()

    async def main():
        health = RunnerHealth("clothes:v1", runner.probe, interval=0.01, timeout=0.05)
        with pytest.raises(Unavailable, match="the runner of clothes:v1 has not answered yet"):
            await health.call(runner.predict, 0)
        watch = asyncio.get_running_loop().create_task(health.watch())
        await asyncio.sleep(0.05)
        result = await health.call(runner.predict, 0)
        watch.cancel()
        return result

    assert asyncio.run(main()) == "done"


def test_a_runner_that_stops_answering_fails_its_calls_in_flight_with_503():
    runner = Runner()

    async def main():
        health = RunnerHealth("clothes:v1", runner.probe, interval=0.01, timeout=0.05)
        health.update(await health.probe())
        watch = asyncio.get_running_loop().create_task(health.watch())
        in_flight = asyncio.ensure_future(health.call(runner.predict, 10))  # would hang 10 s
        await asyncio.sleep(0.02)
        runner.answering = False
        started = asyncio.get_running_loop().time()
        with pytest.raises(Unavailable) as failure:
            await in_flight
        cut_after = asyncio.get_running_loop().time() - started
        with pytest.raises(Unavailable):
            await health.call(runner.predict, 0)
        runner.answering = True
        await asyncio.sleep(0.05)
        recovered = await health.call(runner.predict, 0)
        watch.cancel()
        return failure.value, cut_after, recovered

    error, cut_after, recovered = asyncio.run(main())
    assert error.status == 503 and error.headers["Retry-After"] and "the runner of clothes:v1 is not answering" in error.message
    assert cut_after < 1 and recovered == "done"


def test_a_runner_that_failed_to_load_gives_its_reason():
    runner = Runner()
    runner.status = {"status": "unavailable", "reason": "clothes:v1 failed to load: bad archive"}

    async def main():
        health = RunnerHealth("clothes:v1", runner.probe)
        health.update(await health.probe())
        await health.call(runner.predict, 0)

    with pytest.raises(Unavailable, match="clothes:v1 failed to load: bad archive"):
        asyncio.run(main())


def test_a_caller_cancelled_is_not_turned_into_an_error():
    runner = Runner()

    async def main():
        health = RunnerHealth("clothes:v1", runner.probe)
        health.update(await health.probe())
        call = asyncio.ensure_future(health.call(runner.predict, 10))
        await asyncio.sleep(0.01)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        return health.ready

    assert asyncio.run(main()) is True
