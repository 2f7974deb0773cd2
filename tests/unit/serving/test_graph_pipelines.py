"""Graph pipelines in process (serving/pipelines.py, ``combine: graph``): outputs of steps wired to inputs
of later steps by name, over fake versions behind the entry's routes. An embedder feeding a classifier
keeps the classifier's labels and the embedder's input; a step taking both an earlier output and one
of the pipeline's own inputs makes the pipeline take named tensors; wires whose shapes or names do
not match leave it unavailable, saying why; wiring mistakes in the configuration are refused."""

from __future__ import annotations

import numpy as np
import pytest
from starlette.testclient import TestClient

from config.settings import PipelineSettings
from models.card import InputSpec, ModelCard, OutputSpec, TensorSpec
from models.tensors import pack, unpack
from serving.pipelines import add_pipelines, compose_graph
from tests.unit.serving.conftest import InProcess, assert_error, write_config

LABELS = ("a", "b", "c")
W = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], np.float32)
PAIR_IN = (TensorSpec(name="a", datatype="FP32", shape=(3,)), TensorSpec(name="b", datatype="INT64", shape=(2,)))
PAIR_OUT = (TensorSpec(name="s", datatype="FP32", shape=(3,)), TensorSpec(name="n", datatype="INT64", shape=()))


def card(name: str, input_spec: InputSpec, output: OutputSpec, inputs=(), outputs=(), task="tensors") -> ModelCard:
    return ModelCard(
        name=name,
        version="v1",
        description=name,
        task=task,
        input=input_spec,
        inputs=inputs,
        preprocessing=None,
        output=output,
        outputs=outputs,
        architecture="fake",
        number_of_parameters=3,
        metrics=None,
        training={},
        data={"source": "tests"},
        framework_versions={},
    )


CARDS = {
    "embed": card("embed", InputSpec(kind="tensor", shape=(4,), value_range=None, divide_by=None), OutputSpec(kind="embedding", shape=(3,)), task="embedding"),
    "head": card("head", InputSpec(kind="tensor", shape=(3,), value_range=None, divide_by=None), OutputSpec(kind="softmax", labels=LABELS), task="classification"),
    "wide": card("wide", InputSpec(kind="tensor", shape=(5,), value_range=None, divide_by=None), OutputSpec(kind="softmax", labels=LABELS), task="classification"),
    "pair": card(
        "pair",
        InputSpec.packed(PAIR_IN),
        OutputSpec.packed(PAIR_OUT),
        inputs=PAIR_IN,
        outputs=PAIR_OUT,
    ),
}


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def pair_answers(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    return {"s": (a + b.sum(axis=1, keepdims=True)).astype(np.float32), "n": b.sum(axis=1)}


class Fake:
    """A version's runner computing what the tests know: embed x @ W, head and wide softmax(x), pair its two outputs."""

    def __init__(self, name: str):
        self.name, self.seen = name, 0

    async def predict(self, values: np.ndarray) -> np.ndarray:
        self.seen += len(values)
        if self.name == "embed":
            return (values.astype(np.float32) @ W).astype(np.float32)
        if self.name in ("head", "wide"):
            return softmax(values.astype(np.float32))
        given = unpack(PAIR_IN, values)
        return pack(PAIR_OUT, pair_answers(given["a"], given["b"]))

    async def status(self) -> dict:
        return {"status": "ready", "reason": None}


def serve(tmp_path, pipelines: dict):
    config = write_config(tmp_path, {name: {"versions": ["v1"]} for name in CARDS}, pipelines=pipelines)
    served = InProcess(config, {(name, "v1"): c for name, c in CARDS.items()}, {(name, "v1"): Fake(name) for name in CARDS})
    add_pipelines(served.registry, config)
    return served


@pytest.fixture
def client(tmp_path):
    served = serve(
        tmp_path,
        {
            "chain": {"combine": "graph", "steps": ["embed:v1", "head:v1"], "wiring": [{}, {"input": "1.embedding"}]},
            "mixed": {"combine": "graph", "steps": ["embed:v1", "pair:v1"], "wiring": [{}, {"a": "1.embedding", "b": "inputs.counts"}]},
            "bad-shape": {"combine": "graph", "steps": ["embed:v1", "wide:v1"], "wiring": [{}, {"input": "1.embedding"}]},
            "bad-name": {"combine": "graph", "steps": ["embed:v1", "head:v1"], "wiring": [{}, {"input": "1.logits"}]},
        },
    )
    with TestClient(served.app) as client:
        client.portal.call(served.probe)
        yield client


ROWS = np.array([[1, 0, 0, 0], [0, 2, 0, -1], [0.5, 0.5, 3, 0]], np.float32)


def test_an_embedder_feeding_a_classifier_answers_with_the_classifiers_labels(client):
    expected = softmax(ROWS @ W)
    body = client.post("/models/chain/v1", json={"inputs": ROWS.tolist()}).json()
    np.testing.assert_allclose(body["result"], expected, atol=1e-6)
    assert [p["label"] for p in body["predictions"]] == [LABELS[i] for i in expected.argmax(axis=1)]
    info = client.get("/models/chain/v1").json()
    assert info["input"]["shape"] == [4] and info["output"]["labels"] == list(LABELS) and "inputs" not in info
    assert info["training"]["pipeline"] == {"combine": "graph", "steps": ["embed:v1", "head:v1"], "wiring": [{"input": "inputs.input"}, {"input": "1.embedding"}]}
    v2 = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [3, 4], "data": ROWS.reshape(-1).tolist()}]}
    answer = client.post("/v2/models/chain/infer", json=v2).json()["outputs"][0]
    assert answer["name"] == "probabilities" and np.allclose(np.reshape(answer["data"], (3, 3)), expected, atol=1e-6)
    assert client.get("/models/chain").json()["versions"][0]["engine"] == "graph of 2 steps"


