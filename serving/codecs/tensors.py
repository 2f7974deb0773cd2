"""Tensor codecs by datatype: how each Open Inference Protocol datatype is held in NumPy, in raw bytes,
in JSON, in v2 gRPC's typed contents and in a TensorFlow ``TensorProto``.

One registry, ``TENSOR_CODECS`` (the OIP name -> :class:`TensorCodec`), in the order error messages
list them. The REST and gRPC adapters of v2 and TF Serving, and the OpenAPI document, all read it; a
new datatype is one ``register`` call.

    >>> codec = TENSOR_CODECS["UINT8"]
    >>> tensor = tensor_from_bytes(raw, (2, 28, 28, 1), codec.dtype, "inputs[0]")   # no copy
    >>> codec.tf_dtype, codec.v2_contents, codec.tf_contents
    (4, 'uint_contents', 'int_val')
"""

from __future__ import annotations

import base64
import dataclasses
import math
import struct
from collections.abc import Collection, Sequence

import numpy as np

from models.preprocessing import NUMBER_LEAVES, leaf_types
from serving.core import holds_booleans
from serving.errors import BadRequest


@dataclasses.dataclass(frozen=True)
class TensorCodec:
    name: str  # the Open Inference Protocol's datatype
    dtype: np.dtype  # little-endian, as raw tensor bytes are
    tf_dtype: int  # tensorflow.DataType (types.proto)
    v2_contents: str  # the field of inference.InferTensorContents holding it
    tf_contents: str  # the field of tensorflow.TensorProto holding it (typed values)


TENSOR_CODECS: dict[str, TensorCodec] = {}


def register(codec: TensorCodec) -> TensorCodec:
    TENSOR_CODECS[codec.name] = codec
    return codec


# BF16 is refused: NumPy has no bfloat16. BYTES values are strings of bytes: in raw tensor bytes each is
# its length (uint32, little-endian) then its bytes; in JSON a string (TF Serving: {"b64": ...} for bytes).
for _codec in (
    TensorCodec("BOOL", np.dtype("?"), 10, "bool_contents", "bool_val"),
    TensorCodec("BYTES", np.dtype("O"), 7, "bytes_contents", "string_val"),
    TensorCodec("UINT8", np.dtype("u1"), 4, "uint_contents", "int_val"),
    TensorCodec("UINT16", np.dtype("<u2"), 17, "uint_contents", "int_val"),
    TensorCodec("UINT32", np.dtype("<u4"), 22, "uint_contents", "uint32_val"),
    TensorCodec("UINT64", np.dtype("<u8"), 23, "uint64_contents", "uint64_val"),
    TensorCodec("INT8", np.dtype("i1"), 6, "int_contents", "int_val"),
    TensorCodec("INT16", np.dtype("<i2"), 5, "int_contents", "int_val"),
    TensorCodec("INT32", np.dtype("<i4"), 3, "int_contents", "int_val"),
    TensorCodec("INT64", np.dtype("<i8"), 9, "int64_contents", "int64_val"),
    TensorCodec("FP16", np.dtype("<f2"), 19, "fp32_contents", "half_val"),
    TensorCodec("FP32", np.dtype("<f4"), 1, "fp32_contents", "float_val"),
    TensorCodec("FP64", np.dtype("<f8"), 2, "fp64_contents", "double_val"),
):
    register(_codec)

DATATYPES = {name: codec.dtype for name, codec in TENSOR_CODECS.items()}
NUMBER_DATATYPES = {name: dtype for name, dtype in DATATYPES.items() if dtype.kind not in "bO"}  # what a one-input model takes
BY_TF_DTYPE = {codec.tf_dtype: codec for codec in TENSOR_CODECS.values()}


