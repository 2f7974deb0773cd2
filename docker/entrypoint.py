"""The image's entrypoint: BentoML's, except that a stop drains the entry service before its runners.

    docker run IMAGE                      # serve the Bento: `bentoml serve $BENTO_PATH`
    docker run IMAGE serve [options]      # the same with `bentoml serve` options (--port, --host, ...)
    docker run IMAGE [options]            # the same
    docker run IMAGE <command> [args]     # anything else goes to BentoML's entrypoint (python, bash, ...)

BentoML 1.4.40 runs every service as a circus watcher: the entry service `clothes` (watcher
"service") and one per runner (`clothes-v1`, `clothes-v2`). On SIGTERM (`docker stop`, Kubernetes)
circus stops all watchers at once, so a request the entry service has accepted but not yet handed to
its runner fails with 503 "runner unavailable" as the runner goes away under it (seen in
tests/container/test_image.py::test_stop_drains_in_flight_requests). Here the entry service stops
first: it stops accepting and finishes its requests while the runners still answer; then the runners
stop. Each watcher has circus' graceful timeout (30 s) before SIGKILL, so give a stop 60 s
(`docker stop -t 60`, terminationGracePeriodSeconds) for both.

Should a later BentoML name its watchers differently, no watcher matches and the stop is BentoML's.
"""

from __future__ import annotations

import logging
import os
import sys

ENTRY_WATCHER = "service"  # bentoml 1.4.40, _bentoml_impl/server/serving.py: create_watcher(name="service")
log = logging.getLogger("bentoml.serve")


def install_ordered_stop() -> None:
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


def main(argv: list[str]) -> None:
    bento = os.environ.get("BENTO_PATH")
    if argv and argv[0] == "serve":
        argv = argv[1:]
    elif argv and not argv[0].startswith("-"):
        if not bento:
            sys.exit(f"not a serve command and no BENTO_PATH: {argv}")
        os.execvp("bash", ["bash", f"{bento}/env/docker/entrypoint.sh", *argv])
    if "PORT" in os.environ:  # as BentoML's entrypoint does (Heroku-style PORT)
        os.environ["BENTOML_PORT"] = os.environ["PORT"]
    install_ordered_stop()
    from bentoml_cli.cli import cli

    cli.main(args=["serve", *argv, *([bento] if bento else [])], prog_name="bentoml")


if __name__ == "__main__":
    main(sys.argv[1:])
