"""Group concurrent requests for one version into few runner calls.

Every call into a runner is an HTTP hop with a fixed cost, so one call per client request caps
throughput at the hop rate. A :class:`Batcher` sends the first request at once; requests arriving
while calls are in flight wait and leave together in the next call. It adds no delay at low load
and bounds the queue: past ``max_queue_images`` it refuses at once (503 with Retry-After) instead
of letting requests time out.

Monitoring (``on_answer``) sees each group once, after its requests have their answers, with each
request's id and example count. A ``score`` (the version's out-of-distribution score) runs once per
group too, on the group's inputs and answers, before each request gets its slice: vectorised over the
group, it costs a fraction of what it would per request.

    batcher = Batcher(runner_call, max_batch_images=1024, max_queue_images=8192, on_answer=monitor.observe, score=scorer.scores)
    probabilities = await batcher.submit(pixels)                 # pixels: float32 (N, 28, 28)
    probabilities, scores = await batcher.submit_scored(pixels)  # scores: (N,), None without a score
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

import numpy as np

from models.engines.base import EngineInputError
from serving.errors import InvalidInput, Overloaded, ServingError, Unavailable

log = logging.getLogger(__name__)

RunnerCall = Callable[[np.ndarray], Awaitable[np.ndarray]]
RequestIds = list[tuple[str | None, int]]  # a group's requests in order: (request id, examples)
AnswerHook = Callable[[np.ndarray, np.ndarray, RequestIds, "np.ndarray | None"], None]  # (a group's inputs, answers, requests, scores): monitoring, once per group
Score = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (a group's inputs, its answers) -> a score per example


class Batcher:
    def __init__(self, call: RunnerCall, max_batch_images: int, max_queue_images: int, max_inflight: int = 2, on_answer: AnswerHook | None = None, score: Score | None = None):
        self._call = call
        self._on_answer = on_answer
        self._score = score
        self._max_batch = max_batch_images
        self._max_queue = max_queue_images
        self._max_inflight = max_inflight
        self._queue: deque[tuple[np.ndarray, asyncio.Future, str | None]] = deque()
        self._queued_images = 0
        self._inflight = 0

    async def submit(self, pixels: np.ndarray, request_id: str | None = None) -> np.ndarray:
        return (await self.submit_scored(pixels, request_id))[0]

    async def submit_scored(self, pixels: np.ndarray, request_id: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """The answers, and each example's score (None without a score)."""
        count = len(pixels)
        if self._queued_images + count > self._max_queue:
            raise Overloaded(f"overloaded: {self._queued_images} images already queued for this version", retry_after=1)
        future = asyncio.get_running_loop().create_future()
        self._queue.append((pixels, future, request_id))
        self._queued_images += count
        if self._inflight < self._max_inflight:
            self._inflight += 1
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    def _take(self) -> list[tuple[np.ndarray, asyncio.Future, str | None]]:
        group: list[tuple[np.ndarray, asyncio.Future, str | None]] = []
        images = 0
        while self._queue and (not group or images + len(self._queue[0][0]) <= self._max_batch):
            pixels, future, request_id = self._queue.popleft()
            self._queued_images -= len(pixels)
            if future.done():  # the client went away
                continue
            group.append((pixels, future, request_id))
            images += len(pixels)
        return group

    async def _drain(self) -> None:
        try:
            while self._queue:
                group = self._take()
                if not group:
                    continue
                try:
                    batch = group[0][0] if len(group) == 1 else np.concatenate([p for p, _, _ in group])
                    result = await self._call(batch)
                except ServingError as exc:
                    _fail(group, exc)
                except EngineInputError as exc:  # some request's values: each is sent alone, so that only its own fail
                    await self._alone(group, exc)
                    continue
                except Exception as exc:  # the runner is down, restarting or overloaded
                    log.warning("runner call failed: %s: %s", type(exc).__name__, exc)
                    _fail(group, Unavailable(f"runner unavailable: {type(exc).__name__}: {exc}", retry_after=2))
                else:
                    scores = self._scores(batch, result)
                    start = 0
                    for pixels, future, _ in group:
                        end = start + len(pixels)
                        if not future.done():
                            future.set_result((result[start:end], scores[start:end] if scores is not None else None))
                        start = end
                    if self._on_answer is not None:  # after the waiting requests resume: off their path
                        asyncio.get_running_loop().call_soon(self._on_answer, batch, result, [(request_id, len(pixels)) for pixels, _, request_id in group], scores)
        finally:
            self._inflight -= 1

    async def _alone(self, group, exc: EngineInputError) -> None:
        """A group the model refused for some request's values: each request is answered on its own (422 for those refused)."""
        if len(group) == 1:
            _fail(group, InvalidInput(str(exc)))
            return
        for pixels, future, request_id in group:
            try:
                result = await self._call(pixels)
            except EngineInputError as own:
                _fail([(pixels, future, request_id)], InvalidInput(str(own)))
            except ServingError as error:
                _fail([(pixels, future, request_id)], error)
            except Exception as error:
                _fail([(pixels, future, request_id)], Unavailable(f"runner unavailable: {type(error).__name__}: {error}", retry_after=2))
            else:
                scores = self._scores(pixels, result)
                if not future.done():
                    future.set_result((result, scores))

    def _scores(self, batch: np.ndarray, result: np.ndarray) -> np.ndarray | None:
        if self._score is None:
            return None
        try:
            return self._score(batch, result)
        except Exception:  # an answer goes out without its score rather than not at all
            log.exception("scoring a group of %d examples failed", len(batch))
            return None


def _fail(group, exc: Exception) -> None:
    for _, future, _ in group:
        if not future.done():
            future.set_exception(exc)