def codec_of(value: object, field: str, accepted: Collection[str] = TENSOR_CODECS.keys()) -> TensorCodec:
    """The codec of a datatype named in a request, among ``accepted`` (NUMBER_DATATYPES for a one-input model)."""
    if not isinstance(value, str) or value not in accepted:
        shown = value if isinstance(value, str) and len(value) <= 16 else json_type(value)
        raise BadRequest(f"{field}: datatype {shown} is not accepted; use one of {', '.join(accepted)}")
    return TENSOR_CODECS[value]


def datatype_of(value: object, field: str, accepted: Collection[str] = TENSOR_CODECS.keys()) -> np.dtype:
    return codec_of(value, field, accepted).dtype


def datatype_name(dtype: np.dtype) -> str:
    return next(name for name, codec in TENSOR_CODECS.items() if codec.dtype == dtype)


def count(value: object) -> int | None:
    """A non-negative whole JSON number (2.0 is one, as JSON Schema's integers), or None; never a boolean."""
    if type(value) is float and value.is_integer() and value >= 0:
        return int(value)
    return value if type(value) is int and value >= 0 else None


MAX_RANK = 32  # NumPy takes at most 64 axes; no served input has nearly so many
MAX_EXTENT = 2**56  # the product of a shape's nonzero sizes: beyond it NumPy cannot describe the array, even an empty one


def shape_of(value: object, field: str) -> tuple[int, ...]:
    """A tensor shape: non-negative integers, at most MAX_RANK of them. The element count is checked
    against the data later (it may be 2**40); shapes NumPy cannot describe at all are refused here."""
    dims = [count(dim) for dim in value] if isinstance(value, (list, tuple)) else [None]
    if None in dims:
        raise BadRequest(f"{field}: expected a list of non-negative integers")
    shape: tuple[int, ...] = tuple(dims)  # type: ignore[arg-type]
    if len(shape) > MAX_RANK:
        raise BadRequest(f"{field}: {len(shape)} dimensions; at most {MAX_RANK} are accepted")
    if math.prod(max(size, 1) for size in shape) > MAX_EXTENT:
        raise BadRequest(f"{field}: shape {list(shape)} is too large to describe (its nonzero sizes multiply past 2**56)")
    return shape


def numbers(value: object, field: str, booleans: bool = True) -> np.ndarray:
    """Nested lists of numbers, not ragged, as an array. ``booleans``: the body may hold true or false
    (NumPy reads them among numbers as 1 and 0), so look for them."""
    if not isinstance(value, list):
        raise BadRequest(f"{field}: expected a list of numbers, got {json_type(value)}")
    array = _regular(value, field)
    if array.dtype == bool or array.dtype.kind not in "uif" or (booleans and array.size and holds_booleans(value)):
        raise BadRequest(f"{field}: expected numbers only")
    return array


def _regular(value: list, field: str) -> np.ndarray:
    """Nested lists as one array, or BadRequest when they are ragged (NumPy cannot make one). Leaves
    other than numbers and booleans (strings, objects, null) give an object array, each leaf as it was."""
    types = leaf_types(value)
    if types is None or list in types:
        raise BadRequest(f"{field}: expected equal-length rows (got lists ragged in depth)")
    if not types <= NUMBER_LEAVES:
        return _regular_objects(value, _nested_shape(value), field)
    try:
        array = np.asarray(value)
        if array.dtype == np.float64 and array.size and np.abs(array).max() >= 2**63:
            return _uint64(value, array)
        return array
    except (ValueError, OverflowError):
        raise BadRequest(f"{field}: expected equal-length rows of numbers (got ragged or mixed data)") from None


def _uint64(value: list, array: np.ndarray) -> np.ndarray:
    """NumPy reads whole numbers past int64's range mixed with smaller ones as float64, which rounds
    them: whole numbers that all fit UINT64 are read exactly instead."""
    exact = np.asarray(value, dtype=object)
    if all(type(item) is int and 0 <= item < 2**64 for item in exact.flat):
        return exact.astype(np.uint64)
    return array


