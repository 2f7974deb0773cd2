"""The batcher, driven with a real asyncio loop and a runner stand-in that records its calls."""

import asyncio

import numpy as np
import pytest

from serving.dispatch import Batcher
from serving.errors import Unavailable


class SlowRunner:
    def __init__(self, fail=False):
        self.calls = []
        self.fail = fail

    async def __call__(self, batch):
        self.calls.append(len(batch))
        await asyncio.sleep(0.01)
        if self.fail:
            raise ConnectionError("runner restarting")
        return batch.reshape(len(batch), -1)[:, :1] * 2


def images(value, n=1, shape=(32, 32, 3)):
    """``n`` examples in a card's shape (any shape: the batcher only stacks and splits them)."""
    return np.full((n, *shape), value, dtype=np.float32)


def test_concurrent_requests_share_calls_and_get_their_own_rows():
    runner = SlowRunner()

    async def main():
        batcher = Batcher(runner, max_batch_images=64, max_queue_images=1000)
        return await asyncio.gather(*(batcher.submit(images(i, n=1 + i % 3)) for i in range(50)))

    results = asyncio.run(main())
    for i, result in enumerate(results):
        assert result.shape == (1 + i % 3, 1) and (result == 2 * i).all()
    assert sum(runner.calls) == sum(1 + i % 3 for i in range(50))
    assert len(runner.calls) < 10 and max(runner.calls) <= 64


def test_uint8_and_float32_requests_share_a_call_and_keep_their_rows():
    runner = SlowRunner()

    async def main():
        batcher = Batcher(runner, max_batch_images=64, max_queue_images=1000, max_inflight=1)
        requests = [np.full((2, 28, 28, 1), i, dtype=np.uint8 if i % 2 else np.float32) for i in range(6)]
        return await asyncio.gather(*(batcher.submit(r) for r in requests))

    for i, result in enumerate(asyncio.run(main())):
        assert result.shape == (2, 1) and (result == 2 * i).all()
    assert runner.calls == [12]  # queued before the first call left: one call for all


def test_full_queue_is_refused_at_once():
    runner = SlowRunner()

    async def main():
        batcher = Batcher(runner, max_batch_images=8, max_queue_images=10, max_inflight=1)
        return await asyncio.gather(*(batcher.submit(images(i, 4)) for i in range(6)), return_exceptions=True)

    results = asyncio.run(main())
    refused = [r for r in results if isinstance(r, Unavailable)]
    assert refused and refused[0].headers["Retry-After"] and refused[0].status == 503


def test_runner_failure_becomes_503_for_each_waiter():
    async def main():
        batcher = Batcher(SlowRunner(fail=True), max_batch_images=8, max_queue_images=100)
        return await asyncio.gather(*(batcher.submit(images(i)) for i in range(5)), return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, Unavailable) and "runner unavailable" in r.message for r in results)


def test_recovers_after_failure():
    runner = SlowRunner(fail=True)

    async def main():
        batcher = Batcher(runner, max_batch_images=8, max_queue_images=100)
        with pytest.raises(Unavailable):
            await batcher.submit(images(1))
        runner.fail = False
        return await batcher.submit(images(3))

    assert (asyncio.run(main()) == 6).all()


def test_monitoring_sees_each_groups_request_ids_with_their_example_counts():
    from serving.monitoring import example_ids

    runner, seen = SlowRunner(), []

    async def main():
        batcher = Batcher(runner, max_batch_images=64, max_queue_images=1000, on_answer=lambda batch, result, requests, scores: seen.append((len(batch), requests)))
        await asyncio.gather(*(batcher.submit(images(i, n=1 + i % 3), f"r{i}") for i in range(12)))
        await asyncio.sleep(0)  # the hook runs just after the answers

    asyncio.run(main())
    assert sum(examples for examples, _ in seen) == sum(1 + i % 3 for i in range(12))
    for examples, requests in seen:
        assert sum(count for _, count in requests) == examples
    assert sorted(request_id for _, requests in seen for request_id, _ in requests) == sorted(f"r{i}" for i in range(12))
    assert example_ids([("a", 2), (None, 1), ("b", 3)], 6).tolist() == ["a", "a", None, "b", "b", "b"]
    assert example_ids(None, 2).tolist() == [None, None]


def test_values_a_model_refuses_fail_only_their_own_request_as_422():
    from models.engines.base import EngineInputError
    from serving.errors import InvalidInput

    calls = []

    async def refusing(batch):  # the model refuses negative values (an index past an embedding's rows, say)
        calls.append(len(batch))
        await asyncio.sleep(0.01)
        if (batch < 0).any():
            raise EngineInputError("the model refused the values: index -1 out of range")
        return batch.reshape(len(batch), -1)[:, :1] * 2

    async def main():
        batcher = Batcher(refusing, max_batch_images=64, max_queue_images=1000)
        return await asyncio.gather(*(batcher.submit(images(-1 if i == 3 else i, shape=(2,))) for i in range(8)), return_exceptions=True)

    results = asyncio.run(main())
    for i, result in enumerate(results):
        if i == 3:
            assert isinstance(result, InvalidInput) and result.status == 422 and "index -1 out of range" in str(result)
        else:
            assert not isinstance(result, Exception) and (result == 2 * i).all()
    assert max(calls) > 1  # the refused request was in a group with others, which were then answered alone
