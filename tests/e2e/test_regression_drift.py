"""A regressor's drift through a real `bentoml serve`: a Keras regressor (two targets with units, eight
named inputs), a scikit-learn pipeline fitted on scikit-learn's diabetes DataFrame, a Keras regressor of
named tensors (size FP32 [2], rooms INT64 [1]; watched as one vector of their values), and a Keras
multi-label tagger (each label's probability watched as a target), each imported with
`train_and_save.py import ... --eval-data` as users do, so that each stores its drift reference.

Served, each is monitored: GET /models/<name>/v1/drift gives no verdict before traffic, "no drift" after
in-distribution traffic and "drift" after traffic with one input shifted, naming that input and the
target it moves; /metrics carries the drift gauges of the per-input and per-target tests; and the
offline report (python -m lifecycle.drift_report) reads the sampled records of the served regressor.
Requests are bounded (20 of 20 examples per phase and model) and go to loopback only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import requests

from tests.e2e.conftest import ROOT, Server, free_port, report_figures, write_config

TIMEOUT = 30
WINDOW = 400  # the drift window: one phase's examples fill it
PER_REQUEST = 20
HOUSE_INPUTS = ("rooms", "age", "size", "floor", "garden", "school", "noise", "distance")
MAX_EXTRA_REQUESTS = 8  # shifted requests that may follow a phase, each a refresh of the gauges (refresh_seconds apart)
FIGURES: list[str] = []
SENT: set[str] = set()  # the models whose clean and shifted traffic has been sent


class Regressor:
    """One model: its import arguments, in-distribution and shifted examples, and what the shift should name."""

    def __init__(self, name: str, args: list[str], clean: np.ndarray, shifted: np.ndarray, shifted_input: str, moved_target: str, names, named=None):
        self.name, self.args, self.clean, self.shifted = name, args, clean.astype(np.float32), shifted.astype(np.float32)
        self.shifted_input, self.moved_target, self.names = shifted_input, moved_target, tuple(names)
        self.named = named  # a model of named inputs: a row of values as its tensors by name

    def body(self, rows: np.ndarray) -> dict:
        return {"inputs": self.named(rows) if self.named else rows.tolist()}


def keras_house(tmp) -> Regressor:
    """price = 3 rooms + age, area = size - 2 floor (standard-normal inputs); floor shifted by +1."""
    import keras

    keras.utils.set_random_seed(11)
    rng = np.random.default_rng(11)

    def targets(x):
        return np.stack([x[:, 0] * 3 + x[:, 1], x[:, 2] - x[:, 3] * 2], axis=1).astype(np.float32)

    x = rng.normal(0, 1, (3000, 8)).astype(np.float32)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)], name="house")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(x, targets(x), epochs=20, batch_size=64, verbose=0)
    model.save(tmp / "house.keras")
    held = rng.normal(0, 1, (1000, 8)).astype(np.float32)
    np.savez(tmp / "house-held-out.npz", x=held, y=targets(held))
    clean = rng.normal(0, 1, (WINDOW, 8))
    shifted = rng.normal(0, 1, (WINDOW, 8))
    shifted[:, 3] += 1.0
    args = ["--task", "regression", "--targets", "price:USD,area:m2", "--scale", "none", "--input-names", ",".join(HOUSE_INPUTS)]
    return Regressor("house", [str(tmp / "house.keras"), *args, "--eval-data", str(tmp / "house-held-out.npz")], clean, shifted, "floor", "area", HOUSE_INPUTS)


def sklearn_diabetes(tmp) -> Regressor:
    """Fitted on the first 300 rows of diabetes, held out the last 142; its inputs named with --input-names
    (the data set's feature names); traffic resampled from the training rows, shifted by +2 standard
    deviations of bmi (+1 is flagged on bmi, p ~ 1e-16, but moves the predicted progression too little
    for a p < 0.001 against 142 held-out examples: p 0.002 to 0.09 over four seeds)."""
    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_diabetes()
    x, y = data.data, data.target
    model = make_pipeline(StandardScaler(), LinearRegression()).fit(x[:300], y[:300])
    joblib.dump(model, tmp / "diabetes.joblib")
    np.savez(tmp / "diabetes-held-out.npz", x=x[300:], y=y[300:])
    rng = np.random.default_rng(12)
    clean = x[rng.integers(0, 300, WINDOW)]
    shifted = x[rng.integers(0, 300, WINDOW)]
    shifted[:, data.feature_names.index("bmi")] += 2 * x[:, data.feature_names.index("bmi")].std()
    args = ["--trust-pickle", "--targets", "progression", "--input-names", ",".join(data.feature_names), "--eval-data", str(tmp / "diabetes-held-out.npz")]
    return Regressor("diabetes", [str(tmp / "diabetes.joblib"), *args], clean, shifted, "bmi", "progression", data.feature_names)


def keras_parcel(tmp) -> Regressor:
    """Named inputs, size FP32 [2] and rooms INT64 [1] (through an embedding): price = 3 size[0] + rooms,
    area = 2 size[1]; watched as one vector (size[0], size[1], rooms), size[1] shifted by +1."""
    import keras

    keras.utils.set_random_seed(13)
    rng = np.random.default_rng(13)
    size_in, rooms_in = keras.Input((2,), name="size"), keras.Input((1,), name="rooms", dtype="int64")
    joined = keras.layers.Concatenate()([size_in, keras.layers.Flatten()(keras.layers.Embedding(6, 2)(rooms_in))])
    model = keras.Model([size_in, rooms_in], keras.layers.Dense(2)(keras.layers.Dense(16, activation="relu")(joined)), name="parcel")

    def draw(count: int) -> np.ndarray:
        return np.concatenate([rng.normal(0, 1, (count, 2)), rng.integers(0, 6, (count, 1))], axis=1)

    def targets(rows):
        return np.stack([rows[:, 0] * 3 + rows[:, 2], rows[:, 1] * 2], axis=1).astype(np.float32)

    def named(rows):
        return {"size": rows[:, :2].tolist(), "rooms": rows[:, 2:].astype(int).tolist()}

    x = draw(3000)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit([x[:, :2], x[:, 2:].astype(np.int64)], targets(x), epochs=20, batch_size=64, verbose=0)
    model.save(tmp / "parcel.keras")
    held = draw(1000)
    np.savez(tmp / "parcel-held-out.npz", size=held[:, :2].astype(np.float32), rooms=held[:, 2:].astype(np.int64), y=targets(held))
    clean, shifted = draw(WINDOW), draw(WINDOW)
    shifted[:, 1] += 1.0
    args = ["--task", "regression", "--targets", "price:USD,area:m2", "--eval-data", str(tmp / "parcel-held-out.npz")]
    return Regressor("parcel", [str(tmp / "parcel.keras"), *args], clean, shifted, "size[1]", "area", ("size[0]", "size[1]", "rooms"), named)


def keras_tagger(tmp) -> Regressor:
    """A multi-label tagger (sigmoids) of six values: warm = t1 > 0, busy = t2 + t3 > 0, late = t4 > 0.5;
    each label's probability watched as a regressor's target, t4 shifted by +1.5 (late's probability moves)."""
    import keras

    keras.utils.set_random_seed(17)
    rng = np.random.default_rng(17)
    names = tuple(f"t{i}" for i in range(1, 7))

    def tags(x):
        return np.stack([x[:, 0] > 0, x[:, 1] + x[:, 2] > 0, x[:, 3] > 0.5], axis=1).astype(np.int64)

    x = rng.normal(0, 1, (3000, 6)).astype(np.float32)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3, activation="sigmoid")], name="tagger")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    model.fit(x, tags(x), epochs=10, batch_size=64, verbose=0)
    model.save(tmp / "tagger.keras")
    held = rng.normal(0, 1, (1000, 6)).astype(np.float32)
    np.savez(tmp / "tagger-held-out.npz", x=held, y=tags(held))
    clean, shifted = rng.normal(0, 1, (WINDOW, 6)), rng.normal(0, 1, (WINDOW, 6))
    shifted[:, 3] += 1.5
    args = ["--task", "multilabel", "--labels", "warm,busy,late", "--scale", "none", "--input-names", ",".join(names), "--eval-data", str(tmp / "tagger-held-out.npz")]
    return Regressor("tagger", [str(tmp / "tagger.keras"), *args], clean, shifted, "t4", "late", names)


