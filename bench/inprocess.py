"""The model's batched inference rate in one process, without HTTP: what serving a batch could reach at best.

    .venv/bin/python -m bench.inprocess --seconds 5      # prints one JSON line: images_per_s, calls, ...
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.bodies import BATCH_IMAGES, test_images  # noqa: E402
from models import store  # noqa: E402
from models.inference import Predictor  # noqa: E402

WARM_UP_CALLS = 5
MAX_CALLS = 100_000


def measure(seconds: float, batch_images: int = BATCH_IMAGES) -> dict:
    batch = test_images(batch_images)
    predictor = Predictor(store.load("v1")[0])
    for _ in range(WARM_UP_CALLS):
        predictor(batch)
    calls = 0
    started = time.perf_counter()
    while calls < MAX_CALLS and time.perf_counter() - started < seconds:
        predictor(batch)
        calls += 1
    elapsed = time.perf_counter() - started
    return {
        "batch_images": batch_images,
        "calls": calls,
        "seconds": round(elapsed, 3),
        "ms_per_call": round(1000 * elapsed / calls, 3),
        "images_per_s": round(calls * batch_images / elapsed, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    print(json.dumps(measure(parser.parse_args().seconds)))
