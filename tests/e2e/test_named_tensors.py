"""Models with several named inputs and outputs through a real `bentoml serve`, called with each
protocol's stock client: every answer must equal the in-process prediction within 1e-5.

Models, made here in seconds and imported with `train_and_save.py import` as a user would:
- ``pair``: a two-input Keras classifier (``features`` float32 [4], ``counts`` int64 [3] through an
  embedding) with one softmax, served with its labels (live accuracy from labels carried by requests);
- ``pair-outputs``: the same inputs, two outputs (``kind`` softmax [3], ``size`` [2]), ``--task tensor``;
- ``onnx-pair``: an ONNX graph built with onnx's helper API taking ``x`` float32 [3] and ``k`` int32 [3],
  answering ``sum`` float32 [3] and ``best`` int64 (an output that is not float);
- ``onnx-mask``: an ONNX graph taking ``x`` float32 [3] and ``keep`` BOOL [3], answering ``kept``
  (``x`` where ``keep``, else 0) and ``dropped`` BOOL (not ``keep``): booleans in and out;
- ``onnx-words``: an ONNX graph taking ``text`` BYTES [1] (a colour's name, looked up by the ONNX-ML
  LabelEncoder) and ``x`` float32 [1], answering ``sum`` (x plus the colour's number), ``id`` and
  ``name`` BYTES [1] (the colour in French: strings out);
- ``keras-review``: a Keras classifier of one string per example (TextVectorization, an embedding,
  pooling, a softmax): its ONNX export fails on the string ops, so it is served on TensorFlow;
- ``keras-colours``: a Keras model of ``x`` float32 [4] answering ``scores`` and ``colour`` BYTES [1]
  (a StringLookup with invert=True): strings out of Keras, on TensorFlow;
- ``sentiment``: a scikit-learn text pipeline (TfidfVectorizer, LogisticRegression) from a joblib file,
  converted with skl2onnx: one string per example, answered with its two labels' probabilities;
- ``pair-chain``: a graph pipeline (configuration.yaml ``pipelines``) feeding onnx-pair's ``sum`` to a
  Keras classifier ``head`` (input [3]): it takes ``x`` and ``k`` and answers the head's probabilities.
Protocols: the course's route (``{"inputs": {...}}``), OIP v2 REST (tritonclient.http, binary tensors)
and gRPC (tritonclient.grpc), TF Serving REST (row and columnar) and gRPC (tensorflow-serving-api).
BentoML's typed API takes one tensor: it refuses these models naming the routes that take them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import requests
from onnx import TensorProto, helper

from tests.e2e.conftest import ROOT, Server, free_port, report_figures, write_config
from tests.e2e.tensor_clients import PROTOCOLS, served, worst_difference

TIMEOUT = 30
TOLERANCE = 1e-5
RESULTS: dict[tuple[str, str], str] = {}
LABELS = ("small", "medium", "large")


class Named:
    """A model to import: its file, the import's arguments, inputs to send and what it answers in process (by output name)."""

    def __init__(self, name: str, path, args: list[str], inputs: dict[str, np.ndarray], local):
        self.name, self.path, self.args, self.inputs, self.local = name, path, args, inputs, local

    @property
    def expected(self) -> dict[str, np.ndarray]:
        return self.local(self.inputs)


def keras_models(tmp) -> list[Named]:
    import keras

    keras.utils.set_random_seed(9)
    rng = np.random.default_rng(9)
    features_in, counts_in = keras.Input((4,), name="features"), keras.Input((3,), name="counts", dtype="int64")
    hidden = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()([features_in, keras.layers.Flatten()(keras.layers.Embedding(10, 2)(counts_in))]))
    kind = keras.layers.Dense(3, activation="softmax", name="kind")(hidden)
    size = keras.layers.Dense(2, name="size")(hidden)
    pair = keras.Model([features_in, counts_in], kind, name="pair")
    features, counts = rng.normal(0, 1, (200, 4)).astype(np.float32), rng.integers(0, 10, (200, 3))
    labels = (features[:, 0] + counts[:, 0] / 5 > 1).astype(int) + (features[:, 1] > 0.5)
    pair.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    pair.fit([features, counts], labels, epochs=5, verbose=0)
    pair.save(tmp / "pair.keras")
    outputs = keras.Model([features_in, counts_in], [kind, size], name="pair_outputs")
    outputs.save(tmp / "pair-outputs.keras")
    examples = {"features": rng.normal(0, 1, (12, 4)).astype(np.float32), "counts": rng.integers(0, 10, (12, 3))}
    held = {"features": rng.normal(0, 1, (60, 4)).astype(np.float32), "counts": rng.integers(0, 10, (60, 3))}  # --eval-data: an array per input, and y
    np.savez(tmp / "pair-held.npz", **held, y=(held["features"][:, 0] + held["counts"][:, 0] / 5 > 1).astype(int) + (held["features"][:, 1] > 0.5))
    return [
        Named(
            "pair",
            tmp / "pair.keras",
            ["--labels", ",".join(LABELS), "--eval-data", str(tmp / "pair-held.npz")],
            examples,
            lambda i: {"probabilities": pair.predict([i["features"], i["counts"]], verbose=0)},
        ),
        Named(
            "pair-outputs",
            tmp / "pair-outputs.keras",
            ["--task", "tensor"],
            examples,
            lambda i: dict(zip(("kind", "size"), outputs.predict([i["features"], i["counts"]], verbose=0), strict=True)),
        ),
    ]


