"""A version's engine inside each entry worker (``placement: inprocess``): no hop per call.

An entry worker hosts every in-process slot itself, as Triton's instance groups do. A
:class:`~serving.slots.SlotWorker` follows the slot's desired state as a runner process would (it
loads, warms up, reports, follows live loads and unloads), and calls run on the slot's own thread, so
the event loop goes on parsing requests while the engine computes (ONNX Runtime and TensorFlow
release the GIL). What a crash in an engine takes down is the entry worker: BentoML starts another,
and the other entry workers serve meanwhile.

    runners = [InProcessRunner(slot, load_engine) for slot in slots if slot.settings.placement == "inprocess"]
    start(runners)                                        # every slot's version loaded, in parallel
    probabilities = await runners[0].predict(values)     # serving/registry.py's RunnerClient
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from serving.errors import Unavailable
from serving.slots import Slot, SlotWorker

RETRY_AFTER_SECONDS = 5


class InProcessRunner:
    def __init__(self, slot: Slot, load: Callable[[str, str, str, int], object]):
        self.slot = slot
        self._load = load
        self.worker: SlotWorker | None = None
        # One thread per slot: the engine's own threads (``threads``) do the parallel work.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"engine-{slot.name}")

    def start(self) -> None:
        """Load the slot's version (when it has one) and follow its desired state from now on."""
        self.worker = SlotWorker(self.slot, self._load, exit=None)

    async def predict(self, values: np.ndarray) -> np.ndarray:
        engine = self.worker.engine if self.worker is not None else None
        if engine is None:
            raise Unavailable(self._why_not(), retry_after=RETRY_AFTER_SECONDS)
        return await asyncio.get_running_loop().run_in_executor(self._executor, engine, values)

    async def status(self) -> dict:
        if self.worker is None:
            return {"status": "loading", "reason": f"runner {self.slot.name} is starting", "engine": None, "model": None, "version": None, "state": "loading", "generation": 0}
        return dict(self.worker.describe())

    def _why_not(self) -> str:
        if self.worker is None:
            return f"runner {self.slot.name} is starting"
        return self.worker.status["reason"] or f"runner {self.slot.name} is {self.worker.status['state']}"

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)


def start(runners: Iterable[InProcessRunner]) -> None:
    """Start every runner, their sessions created in parallel (the cold start is the slowest load, not their sum)."""
    runners = list(runners)
    if not runners:
        return
    with ThreadPoolExecutor(max_workers=len(runners), thread_name_prefix="load") as pool:
        for future in [pool.submit(runner.start) for runner in runners]:
            future.result()