@pytest.fixture(scope="module")
def regressors(tmp_path_factory) -> dict[str, Regressor]:
    tmp = tmp_path_factory.mktemp("regression-drift")
    made = {model.name: model for model in (keras_house(tmp), sklearn_diabetes(tmp), keras_parcel(tmp), keras_tagger(tmp))}
    for model in made.values():
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, str(ROOT / "train_and_save.py"), "import", *model.args[:1], "--name", model.name, "--version", "v1", "--force", *model.args[1:]],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"{model.name}: {result.stdout}{result.stderr}"
        FIGURES.append(f"  import {model.name} with --eval-data: {time.monotonic() - started:.1f} s")
    return made


@pytest.fixture(scope="module")
def srv(regressors, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("regression-drift-serve")
    monitoring = {"window": WINDOW, "min_samples": 200, "refresh_seconds": 0.5, "log_sample_rate": 1.0, "log_max_per_second": 1000}
    config = write_config(tmp / "configuration.yaml", {name: {"versions": ["v1"]} for name in regressors}, monitoring=monitoring)
    server = Server(config, free_port(), tmp / "serve.log")
    server.config, server.monitoring = config, tmp / "monitoring"
    try:
        FIGURES.append(f"  server ready in {server.wait_ready():.1f} s")
        yield server
    finally:
        server.stop()
        report_figures("a regressor's drift through bentoml serve\n" + "\n".join(FIGURES))


def send(session: requests.Session, url: str, model: Regressor, values: np.ndarray) -> float:
    """Every example in requests of PER_REQUEST; the seconds it took."""
    started = time.monotonic()
    for start in range(0, len(values), PER_REQUEST):
        response = session.post(url, json=model.body(values[start : start + PER_REQUEST]), timeout=TIMEOUT)
        assert response.status_code == 200, response.text
    return time.monotonic() - started


def drift(session: requests.Session, url: str) -> dict:
    response = session.get(f"{url}/drift", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def p_values(report: dict) -> str:
    return ", ".join(f"{name} {row['p_value']:.2g}" for name, row in report["statistics"].items() if "p_value" in row)


@pytest.mark.parametrize("name", ["house", "diabetes", "parcel", "tagger"])
def test_in_distribution_traffic_does_not_drift_and_a_shifted_input_does_naming_it_and_its_target(srv, regressors, name):
    model = regressors[name]
    url = f"{srv.url}/models/{name}/v1"
    card = requests.get(url, timeout=TIMEOUT).json()
    assert card["task"] in ("regression", "multilabel-classification") and model.shifted_input in model.names
    targets = [t["name"] for t in card["output"].get("targets", ())] or card["output"]["labels"]  # a tagger's: its labels' probabilities
    if model.named:  # the card lists its named inputs; drift watches their values as one vector
        assert [spec["name"] for spec in card["inputs"]] == ["size", "rooms"]
    else:
        assert list(card["input"]["names"]) == list(model.names)
    with requests.Session() as session:  # one keep-alive connection: one entry worker, whose window holds every example
        before = drift(session, url)
        assert before["verdict"] == "too few predictions" and before["window"]["size"] == 0 and before["statistics"] == {}

        seconds = send(session, url, model, model.clean)
        clean = drift(session, url)
        assert clean["window"]["size"] == WINDOW and clean["verdict"] == "no drift" and not clean["drifted"], clean["statistics"]
        expected = {"mean_intensity_ks", *(f"input_ks[{i}]" for i in model.names), *(f"predicted_value_ks[{t}]" for t in targets)}
        assert set(clean["statistics"]) == expected and "class_shares" not in clean
        assert clean["drifted_inputs"] == [] and clean["drifted_targets"] == []
        FIGURES.append(f"  {name}: {WINDOW} in-distribution examples ({seconds:.1f} s): {clean['verdict']}; {p_values(clean)}")

        seconds = send(session, url, model, model.shifted)
        shifted = drift(session, url)
        assert shifted["verdict"] == "drift" and shifted["drifted"], shifted["statistics"]
        assert shifted["drifted_inputs"] == [model.shifted_input], shifted["statistics"]
        assert model.moved_target in shifted["drifted_targets"], shifted["statistics"]
        assert shifted["statistics"][f"input_ks[{model.shifted_input}]"]["correction"] == {"method": "bonferroni", "tests": len(model.names)}
        FIGURES.append(
            f"  {name}: {WINDOW} examples with {model.shifted_input} shifted ({seconds:.1f} s): {shifted['verdict']}, inputs {shifted['drifted_inputs']}, "
            f"targets {shifted['drifted_targets']}; {p_values(shifted)}"
        )
        SENT.add(name)

        # The gauges are refreshed after an answer, at most every refresh_seconds: the phase's last refresh may
        # have come before its last examples; a few more shifted requests (bounded) refresh them again.
        detected = rf'serving_drift_detected\{{replica="[^"]+",model="{name}",[^}}]*statistic="any",version="v1"\}} 1\.0'
        p_value = rf'serving_drift_p_value\{{replica="[^"]+",model="{name}",[^}}]*statistic="input_ks\[{re.escape(model.shifted_input)}\]",version="v1"\}} ([0-9.e+-]+)'
        for extra in range(MAX_EXTRA_REQUESTS + 1):
            metrics = requests.get(f"{srv.url}/metrics", timeout=TIMEOUT).text
            if (re.search(detected, metrics) and re.findall(p_value, metrics) and min(float(v) for v in re.findall(p_value, metrics)) < 0.001) or extra == MAX_EXTRA_REQUESTS:
                break
            time.sleep(0.6)
            send(session, url, model, model.shifted[:PER_REQUEST])
    assert re.search(detected, metrics), [line for line in metrics.splitlines() if "drift_detected" in line and name in line]
    assert min(float(v) for v in re.findall(p_value, metrics)) < 0.001
    FIGURES.append(f"  {name}: /metrics shows serving_drift_detected{{statistic=any}} 1 after {extra} extra request(s)")


@pytest.mark.parametrize("name", ["diabetes", "parcel", "tagger"])
def test_the_offline_report_reads_the_served_regressors_records(srv, regressors, tmp_path, name):
    """The sampled records (every example: log_sample_rate 1) of a served regressor (parcel: of named inputs,
    recorded as the vector drift watches), in windows of 400: the in-distribution window does not drift, the shifted one does."""
    model = regressors[name]
    if name not in SENT:  # run on its own: the traffic of the test above
        with requests.Session() as session:
            send(session, f"{srv.url}/models/{name}/v1", model, model.clean)
            send(session, f"{srv.url}/models/{name}/v1", model, model.shifted)
    out = tmp_path / f"drift-{name}.html"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the data log is written after each answer
        result = subprocess.run(
            [sys.executable, "-m", "lifecycle.drift_report", "--model", name, "--version", "v1", "--logs", str(srv.monitoring), "--window", str(WINDOW), "--out", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "MODEL_SERVER_CONFIG": str(srv.config)},
        )
        if result.returncode == 0 and "windows of 400" in result.stdout:
            break
        time.sleep(1)
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"(\d+) windows of 400, (\d+) drifted \(last: drift\)", result.stdout)
    assert found and 1 <= int(found[2]) < int(found[1]), result.stdout  # the in-distribution window does not drift, the shifted one does
    html = out.read_text()
    assert f"input {model.shifted_input} KS" in html and f"{model.moved_target} KS" in html and html.count("<img") == 2
    FIGURES.append(f"  offline report of {name}: {result.stdout.strip()}")
