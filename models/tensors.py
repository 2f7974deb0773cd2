"""Several named tensors per example, as one row of bytes: how a model with several inputs or outputs
crosses the batcher and the runner transport, which carry one array.

Each example's row is its tensors' raw little-endian bytes, in the card's order (``card.inputs``,
``card.outputs``): lossless for every datatype, and batched along the first axis like any other input.
A BYTES value takes a fixed width: its length (uint32), then its bytes padded to the spec's ``max_bytes``.
A tensor with dynamic dimensions (an input of shape [-1, 3]: tokens of any count up to ``max_shape``)
leads with their sizes (uint32 each), then its values, zero-padded to the bound; examples of different
sizes share a batch, and the engine runs each shape apart (:func:`by_shape`).
The data plane checks what a client sent against the card and packs it; the engine unpacks it, runs
the model, and packs its outputs; the data plane unpacks them for the protocols.

    >>> arrays = checked(card.inputs, {"image": (image, "inputs[0]"), "age": (age, "inputs[1]")})
    >>> rows = pack(card.inputs, arrays)            # (N, row_bytes(card.inputs)) uint8
    >>> unpack(card.inputs, rows)["age"].dtype
    dtype('int64')
"""

from __future__ import annotations

import numpy as np

from models.card import DATATYPES, DIM_BYTES, LENGTH_BYTES, TensorSpec, row_bytes
from models.preprocessing import InvalidInput


def dtype_of(spec: TensorSpec) -> np.dtype:
    return np.dtype(DATATYPES[spec.datatype])


def _cell_bytes(spec: TensorSpec) -> int:
    return LENGTH_BYTES + spec.max_bytes if spec.max_bytes is not None else dtype_of(spec).itemsize


def pack(specs: tuple[TensorSpec, ...], arrays: dict[str, np.ndarray]) -> np.ndarray:
    """(N, row_bytes) uint8: each example's tensors as their bytes, in ``specs``' order (arrays already
    checked). A tensor with dynamic dimensions leads with their sizes and is zero-padded to its bound."""
    count = len(next(iter(arrays.values())))
    parts = [_packed(np.asarray(arrays[spec.name]), spec, count) for spec in specs]
    return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def _packed(array: np.ndarray, spec: TensorSpec, count: int) -> np.ndarray:
    if spec.max_bytes is not None:
        values = _packed_bytes(array, spec, count)
    else:
        values = np.ascontiguousarray(array, dtype=dtype_of(spec)).reshape(count, -1).view(np.uint8).reshape(count, -1)
    if not spec.dynamic:
        return values
    sizes = np.array([array.shape[1 + axis] for axis in spec.dynamic], "<u4").view(np.uint8)
    row = np.zeros((count, spec.nbytes), np.uint8)
    row[:, : sizes.size] = sizes
    row[:, sizes.size : sizes.size + values.shape[1]] = values
    return row


class TooLong(ValueError):
    """A string past its tensor's max_bytes (an output a model answered: inputs are checked before)."""


def _packed_bytes(values: np.ndarray, spec: TensorSpec, count: int) -> np.ndarray:
    """BYTES values (bytes, or text as UTF-8) as (count, values per example x cell): per value its length,
    then its bytes, zero-padded. TooLong for a value past max_bytes."""
    assert spec.max_bytes is not None
    flat = [value.encode() if isinstance(value, str) else value for value in np.asarray(values, dtype=object).reshape(-1)]
    longest = max(map(len, flat), default=0)
    if longest > spec.max_bytes:
        raise TooLong(f"{spec.name}: a string of {longest} bytes, past its max_bytes {spec.max_bytes}")
    cells = np.zeros((len(flat), _cell_bytes(spec)), np.uint8)
    for cell, value in zip(cells, flat, strict=True):
        cell[:LENGTH_BYTES] = np.frombuffer(len(value).to_bytes(LENGTH_BYTES, "little"), np.uint8)
        cell[LENGTH_BYTES : LENGTH_BYTES + len(value)] = np.frombuffer(value, np.uint8)
    return cells.reshape(count, -1)


def _unpacked_bytes(part: np.ndarray, spec: TensorSpec, shape: tuple[int, ...]) -> np.ndarray:
    """Packed BYTES values back as an object array of bytes, (N, *shape)."""
    assert spec.max_bytes is not None
    cells = part.reshape(-1, LENGTH_BYTES + spec.max_bytes)
    lengths = cells[:, :LENGTH_BYTES].copy().view("<u4").reshape(-1)
    if lengths.size and lengths.max() > spec.max_bytes:
        raise ValueError(f"packed {spec.name}: a length past max_bytes {spec.max_bytes}")
    values = np.empty(len(cells), dtype=object)
    values[:] = [cell[LENGTH_BYTES : LENGTH_BYTES + length].tobytes() for cell, length in zip(cells, lengths.tolist(), strict=True)]
    return values.reshape(len(part), *shape)


