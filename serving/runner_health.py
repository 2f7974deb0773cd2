"""Whether a runner answers, kept current by probing it, so that calls to a dead runner fail at once.

A runner's listening socket belongs to BentoML's arbiter, not to the runner process. While a killed
runner restarts (its model loads for 10 to 20 s), connections to it wait in that socket's backlog:
calls in flight and new calls hang until the new process answers. A :class:`RunnerHealth` asks the
runner's ``status`` every ``interval`` seconds, waiting at most ``timeout``. While the last answer is
not "ready", calls fail at once with 503 + Retry-After and the runner's reason; the calls in flight
when it stopped answering are cut off with the same error.

    health = RunnerHealth("v1", probe=runner.to_async.status)
    loop.create_task(health.watch())                     # on the serving event loop
    result = await health.call(runner.to_async.predict, pixels)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from serving.core import VersionState, VersionStatus, version_status
from serving.errors import Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
PROBE_INTERVAL_SECONDS = 0.5
PROBE_TIMEOUT_SECONDS = 2.0  # a loaded runner answers its status in milliseconds
RETRY_AFTER_SECONDS = 5


class RunnerHealth:
    def __init__(
        self,
        version: str,
        probe: Callable[[], Awaitable[dict]],
        interval: float = PROBE_INTERVAL_SECONDS,
        timeout: float = PROBE_TIMEOUT_SECONDS,
    ):
        self.version = version
        self.interval = interval
        self.timeout = timeout
        self._probe = probe
        self.status: VersionStatus = {"status": VersionState.LOADING, "reason": f"the runner of {version} has not answered yet", "engine": None}
        self._calls: set[asyncio.Task] = set()
        self._cut_off: set[asyncio.Task] = set()

    @property
    def ready(self) -> bool:
        return self.status["status"] == VersionState.READY

    def unavailable(self) -> Unavailable:
        return Unavailable(self.status["reason"] or f"version {self.version} is not ready", retry_after=RETRY_AFTER_SECONDS)

    async def call(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``function(*args)`` on the runner; 503 at once while it is not ready, or when it stops answering."""
        if not self.ready:
            raise self.unavailable()
        task = asyncio.ensure_future(function(*args))
        self._calls.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            if task in self._cut_off:  # cut off by update(), not cancelled by our caller
                raise self.unavailable() from None
            raise
        finally:
            self._calls.discard(task)
            self._cut_off.discard(task)

    async def watch(self) -> None:
        """Probe the runner for ever (run it as a task; cancel it to stop)."""
        while True:
            self.update(await self.probe())
            await asyncio.sleep(self.interval)

    async def probe(self) -> VersionStatus:
        """The runner's own status (typed: :func:`~serving.core.version_status`), or loading when it does
        not answer within ``timeout``.

        A probe that fails at once (a pooled connection to a worker that just died) is sent again
        within the same ``timeout``: a runner with another live worker is still up.
        """
        deadline = asyncio.get_running_loop().time() + self.timeout
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    return version_status(await self._probe())
            except Exception as exc:
                if asyncio.get_running_loop().time() < deadline - 0.05 and not isinstance(exc, TimeoutError):
                    await asyncio.sleep(0.01)
                    continue
                reason = f"the runner of {self.version} is not answering (restarting or loading): {type(exc).__name__}"
                return {"status": VersionState.LOADING, "reason": reason, "engine": None}

    def update(self, status: VersionStatus) -> None:
        was_ready = self.ready
        self.status = status
        if was_ready and not self.ready:
            log.warning("%s; failing its %d call(s) in flight", status["reason"], len(self._calls))
            for task in self._calls:
                self._cut_off.add(task)
                task.cancel()
        elif self.ready and not was_ready:
            log.info("the runner of %s is ready", self.version)
