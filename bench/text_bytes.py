"""What a BYTES input's bound costs: one text pipeline served with max_bytes 64 and 4096.

    python -m bench.text_bytes                  # 3 alternating rounds of 10 s per scenario, 32 connections
    python -m bench.text_bytes --seconds 5 --rounds 1

A packed row holds each text's length and its bytes, padded to ``max_bytes`` (models/tensors.py), so a
bound far above the texts sent makes every row, and every batch a runner gets, wider. One scikit-learn
pipeline (TfidfVectorizer, LogisticRegression) is imported twice as users do, ``text64`` with
``--max-bytes 64`` and ``text4k`` with 4096 (the default), into a scratch BentoML home, and served by one
`bentoml serve` (in process, ONNX Runtime) on a loopback port. Each is loaded with wrk (bench/load.py)
through the course's JSON route and OIP v2 JSON, one 40-byte review per request. Before serving, the
check and pack of a batch of 32 reviews and its unpack are timed in process at both bounds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import timeit
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONNECTIONS = 32
REVIEW = "a good film with great acting, not boring"
BOUNDS = {"text64": 64, "text4k": 4096}


def make_pipeline(directory: Path) -> Path:
    import joblib
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline as pipeline_of

    reviews = ["good film great acting", "bad plot awful", "great good fine", "awful bad terrible", "charming and good", "boring bad"] * 5
    path = directory / "sentiment.joblib"
    joblib.dump(pipeline_of(TfidfVectorizer(), LogisticRegression()).fit(reviews, ["pos", "neg", "pos", "neg", "pos", "neg"] * 5), path)
    return path


def packing_us(max_bytes: int, batch: int = 32, repeat: int = 200) -> tuple[float, float]:
    """Microseconds per example to check and pack a batch of reviews, and to unpack it, at ``max_bytes``."""
    from models.card import TensorSpec
    from models.tensors import checked, pack, unpack

    specs = (TensorSpec(name="text", datatype="BYTES", shape=(1,), max_bytes=max_bytes),)
    texts = np.array([[REVIEW]] * batch, dtype=object)
    rows = pack(specs, checked(specs, {"text": (texts, "text")}, "bench"))
    packing = min(timeit.repeat(lambda: pack(specs, checked(specs, {"text": (texts, "text")}, "bench")), number=repeat, repeat=3)) / repeat / batch
    unpacking = min(timeit.repeat(lambda: unpack(specs, rows), number=repeat, repeat=3)) / repeat / batch
    return packing * 1e6, unpacking * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="text-bench-"))
    from bench.servers import import_model, launch, serving_only

    joblib_file = make_pipeline(home)
    for name, bound in BOUNDS.items():
        import_model(home, joblib_file, name, "--trust-pickle", "--max-bytes", str(bound))
    micro = {name: packing_us(bound) for name, bound in BOUNDS.items()}
    from bench.load import alternating_runs, median_run

    config = serving_only(home, list(BOUNDS), "text")
    bodies = {}
    for name in BOUNDS:
        bodies[name, "course JSON"] = (f"/models/{name}/v1", {"input": {"text": [REVIEW]}})
        bodies[name, "v2 JSON"] = (f"/v2/models/{name}/infer", {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1, 1], "data": [REVIEW]}]})
    rows = []
    with launch("served", home, env={"MODEL_SERVER_CONFIG": str(config), "BENTOML_HOME": str(home / "bentoml")}) as server:
        runs = alternating_runs(server.url, home, bodies, CONNECTIONS, args.rounds, args.seconds)
        for (model, route), results in runs.items():
            middle = median_run(results)
            rows.append((model, route, middle.requests_per_s, middle.p50_ms, middle.p99_ms))
    print(f"a BYTES input's bound, {time.strftime('%Y-%m-%d')}: one {len(REVIEW.encode())}-byte review per request")
    for name, bound in BOUNDS.items():
        pack_us, unpack_us = micro[name]
        print(f"  {name} (max_bytes {bound}, rows of {4 + bound} bytes): check and pack {pack_us:.2f} us, unpack {unpack_us:.2f} us per example (batches of 32, in process)")
    print(f"served: {CONNECTIONS} connections, the median of {args.rounds} alternating runs of {args.seconds} s, in process, ONNX Runtime")
    print(f"{'model':7} {'route':12} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for model, route, rate, p50, p99 in rows:
        print(f"{model:7} {route:12} {rate:8.0f} {p50:7.2f} {p99:7.2f}")
    for route in ("course JSON", "v2 JSON"):
        wide, narrow = (next(r[2] for r in rows if r[0] == m and r[1] == route) for m in ("text4k", "text64"))
        print(f"{route}: text4k / text64 = {wide / narrow:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
