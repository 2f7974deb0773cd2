"""serving/deadlines.py: one watcher cancels the requests past their deadline; other cancellations pass."""

from __future__ import annotations

import asyncio
import time

import pytest

from serving.deadlines import Deadlines


async def waits(deadlines: Deadlines, seconds: float, due_in: float) -> str:
    task = deadlines.set(time.perf_counter() + due_in)
    try:
        await asyncio.sleep(seconds)
        return "done"
    except asyncio.CancelledError:
        if not deadlines.expired(task):
            raise
        return "expired"
    finally:
        deadlines.clear(task)


def test_a_request_past_its_deadline_is_cancelled_within_a_tick_and_goes_on_uncancelled():
    async def main():
        deadlines = Deadlines(tick=0.01)
        started = time.perf_counter()
        outcome = await waits(deadlines, 5, due_in=0.05)
        took = time.perf_counter() - started
        assert asyncio.current_task().cancelling() == 0  # it can still answer: nothing cancels its next await
        await asyncio.sleep(0)
        return outcome, took, len(deadlines)

    outcome, took, left = asyncio.run(main())
    assert outcome == "expired" and 0.05 <= took < 1 and left == 0


def test_requests_done_in_time_are_untouched_and_leave_nothing_behind():
    async def main():
        deadlines = Deadlines(tick=0.01)
        outcomes = await asyncio.gather(*(waits(deadlines, 0.01, due_in=1) for _ in range(50)))
        await asyncio.sleep(0.05)
        return outcomes, len(deadlines)

    assert asyncio.run(main()) == (["done"] * 50, 0)


def test_a_cancellation_that_is_not_the_deadlines_is_passed_on():
    async def main():
        deadlines = Deadlines(tick=0.01)
        task = asyncio.create_task(waits(deadlines, 5, due_in=5))
        await asyncio.sleep(0.02)
        task.cancel()  # a client gone, a shutdown
        with pytest.raises(asyncio.CancelledError):
            await task
        return len(deadlines)

    assert asyncio.run(main()) == 0


def test_one_watcher_per_event_loop():
    deadlines = Deadlines(tick=0.01)
    assert asyncio.run(waits(deadlines, 5, due_in=0.03)) == "expired"
    assert asyncio.run(waits(deadlines, 5, due_in=0.03)) == "expired"  # a new loop gets a watcher of its own