COLOURS = ("red", "green", "turquoise")  # turquoise: 9 bytes, past keras-colours' --max-bytes 8


def keras_colours_model(tmp) -> Named:
    """A Keras model answering strings: ``scores`` (x's first three values) and ``colour``, the best score's
    name from a StringLookup with invert=True (which Keras declares as int64: the import runs it to see)."""
    import keras

    x = keras.Input((4,), name="x")
    # turquoise only where x[2] leads by 10: never in the import's standard normal probes
    scores = keras.layers.Dense(3, name="scores", kernel_initializer=keras.initializers.Identity(), bias_initializer=keras.initializers.Constant([0, 0, -10]))(x)
    lookup = keras.layers.StringLookup(vocabulary=list(COLOURS), invert=True, num_oov_indices=0)
    colour = keras.layers.Reshape((1,), name="colour")(lookup(keras.ops.argmax(scores, axis=-1)))
    model = keras.Model(x, [scores, colour], name="colours")
    model.save(tmp / "keras-colours.keras")
    rng = np.random.default_rng(8)
    inputs = rng.normal(0, 1, (10, 4)).astype(np.float32)
    return Named(
        "keras-colours",
        tmp / "keras-colours.keras",
        ["--task", "tensor", "--max-bytes", "8"],
        {"x": inputs},
        lambda i: dict(zip(("scores", "colour"), texts(model.predict(i["x"], verbose=0)), strict=True)),
    )


def texts(outputs: list[np.ndarray]) -> list[np.ndarray]:
    """Keras answers strings as bytes; the clients' answers are compared as text."""
    return [np.vectorize(bytes.decode, otypes=[object])(output) if output.dtype == object else output for output in outputs]


def saved_graph(graph, path, ml: bool = False) -> onnxruntime.InferenceSession:
    """``graph`` as an ONNX file at ``path`` (opset 17; ONNX-ML 3 with ``ml``), opened with ONNX Runtime for the in-process answers."""
    opsets = [helper.make_opsetid("", 17), *([helper.make_opsetid("ai.onnx.ml", 3)] if ml else [])]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, path)
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def onnx_model(tmp) -> Named:
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["k"], ["kf"], to=TensorProto.FLOAT),
            helper.make_node("Add", ["x", "kf"], ["sum"]),
            helper.make_node("ArgMax", ["sum"], ["best"], axis=1, keepdims=0),
        ],
        "pair_graph",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3]), helper.make_tensor_value_info("k", TensorProto.INT32, ["N", 3])],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["N", 3]), helper.make_tensor_value_info("best", TensorProto.INT64, ["N"])],
    )
    path = tmp / "onnx-pair.onnx"
    session = saved_graph(graph, path)
    rng = np.random.default_rng(4)
    inputs = {"x": rng.normal(0, 1, (10, 3)).astype(np.float32), "k": rng.integers(-3, 4, (10, 3)).astype(np.int32)}
    return Named("onnx-pair", path, ["--task", "tensor"], inputs, lambda i: dict(zip(("sum", "best"), session.run(None, i), strict=True)))


