"""Inputs with dynamic dimensions besides the batch axis (sequences of any length up to a bound) through
a real `bentoml serve`, called with each protocol's stock client at several lengths: every answer must
equal the in-process prediction within 1e-5, also when requests of different lengths share a batch.

Models, made here in seconds and imported with `train_and_save.py import --max-dim` as a user would:
- ``bag``: an ONNX graph built with onnx's helper API: ``tokens`` INT64 [-1] (indices into an embedding
  table, averaged) and ``bias`` FP32 [2], answering ``score`` FP32 [2] (``--task tensor``);
- ``steps``: a Keras classifier of a sequence, ``Input((None, 3))`` through a Dense layer and
  GlobalAveragePooling1D to a softmax over three labels;
- ``tags``: an ONNX graph taking ``words`` BYTES [-1] (looked up by the ONNX-ML LabelEncoder, summed):
  strings of a dynamic count.
Each graph has one output, served as the tensor `output` (`--task tensor`).
"""

from __future__ import annotations

import collections
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnx
import onnxruntime
import pytest
import requests
import tritonclient.grpc as triton_grpc
from onnx import TensorProto, helper, numpy_helper
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from tests.e2e.conftest import ROOT, free_port, ready_server, report_figures, write_config
from tests.e2e.tensor_clients import PROTOCOLS, served, worst_difference

TIMEOUT = 30
TOLERANCE = 1e-5
LABELS = ("rising", "flat", "falling")
LENGTHS = (1, 5, 12)  # the smallest, one between, the bound
RESULTS: dict[tuple[str, str], float] = {}


class Dynamic:
    """A model to import: its file, the import's arguments, inputs of a given length, and its in-process answers."""

    def __init__(self, name: str, path, args: list[str], inputs, local):
        self.name, self.path, self.args, self.inputs, self.local = name, path, args, inputs, local


def saved_graph(graph, path, ml: bool = False) -> onnxruntime.InferenceSession:
    opsets = [helper.make_opsetid("", 17), *([helper.make_opsetid("ai.onnx.ml", 3)] if ml else [])]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, path)
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def bag_model(tmp) -> Dynamic:
    rng = np.random.default_rng(3)
    table = numpy_helper.from_array(rng.standard_normal((10, 4)).astype(np.float32), "table")
    weights = numpy_helper.from_array(rng.standard_normal((4, 2)).astype(np.float32), "weights")
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "tokens"], ["embedded"]),
            helper.make_node("ReduceMean", ["embedded"], ["mean"], axes=[1], keepdims=0),
            helper.make_node("MatMul", ["mean", "weights"], ["linear"]),
            helper.make_node("Add", ["linear", "bias"], ["score"]),
        ],
        "bag_of_tokens",
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["N", "T"]), helper.make_tensor_value_info("bias", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 2])],
        [table, weights],
    )
    session = saved_graph(graph, tmp / "bag.onnx")

    def inputs(length: int, count: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed + length)
        return {"tokens": rng.integers(0, 10, (count, length)), "bias": rng.normal(0, 1, (count, 2)).astype(np.float32)}

    return Dynamic("bag", tmp / "bag.onnx", ["--task", "tensor", "--max-dim", str(max(LENGTHS))], inputs, lambda i: {"output": session.run(None, i)[0]})


