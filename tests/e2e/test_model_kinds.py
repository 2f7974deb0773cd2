"""Any model, any framework, through a real `bentoml serve`: models of each kind are made here in seconds,
imported with `train_and_save.py import` as a user would, served side by side, and called through every
protocol with its stock client; every answer must equal the in-process prediction within 1e-5.

Kinds: a Keras regressor (two targets with units), a Keras multi-label tagger, a Keras classifier exported
as a SavedModel directory (converted to ONNX at import), a scikit-learn pipeline
(scaler and logistic regression, on iris) and a random forest (on digits), a scikit-learn regressor (on
diabetes), an ONNX classifier and an ONNX embedding model built with onnx's helper API. Protocols: the
course's route, BentoML's typed API, OIP v2 REST (tritonclient.http) and gRPC (tritonclient.grpc), TF
Serving REST and gRPC (tensorflow-serving-api). The regressor's live error from ground truth carried by
the requests equals its error computed here. The table of kinds x protocols (max difference) is printed
with the measured figures.
"""

from __future__ import annotations

import subprocess
import sys
import time

import grpc
import joblib
import numpy as np
import onnx
import onnxruntime
import pytest
import requests
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from onnx import TensorProto, helper, numpy_helper

from tests.e2e.conftest import ROOT, Server, free_port, report_figures, write_config

TIMEOUT = 30
TOLERANCE = 1e-5
PROTOCOLS = ("course REST", "typed API", "v2 REST", "v2 gRPC", "TF Serving REST", "TF Serving gRPC")
RESULTS: dict[tuple[str, str], str] = {}


class Kind:
    """One model: the file to import, the import's arguments, the examples to send and what it answers in process."""

    def __init__(self, name: str, path, args: list[str], examples: np.ndarray, local, tensor: str):
        self.name, self.path, self.args, self.examples, self.local, self.tensor = name, path, args, examples.astype(np.float32), local, tensor

    @property
    def expected(self) -> np.ndarray:
        return np.asarray(self.local(self.examples), np.float32).reshape(len(self.examples), -1)


def keras_models(tmp) -> list[Kind]:
    import keras

    keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, (600, 8)).astype(np.float32)
    y = np.stack([x[:, 0] * 3 + x[:, 1], x[:, 2] - x[:, 3] * 2], axis=1).astype(np.float32)
    regressor = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)], name="houses")
    regressor.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    regressor.fit(x, y, epochs=5, verbose=0)
    regressor.save(tmp / "regressor.keras")
    tags = (x[:, :3] > 0).astype(np.float32)
    tagger = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="sigmoid")], name="tagger")
    tagger.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")
    tagger.fit(x, tags, epochs=5, verbose=0)
    tagger.save(tmp / "tagger.keras")
    classifier = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3, activation="softmax")], name="exported")
    classifier.export(str(tmp / "savedmodel"), verbose=False)  # a SavedModel directory, as TF Serving loads
    examples = rng.normal(0, 1, (16, 8))
    return [
        Kind("savedmodel", tmp / "savedmodel", ["--labels", "low,mid,high"], examples, lambda v: classifier.predict(v, verbose=0), "probabilities"),
        Kind(
            "regressor",
            tmp / "regressor.keras",
            ["--task", "regression", "--targets", "price:USD,area:m2", "--scale", "none"],
            examples,
            lambda v: regressor.predict(v, verbose=0),
            "values",
        ),
        Kind(
            "tagger",
            tmp / "tagger.keras",
            ["--task", "multilabel", "--labels", "red,round,sweet", "--scale", "none"],
            examples,
            lambda v: tagger.predict(v, verbose=0),
            "probabilities",
        ),
    ]


def sklearn_models(tmp) -> list[Kind]:
    from sklearn.datasets import load_diabetes, load_digits, load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_iris, y_iris = load_iris(return_X_y=True)
    iris = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x_iris, y_iris)
    joblib.dump(iris, tmp / "iris.joblib")
    x_digits, y_digits = load_digits(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0).fit(x_digits, y_digits)
    joblib.dump(forest, tmp / "digits.pkl")
    x_diabetes, y_diabetes = load_diabetes(return_X_y=True)
    diabetes = make_pipeline(StandardScaler(), LinearRegression()).fit(x_diabetes, y_diabetes)
    joblib.dump(diabetes, tmp / "diabetes.joblib")
    np.savez(tmp / "diabetes-held-out.npz", x=x_diabetes[-100:], y=y_diabetes[-100:])
    trust = "--trust-pickle"
    return [
        Kind(
            "iris",
            tmp / "iris.joblib",
            [trust, "--labels", "setosa,versicolor,virginica", "--input-names", "sepal length,sepal width,petal length,petal width"],
            x_iris[::10],
            lambda v: iris.predict_proba(v.astype(np.float32)),
            "probabilities",
        ),
        Kind("digits", tmp / "digits.pkl", [trust, "--range", "0,16"], x_digits[:16], lambda v: forest.predict_proba(v.astype(np.float32)), "probabilities"),
        Kind(
            "diabetes",
            tmp / "diabetes.joblib",
            [trust, "--targets", "progression", "--eval-data", str(tmp / "diabetes-held-out.npz")],
            x_diabetes[:16],
            lambda v: diabetes.predict(v.astype(np.float32)),
            "values",
        ),
    ]