def mask_model(tmp) -> Named:
    graph = helper.make_graph(
        [
            helper.make_node("Where", ["keep", "x", "zero"], ["kept"]),
            helper.make_node("Not", ["keep"], ["dropped"]),
        ],
        "mask_graph",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3]), helper.make_tensor_value_info("keep", TensorProto.BOOL, ["N", 3])],
        [helper.make_tensor_value_info("kept", TensorProto.FLOAT, ["N", 3]), helper.make_tensor_value_info("dropped", TensorProto.BOOL, ["N", 3])],
        initializer=[helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])],
    )
    path = tmp / "onnx-mask.onnx"
    session = saved_graph(graph, path)
    rng = np.random.default_rng(5)
    inputs = {"x": rng.normal(0, 1, (9, 3)).astype(np.float32), "keep": rng.random((9, 3)) < 0.5}
    return Named("onnx-mask", path, ["--task", "tensor"], inputs, lambda i: dict(zip(("kept", "dropped"), session.run(None, i), strict=True)))


TEXTS = np.array([["good film, great acting"], [""], ["Café naïve"], ["AWFUL plot"], ["unseen words only"], ["bad bad good"]], dtype=object)


def text_models(tmp) -> list[Named]:
    """Strings in: an ONNX graph built with onnx's helper API, a scikit-learn text pipeline from joblib, and
    a Keras model of a TextVectorization layer (served on TensorFlow)."""
    import joblib
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    graph = helper.make_graph(
        [
            helper.make_node(
                "LabelEncoder", ["text"], ["id"], domain="ai.onnx.ml", keys_strings=["red", "green", "blue", "vert", "sky"], values_int64s=[0, 1, 2, 1, 3], default_int64=-1
            ),
            helper.make_node("Cast", ["id"], ["number"], to=TensorProto.FLOAT),
            helper.make_node("Add", ["x", "number"], ["sum"]),
            helper.make_node(  # strings out: the colour's French name ("sky": a name past --max-bytes 16)
                "LabelEncoder", ["id"], ["name"], domain="ai.onnx.ml", keys_int64s=[0, 1, 2, 3], values_strings=["rouge", "vert", "bleu", "la couleur du ciel"], default_string="?"
            ),
        ],
        "words_graph",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["N", 1]), helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
        [
            helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["N", 1]),
            helper.make_tensor_value_info("id", TensorProto.INT64, ["N", 1]),
            helper.make_tensor_value_info("name", TensorProto.STRING, ["N", 1]),
        ],
    )
    session = saved_graph(graph, tmp / "onnx-words.onnx", ml=True)
    words = {"text": np.array([["red"], ["vert"], ["blue"], ["purple"], [""], ["Green"]], dtype=object), "x": np.arange(6, dtype=np.float32).reshape(6, 1) / 4}
    reviews = ["good film great acting", "bad plot awful", "great good fine", "awful bad terrible", "Café naïve charm good", "boring bad"] * 3
    pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(reviews, ["pos", "neg", "pos", "neg", "pos", "neg"] * 3)
    joblib.dump(pipeline, tmp / "sentiment.joblib")
    held = ["good acting", "awful film", "great plot", "bad bad", "naïve but fine", "terrible acting", "good", "boring"]  # --eval-data: text [N, 1] and y
    np.savez(tmp / "sentiment-held.npz", text=np.array(held)[:, None], y=np.array([1, 0, 1, 0, 1, 0, 1, 0]))  # classes_: neg, pos
    review = keras_text_model(tmp, reviews)
    return [
        Named(
            "keras-review",
            tmp / "keras-review.keras",
            ["--labels", "neg,pos", "--max-bytes", "64"],
            {"review": TEXTS},
            lambda i: {"probabilities": review.predict(tf_strings(i["review"]), verbose=0)},
        ),
        Named(
            "onnx-words", tmp / "onnx-words.onnx", ["--task", "tensor", "--max-bytes", "16"], words, lambda i: dict(zip(("sum", "id", "name"), session.run(None, i), strict=True))
        ),
        Named(
            "sentiment",
            tmp / "sentiment.joblib",
            ["--trust-pickle", "--max-bytes", "64", "--eval-data", str(tmp / "sentiment-held.npz")],
            {"text": TEXTS},
            lambda i: {"probabilities": pipeline.predict_proba(list(i["text"][:, 0])).astype(np.float32)},
        ),
    ]


def tf_strings(values: np.ndarray):
    import tensorflow as tf

    return tf.constant(values.astype(str).tolist(), dtype=tf.string)


