"""A version's batched inference rate in one process, without HTTP: what serving a batch could reach at best.

    .venv/bin/python -m bench.inprocess --seconds 5 --engine onnxruntime   # one JSON line: engine, images_per_s, ...
    .venv/bin/python -m bench.inprocess --model clothes --version v2 --engine tensorflow --batch 64

The engine is the one a runner would use (``models.engines.load``: the configured engine, or TensorFlow
for a version without a verified ONNX export), with the runners' thread count from the configuration;
the batch is the model's first held-out test examples, in the card's shape, as the runner receives them.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.bodies import test_examples  # noqa: E402
from models import engines, store  # noqa: E402

WARM_UP_CALLS = 5
MAX_CALLS = 100_000


def measure(model: str, version: str, engine: str, seconds: float, batch_examples: int, threads: int) -> dict:
    card, batch = test_examples(model, version, batch_examples)
    predictor = engines.load(store.get(model, version), card, preferred=engine, threads=threads)
    for _ in range(WARM_UP_CALLS):
        predictor(batch)
    calls = 0
    started = time.perf_counter()
    while calls < MAX_CALLS and time.perf_counter() - started < seconds:
        predictor(batch)
        calls += 1
    elapsed = time.perf_counter() - started
    return {
        "model": model,
        "version": version,
        "engine": predictor.name,
        "threads": threads,
        "batch_images": len(batch),
        "calls": calls,
        "seconds": round(elapsed, 3),
        "ms_per_call": round(1000 * elapsed / calls, 3),
        "images_per_s": round(calls * len(batch) / elapsed, 1),
    }


if __name__ == "__main__":
    from config import load_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="clothes")
    parser.add_argument("--version", default="v1")
    parser.add_argument("--engine", choices=engines.ENGINES, default=engines.DEFAULT)
    parser.add_argument("--batch", type=int, default=256, help="examples per call (default 256)")
    parser.add_argument("--threads", type=int, help="engine threads (default: the configured runner's threads)")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    config = load_config()
    runner = config.runner(args.model, args.version) if (args.model, args.version) in config.served() else config.runner_defaults()
    threads = args.threads or runner.threads
    print(json.dumps(measure(args.model, args.version, args.engine, args.seconds, args.batch, threads)))