def steps_model(tmp) -> Dynamic:
    import keras

    keras.utils.set_random_seed(5)
    sequence = keras.Input((None, 3), name="steps")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Dense(8, activation="tanh")(sequence))
    model = keras.Model(sequence, keras.layers.Dense(3, activation="softmax")(pooled), name="steps")
    model.save(tmp / "steps.keras")

    def inputs(length: int, count: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
        return {"steps": np.random.default_rng(seed + length).normal(0, 1, (count, length, 3)).astype(np.float32)}

    args = ["--labels", ",".join(LABELS), "--max-dim", str(max(LENGTHS))]
    return Dynamic("steps", tmp / "steps.keras", args, inputs, lambda i: {"probabilities": model.predict(i["steps"], verbose=0)})


WORDS = np.array(["red", "green", "blue", "vert", "", "Rouge", "bleu"], dtype=object)


def tags_model(tmp) -> Dynamic:
    graph = helper.make_graph(
        [
            helper.make_node("LabelEncoder", ["words"], ["ids"], domain="ai.onnx.ml", keys_strings=["red", "green", "blue", "vert"], values_int64s=[1, 2, 4, 2], default_int64=0),
            helper.make_node("ReduceSum", ["ids", "axis"], ["total"], keepdims=0),
        ],
        "tags_graph",
        [helper.make_tensor_value_info("words", TensorProto.STRING, ["N", "W"])],
        [helper.make_tensor_value_info("total", TensorProto.INT64, ["N"])],
        [numpy_helper.from_array(np.array([1], np.int64), "axis")],
    )
    session = saved_graph(graph, tmp / "tags.onnx", ml=True)

    def inputs(length: int, count: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
        return {"words": np.random.default_rng(seed + length).choice(WORDS, (count, length))}

    return Dynamic("tags", tmp / "tags.onnx", ["--task", "tensor", "--max-dim", str(max(LENGTHS)), "--max-bytes", "8"], inputs, lambda i: {"output": session.run(None, i)[0]})


def run_import(path, name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "train_and_save.py"), "import", str(path), "--name", name, "--version", "v1", "--force", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Dynamic]:
    tmp = tmp_path_factory.mktemp("dynamic")
    made = {model.name: model for model in (bag_model(tmp), steps_model(tmp), tags_model(tmp))}
    for model in made.values():
        result = run_import(model.path, model.name, *model.args)
        assert result.returncode == 0, f"{model.name}: {result.stdout}{result.stderr}"
    return made


@pytest.fixture(scope="module")
def srv(models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dynamic-serve")
    config = write_config(tmp / "configuration.yaml", {name: {"versions": ["v1"]} for name in models})
    try:
        with ready_server(config, free_port(), tmp / "serve.log") as server:
            yield server
    finally:
        rows = [f"  {'model':8}" + "".join(f"{p:>25}" for p in PROTOCOLS)]
        rows += [f"  {name:8}" + "".join(f"{RESULTS[name, p]:>25.1e}" if (name, p) in RESULTS else f"{'-':>25}" for p in PROTOCOLS) for name in models]
        report_figures(f"inputs of dynamic shape (lengths {', '.join(map(str, LENGTHS))}) through every protocol: max |served - in process|\n" + "\n".join(rows))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", ["bag", "steps", "tags"])
def test_every_length_answers_through_every_protocol_as_in_process(srv, models, name, protocol):
    model = models[name]
    worst = 0.0
    for length in LENGTHS:
        inputs = model.inputs(length)
        expected = model.local(inputs)
        worst = max(worst, worst_difference(expected, served(srv, name, inputs, protocol, list(expected))))
    RESULTS[name, protocol] = worst
    assert worst <= TOLERANCE, f"{name} through {protocol}: {worst}"


def test_requests_of_different_lengths_sharing_batches_each_get_their_own_answers(srv, models):
    """Concurrent one-example requests of every length from 1 to the bound: the batcher packs them into
    shared batches, the engine runs each length apart, and each client gets its own answer back."""
    model = models["bag"]
    cases = [(length, seed) for seed in range(8) for length in range(1, max(LENGTHS) + 1)]

    def call(case) -> float:
        length, seed = case
        inputs = model.inputs(length, count=1, seed=100 * seed)
        return worst_difference(model.local(inputs), served(srv, model.name, inputs, "v2 REST", ["output"]))

    with ThreadPoolExecutor(16) as pool:
        worst = max(pool.map(call, cases))
    assert worst <= TOLERANCE, worst


def test_metadata_gives_the_dynamic_dimensions_and_the_card_their_bounds(srv, models):
    meta = requests.get(f"{srv.url}/v2/models/bag", timeout=TIMEOUT).json()
    assert meta["inputs"] == [{"name": "tokens", "datatype": "INT64", "shape": [-1, -1]}, {"name": "bias", "datatype": "FP32", "shape": [-1, 2]}], meta
    with triton_grpc.InferenceServerClient(srv.grpc) as client:
        grpc_meta = client.get_model_metadata("steps", as_json=True)
    assert grpc_meta["inputs"] == [{"name": "steps", "datatype": "FP32", "shape": ["-1", "-1", "3"]}], grpc_meta
    signature = requests.get(f"{srv.url}/v1/models/steps/metadata", timeout=TIMEOUT).json()["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert [dim["size"] for dim in signature["inputs"]["steps"]["tensor_shape"]["dim"]] == ["-1", "-1", "3"]
    card = requests.get(f"{srv.url}/models/steps/v1", timeout=TIMEOUT).json()
    assert card["inputs"] == [{"name": "steps", "datatype": "FP32", "shape": [-1, 3], "max_shape": [max(LENGTHS), 3]}] and card["output"]["labels"] == list(LABELS)
    answer = requests.post(f"{srv.url}/models/steps/v1", json={"input": {"steps": [[0.1, 0.2, 0.3], [1, 0, -1]]}}, timeout=TIMEOUT).json()
    assert answer["predictions"][0]["label"] in LABELS and np.asarray(answer["result"]).shape == (1, 3), answer
    document = requests.get(f"{srv.url}/docs.json", timeout=TIMEOUT).json()
    example = document["components"]["schemas"]["bag.Example"]["properties"]["tokens"]
    assert (example["minItems"], example["maxItems"], example["items"]["type"]) == (1, max(LENGTHS), "integer"), example
    v2 = document["paths"]["/v2/models/bag/infer"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    shapes = [variant["properties"]["shape"] for variant in v2["properties"]["inputs"]["items"]["anyOf"] if variant["properties"]["name"]["const"] == "tokens"]
    assert shapes and all(shape["prefixItems"] == [{"const": 1}, {"type": "integer", "minimum": 1, "maximum": max(LENGTHS)}] for shape in shapes), shapes
    drift = requests.get(f"{srv.url}/models/steps/v1/drift", timeout=TIMEOUT)
    assert drift.status_code == 404 and "takes only strings or inputs of dynamic shape" in drift.json()["error"], drift.text


def test_examples_past_the_bounds_are_refused_naming_the_input_in_every_protocol(srv, models):
    model = models["bag"]
    long = model.inputs(max(LENGTHS) + 1)
    words = f"tokens takes examples of shape [-1] (axis 1 of 1 to {max(LENGTHS)})"
    course = requests.post(f"{srv.url}/models/bag/v1", json={"inputs": {name: value.tolist() for name, value in long.items()}}, timeout=TIMEOUT)
    assert course.status_code == 422 and words in course.json()["error"], course.text
    empty = requests.post(f"{srv.url}/models/bag/v1", json={"inputs": {"tokens": [[]], "bias": [[0, 0]]}}, timeout=TIMEOUT)
    assert empty.status_code in (400, 422) and "tokens" in empty.json()["error"], empty.text
    tensors = [{"name": name, "datatype": np_to_triton_dtype(value.dtype), "shape": list(value.shape), "data": value.ravel().tolist()} for name, value in long.items()]
    v2 = requests.post(f"{srv.url}/v2/models/bag/infer", json={"inputs": tensors}, timeout=TIMEOUT)
    assert v2.status_code == 400 and words in v2.json()["error"], v2.text  # the Open Inference Protocol's status for a request it cannot run
    with triton_grpc.InferenceServerClient(srv.grpc) as client:
        grpc_tensors = []
        for name, value in long.items():
            tensor = triton_grpc.InferInput(name, list(value.shape), np_to_triton_dtype(value.dtype))
            tensor.set_data_from_numpy(value)
            grpc_tensors.append(tensor)
        with pytest.raises(InferenceServerException, match=r"tokens takes examples of shape \[-1\]") as refused:
            client.infer("bag", grpc_tensors)
    assert refused.value.status() == "StatusCode.INVALID_ARGUMENT"
    rows = requests.post(f"{srv.url}/v1/models/bag:predict", json={"inputs": {name: value.tolist() for name, value in long.items()}}, timeout=TIMEOUT)
    assert rows.status_code in (400, 422) and words in rows.json()["error"], rows.text
    mixed = requests.post(f"{srv.url}/v1/models/bag:predict", json={"instances": [{"tokens": [1, 2], "bias": [0, 0]}, {"tokens": [1, 2, 3], "bias": [0, 0]}]}, timeout=TIMEOUT)
    assert mixed.status_code == 400 and "error" in mixed.json(), mixed.text  # one request's tensor has one shape: rows of two lengths do not stack


def test_an_input_of_dynamic_shape_is_refused_without_its_bound(models):
    unbounded = run_import(models["bag"].path, "refused", "--task", "tensor")
    assert unbounded.returncode == 1 and "the input tokens has the shape ['N', None]: a dynamic dimension besides the batch axis needs a bound" in unbounded.stderr
    assert "nothing was saved" in unbounded.stderr
    alone = run_import(models["bag"].path, "refused", "--task", "tensor", "--min-dim", "2")
    assert alone.returncode == 1 and "--min-dim goes with --max-dim" in alone.stderr, alone.stderr


FUZZED = ("POST /models/{name}/{version}", "POST /v2/models/{name}/infer", "POST /v1/models/{name}:predict")


@pytest.mark.parametrize("name", ["steps", "bag"])
def test_the_published_document_of_a_dynamic_input_is_what_the_server_takes(srv, name, subtests):
    """Schemathesis, from the server's own OpenAPI document, on the model's inference operations: bodies
    the document allows (any length within the bounds) are answered, others are refused with a documented
    status, and every check of the CLI's ``--checks all`` holds."""
    import schemathesis
    from schemathesis import GenerationMode

    from tests.e2e.test_fuzz import fuzz, report

    schema = schemathesis.openapi.from_dict(requests.get(f"{srv.url}/docs.json", timeout=TIMEOUT).json())
    schema.config.update(base_url=srv.url)
    wanted = {label.format(name=name, version="{version}") for label in FUZZED}
    operations = [result.ok() for result in schema.get_all_operations() if result.ok().label in wanted]
    assert {operation.label for operation in operations} == wanted
    sent: collections.Counter = collections.Counter()  # (operation, status) of every request
    with requests.Session() as session:
        for operation in operations:
            for mode in GenerationMode:
                with subtests.test(operation=operation.label, mode=mode.value):
                    fuzz(operation, mode, session, sent)
    report(sent)
    statuses = {status for _, status in sent}
    assert 200 in statuses and requests.get(f"{srv.url}/readyz", timeout=TIMEOUT).status_code == 200