def keras_text_model(tmp, reviews: list[str]):
    """A Keras classifier of one string per example: TextVectorization (adapted to the reviews), an
    embedding, pooling and a softmax over neg and pos; its ONNX export fails (tf2onnx lacks the string
    ops), so it serves on TensorFlow."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(8)
    vectorize = keras.layers.TextVectorization(max_tokens=40, output_sequence_length=6)
    vectorize.adapt(reviews)
    review = keras.Input((1,), dtype="string", name="review")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(40, 4)(vectorize(review)))
    model = keras.Model(review, keras.layers.Dense(2, activation="softmax")(pooled), name="review")
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    labels = np.array([1, 0, 1, 0, 1, 0] * (len(reviews) // 6))
    model.fit(tf.data.Dataset.from_tensor_slices((np.array(reviews)[:, None], labels)).batch(6), epochs=5, verbose=0)
    model.save(tmp / "keras-review.keras")
    return model


def chain(tmp, pair: Named) -> tuple[Named, Named]:
    """``head``, a Keras classifier of three values, and the graph pipeline feeding it onnx-pair's sum."""
    import keras

    keras.utils.set_random_seed(2)
    head = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, activation="softmax")], name="head")
    head.save(tmp / "head.keras")
    imported = Named("head", tmp / "head.keras", ["--labels", ",".join(LABELS), "--scale", "none"], {}, None)
    pipeline = Named("pair-chain", None, [], pair.inputs, lambda i: {"probabilities": head.predict(pair.local(i)["sum"], verbose=0)})
    return imported, pipeline


def run_import(path, name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "train_and_save.py"), "import", str(path), "--name", name, "--version", "v1", "--force", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Named]:
    tmp = tmp_path_factory.mktemp("named")
    made = {model.name: model for model in [*keras_models(tmp), onnx_model(tmp), mask_model(tmp), *text_models(tmp), keras_colours_model(tmp)]}
    made.update({model.name: model for model in chain(tmp, made["onnx-pair"])})
    for model in made.values():
        if model.path is None:  # a pipeline: configured, not imported
            continue
        result = run_import(model.path, model.name, *model.args)
        assert result.returncode == 0, f"{model.name}: {result.stdout}{result.stderr}"
    return made


def chain_held(tmp) -> Path:
    """Evaluation data for pair-chain: an array per pipeline input (x, k) and y, a label per example."""
    rng = np.random.default_rng(6)
    held = {"x": rng.normal(0, 1, (80, 3)).astype(np.float32), "k": rng.integers(-3, 4, (80, 3)).astype(np.int32)}
    path = tmp / "chain-held.npz"
    np.savez(path, **held, y=(held["x"] + held["k"]).argmax(axis=1))
    return path


