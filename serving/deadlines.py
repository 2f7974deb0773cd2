"""Deadlines of a worker's requests in flight, checked by one task instead of a timer per request.

``asyncio.timeout`` costs each request a timer, its scheduling and its cancellation: about 3% of a
worker's CPU per deadline on the JSON route (docs/benchmarks.md). Here a request costs a dict entry; a
watcher wakes every ``tick`` seconds and cancels the tasks past their deadline, so a deadline is met
within ``tick``.

    deadlines = Deadlines()
    task = deadlines.set(time.perf_counter() + 10)
    try:
        body = await read()
    except asyncio.CancelledError:
        if not deadlines.expired(task):   # cancelled by something else: pass it on
            raise
        ...                               # answer 408 or 504: the task goes on, uncancelled
    finally:
        deadlines.clear(task)
"""

from __future__ import annotations

import asyncio
import time

TICK_SECONDS = 0.1


class Deadlines:
    def __init__(self, tick: float = TICK_SECONDS):
        self.tick = tick
        self._due: dict[asyncio.Task, float] = {}
        self._expired: set[asyncio.Task] = set()
        self._watcher: asyncio.Task | None = None

    def set(self, due: float) -> asyncio.Task:
        """The current task must be done by ``due`` (``time.perf_counter``); a later ``set`` moves it."""
        task = asyncio.current_task()
        assert task is not None, "a deadline needs a task"
        self._due[task] = due
        if self._watcher is None or self._watcher.get_loop() is not task.get_loop():
            self._watcher = task.get_loop().create_task(self._watch(), name="deadlines")
        return task

    def clear(self, task: asyncio.Task) -> None:
        """No deadline for ``task`` any more (its work is done, or it answers the expiry)."""
        self._due.pop(task, None)
        if task in self._expired:  # cancelled, and the cancellation became something else on the way
            self._expired.discard(task)
            task.uncancel()

    def expired(self, task: asyncio.Task) -> bool:
        """Whether the CancelledError ``task`` caught is its deadline's; if so, it is uncancelled."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        task.uncancel()
        return True

    def __len__(self) -> int:
        return len(self._due)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            now = time.perf_counter()
            for task in [task for task, due in self._due.items() if due <= now]:
                del self._due[task]
                if not task.done():
                    self._expired.add(task)
                    task.cancel()