def typed_values(values: Sequence, codec: TensorCodec) -> np.ndarray:
    """gRPC typed contents (v2's ``*_contents``, a TensorProto's ``*_val``) as an array to check against
    ``codec``: UINT64's field read as such, since NumPy rounds values past int64's range read among smaller ones."""
    if codec.dtype.kind == "O":  # each value its bytes (NumPy's fixed-width bytes would drop trailing NULs)
        array = np.empty(len(values), dtype=object)
        array[:] = list(values)
        return array
    return np.asarray(values, dtype=np.uint64) if codec.dtype == np.uint64 else np.asarray(values)


def json_tensor(value: object, field: str) -> np.ndarray:
    """A named input's JSON value (models/tensors.py converts it to the input's datatype): a number, true
    or false, a string (TF Serving's ``{"b64": ...}`` for bytes), or regular nested lists of one of them."""
    if isinstance(value, (bool, int, float)):
        return np.asarray(value)
    if isinstance(value, (str, dict)):
        return strings(np.asarray(value, dtype=object), field)
    if not isinstance(value, list):
        raise BadRequest(f"{field}: expected numbers, true and false, or strings; got {json_type(value)}")
    array = _regular(value, field)
    if array.dtype == bool:
        return array
    if array.dtype.kind == "O":
        return strings(array, field)
    if array.dtype.kind not in "uif" or (array.size and holds_booleans(value)):
        raise BadRequest(f"{field}: expected numbers only, or true and false only")
    return array


def _nested_shape(value: list) -> tuple[int, ...]:
    """Nested lists' shape as their first elements give it."""
    shape, first = [], value  # type: list[int], object
    while isinstance(first, list):
        shape.append(len(first))
        first = first[0] if first else None
    return tuple(shape)


def _regular_objects(value: list, shape: tuple[int, ...], field: str) -> np.ndarray:
    """Nested lists holding strings (or objects) as an object array of ``shape``, each leaf as it was
    (NumPy would make strings of numbers mixed among them, and a fixed-width array of the longest)."""
    array = np.empty(shape, dtype=object)
    try:
        array[...] = value
    except (ValueError, TypeError):
        raise BadRequest(f"{field}: expected equal-length rows of strings") from None
    return array


def strings(array: np.ndarray, field: str) -> np.ndarray:
    """An object array of JSON leaves as strings and bytes: text stays ``str``; ``{"b64": ...}`` (TF
    Serving's binary values) becomes its bytes; anything else is refused."""
    values = np.empty(array.shape, dtype=object)
    for index, leaf in enumerate(array.flat):
        if isinstance(leaf, dict) and set(leaf) == {"b64"} and isinstance(leaf["b64"], str):
            try:
                leaf = base64.b64decode(leaf["b64"], validate=True)
            except ValueError:
                raise BadRequest(f"{field}: b64 is not valid base64") from None
        elif not isinstance(leaf, str):
            raise BadRequest(f'{field}: expected strings only (or {{"b64": ...}} objects for bytes), got {json_type(leaf)}')
        values.flat[index] = leaf
    return values


def raw_tensor(tensor: np.ndarray, datatype: str) -> bytes:
    """A tensor's raw contents as OIP v2 sends them (binary data, gRPC's raw contents): little-endian
    values, or for BYTES each string's UTF-8 length-prefixed (uint32)."""
    if datatype != "BYTES":
        return tensor.tobytes()
    return b"".join(struct.pack("<I", len(text)) + text for text in (value.encode() if isinstance(value, str) else value for value in tensor.flat))