def measure_pipeline(config: Path, name: str, data: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "train_and_save.py"), "measure-pipeline", name, "--eval-data", str(data)],
        cwd=ROOT,
        env={**os.environ, "MODEL_SERVER_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def srv(models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("named-serve")
    pipelines = {"pair-chain": {"combine": "graph", "steps": ["onnx-pair:v1", "head:v1"], "wiring": [{}, {"input": "1.sum"}]}}
    served_models = {name: {"versions": ["v1"]} for name, model in models.items() if model.path is not None}
    sections = {"feedback": {"enabled": True, "join_seconds": 0.1}, "pipelines": pipelines, "pipeline_metrics": str(tmp / "pipelines.json")}
    config = write_config(tmp / "configuration.yaml", served_models, **sections)
    measured = measure_pipeline(config, "pair-chain", chain_held(tmp))
    assert measured.returncode == 0, measured.stdout + measured.stderr
    server = Server(config, free_port(), tmp / "serve.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
        rows = [f"  {'model':14}" + "".join(f"{p:>25}" for p in PROTOCOLS)]
        rows += [f"  {name:14}" + "".join(f"{RESULTS.get((name, p), '-'):>25}" for p in PROTOCOLS) for name in models if name != "head"]
        report_figures("models with named inputs and outputs through every protocol: max |served - in process|\n" + "\n".join(rows))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", ["pair", "pair-outputs", "onnx-pair", "onnx-mask", "onnx-words", "sentiment", "keras-review", "keras-colours", "pair-chain"])
def test_every_named_tensor_model_answers_through_every_protocol_as_in_process(srv, models, name, protocol):
    model = models[name]
    expected = model.expected
    worst = worst_difference(expected, served(srv, name, model.inputs, protocol, list(expected)))
    RESULTS[name, protocol] = f"{worst:.1e}"
    assert worst <= TOLERANCE, f"{name} through {protocol}: {worst}"


def test_metadata_and_cards_name_each_tensor_and_the_typed_api_points_elsewhere(srv, models):
    meta = requests.get(f"{srv.url}/v2/models/onnx-pair", timeout=TIMEOUT).json()
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}, {"name": "k", "datatype": "INT32", "shape": [-1, 3]}]
    assert meta["outputs"] == [{"name": "sum", "datatype": "FP32", "shape": [-1, 3]}, {"name": "best", "datatype": "INT64", "shape": [-1]}]
    mask = requests.get(f"{srv.url}/v2/models/onnx-mask", timeout=TIMEOUT).json()
    assert [(t["name"], t["datatype"]) for t in mask["inputs"] + mask["outputs"]] == [("x", "FP32"), ("keep", "BOOL"), ("kept", "FP32"), ("dropped", "BOOL")]
    signature = requests.get(f"{srv.url}/v1/models/onnx-mask/metadata", timeout=TIMEOUT).json()["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["keep"]["dtype"] == "DT_BOOL" and signature["outputs"]["dropped"]["dtype"] == "DT_BOOL"
    x = {"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}
    as_numbers = requests.post(
        f"{srv.url}/v2/models/onnx-mask/infer", json={"inputs": [x, {"name": "keep", "datatype": "INT32", "shape": [1, 3], "data": [1, 0, 1]}]}, timeout=TIMEOUT
    )
    assert as_numbers.status_code == 200 and as_numbers.json()["outputs"][0]["data"] == [1, 0, 3], as_numbers.text  # 0 and 1 are what BOOL holds
    not_bool = requests.post(
        f"{srv.url}/v2/models/onnx-mask/infer", json={"inputs": [x, {"name": "keep", "datatype": "BOOL", "shape": [1, 3], "data": [1, 0, 1]}]}, timeout=TIMEOUT
    )
    assert not_bool.status_code == 400 and "inputs[1].data: BOOL values must be true or false" in not_bool.json()["error"], not_bool.text
    card = requests.get(f"{srv.url}/models/pair-outputs/v1", timeout=TIMEOUT).json()
    assert [spec["name"] for spec in card["inputs"]] == ["features", "counts"] and [spec["name"] for spec in card["outputs"]] == ["kind", "size"]
    verification = card["engines"]["onnxruntime"]["verification"]  # the Keras model's ONNX export, checked on probe inputs
    assert card["engines"]["onnxruntime"]["file"] == "model.onnx" and verification["max_rel_diff"] <= 1e-4
    typed = requests.post(f"{srv.url}/classify", json={"images": [[1.0, 2.0, 3.0]], "model": "onnx-pair"}, timeout=TIMEOUT)
    assert typed.status_code == 400 and "takes named inputs (x, k)" in typed.json()["error"], typed.text
    wrong = requests.post(f"{srv.url}/models/onnx-pair/v1", json={"input": {"x": [1, 2, 3], "k": [1, 2.5, 3]}}, timeout=TIMEOUT)
    assert wrong.status_code == 422 and "k is INT32: values must be whole numbers" in wrong.json()["error"]
    empty = [{"name": name, "datatype": datatype, "shape": [0, 3], "data": []} for name, datatype in (("x", "FP32"), ("k", "INT32"))]
    none = requests.post(f"{srv.url}/v2/models/onnx-pair/infer", json={"inputs": empty}, timeout=TIMEOUT)
    assert none.status_code == 400 and "expected at least one example of x" in none.json()["error"], none.text
    none = requests.post(f"{srv.url}/v1/models/onnx-pair:predict", json={"inputs": {"x": [], "k": []}}, timeout=TIMEOUT)
    assert none.status_code == 400 and "at least one example" in none.json()["error"], none.text


def test_a_string_output_past_its_max_bytes_fails_only_its_own_request_as_422(srv, models):
    """onnx-words answers "sky" with a name of 18 bytes, past --max-bytes 16: that request is refused naming
    the output and its bound, and the requests batched with it are answered."""
    from concurrent.futures import ThreadPoolExecutor

    meta = requests.get(f"{srv.url}/v2/models/onnx-words", timeout=TIMEOUT).json()
    assert meta["outputs"][2] == {"name": "name", "datatype": "BYTES", "shape": [-1, 1]}, meta

    def send(word):
        return requests.post(f"{srv.url}/models/onnx-words/v1", json={"inputs": {"text": [[word]], "x": [[0.5]]}}, timeout=TIMEOUT)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, ["sky" if i % 3 == 0 else "blue" for i in range(24)]))
    for i, response in enumerate(answers):
        if i % 3 == 0:
            assert response.status_code == 422, response.text
            assert "the model answered name: a string of 18 bytes, past its max_bytes 16 (--max-bytes at import)" in response.json()["error"], response.text
        else:
            assert response.status_code == 200 and response.json()["result"]["name"] == [["bleu"]], response.text


