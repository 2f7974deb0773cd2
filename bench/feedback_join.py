"""What the feedback join costs, in process: the request path's record, the join thread's work per
answer, a feedback call, and the memory and disk it holds at its bounds.

    python -m bench.feedback_join            # 200,000 answers; prints the figures (docs/lifecycle.md quotes them)

One Journal (serving/feedback.py) over a temporary runtime directory, with the repository's
``feedback`` settings: ``record`` is timed as the data plane calls it (one answer of one example);
``join`` moves the buffer into the ring; a feedback call of 10,000 labels is joined against a full
ring; outcomes are written up to ``feedback.max_outcomes`` and the database's size is read.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from config import load_config
from serving.feedback import Item, Journal

ANSWERS = 200_000
LABELS = tuple(f"class-{i}" for i in range(10))


def main() -> int:
    settings = load_config().feedback.model_copy(update={"join_seconds": 3600})  # joins only when called here
    journal = Journal(settings, Path(tempfile.mkdtemp(prefix="feedback-bench-")), labels_of=lambda model, version: LABELS)
    rng = np.random.default_rng(0)
    answers = [rng.dirichlet(np.ones(10), size=1).astype(np.float32) for _ in range(1000)]
    ids = [f"{i:032x}" for i in range(ANSWERS)]

    started = time.perf_counter()
    for index, request_id in enumerate(ids):
        journal.record("clothes", "v1", "stable", request_id, answers[index % 1000], None, None)
    record_us = (time.perf_counter() - started) / ANSWERS * 1e6

    started = time.perf_counter()
    journal.join()
    join_us = (time.perf_counter() - started) / ANSWERS * 1e6
    ring = journal.ring
    ring_bytes = sum(array.nbytes for array in (ring.keys, ring.tags, ring.example, ring.predicted, ring.confidence, ring.times))

    recent = ids[-settings.max_predictions :]
    labelled = [Item(request_id, 0, LABELS[i % 10]) for i, request_id in enumerate(recent[:10_000])]
    started = time.perf_counter()
    answer = journal.submit("clothes", labelled)
    submit_ms = (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    for offset in range(0, settings.max_outcomes, 10_000):
        for index in range(10_000):
            journal.record("clothes", "v1", None, f"carried-{offset + index}", answers[index % 1000], [index % 10], None)
        journal.join()
    carried_us = (time.perf_counter() - started) / settings.max_outcomes * 1e6
    journal._prune(journal._connect(), time.time())
    stored = sum(path.stat().st_size for path in journal.path.parent.glob("feedback.sqlite3*"))
    rows = journal.outcomes("clothes", "v1")
    started = time.perf_counter()
    from lifecycle.outcomes import live_report

    live_report(rows, LABELS, settings.series_seconds)
    report_ms = (time.perf_counter() - started) * 1000
    journal.stop()

    print(f"feedback join, {ANSWERS:,} answers of one example (feedback.max_predictions {settings.max_predictions:,}, max_outcomes {settings.max_outcomes:,}):")
    print(f"  record (the request path, on the event loop): {record_us:.2f} us per answer")
    print(f"  join thread, buffer into the ring:            {join_us:.2f} us per answer")
    print(f"  ring of {ring.capacity:,} examples:                {ring_bytes / 2**20:.1f} MiB per entry worker")
    print(f"  a feedback call of {len(labelled):,} labels:           {submit_ms:.0f} ms ({answer['joined']:,} joined)")
    print(f"  labels carried by requests (X-Label):         {carried_us:.1f} us per labelled answer (its outcome written)")
    print(f"  outcomes at their bound ({len(rows['label']):,}):          {stored / 2**20:.1f} MiB of SQLite on disk; a live report over them {report_ms:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