def onnx_models(tmp) -> list[Kind]:
    rng = np.random.default_rng(7)
    weights, bias, projection = rng.normal(0, 1, (4, 3)).astype(np.float32), rng.normal(0, 1, 3).astype(np.float32), rng.normal(0, 1, (4, 5)).astype(np.float32)
    classifier = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["z0"]), helper.make_node("Add", ["z0", "b"], ["z"]), helper.make_node("Softmax", ["z"], ["probs"], axis=1)],
        "linear_softmax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")],
    )
    embedder = helper.make_graph(
        [helper.make_node("MatMul", ["x", "P"], ["e"])],
        "projection",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, ["N", 5])],
        [numpy_helper.from_array(projection, "P")],
    )
    kinds = []
    for name, graph, args, tensor in (("onnx-classifier", classifier, ["--labels", "a,b,c"], "probabilities"), ("onnx-embedder", embedder, ["--task", "embedding"], "embedding")):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        path = tmp / f"{name}.onnx"
        onnx.save(model, path)
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        output = session.get_outputs()[0].name
        kinds.append(Kind(name, path, args, rng.normal(0, 1, (16, 4)), lambda v, s=session, o=output: s.run([o], {"x": v.astype(np.float32)})[0], tensor))
    return kinds


@pytest.fixture(scope="module")
def kinds(tmp_path_factory) -> dict[str, Kind]:
    tmp = tmp_path_factory.mktemp("kinds")
    made = {kind.name: kind for kind in [*keras_models(tmp), *sklearn_models(tmp), *onnx_models(tmp)]}
    for kind in made.values():
        result = subprocess.run(
            [sys.executable, str(ROOT / "train_and_save.py"), "import", str(kind.path), "--name", kind.name, "--version", "v1", "--force", *kind.args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"{kind.name}: {result.stdout}{result.stderr}"
    return made


@pytest.fixture(scope="module")
def srv(kinds, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kinds-serve")
    config = write_config(tmp / "configuration.yaml", {name: {"versions": ["v1"]} for name in kinds}, feedback={"enabled": True, "join_seconds": 0.1})
    server = Server(config, free_port(), tmp / "serve.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
        rows = [f"  {'model':16}" + "".join(f"{p:>18}" for p in PROTOCOLS)]
        rows += [f"  {name:16}" + "".join(f"{RESULTS.get((name, p), '-'):>18}" for p in PROTOCOLS) for name in kinds]
        report_figures("models of each kind through every protocol: max |served - in process|\n" + "\n".join(rows))


def served(srv: Server, kind: Kind, protocol: str) -> np.ndarray:
    examples = kind.examples
    if protocol == "course REST":
        response = requests.post(f"{srv.url}/models/{kind.name}/v1", json={"inputs": examples.tolist()}, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        return np.asarray(response.json()["result"], np.float32)
    if protocol == "typed API":
        response = requests.post(f"{srv.url}/classify", json={"images": examples.tolist(), "model": kind.name}, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        return np.asarray(response.json()["result"], np.float32)
    if protocol == "v2 REST":
        with triton_http.InferenceServerClient(srv.url.removeprefix("http://")) as client:
            tensor = triton_http.InferInput("input", list(examples.shape), "FP32")
            tensor.set_data_from_numpy(examples, binary_data=True)
            return client.infer(kind.name, [tensor]).as_numpy(kind.tensor)
    if protocol == "v2 gRPC":
        with triton_grpc.InferenceServerClient(srv.grpc) as client:
            tensor = triton_grpc.InferInput("input", list(examples.shape), "FP32")
            tensor.set_data_from_numpy(examples)
            return client.infer(kind.name, [tensor]).as_numpy(kind.tensor)
    if protocol == "TF Serving REST":
        response = requests.post(f"{srv.url}/v1/models/{kind.name}:predict", json={"instances": examples.tolist()}, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        return np.asarray(response.json()["predictions"], np.float32)
    if protocol == "TF Serving gRPC":
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        request = predict_pb2.PredictRequest()
        request.model_spec.name = kind.name
        request.inputs["input"].CopyFrom(tf.make_tensor_proto(examples))
        with grpc.insecure_channel(srv.grpc) as channel:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=TIMEOUT)
        assert list(response.outputs) == [kind.tensor]
        return tf.make_ndarray(response.outputs[kind.tensor])
    raise AssertionError(protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", ["regressor", "tagger", "savedmodel", "iris", "digits", "diabetes", "onnx-classifier", "onnx-embedder"])
def test_every_kind_answers_through_every_protocol_as_in_process(srv, kinds, name, protocol):
    kind = kinds[name]
    answer = served(srv, kind, protocol).reshape(len(kind.examples), -1)
    expected = kind.expected
    assert answer.shape == expected.shape
    difference = float(np.abs(answer - expected).max() / max(1.0, float(np.abs(expected).max())))
    RESULTS[name, protocol] = f"{difference:.1e}"
    assert difference <= TOLERANCE, f"{name} through {protocol}: {difference}"


def test_the_cards_say_what_each_model_is(srv, kinds):
    cards = {name: requests.get(f"{srv.url}/models/{name}/v1", timeout=TIMEOUT).json() for name in kinds}  # the card, with where it serves
    assert cards["regressor"]["task"] == "regression" and [t["unit"] for t in cards["regressor"]["output"]["targets"]] == ["USD", "m2"]
    for name in ("regressor", "tagger"):  # Keras models of other tasks get their verified ONNX export too
        assert cards[name]["engines"]["onnxruntime"].get("file") == "model.onnx", cards[name]["engines"]
    assert cards["regressor"]["engines"]["onnxruntime"]["verification"]["max_rel_diff"] <= 1e-4
    assert cards["tagger"]["output"]["kind"] == "multilabel" and cards["tagger"]["output"]["thresholds"] == [0.5, 0.5, 0.5]
    assert cards["iris"]["input"]["names"] == ["sepal length", "sepal width", "petal length", "petal width"] and "names" not in cards["digits"]["input"]
    assert cards["iris"]["training"]["framework"] == "scikit-learn" and cards["iris"]["engines"]["onnxruntime"]["verification"]["max_abs_diff"] <= 1e-5
    assert cards["diabetes"]["output"]["targets"] == [{"name": "progression", "unit": None}] and cards["diabetes"]["metrics"]["per_target"]["progression"]["mae"] > 0
    report = requests.get(f"{srv.url}/models/diabetes/v1/report", timeout=TIMEOUT)
    assert report.status_code == 200 and "Errors per target" in report.text and "data:image/png;base64," in report.text
    assert cards["onnx-embedder"]["output"] == {"kind": "embedding", "labels": [], "positive_label": None, "shape": [5]}


def test_a_regressors_live_error_equals_its_error_on_the_labelled_stream(srv, kinds):
    kind = kinds["regressor"]
    rng = np.random.default_rng(11)
    examples = rng.normal(0, 1, (60, 8)).astype(np.float32)
    truth = np.stack([examples[:, 0] * 3 + examples[:, 1], examples[:, 2] - examples[:, 3] * 2], axis=1)
    for row, values in zip(examples, truth, strict=True):
        header = ";".join(repr(float(v)) for v in values)
        response = requests.post(f"{srv.url}/models/regressor/v1", json={"input": row.tolist()}, headers={"X-Label": header}, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
    error = np.asarray(kind.local(examples), np.float64) - truth
    report = {}
    for _ in range(50):  # the join runs every join_seconds in every entry worker
        report = requests.get(f"{srv.url}/models/regressor/v1/live", timeout=TIMEOUT).json()
        if report.get("examples") == 60:
            break
        time.sleep(0.2)
    assert report["examples"] == 60, report
    for index, target in enumerate(report["targets"]):
        assert target["mae"]["value"] == pytest.approx(np.abs(error[:, index]).mean(), abs=1e-4)
        assert target["rmse"]["value"] == pytest.approx(np.sqrt((error[:, index] ** 2).mean()), abs=1e-4)
    report_figures(
        "regressor live error over 60 labelled requests: "
        + ", ".join(f"{t['name']} MAE {t['mae']['value']:.4f} (offline on the stream {np.abs(error[:, i]).mean():.4f})" for i, t in enumerate(report["targets"]))
    )
