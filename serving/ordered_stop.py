"""When `bentoml serve` stops (SIGTERM, Ctrl-C), stop the entry service before its runners.

BentoML 1.4.40 runs each service as a circus watcher: the entry service ``clothes`` (watcher
"service") and one per runner (``service_clothes-v1``, ...). On SIGTERM circus stops every watcher
at once, so a request the entry service has accepted but not yet handed to its runner fails with
503 "runner unavailable" as the runner goes away under it. Stopped first, the entry service stops
accepting and answers what it holds while the runners still run; then the runners stop.

service.py installs this at import: `bentoml serve` imports it before it starts its circus arbiter,
so the stop is ordered for a plain `bentoml serve` too (workers import it as well; they run no
arbiter, so they skip it); the container's `bentoml serve` loads it the same way. Should a later BentoML name its watchers differently, no watcher matches and the stop is
BentoML's own; tests/unit/serving/test_ordered_stop.py checks the pinned BentoML and circus.
"""

from __future__ import annotations

import logging

from serving.process import is_worker

ENTRY_WATCHER = "service"  # bentoml 1.4.40, _bentoml_impl/server/serving.py: create_watcher(name="service")
log = logging.getLogger("bentoml.serve")


def install() -> None:
    if is_worker():
        return  # a worker runs no arbiter: circus's import (80 ms) would only slow its start
    from circus.arbiter import Arbiter
    from tornado import gen

    @gen.coroutine
    def stop_entry_then_runners(self, close_output_streams=False, watcher_iter_func=None):
        watchers = (watcher_iter_func or self.iter_watchers)(reverse=False)
        entry = [w for w in watchers if w.name == ENTRY_WATCHER]
        if entry:
            log.info("stopping the entry service before its %d runner service(s)", len(watchers) - len(entry))
            yield gen.multi([w._stop(close_output_streams) for w in entry])
        yield gen.multi([w._stop(close_output_streams) for w in watchers if w not in entry])

    Arbiter._stop_watchers = stop_entry_then_runners