def _sizes(part: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """(N, dynamic axes) uint32: each packed example's sizes of its dynamic dimensions."""
    return np.ascontiguousarray(part[:, : len(spec.dynamic) * DIM_BYTES]).view("<u4")


def unpack(specs: tuple[TensorSpec, ...], rows: np.ndarray, only: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The named tensors of packed rows (``only`` those named), each (N, *shape) in its datatype. Every row
    must have the same dynamic sizes: :func:`by_shape` groups rows that differ."""
    rows = np.ascontiguousarray(rows, dtype=np.uint8)
    expected = row_bytes(specs)
    if rows.ndim != 2 or rows.shape[1] != expected:
        raise ValueError(f"packed rows of {expected} bytes expected, got shape {list(rows.shape)}")
    tensors, start = {}, 0
    for spec in specs:
        part, start = rows[:, start : start + spec.nbytes], start + spec.nbytes
        if only is None or spec.name in only:
            tensors[spec.name] = _unpacked(part, spec)
    return tensors


def _unpacked(part: np.ndarray, spec: TensorSpec) -> np.ndarray:
    shape = spec.shape
    if spec.dynamic:
        sizes = _sizes(part, spec)
        if len(part) and (sizes != sizes[0]).any():
            raise ValueError(f"packed {spec.name}: examples of different shapes in one batch (run them by_shape)")
        dims = dict(zip(spec.dynamic, sizes[0].tolist(), strict=True)) if len(part) else {}
        shape = tuple(dims.get(axis, dim) for axis, dim in enumerate(spec.smallest))
        if not spec.fits(shape):
            raise ValueError(f"packed {spec.name}: the shape {list(shape)} is not within {list(spec.smallest)} to {list(spec.bound)}")
        head = len(spec.dynamic) * DIM_BYTES
        part = part[:, head : head + int(np.prod(shape)) * _cell_bytes(spec)]
    part = np.ascontiguousarray(part)
    return _unpacked_bytes(part, spec, shape) if spec.max_bytes else part.view(dtype_of(spec)).reshape(len(part), *shape)


def by_shape(specs: tuple[TensorSpec, ...], rows: np.ndarray, run) -> np.ndarray:
    """``run(tensors)`` -> answers, one row per example, over packed rows whose dynamic dimensions may differ
    from example to example (requests of several shapes batched together): once per group of one shape,
    the answers put back in the rows' order."""
    keys, start = [], 0
    for spec in specs:
        if spec.dynamic:
            keys.append(_sizes(np.asarray(rows)[:, start : start + spec.nbytes], spec))
        start += spec.nbytes
    if not keys or len(rows) < 2:
        return run(unpack(specs, rows))
    shapes, group_of = np.unique(np.concatenate(keys, axis=1), axis=0, return_inverse=True)
    if len(shapes) == 1:
        return run(unpack(specs, rows))
    answers = None
    for group in range(len(shapes)):
        where = np.flatnonzero(group_of.reshape(-1) == group)
        part = np.asarray(run(unpack(specs, rows[where])))
        if answers is None:
            answers = np.empty((len(rows), *part.shape[1:]), part.dtype)
        answers[where] = part
    assert answers is not None
    return answers


def blank(specs: tuple[TensorSpec, ...], count: int = 1) -> np.ndarray:
    """Packed examples of zeros (empty strings), each of the smallest shape: a warm-up's input."""
    arrays = {spec.name: np.full((count, *spec.smallest), b"" if spec.max_bytes else 0, object if spec.max_bytes else dtype_of(spec)) for spec in specs}
    return pack(specs, arrays)


def numbers_of(card, answers: np.ndarray) -> np.ndarray:
    """A version's answers as numbers, (N, values): packed named outputs unpacked and side by side (float64;
    strings left out), others as they are."""
    if not card.outputs:
        return np.asarray(answers).reshape(len(answers), -1)
    numeric = tuple(spec.name for spec in card.outputs if spec.max_bytes is None)
    tensors = unpack(card.outputs, answers, only=numeric)
    return np.concatenate([np.zeros((len(answers), 0)), *(tensors[name].reshape(len(answers), -1).astype(np.float64) for name in numeric)], axis=1)


def as_text(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Unpacked named tensors with their strings as text (str, from UTF-8), as the protocols answer them."""
    return {name: _decoded(tensor) if tensor.dtype == object else tensor for name, tensor in tensors.items()}


def _decoded(values: np.ndarray) -> np.ndarray:
    text = np.empty(values.shape, dtype=object)
    text.flat[:] = [value.decode("utf-8", errors="replace") for value in values.flat]
    return text


def checked(specs: tuple[TensorSpec, ...], given: dict[str, tuple[np.ndarray, str]], model: str) -> dict[str, np.ndarray]:
    """What a client sent (name -> (array, the field it came in)) checked against the specs: every input
    named once, each (N, *shape) with the same N > 0, values that its datatype holds exactly (whole numbers in
    range for integers, 0 or 1 for BOOL, finite for floats, strings of at most max_bytes for BYTES).
    InvalidInput names the field otherwise."""
    wanted = [spec.name for spec in specs]
    unexpected = [name for name in given if name not in wanted]
    if unexpected:
        raise InvalidInput("inputs", f"unexpected input {unexpected[0][:64]!r} for model {model}; its inputs: {', '.join(wanted)}")
    missing = [name for name in wanted if name not in given]
    if missing:
        raise InvalidInput("inputs", f"missing {', '.join(map(repr, missing))} for model {model}; its inputs: {', '.join(wanted)}")
    arrays, count = {}, None
    for spec in specs:
        array, field = given[spec.name]
        array = np.asarray(array)
        if array.ndim > 0 and len(array) == 0:  # whatever its other axes: an empty batch
            raise InvalidInput(field, f"expected at least one example of {spec.name}")
        if array.ndim == 0 or not spec.fits(array.shape[1:]):
            raise InvalidInput(field, f"{spec.name} takes examples of shape {_described(spec)} (a batch: [N, {', '.join(map(str, spec.shape))}]), got {list(array.shape)}")
        if count is not None and len(array) != count:
            raise InvalidInput(field, f"{len(array)} examples of {spec.name}, but {count} of {specs[0].name}: every input has one row per example")
        count = len(array)
        arrays[spec.name] = _as_datatype(array, spec, field)
    return arrays


def _described(spec: TensorSpec) -> str:
    if not spec.dynamic:
        return str(list(spec.shape))
    bounds = ", ".join(f"axis {axis + 1} of {spec.smallest[axis]} to {spec.bound[axis]}" for axis in spec.dynamic)
    return f"{list(spec.shape)} ({bounds})"


def _as_datatype(array: np.ndarray, spec: TensorSpec, field: str) -> np.ndarray:
    dtype = dtype_of(spec)
    if spec.max_bytes is not None:
        return _as_bytes(array, spec, field)
    if array.dtype.kind not in "buif":
        raise InvalidInput(field, f"expected numbers for {spec.name} ({spec.datatype})")
    if array.dtype.kind == "b" and dtype.kind != "b":
        raise InvalidInput(field, f"{spec.name} is {spec.datatype}: expected numbers, got true or false")
    if dtype.kind == "b":
        if array.dtype.kind != "b" and array.size and not np.isin(array, (0, 1)).all():
            raise InvalidInput(field, f"{spec.name} is BOOL: values must be true or false (1 or 0)")
        return array.astype(bool)
    if dtype.kind == "f":
        with np.errstate(over="ignore"):
            cast = array.astype(dtype)
        if cast.size and not np.isfinite(cast).all():
            raise InvalidInput(field, f"{spec.name} takes finite numbers ({spec.datatype}); got NaN, infinity or a value past its range")
        return cast
    if array.size and array.dtype.kind == "f" and not (np.isfinite(array).all() and (array == np.floor(array)).all()):
        raise InvalidInput(field, f"{spec.name} is {spec.datatype}: values must be whole numbers")
    info = np.iinfo(dtype)
    # Floats compare against the bounds as floats: 2**63 read from JSON is a float equal to float(int64 max).
    high_ok = (array.max() < float(info.max) + 1) if array.dtype.kind == "f" else (array.max() <= info.max)
    if array.size and (array.min() < info.min or not high_ok):
        raise InvalidInput(field, f"{spec.name} is {spec.datatype}: values must lie in {info.min}..{info.max}")
    return array.astype(dtype)


def _as_bytes(array: np.ndarray, spec: TensorSpec, field: str) -> np.ndarray:
    """Strings (as UTF-8) or bytes, each at most max_bytes long, as an object array of bytes."""
    if array.dtype.kind not in "OSU" or not all(isinstance(value, (str, bytes)) for value in array.flat):
        raise InvalidInput(field, f"{spec.name} is BYTES: expected strings")
    values = np.empty(array.shape, dtype=object)
    values.flat[:] = [value.encode() if isinstance(value, str) else bytes(value) for value in array.flat]
    longest = max((len(value) for value in values.flat), default=0)
    if spec.max_bytes is not None and longest > spec.max_bytes:
        raise InvalidInput(field, f"{spec.name} takes strings of at most {spec.max_bytes} bytes; got one of {longest}")
    return values
