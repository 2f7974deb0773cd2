"""Which process of `bentoml serve` imports service.py: the arbiter, which only reads the services'
definitions and starts their workers, or a worker, which serves them. What only one of them needs is
set up there alone (each import is start-up time: docs/benchmarks.md, cold start)."""

from __future__ import annotations

import sys

SERVE_COMMANDS = frozenset({"serve", "serve-http"})  # bentoml_cli 1.4.40


def is_worker() -> bool:
    """A BentoML service worker (``python -m _bentoml_impl.worker.service``)."""
    main = getattr(sys.modules.get("__main__"), "__spec__", None)
    return main is not None and main.name.startswith("_bentoml_impl.worker")


def is_arbiter() -> bool:
    """The `bentoml serve` process (the command line, or the image's entrypoint calling it), not a
    worker, a test or a script: it imports service.py inside click's ``serve`` command."""
    click = sys.modules.get("click")
    context = click.get_current_context(silent=True) if click is not None and not is_worker() else None
    while context is not None:
        if context.command.name in SERVE_COMMANDS:
            return True
        context = context.parent
    return False