def tensor_from_bytes(data: bytes | memoryview, shape: tuple[int, ...], dtype: np.dtype, field: str) -> np.ndarray:
    """Raw little-endian values, row-major: exactly the shape's element count of them, without a copy
    (BYTES: each value's uint32 length, then its bytes)."""
    if dtype.kind == "O":
        return _length_prefixed(data, shape, field)
    expected = math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise BadRequest(f"{field}: shape {list(shape)} of {dtype.name} needs {expected} bytes, got {len(data)}")
    if dtype.kind == "b" and expected and np.frombuffer(data, dtype=np.uint8).max() > 1:
        raise BadRequest(f"{field}: BOOL values are bytes 0 or 1")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def _length_prefixed(data: bytes | memoryview, shape: tuple[int, ...], field: str) -> np.ndarray:
    """BYTES raw contents as the Open Inference Protocol sends them (tritonclient's serialize_byte_tensor)."""
    count, view, offset = math.prod(shape), memoryview(data), 0
    if count > len(view) // 4:
        raise BadRequest(f"{field}: shape {list(shape)} of BYTES needs {count} length-prefixed values, got {len(view)} bytes")
    values = np.empty(count, dtype=object)
    for index in range(count):
        if offset + 4 > len(view):
            raise BadRequest(f"{field}: BYTES value {index} has no length: the data ends at byte {offset}")
        length = int.from_bytes(view[offset : offset + 4], "little")
        if offset + 4 + length > len(view):
            raise BadRequest(f"{field}: BYTES value {index} claims {length} bytes; {len(view) - offset - 4} follow")
        values[index] = bytes(view[offset + 4 : offset + 4 + length])
        offset += 4 + length
    if offset != len(view):
        raise BadRequest(f"{field}: {len(view) - offset} bytes follow the {count} BYTES values of shape {list(shape)}")
    return values.reshape(shape)


def tensor_from_json(data: object, shape: tuple[int, ...], dtype: np.dtype, field: str, booleans: bool = True) -> np.ndarray:
    """JSON tensor data, flat or in the tensor's shape, as ``dtype``: integers must be whole and in range,
    BOOL data true or false."""
    if dtype.kind == "b":
        if not isinstance(data, list):
            raise BadRequest(f"{field}: expected a list of true and false, got {json_type(data)}")
        return tensor_from_array(_regular(data, field), shape, dtype, field)
    if dtype.kind == "O":
        if not isinstance(data, list):
            raise BadRequest(f"{field}: expected a list of strings, got {json_type(data)}")
        array = _regular(data, field)
        return tensor_from_array(strings(array, field) if array.dtype.kind == "O" else array.astype(object), shape, dtype, field)
    return tensor_from_array(numbers(data, field, booleans), shape, dtype, field)


def tensor_from_array(array: np.ndarray, shape: tuple[int, ...], dtype: np.dtype, field: str) -> np.ndarray:
    """Values flat or in ``shape``, as ``dtype``: integers must be whole and in range (JSON data, gRPC typed contents)."""
    if array.shape != shape and not (array.ndim == 1 and array.size == math.prod(shape)):
        raise BadRequest(f"{field}: {array.size} values in shape {list(array.shape)} do not fill shape {list(shape)} (flat or in that shape)")
    if dtype.kind == "b" and array.size and array.dtype.kind != "b":
        raise BadRequest(f"{field}: BOOL values must be true or false")
    if dtype.kind == "O":
        if array.size and not all(isinstance(value, (str, bytes)) for value in array.flat):
            raise BadRequest(f"{field}: BYTES values must be strings")
        return np.asarray(array, dtype=object).reshape(shape)
    if dtype.kind in "ui":
        if array.size and array.dtype.kind == "f" and not (np.isfinite(array).all() and (array == np.floor(array)).all()):
            raise BadRequest(f"{field}: {datatype_name(dtype)} values must be whole numbers")
        info = np.iinfo(dtype)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise BadRequest(f"{field}: {datatype_name(dtype)} values must lie in {info.min}..{info.max}")
    with np.errstate(over="ignore", invalid="ignore"):
        return array.astype(dtype).reshape(shape)


def json_type(value: object) -> str:
    return {dict: "an object", str: "a string", bool: "a boolean", type(None): "null", list: "a list"}.get(type(value), "a number")
