"""serving/codecs/tensors.py: every registered datatype read from raw bytes, JSON and typed contents
gives back the array that was sent, and what a datatype cannot hold is a 400 naming the field."""

import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tritonclient.utils import serialize_byte_tensor

from models.preprocessing import InvalidInput as InvalidValues
from models.preprocessing import leaf_types, values_from_json
from serving.codecs.tensors import BY_TF_DTYPE, NUMBER_DATATYPES, TENSOR_CODECS, codec_of, json_tensor, tensor_from_array, tensor_from_bytes, tensor_from_json, typed_values
from serving.errors import BadRequest
from tests.unit.cards import clothes_card


@st.composite
def tensors(draw):
    codec = draw(st.sampled_from(list(TENSOR_CODECS.values())))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4))
    if codec.name == "BYTES":  # text, as JSON carries it; NULs and non-ASCII included
        array = np.empty(shape, dtype=object)
        array.flat[:] = draw(st.lists(st.text(max_size=12), min_size=array.size, max_size=array.size))
        return codec, array
    elements = {"allow_nan": False, "allow_infinity": False} if codec.dtype.kind == "f" else None
    return codec, draw(hnp.arrays(codec.dtype, shape, elements=elements))


def raw_bytes(array: np.ndarray) -> bytes:
    """The raw tensor bytes a client sends: tritonclient's own serializer for BYTES."""
    return serialize_byte_tensor(array).item() if array.dtype == object and array.size else array.tobytes()


@given(tensors())
def test_every_datatype_round_trips_through_bytes_json_and_typed_values(sent):
    codec, array = sent
    assert BY_TF_DTYPE[codec.tf_dtype] is codec and codec_of(codec.name, "x") is codec
    as_sent = np.vectorize(lambda value: value.encode(), otypes=[object])(array) if array.dtype == object and array.size else array
    for received, expected in (
        (tensor_from_bytes(raw_bytes(array), array.shape, codec.dtype, "x"), as_sent),
        (tensor_from_json(array.reshape(-1).tolist(), array.shape, codec.dtype, "x", booleans=True), array),
        (tensor_from_array(typed_values(as_sent.reshape(-1).tolist(), codec), array.shape, codec.dtype, "x"), as_sent),  # gRPC's typed contents
    ):
        assert received.dtype == codec.dtype and received.shape == array.shape
        assert received.tolist() == expected.tolist()


@pytest.mark.parametrize(
    "read, message",
    [
        (lambda: tensor_from_bytes(b"\x01\x02", (2,), np.dtype("?"), "x"), "x: BOOL values are bytes 0 or 1"),
        (lambda: tensor_from_json([1, 0], (2,), np.dtype("?"), "x"), "x: BOOL values must be true or false"),
        (lambda: tensor_from_json([True, 0], (2,), np.dtype("?"), "x"), "x: BOOL values must be true or false"),
        (lambda: tensor_from_json({"a": True}, (1,), np.dtype("?"), "x"), "x: expected a list of true and false, got an object"),
        (lambda: tensor_from_json([True, False], (2,), np.dtype("<i4"), "x"), "x: expected numbers only"),
        (lambda: codec_of("BOOL", "x", NUMBER_DATATYPES.keys()), "x: datatype BOOL is not accepted; use one of UINT8"),
        (lambda: codec_of("BYTES", "x", NUMBER_DATATYPES.keys()), "x: datatype BYTES is not accepted; use one of UINT8"),
        (lambda: tensor_from_bytes(b"\x05\x00\x00\x00ab", (1,), np.dtype("O"), "x"), "x: BYTES value 0 claims 5 bytes; 2 follow"),
        (lambda: tensor_from_bytes(b"\x01\x00\x00\x00abc", (1,), np.dtype("O"), "x"), "x: 2 bytes follow the 1 BYTES values"),
        (lambda: tensor_from_bytes(b"\x00\x00", (1,), np.dtype("O"), "x"), "x: shape [1] of BYTES needs 1 length-prefixed values, got 2 bytes"),
        (lambda: tensor_from_json(["a", 1], (2,), np.dtype("O"), "x"), "x: expected strings only"),
        (lambda: tensor_from_json([["a"], ["b", "c"]], (2,), np.dtype("O"), "x"), "x: expected equal-length rows"),
        (lambda: tensor_from_json([{"b64": "***"}], (1,), np.dtype("O"), "x"), "x: b64 is not valid base64"),
    ],
)
def test_what_a_datatype_cannot_hold_is_refused_naming_the_field(read, message):
    with pytest.raises(BadRequest) as refused:
        read()
    assert message in refused.value.message


def test_uint64_values_past_int64_are_read_exactly_among_small_ones():
    """NumPy alone reads [0, 2**63 + 1] as float64, 2**63 + 1 rounded to 2**63."""
    sent = [0, 2**63 + 1, 2**64 - 1]
    uint64 = TENSOR_CODECS["UINT64"]
    assert tensor_from_json(sent, (3,), uint64.dtype, "x").tolist() == sent
    assert tensor_from_array(typed_values(sent, uint64), (3,), uint64.dtype, "x").tolist() == sent
    with pytest.raises(BadRequest, match="must lie in 0..18446744073709551615"):
        tensor_from_json([-1, 2**63 + 1], (2,), uint64.dtype, "x")


HOSTILE = [0] * 20_000 + ["x" * 200_000]  # 0.3 MB of JSON; NumPy alone makes it a 15 GB array of fixed-width strings


@pytest.mark.parametrize(
    "read, refusal",
    [
        (lambda: tensor_from_json(HOSTILE, (20_001,), np.dtype("<f4"), "x"), BadRequest),
        (lambda: tensor_from_json(HOSTILE, (20_001,), np.dtype("?"), "x"), BadRequest),
        (lambda: tensor_from_json(HOSTILE, (20_001,), np.dtype("O"), "x"), BadRequest),
        (lambda: json_tensor([HOSTILE], "x"), BadRequest),
        (lambda: values_from_json([HOSTILE], clothes_card(), "image", batch=True), InvalidValues),
    ],
)
def test_a_long_string_among_numbers_is_refused_without_a_fixed_width_array(read, refusal):
    tracemalloc.start()
    try:
        with pytest.raises(refusal):
            read()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"{peak / 2**20:.0f} MiB"


@pytest.mark.parametrize(
    "rows, expected",
    [([[1, 2], [3, 4.5]], {int, float}), ([[True], [0]], {bool, int}), ([["a"], [1]], {str, int}), ([[1, 2], 3], None), ([[1], [[2]]], {int, list}), ([], set())],
)
def test_leaf_types_read_nested_lists_at_their_first_elements_depth(rows, expected):
    assert leaf_types(rows) == expected
