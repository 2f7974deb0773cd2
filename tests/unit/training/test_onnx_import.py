"""ONNX imports (training/onnx_import.py): graphs built here with onnx's helper API, run with ONNX
Runtime; the refusals and their messages."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from training.importing import ImportRefused
from training.onnx_import import inspect_onnx


def linear(path, features=4, classes=3, last="Softmax", inputs=None, elem=TensorProto.FLOAT, dims=None, extra_output=False, domain=""):
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["z0"]), helper.make_node("Add", ["z0", "b"], ["z"])]
    nodes.append(helper.make_node(last, ["z"], ["probs"], **({"axis": 1} if last == "Softmax" else {}), domain=domain))
    outputs = [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", classes])]
    if extra_output:
        outputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", classes]))
    graph = helper.make_graph(
        nodes,
        "linear",
        inputs or [helper.make_tensor_value_info("x", elem, dims or ["N", features])],
        outputs,
        [numpy_helper.from_array(rng.standard_normal((features, classes)).astype(np.float32), "W"), numpy_helper.from_array(np.zeros(classes, np.float32), "b")],
    )
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_a_softmax_graph_is_stored_unchanged_with_its_names_and_checksum(tmp_path):
    path = linear(tmp_path / "net.onnx")
    card, content = inspect_onnx(path, "tabular", "v1", ["a", "b", "c"], value_range=(-5, 5))
    assert content == path.read_bytes() and card.input.shape == (4,) and card.input.value_range == (-5, 5)
    entry = card.engines["onnxruntime"]
    assert (entry["input"], entry["output"], entry["file"]) == ("x", "probs", "model.onnx") and len(entry["sha256"]) == 64
    assert card.number_of_parameters == 15 and card.training["framework"] == "onnx" and card.task == "classification"
    session = onnxruntime.InferenceSession(content, providers=["CPUExecutionProvider"])
    assert session.run(["probs"], {"x": np.zeros((2, 4), np.float32)})[0].shape == (2, 3)


def test_one_sigmoid_unit_serves_two_labels(tmp_path):
    card, _ = inspect_onnx(linear(tmp_path / "s.onnx", classes=1, last="Sigmoid"), "s", "v1", ["no", "yes"])
    assert card.output.kind == "sigmoid" and card.output.positive_label == "yes"


def test_an_output_is_named_when_there_are_several(tmp_path):
    path = linear(tmp_path / "two.onnx", extra_output=True)
    with pytest.raises(ImportRefused, match="2 outputs.*--output"):
        inspect_onnx(path, "t", "v1", ["a", "b", "c"])
    assert inspect_onnx(path, "t", "v1", ["a", "b", "c"], output="probs")[0].engines["onnxruntime"]["output"] == "probs"
    with pytest.raises(ImportRefused, match="not probabilities|logits"):
        inspect_onnx(path, "t", "v1", ["a", "b", "c"], output="z")


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        ({"last": "Identity"}, "not probabilities in 0..1|not sum to 1"),
        ({"elem": TensorProto.STRING}, "ONNX Runtime .* cannot load the graph: .*tensor\\(string\\)"),  # a string input into MatMul
        ({"dims": ["N", "features"]}, r"input x has the shape \['N', None\]: a dynamic dimension besides the batch axis needs a bound.*--max-dim SIZE"),
        ({"last": "Frobnicate", "domain": "com.example"}, "ONNX Runtime .* cannot load the graph"),
        (
            {"inputs": [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4]), helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "M"])]},
            r"input y has the shape \['N', None\]: a dynamic dimension besides the batch axis needs a bound",
        ),
    ],
)
def test_refusals_name_the_cause(tmp_path, graph, message):
    with pytest.raises(ImportRefused, match=message):
        inspect_onnx(linear(tmp_path / "bad.onnx", **graph), "bad", "v1", ["a", "b", "c"])


def test_a_file_that_is_not_onnx_and_wrong_labels_are_refused(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01 not protobuf")
    with pytest.raises(ImportRefused, match="not an ONNX model"):
        inspect_onnx(junk, "j", "v1", ["a", "b"])
    with pytest.raises(ImportRefused, match="3 unit.*2 labels"):
        inspect_onnx(linear(tmp_path / "net.onnx"), "n", "v1", ["a", "b"])


def test_a_graph_with_two_inputs_and_two_outputs_is_served_as_named_tensors(tmp_path):
    from models.engines.onnxruntime import OnnxRuntimeEngine
    from models.tensors import pack, unpack

    graph = helper.make_graph(
        [helper.make_node("Cast", ["k"], ["kf"], to=TensorProto.FLOAT), helper.make_node("Add", ["x", "kf"], ["sum"]), helper.make_node("Relu", ["sum"], ["relu"])],
        "pair",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3]), helper.make_tensor_value_info("k", TensorProto.INT32, ["N", 3])],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["N", 3]), helper.make_tensor_value_info("relu", TensorProto.FLOAT, ["N", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "pair.onnx"
    onnx.save(model, path)
    with pytest.raises(ImportRefused, match="serve one with --output, or all of them as named tensors with --task tensor"):
        inspect_onnx(path, "pair", "v1", None)
    card, content = inspect_onnx(path, "pair", "v1", None, task="tensor")
    assert [(s.name, s.datatype) for s in card.inputs] == [("x", "FP32"), ("k", "INT32")] and [s.name for s in card.outputs] == ["sum", "relu"]
    x, k = np.array([[-1.0, 0.5, 2.0]], np.float32), np.array([[0, 1, -5]], np.int32)
    answer = unpack(card.outputs, OnnxRuntimeEngine(content, card)(pack(card.inputs, {"x": x, "k": k})))
    np.testing.assert_array_equal(answer["sum"], [[-1.0, 1.5, -3.0]])
    np.testing.assert_array_equal(answer["relu"], [[0.0, 1.5, 0.0]])
    one, _ = inspect_onnx(path, "pair", "v1", None, output="relu", task="regression")
    assert one.output.kind == "regression" and not one.outputs and one.engines["onnxruntime"]["output"] == "relu"
