"""What named tensors cost a request: a two-input model against a one-input model of the same compute.

    python -m bench.named_tensors                  # 3 alternating rounds of 10 s per scenario, 32 connections
    python -m bench.named_tensors --seconds 5 --rounds 1

Two Keras models are made here and imported as users do into a scratch BentoML home: ``pair`` takes
``features`` (float32 [4]) and ``counts`` (int64 [3], through an embedding of 10 rows x 2), ``one``
takes the same seven values as one float32 vector (projected to ten by a dense layer); both then have
the same dense layers. Both are
served by one `bentoml serve` (in process, ONNX Runtime) on a loopback port, and each is loaded with
wrk (bench/load.py) through the course's JSON route and OIP v2 JSON, one example per request. The
difference is what the named path adds: reading an object of tensors, checking each against the
card, packing the rows and unpacking the outputs (models/tensors.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONNECTIONS = 32


def make_models(directory: Path) -> None:
    import keras

    keras.utils.set_random_seed(0)
    features, counts = keras.Input((4,), name="features"), keras.Input((3,), name="counts", dtype="int64")
    joined = keras.layers.Concatenate()([features, keras.layers.Flatten()(keras.layers.Embedding(10, 2)(counts))])
    head = keras.Sequential([keras.layers.Dense(32, activation="relu"), keras.layers.Dense(3, activation="softmax")])
    keras.Model([features, counts], head(joined), name="pair").save(directory / "pair.keras")
    flat = keras.Input((7,), name="input")  # the same seven values as one vector, projected to ten as the embedding does
    keras.Model(flat, head(keras.layers.Dense(10)(flat)), name="one").save(directory / "one.keras")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="named-bench-"))
    from bench.servers import import_model, launch, serving_only

    make_models(home)
    for name, extra in (("pair", []), ("one", ["--scale", "none"])):
        import_model(home, home / f"{name}.keras", name, "--labels", "a,b,c", *extra)
    from bench.load import alternating_runs, median_run

    config = serving_only(home, ["pair", "one"], "named")
    rng = np.random.default_rng(0)
    x, k = rng.normal(size=4).round(3).tolist(), rng.integers(0, 10, 3).tolist()
    bodies = {
        ("pair", "course JSON"): ("/models/pair/v1", {"input": {"features": x, "counts": k}}),
        ("one", "course JSON"): ("/models/one/v1", {"input": [*x, *map(float, k)]}),
        ("pair", "v2 JSON"): (
            "/v2/models/pair/infer",
            {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 4], "data": x}, {"name": "counts", "datatype": "INT64", "shape": [1, 3], "data": k}]},
        ),
        ("one", "v2 JSON"): ("/v2/models/one/infer", {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 7], "data": [*x, *map(float, k)]}]}),
    }
    rows = []
    with launch("served", home, env={"MODEL_SERVER_CONFIG": str(config), "BENTOML_HOME": str(home / "bentoml")}) as server:
        runs = alternating_runs(server.url, home, bodies, CONNECTIONS, args.rounds, args.seconds)
        for (model, route), results in runs.items():
            middle = median_run(results)
            rows.append((model, route, middle.requests_per_s, middle.p50_ms, middle.p99_ms, sum(r.errors for r in results)))
    print(
        f"named tensors against one tensor, {time.strftime('%Y-%m-%d')}: one example per request, {CONNECTIONS} connections, "
        f"the median of {args.rounds} alternating runs of {args.seconds} s, in process, ONNX Runtime"
    )
    print(f"{'model':6} {'route':12} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")
    for model, route, rate, p50, p99, errors in rows:
        print(f"{model:6} {route:12} {rate:8.0f} {p50:7.2f} {p99:7.2f} {errors:6d}")
    for route in ("course JSON", "v2 JSON"):
        pair, one = (next(r[2] for r in rows if r[0] == m and r[1] == route) for m in ("pair", "one"))
        print(f"{route}: pair / one = {pair / one:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
