"""What a dynamic dimension costs: one sequence model served with a fixed length, and with lengths of 1 to 64.

    python -m bench.dynamic_shapes                  # 3 alternating rounds of 10 s per scenario, 32 connections
    python -m bench.dynamic_shapes --seconds 5 --rounds 1

Two Keras models of the same layers are made here and imported as users do into a scratch BentoML
home: ``fixed`` takes ``steps`` of shape [64, 3], ``dynamic`` takes [-1, 3] (``--max-dim 64``). Each
step goes through a dense layer of 32, the steps are averaged, a dense layer answers 3 classes. Both
are served by one `bentoml serve` (in process, ONNX Runtime) on a loopback port and loaded with wrk
(bench/load.py) through OIP v2 JSON, one example per request:

- ``fixed 64`` and ``dynamic 64``: every request 64 steps. The difference is what a dynamic dimension
  adds to a request of the same size: the named-tensor path (bench/named_tensors.py measures it alone;
  the fixed model is a one-input model, ``input`` in v2), its sizes in each packed row, grouping the
  rows of a batch by shape (models/tensors.by_shape), the shape check against the bounds.
- ``dynamic 8``: every request 8 steps. Packed rows still take the bound's room (64 steps, zeros
  past the 8 sent), but the model runs on 8 steps.
- ``dynamic 24``, ``dynamic 40``: the other lengths of the mix, each alone.
- ``dynamic mixed``: four wrk processes at once, 8 connections each, at 8, 24, 40 and 64 steps. Batches
  then hold rows of several lengths, and the engine runs once per length in each batch. Its baseline,
  ``apart``, is the rate the same mix of requests would have if each length cost what it costs alone:
  1 / sum(share of the length in the mixed run / its rate alone). mixed / apart is what mixing costs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[1]
CONNECTIONS = 32
BOUND = 64
MIXED = (8, 24, 40, 64)


def make_models(directory: Path) -> None:
    import keras

    keras.utils.set_random_seed(0)
    step = keras.layers.Dense(32, activation="relu")
    head = keras.layers.Dense(3, activation="softmax")
    for name, length in (("fixed", BOUND), ("dynamic", None)):
        steps = keras.Input((length, 3), name="steps")
        keras.Model(steps, head(keras.layers.GlobalAveragePooling1D()(step(steps))), name=name).save(directory / f"{name}.keras")


def v2_body(name: str, steps: int, rng: np.random.Generator) -> dict:
    values = rng.normal(size=(1, steps, 3)).round(3)
    return {"inputs": [{"name": name, "datatype": "FP32", "shape": list(values.shape), "data": values.reshape(-1).tolist()}]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="dynamic-bench-"))
    from bench.servers import import_model, launch, serving_only

    make_models(home)
    for name, extra in (("fixed", ["--kind", "tensor", "--scale", "none"]), ("dynamic", ["--max-dim", str(BOUND)])):
        import_model(home, home / f"{name}.keras", name, "--labels", "a,b,c", *extra)
    from bench.bodies import Body
    from bench.load import WrkResult, run_wrk

    config = serving_only(home, ["fixed", "dynamic"], "dynamic")
    rng = np.random.default_rng(0)
    files: dict[tuple[str, int], Body] = {}
    for model, steps in [("fixed", BOUND), *(("dynamic", length) for length in MIXED)]:
        path = home / f"{model}-{steps}.json"
        path.write_text(json.dumps(v2_body("input" if model == "fixed" else "steps", steps, rng)))
        files[model, steps] = Body(path, "application/json", 1)
    # scenario -> the wrk processes run at once: (model, steps, connections)
    scenarios = {
        "fixed 64": [("fixed", BOUND, CONNECTIONS)],
        "dynamic 64": [("dynamic", BOUND, CONNECTIONS)],
        **{f"dynamic {length}": [("dynamic", length, CONNECTIONS)] for length in MIXED if length != BOUND},
        "dynamic mixed": [("dynamic", length, CONNECTIONS // len(MIXED)) for length in MIXED],
    }
    runs: dict[str, list[list[WrkResult]]] = {name: [] for name in scenarios}
    with launch("served", home, env={"MODEL_SERVER_CONFIG": str(config), "BENTOML_HOME": str(home / "bentoml")}) as server:
        engines = {model: requests.get(f"{server.url}/models/{model}", timeout=10).json()["versions"][0]["engine"] for model in ("fixed", "dynamic")}
        for round_ in range(-1, args.rounds):  # a 2 s warm-up round first, not kept; the rounds alternate the scenarios
            for name, loads in scenarios.items():
                seconds = 2 if round_ < 0 else args.seconds
                with ThreadPoolExecutor(len(loads)) as pool:
                    waiting = [pool.submit(run_wrk, f"{server.url}/v2/models/{model}/infer", files[model, steps], connections, seconds, 10) for model, steps, connections in loads]
                    results = [future.result() for future in waiting]
                if any(result.errors for result in results):
                    raise SystemExit(f"{name}: {sum(r.errors for r in results)} failed requests; see {home}")
                if round_ >= 0:
                    runs[name].append(results)
    print(
        f"a dynamic dimension against a fixed one, {time.strftime('%Y-%m-%d')}: one example per request, {CONNECTIONS} connections, "
        f"the median of {args.rounds} alternating runs of {args.seconds} s, in process, OIP v2 JSON; engines: {engines}"
    )
    print(f"{'scenario':14} {'steps':>6} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}")
    totals, middles = {}, {}
    for name, rounds in runs.items():
        middle = middles[name] = sorted(rounds, key=lambda results: sum(r.requests_per_s for r in results))[len(rounds) // 2]  # the round of median total
        totals[name] = sum(r.requests_per_s for r in middle)
        for (_, steps, _), result in zip(scenarios[name], middle, strict=True):
            print(f"{name:14} {steps:6d} {result.requests_per_s:8.0f} {result.p50_ms:7.2f} {result.p99_ms:7.2f}")
        if len(middle) > 1:
            print(f"{name:14} {'all':>6} {totals[name]:8.0f}")
    print(f"dynamic 64 / fixed 64 = {totals['dynamic 64'] / totals['fixed 64']:.3f}")
    print(f"dynamic 8 / dynamic 64 = {totals['dynamic 8'] / totals['dynamic 64']:.3f}")
    print(f"dynamic mixed / dynamic 64 = {totals['dynamic mixed'] / totals['dynamic 64']:.3f}")
    mixed = {steps: result.requests_per_s for (_, steps, _), result in zip(scenarios["dynamic mixed"], middles["dynamic mixed"], strict=True)}
    apart = 1 / sum(rate / totals["dynamic mixed"] / totals[f"dynamic {steps}"] for steps, rate in mixed.items())
    print(f"dynamic mixed / apart (the same mix, each length at its own rate alone: {apart:.0f} req/s) = {totals['dynamic mixed'] / apart:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
