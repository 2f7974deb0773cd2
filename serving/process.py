"""Which process of `bentoml serve` imports service.py: the arbiter, which only reads the services'
definitions and starts their workers, or a worker, which serves them. What only one of them needs is
set up there alone (each import is start-up time: docs/benchmarks.md, cold start)."""

from __future__ import annotations

import sys


def is_worker() -> bool:
    """A BentoML service worker (``python -m _bentoml_impl.worker.service``)."""
    main = getattr(sys.modules.get("__main__"), "__spec__", None)
    return main is not None and main.name.startswith("_bentoml_impl.worker")


def is_arbiter() -> bool:
    """The `bentoml serve` process (``bentoml_cli``'s entry point), not a worker, a test or a script."""
    return not is_worker() and "bentoml_cli" in sys.modules and sys.argv[1:2] == ["serve"]
