"""Named tensors on a card, packed into one row of bytes per example (models/tensors.py), and an engine
running a real two-input, two-output ONNX graph on them."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from models.card import DATATYPES, InputSpec, ModelCard, TensorSpec, row_bytes
from models.preprocessing import InvalidInput
from models.tensors import TooLong, as_text, blank, by_shape, checked, dtype_of, numbers_of, pack, unpack
from tests.unit.cards import NAMED_INPUTS, named_card

SPECS = NAMED_INPUTS


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
        ({name: (array[:0], field) for name, (array, field) in given_ok.items()}, "inputs[0]: expected at least one example of x"),
        ({**given_ok, "x": (np.array([]), "inputs.x")}, "inputs.x: expected at least one example of x"),
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


def dynamic_spec(name: str, datatype: str, draw) -> TensorSpec:
    """A spec of one to three dimensions, at least one of them dynamic (bounded at 1 to 4), maybe a smallest size of 2."""
    rank = draw(st.integers(1, 3))
    dynamic = draw(st.lists(st.booleans(), min_size=rank, max_size=rank).filter(any))
    bound = tuple(draw(st.integers(2, 4)) for _ in range(rank))
    fixed = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    shape = tuple(-1 if d else f for d, f in zip(dynamic, fixed, strict=True))
    smallest = tuple(2 if d else f for d, f in zip(dynamic, fixed, strict=True)) if draw(st.booleans()) else None
    return TensorSpec(
        name=name,
        datatype=datatype,
        shape=shape,
        max_shape=tuple(b if d else f for d, b, f in zip(dynamic, bound, fixed, strict=True)),
        min_shape=smallest,
        max_bytes=5 if datatype == "BYTES" else None,
    )


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_examples_of_different_shapes_share_packed_rows_and_run_by_shape_in_their_order(data):
    """Requests of several shapes, each packed on its own and concatenated as the batcher does: by_shape
    hands the engine one shape at a time, every example as sent, and puts the answers back in order."""
    specs = (
        dynamic_spec("seq", data.draw(st.sampled_from(list(DATATYPES))), data.draw),
        TensorSpec(name="fixed", datatype="INT32", shape=(2,)),
    )
    requests, offset = [], 0
    for _ in range(data.draw(st.integers(1, 4))):
        shape = tuple(data.draw(st.integers(low, high)) for low, high in zip(specs[0].smallest, specs[0].bound, strict=True))
        count = data.draw(st.integers(1, 3))
        seq = data.draw(hnp.arrays(dtype_of(specs[0]), (count, *shape), elements=st.binary(max_size=5) if specs[0].max_bytes else None))
        # each example's index in the batch, in the fixed input: what the engine below answers, to check the order
        requests.append({"seq": seq, "fixed": np.stack([np.arange(offset, offset + count), np.zeros(count)], axis=1).astype(np.int32)})
        offset += count
    batch = np.concatenate([pack(specs, arrays) for arrays in requests])  # as the batcher joins requests' rows
    assert batch.shape == (offset, row_bytes(specs))
    seen = []

    def run(tensors):
        seen.append(tensors["seq"].shape[1:])
        return tensors["fixed"][:, :1].astype(np.int64)

    answers = by_shape(specs, batch, run)
    assert answers[:, 0].tolist() == list(range(len(batch)))
    assert len(seen) == len({a["seq"].shape[1:] for a in requests})  # one run per shape
    start = 0
    for arrays in requests:  # each request's rows unpack to what it sent, bit for bit
        got = unpack(specs, batch[start : start + len(arrays["seq"])])
        start += len(arrays["seq"])
        if got["seq"].dtype == object:
            assert got["seq"].tolist() == arrays["seq"].tolist()
        else:
            assert got["seq"].shape == arrays["seq"].shape and got["seq"].tobytes() == arrays["seq"].tobytes()


def test_a_dynamic_shape_is_bounded_checked_and_rows_of_mixed_shapes_must_be_grouped():
    seq = TensorSpec(name="seq", datatype="FP32", shape=(-1, 3), max_shape=(4, 3), min_shape=(2, 3))
    assert seq.dynamic == (0,) and seq.smallest == (2, 3) and seq.nbytes == 4 + 4 * 3 * 4 and str(seq) == "seq FP32 [-1, 3] (sizes [2, 3] to [4, 3])"
    assert seq.model_dump() == {"name": "seq", "datatype": "FP32", "shape": (-1, 3), "max_shape": (4, 3), "min_shape": (2, 3)}
    assert "max_shape" not in TensorSpec(name="x", datatype="FP32", shape=(3,)).model_dump()
    for wrong, message in (
        ({"shape": (-1, 3)}, "max_shape bounds the dynamic"),
        ({"shape": (2, 3), "max_shape": (2, 3)}, "max_shape bounds the dynamic"),
        ({"shape": (-1, 3), "max_shape": (4, 2)}, "the shape [-1, 3] with each -1 replaced"),
        ({"shape": (-1, 3), "max_shape": (4,)}, "with each -1 replaced"),
        ({"shape": (-1, 3), "max_shape": (4, 3), "min_shape": (5, 3)}, "each at most its max_shape"),
        ({"shape": (0, 3)}, "a dimension is positive, or -1"),
        ({"shape": (-2, 3), "max_shape": (4, 3)}, "greater than or equal to -1"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            TensorSpec(name="seq", datatype="FP32", **wrong)
    with pytest.raises(ValueError, match="outputs have fixed shapes"):
        named_card(outputs=(seq,))
    specs = (seq,)
    for array, message in (
        (np.zeros((1, 5, 3)), "seq takes examples of shape [-1, 3] (axis 1 of 2 to 4) (a batch: [N, -1, 3]), got [1, 5, 3]"),
        (np.zeros((1, 1, 3)), "axis 1 of 2 to 4"),
        (np.zeros((1, 3, 2)), "got [1, 3, 2]"),
        (np.zeros((1, 3)), "got [1, 3]"),
    ):
        with pytest.raises(InvalidInput, match=re.escape(message)):
            checked(specs, {"seq": (array, "inputs[0]")}, "m")
    mixed = np.concatenate([pack(specs, {"seq": np.ones((1, 2, 3), np.float32)}), pack(specs, {"seq": np.ones((1, 4, 3), np.float32)})])
    with pytest.raises(ValueError, match="examples of different shapes in one batch"):
        unpack(specs, mixed)
    assert unpack(specs, blank(specs))["seq"].shape == (1, 2, 3)  # a warm-up's example is the smallest
    corrupt = mixed[:1].copy()
    corrupt[0, :4] = np.frombuffer((9).to_bytes(4, "little"), np.uint8)  # a size past the bound
    with pytest.raises(ValueError, match=re.escape("the shape [9, 3] is not within [2, 3] to [4, 3]")):
        unpack(specs, corrupt)


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


def test_string_outputs_pack_as_text_are_bounded_and_left_out_of_numbers():
    outputs = (TensorSpec(name="score", datatype="FP32", shape=(1,)), TensorSpec(name="name", datatype="BYTES", shape=(1,), max_bytes=6))
    card = named_card(outputs=outputs)
    assert card.outputs[1].datatype == "BYTES"  # a card may answer strings
    answers = pack(outputs, {"score": np.array([[0.5], [2.0]], np.float32), "name": np.array([["rouge"], ["bleu"]], dtype=object)})  # ONNX Runtime's str
    assert as_text(unpack(outputs, answers))["name"].tolist() == [["rouge"], ["bleu"]]
    assert unpack(outputs, answers)["name"].tolist() == [[b"rouge"], [b"bleu"]]  # bytes until the protocols take them
    assert numbers_of(card, answers).tolist() == [[0.5], [2.0]]  # strings are not numbers to compare or watch
    with pytest.raises(TooLong, match=re.escape("name: a string of 7 bytes, past its max_bytes 6")):
        pack(outputs, {"score": np.zeros((1, 1), np.float32), "name": np.array([["écarlate"[:6]]], dtype=object)})
    only_strings = named_card(outputs=outputs[1:])
    assert numbers_of(only_strings, pack(outputs[1:], {"name": np.array([["a"]], dtype=object)})).shape == (1, 0)
