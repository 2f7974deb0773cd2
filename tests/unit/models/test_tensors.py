"""Named tensors on a card, packed into one row of bytes per example (models/tensors.py), and an engine
running a real two-input, two-output ONNX graph on them."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from models.card import DATATYPES, InputSpec, ModelCard, OutputSpec, TensorSpec, row_bytes
from models.preprocessing import InvalidInput
from models.tensors import checked, dtype_of, numbers_of, pack, unpack

SPECS = (TensorSpec(name="x", datatype="FP32", shape=(2, 2)), TensorSpec(name="k", datatype="INT64", shape=()), TensorSpec(name="on", datatype="BOOL", shape=(3,)))


def named_card(inputs=SPECS, outputs=(), output=None, **changes) -> ModelCard:
    fields = {
        "name": "multi",
        "version": "v1",
        "description": "tests",
        "task": "tensors",
        "input": changes.pop("input", None) or InputSpec.packed(inputs),
        "inputs": inputs,
        "preprocessing": None,
        "output": output or (OutputSpec.packed(outputs) if outputs else OutputSpec(kind="tensor", shape=(2,))),
        "outputs": outputs,
        "architecture": "tests",
        "number_of_parameters": 1,
        "metrics": None,
        "training": {},
        "data": {},
        "framework_versions": {},
    }
    return ModelCard(**{**fields, **changes})


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_every_datatype_round_trips_through_packed_rows_bit_for_bit(data):
    names = data.draw(st.lists(st.sampled_from(list(DATATYPES)), min_size=1, max_size=4))
    specs = tuple(
        TensorSpec(name=f"t{i}", datatype=datatype, shape=data.draw(st.lists(st.integers(1, 3), max_size=2).map(tuple)), max_bytes=5 if datatype == "BYTES" else None)
        for i, datatype in enumerate(names)
    )
    count = data.draw(st.integers(1, 4))
    arrays = {spec.name: data.draw(hnp.arrays(dtype_of(spec), (count, *spec.shape), elements=st.binary(max_size=5) if spec.max_bytes else None)) for spec in specs}
    rows = pack(specs, arrays)
    assert rows.dtype == np.uint8 and rows.shape == (count, row_bytes(specs))
    for name, array in unpack(specs, rows).items():
        if array.dtype == object:  # BYTES: each value's bytes, NULs and all
            assert array.shape == arrays[name].shape and array.tolist() == arrays[name].tolist()
            continue
        assert array.dtype == arrays[name].dtype and array.tobytes() == arrays[name].tobytes()


def test_bytes_are_checked_as_strings_of_at_most_max_bytes():
    specs = (TensorSpec(name="text", datatype="BYTES", shape=(2,), max_bytes=4),)
    arrays = checked(specs, {"text": (np.array([["hé", ""], ["abcd", "x"]], dtype=object), "inputs[0]")}, "m")
    assert arrays["text"].tolist() == [["hé".encode(), b""], [b"abcd", b"x"]]  # é is two bytes of UTF-8
    for wrong, message in (
        (np.array([["abcde", ""]], dtype=object), "inputs[0]: text takes strings of at most 4 bytes; got one of 5"),
        (np.array([["hééé", ""]], dtype=object), "got one of 7"),
        (np.array([[1, 2]]), "text is BYTES: expected strings"),
        (np.array([["a", 2]], dtype=object), "text is BYTES: expected strings"),
    ):
        with pytest.raises(InvalidInput, match=re.escape(message)):
            checked(specs, {"text": (wrong, "inputs[0]")}, "m")


def test_checked_converts_what_a_datatype_holds_exactly_and_names_the_field_otherwise():
    given_ok = {"x": (np.ones((2, 2, 2)), "inputs[0]"), "k": (np.array([3.0, 4.0]), "inputs[1]"), "on": (np.array([[1, 0, 1], [0, 0, 0]]), "inputs[2]")}
    arrays = checked(SPECS, given_ok, "multi")
    assert [arrays[name].dtype.name for name in ("x", "k", "on")] == ["float32", "int64", "bool"]
    cases = [
        ({**given_ok, "k": (np.array([3.5, 4.0]), "inputs[1]")}, "inputs[1]: k is INT64: values must be whole numbers"),
        ({**given_ok, "k": (np.array([2.0**63, 0.0]), "inputs[1]")}, "values must lie in"),
        ({**given_ok, "on": (np.array([[2, 0, 1], [0, 0, 0]]), "inputs[2]")}, "on is BOOL"),
        ({**given_ok, "x": (np.full((2, 2, 2), 1e39), "inputs[0]")}, "finite"),
        ({**given_ok, "x": (np.ones((2, 4)), "inputs[0]")}, "x takes examples of shape [2, 2]"),
        ({**given_ok, "k": (np.array([1.0]), "inputs[1]")}, "1 examples of k, but 2 of x"),
        ({name: given_ok[name] for name in ("x", "k")}, "missing 'on'"),
        ({**given_ok, "y": (np.ones(2), "inputs[3]")}, "unexpected input 'y' for model multi; its inputs: x, k, on"),
    ]
    for wrong, message in cases:
        with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("]", r"\]")):
            checked(SPECS, wrong, "multi")


def test_a_card_with_named_tensors_is_consistent_and_reads_as_before_without_them():
    card = named_card(outputs=(TensorSpec(name="a", datatype="FP32", shape=(2,)), TensorSpec(name="b", datatype="INT32", shape=())))
    assert card.named_inputs and card.input.shape == (4 * 4 + 8 + 3,) and card.output.answer_shape == (12,)
    assert ModelCard.model_validate_json(card.model_dump_json()) == card
    with pytest.raises(ValueError, match="packed bytes"):
        named_card(input=InputSpec(kind="tensors", shape=(7,), dtype="uint8", value_range=None, divide_by=None))
    with pytest.raises(ValueError, match="distinct"):
        named_card(inputs=(SPECS[0], SPECS[0]), input=InputSpec(kind="tensors", shape=(32,), dtype="uint8", value_range=None, divide_by=None))
    with pytest.raises(ValueError, match="uint8"):
        InputSpec(kind="tensors", shape=(4,), value_range=None, divide_by=None)
    with pytest.raises(ValueError, match="pattern"):
        TensorSpec(name="two words", datatype="FP32", shape=(1,))
    plain = named_card(inputs=(), input=InputSpec(kind="tensor", shape=(4,), value_range=None, divide_by=None))
    assert "inputs" not in plain.model_dump() and "outputs" not in plain.model_dump()


def test_the_onnx_engine_runs_a_two_input_two_output_graph_by_its_names():
    from onnx import TensorProto, helper

    from models.engines.onnxruntime import OnnxRuntimeEngine

    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["k"], ["kf"], to=TensorProto.FLOAT),
            helper.make_node("Add", ["x", "kf"], ["sum"]),
            helper.make_node("ArgMax", ["sum"], ["best"], axis=1, keepdims=0),
        ],
        "pair",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3]), helper.make_tensor_value_info("k", TensorProto.INT32, ["N", 3])],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["N", 3]), helper.make_tensor_value_info("best", TensorProto.INT64, ["N"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    inputs = (TensorSpec(name="x", datatype="FP32", shape=(3,)), TensorSpec(name="k", datatype="INT32", shape=(3,)))
    outputs = (TensorSpec(name="sum", datatype="FP32", shape=(3,)), TensorSpec(name="best", datatype="INT64", shape=()))
    card = named_card(inputs=inputs, outputs=outputs, engines={"onnxruntime": {"file": "model.onnx"}})
    engine = OnnxRuntimeEngine(model.SerializeToString(), card)
    x, k = np.array([[0.5, 0.1, 0.2], [0, 0, 0]], np.float32), np.array([[0, 1, 0], [0, 0, 7]], np.int32)
    answer = unpack(outputs, engine(pack(inputs, {"x": x, "k": k})))
    np.testing.assert_array_equal(answer["sum"], x + k.astype(np.float32))
    np.testing.assert_array_equal(answer["best"], [1, 2])
    assert engine.warm_up().shape == (1, row_bytes(outputs))
    assert numbers_of(card, engine(pack(inputs, {"x": x, "k": k}))).tolist() == [[0.5, 1.1000000238418579, 0.20000000298023224, 1.0], [0.0, 0.0, 7.0, 2.0]]