def test_a_keras_model_answering_strings_is_described_as_bytes_and_bounded_per_request(srv, models):
    """keras-colours' StringLookup output is BYTES in the card and metadata (Keras said int64), served on
    TensorFlow; a colour past --max-bytes 8 is that request's own 422, naming the output."""
    card = requests.get(f"{srv.url}/models/keras-colours/v1", timeout=TIMEOUT).json()
    assert card["outputs"] == [{"name": "scores", "datatype": "FP32", "shape": [3]}, {"name": "colour", "datatype": "BYTES", "shape": [1], "max_bytes": 8}], card["outputs"]
    (version,) = requests.get(f"{srv.url}/models/keras-colours", timeout=TIMEOUT).json()["versions"]
    assert version["engine"] == "tensorflow", version
    meta = requests.get(f"{srv.url}/v1/models/keras-colours/metadata", timeout=TIMEOUT).json()["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert meta["outputs"]["colour"]["dtype"] == "DT_STRING", meta
    turquoise = requests.post(f"{srv.url}/models/keras-colours/v1", json={"input": {"x": [0, 0, 20, 0]}}, timeout=TIMEOUT)
    assert turquoise.status_code == 422 and "the model answered colour: a string of 9 bytes, past its max_bytes 8" in turquoise.json()["error"], turquoise.text
    green = requests.post(f"{srv.url}/models/keras-colours/v1", json={"input": {"x": [0, 5, 0, 0]}}, timeout=TIMEOUT)
    assert green.status_code == 200 and green.json()["result"]["colour"] == [["green"]], green.text


def test_a_keras_model_of_strings_is_served_on_tensorflow_saying_why_not_onnx(srv, models):
    """TextVectorization's string ops have no ONNX conversion: the card keeps the reason, and the version
    runs on its Keras model; a text past --max-bytes is refused before the model runs."""
    card = requests.get(f"{srv.url}/models/keras-review/v1", timeout=TIMEOUT).json()
    assert card["inputs"] == [{"name": "review", "datatype": "BYTES", "shape": [1], "max_bytes": 64}], card["inputs"]
    assert "file" not in card["engines"]["onnxruntime"] and card["engines"]["onnxruntime"]["reason"].startswith("the ONNX export failed"), card["engines"]
    (version,) = requests.get(f"{srv.url}/models/keras-review", timeout=TIMEOUT).json()["versions"]
    assert version["engine"] == "tensorflow", version
    long = requests.post(f"{srv.url}/models/keras-review/v1", json={"input": {"review": ["x" * 65]}}, timeout=TIMEOUT)
    assert long.status_code == 422 and "review takes strings of at most 64 bytes; got one of 65" in long.json()["error"], long.text


def test_a_two_input_classifier_imported_with_evaluation_data_has_its_metrics_and_report(srv, models):
    """--eval-data of a named-input model: an array per input; the card's accuracy is what the model scores on them."""
    held = np.load(models["pair"].path.with_name("pair-held.npz"))
    local = models["pair"].local({"features": held["features"], "counts": held["counts"]})["probabilities"]
    card = requests.get(f"{srv.url}/models/pair/v1", timeout=TIMEOUT).json()
    assert card["metrics"]["accuracy"] == pytest.approx(float((local.argmax(axis=1) == held["y"]).mean()), abs=1e-6), card["metrics"]
    assert card["data"]["source"] == "pair-held.npz" and card["slices"]["images"] == len(held["y"])
    report = requests.get(f"{srv.url}/models/pair/v1/report", timeout=TIMEOUT)
    assert report.status_code == 200 and "Misclassified test examples" in report.text
    drift = requests.get(f"{srv.url}/models/pair/v1/drift", timeout=TIMEOUT)  # watched on its inputs' values as one vector
    assert drift.status_code == 200 and drift.json()["reference_images"] == len(held["y"]), drift.text
    text = requests.get(f"{srv.url}/models/sentiment/v1/drift", timeout=TIMEOUT)
    assert text.status_code == 404 and "sentiment:v1 takes only strings or inputs of dynamic shape: drift is monitored on numeric inputs" in text.json()["error"], text.text


def test_a_text_pipeline_imported_with_evaluation_texts_has_its_metrics_and_report(srv, models):
    """--eval-data of a text pipeline: its texts (text [N, 1]) and y; the card's accuracy is predict_proba's on them."""
    held = np.load(models["sentiment"].path.with_name("sentiment-held.npz"))
    local = models["sentiment"].local({"text": held["text"].astype(object)})["probabilities"]
    card = requests.get(f"{srv.url}/models/sentiment/v1", timeout=TIMEOUT).json()
    assert card["metrics"]["accuracy"] == pytest.approx(float((local.argmax(axis=1) == held["y"]).mean()), abs=1e-6), card["metrics"]
    assert card["data"]["source"] == "sentiment-held.npz" and card["metrics"]["test_images"] == len(held["y"])
    verified = card["engines"]["onnxruntime"]["verification"]
    assert verified["examples"] == 64 + len(held["y"]) and verified["max_abs_diff"] < 1e-5  # the vocabulary's probe texts and the evaluation texts
    report = requests.get(f"{srv.url}/models/sentiment/v1/report", timeout=TIMEOUT)
    assert report.status_code == 200 and "Misclassified test examples" in report.text


def test_a_graph_pipelines_card_shows_the_metrics_measured_on_its_evaluation_data(srv, models):
    """train_and_save.py measure-pipeline ran pair-chain's steps on held-out arrays (the srv fixture): the served
    card's accuracy is the chain's in process on them; data that does not fit, or a name that is no pipeline, is refused."""
    config = srv.config
    held = np.load(config.with_name("chain-held.npz"))
    local = models["pair-chain"].local({"x": held["x"], "k": held["k"]})["probabilities"]
    card = requests.get(f"{srv.url}/models/pair-chain/v1", timeout=TIMEOUT).json()
    metrics = card["metrics"]
    assert metrics["accuracy"] == pytest.approx(float((local.argmax(axis=1) == held["y"]).mean()), abs=1e-6), metrics
    assert metrics["examples"] == len(held["y"]) and metrics["data"] == "chain-held.npz" and set(metrics["per_class"]) == set(LABELS)
    assert metrics["compute_us_per_example"] > 0
    np.savez(config.with_name("no-k.npz"), x=held["x"], y=held["y"])
    refused = measure_pipeline(config, "pair-chain", config.with_name("no-k.npz"))
    assert refused.returncode == 1 and "k" in refused.stderr and "error:" in refused.stderr, refused.stderr
    unknown = measure_pipeline(config, "pair", config.with_name("chain-held.npz"))
    assert unknown.returncode == 1 and "pair is not a pipeline" in unknown.stderr and "pair-chain" in unknown.stderr, unknown.stderr


def test_a_two_input_classifiers_live_accuracy_joins_labels_carried_by_requests(srv, models):
    model = models["pair"]
    probabilities = model.expected["probabilities"]
    truth = [LABELS[(i * 7) % 3] for i in range(len(probabilities))]
    for i, label in enumerate(truth):
        one = {name: value[i].tolist() for name, value in model.inputs.items()}
        response = requests.post(f"{srv.url}/models/pair/v1", json={"input": one}, headers={"X-Label": label}, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
    report = {}
    for _ in range(50):
        report = requests.get(f"{srv.url}/models/pair/v1/live", timeout=TIMEOUT).json()
        if report.get("examples") == len(truth):
            break
        time.sleep(0.2)
    correct = sum(LABELS[int(p.argmax())] == label for p, label in zip(probabilities, truth, strict=True))
    assert report["examples"] == len(truth) and report["accuracy"]["correct"] == correct, report


def test_imports_that_cannot_be_served_are_refused_naming_the_cause(models, tmp_path):
    several = run_import(models["pair-outputs"].path, "refused")
    assert several.returncode == 1 and "2 outputs (kind, size): serve one with --output, or all of them as named tensors with --task tensor" in several.stderr
    graph = helper.make_graph(
        [helper.make_node("Identity", ["text"], ["same"])],
        "strings",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["N", 1]), helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("same", TensorProto.STRING, ["N", 1])],
    )
    saved_graph(graph, tmp_path / "strings.onnx")
    strings = run_import(tmp_path / "strings.onnx", "refused", "--labels", "a,b")  # strings are not a classifier's probabilities
    assert strings.returncode == 1 and "the output same is strings: serve it as a named tensor with --task tensor, or serve another output with --output" in strings.stderr, (
        strings.stderr
    )
    dynamic = run_import(models["pair"].path, "refused", "--labels", ",".join(LABELS), "--scale", "255")
    assert dynamic.returncode == 1 and "apply to a model with one float input" in dynamic.stderr