def test_a_step_fed_by_an_earlier_output_and_the_pipelines_own_input_makes_it_take_named_tensors(client):
    counts = np.array([[1, 2], [0, 0], [5, -1]], np.int64)
    meta = client.get("/v2/models/mixed").json()
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}, {"name": "counts", "datatype": "INT64", "shape": [-1, 2]}]
    assert [o["name"] for o in meta["outputs"]] == ["s", "n"]
    body = {
        "inputs": [
            {"name": "input", "datatype": "FP32", "shape": [3, 4], "data": ROWS.reshape(-1).tolist()},
            {"name": "counts", "datatype": "INT64", "shape": [3, 2], "data": counts.reshape(-1).tolist()},
        ]
    }
    outputs = {o["name"]: np.array(o["data"]) for o in client.post("/v2/models/mixed/infer", json=body).json()["outputs"]}
    expected = pair_answers(ROWS @ W, counts)
    np.testing.assert_allclose(outputs["s"].reshape(3, 3), expected["s"], atol=1e-6)
    assert outputs["n"].tolist() == expected["n"].tolist()
    course = client.post("/models/mixed/v1", json={"inputs": {"input": ROWS.tolist(), "counts": counts.tolist()}}).json()["result"]
    assert course["n"] == expected["n"].tolist()
    assert_error(client.post("/models/mixed/v1", json={"inputs": {"input": ROWS.tolist(), "counts": [[1.5, 0]] * 3}}), 422, "counts is INT64")


def test_wires_that_do_not_match_leave_the_pipeline_unavailable_saying_why(client):
    assert_error(client.post("/models/bad-shape/v1", json={"inputs": ROWS.tolist()}), 503, "step 2 takes 'input' as FP32 [5], but step 1's 'embedding' is FP32 [3]")
    assert_error(client.post("/models/bad-name/v1", json={"inputs": ROWS.tolist()}), 503, "wired to 'logits' of step 1, which answers embedding")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"combine": "graph", "steps": ["embed:v1", "head:v1"], "wiring": [{"input": "2.embedding"}, {}]}, "not an earlier step's output"),
        ({"combine": "graph", "steps": ["embed:v1", "head:v1"], "wiring": [{}, {"input": "embedding"}]}, "is not 'inputs.<name>' or '<step number>.<output>'"),
        ({"combine": "graph", "steps": ["embed:v1", "head:v1"], "wiring": [{}]}, "one mapping per step"),
        ({"combine": "ensemble", "steps": ["embed:v1", "head:v1"], "wiring": [{}, {}]}, "for a graph"),
        ({"combine": "graph", "steps": ["embed:v1", "head:v1"], "threshold": 0.5}, "a graph runs every step"),
    ],
)
def test_wiring_mistakes_in_the_configuration_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        PipelineSettings(**settings)


def test_a_pipeline_takes_each_input_with_the_bounds_of_the_step_it_feeds():
    """A sequence of any length up to 8 and a text of at most 16 bytes: the pipeline's card keeps max_shape
    and max_bytes (a spec rebuilt from datatype and shape alone would not be a valid card)."""
    inputs = (TensorSpec(name="tokens", datatype="INT64", shape=(-1,), max_shape=(8,)), TensorSpec(name="text", datatype="BYTES", shape=(1,), max_bytes=16))
    bagger = card("bagger", InputSpec.packed(inputs), OutputSpec(kind="embedding", shape=(3,)), inputs=inputs, task="embedding")
    steps = ["bagger:v1", "head:v1"]
    composed, plan, why = compose_graph("bag-chain", PipelineSettings(combine="graph", steps=steps, wiring=[{}, {"input": "1.embedding"}]), steps, [bagger, CARDS["head"]])
    assert why is None and composed is not None, why
    assert composed.inputs == inputs and composed.labels == LABELS and [sorted(feeds) for feeds in plan] == [["text", "tokens"], ["input"]]
    renamed, _, why = compose_graph(
        "bag-chain", PipelineSettings(combine="graph", steps=steps, wiring=[{"tokens": "inputs.ids"}, {"input": "1.embedding"}]), steps, [bagger, CARDS["head"]]
    )
    assert why is None and renamed is not None and renamed.inputs[0] == inputs[0].model_copy(update={"name": "ids"}), why