def test_an_index_past_an_embeddings_rows_fails_only_its_own_request_as_422(srv, models):
    """The model refuses the value (ONNX Runtime's Gather): the client's error, not the runner's, and
    requests batched with it are answered."""
    from concurrent.futures import ThreadPoolExecutor

    model = models["pair"]
    good = {name: value[:1].tolist() for name, value in model.inputs.items()}
    bad = {**good, "counts": [[1, 2, 30]]}  # the embedding has 10 rows

    def send(body):
        return requests.post(f"{srv.url}/models/pair/v1", json={"inputs": body}, timeout=TIMEOUT)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, [bad if i % 2 else good for i in range(24)]))
    for i, response in enumerate(answers):
        if i % 2:
            assert response.status_code == 422 and "the model refused the values" in response.json()["error"] and "30" in response.json()["error"], response.text
        else:
            assert response.status_code == 200, response.text
            np.testing.assert_allclose(response.json()["result"], model.expected["probabilities"][:1], atol=TOLERANCE)
    assert requests.get(f"{srv.url}/v2/models/pair/ready", timeout=TIMEOUT).status_code == 200  # the version still serves


def test_strings_are_described_bounded_and_refused_per_request(srv, models):
    """A text model's metadata says BYTES (DT_STRING); a string past --max-bytes is the client's 422 before
    any model runs, bytes that are not UTF-8 the model's own 422 for that request alone; a one-input model
    refuses BYTES naming what it takes."""
    from concurrent.futures import ThreadPoolExecutor

    meta = requests.get(f"{srv.url}/v2/models/sentiment", timeout=TIMEOUT).json()
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1, 1]}]
    signature = requests.get(f"{srv.url}/v1/models/sentiment/metadata", timeout=TIMEOUT).json()["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["text"]["dtype"] == "DT_STRING"
    card = requests.get(f"{srv.url}/models/sentiment/v1", timeout=TIMEOUT).json()
    assert card["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [1], "max_bytes": 64}] and card["output"]["labels"] == ["neg", "pos"]
    long = requests.post(f"{srv.url}/models/sentiment/v1", json={"input": {"text": ["é" * 33]}}, timeout=TIMEOUT)
    assert long.status_code == 422 and "text takes strings of at most 64 bytes; got one of 66" in long.json()["error"], long.text
    numbers = requests.post(f"{srv.url}/models/sentiment/v1", json={"input": {"text": [5]}}, timeout=TIMEOUT)
    assert numbers.status_code == 422 and "text is BYTES: expected strings" in numbers.json()["error"], numbers.text

    def send(text: dict):
        return requests.post(f"{srv.url}/v1/models/sentiment:predict", json={"instances": [{"text": [text]}]}, timeout=TIMEOUT)

    good, bad = "good film", {"b64": "/w=="}  # the byte 0xff: not UTF-8
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, [bad if i % 2 else good for i in range(16)]))
    expected = models["sentiment"].local({"text": np.array([[good]], dtype=object)})["probabilities"]
    for i, response in enumerate(answers):
        if i % 2:
            assert response.status_code == 400 and "text: the model takes UTF-8 text" in response.json()["error"], response.text  # TF Serving answers 400 for 422s
        else:
            assert response.status_code == 200, response.text
            np.testing.assert_allclose(response.json()["predictions"], expected, atol=TOLERANCE)
    one_input = requests.post(
        f"{srv.url}/v2/models/head/infer", json={"inputs": [{"name": "input", "datatype": "BYTES", "shape": [1, 3], "data": ["a", "b", "c"]}]}, timeout=TIMEOUT
    )
    assert one_input.status_code == 400 and "datatype BYTES is not accepted; use one of UINT8" in one_input.json()["error"], one_input.text
