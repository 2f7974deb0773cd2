"""Property tests of the preprocessing: whatever a client sends becomes a valid model input or InvalidInput.

Arrays of every shape and dtype (bool, integers, floats with NaN and infinity, complex, datetimes,
strings, bytes, objects, records), arbitrary JSON values, and arbitrary bytes as image files,
including real images of every mode and format, truncated or with bytes flipped. Nothing else may
come out: no other exception type, and no warning (warnings are errors here).
"""

from __future__ import annotations

import io
import warnings

import hypothesis.extra.numpy as npst
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from models.preprocessing import IMAGE_FORMATS, MAX_IMAGE_PIXELS, InvalidInput, Invert, check_pixels, pixels_from_image, pixels_from_json
from models.specs import IMAGE_HEIGHT, IMAGE_SHAPE, IMAGE_WIDTH, PIXEL_MAX, PIXEL_MIN

# A file or socket left for the garbage collector to close fails the test too.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])

# Every kind of dtype NumPy has, in both byte orders where that applies.
DTYPES = st.one_of(
    npst.scalar_dtypes(),  # bool, (u)int8..64, float16..64, complex, datetime64, timedelta64
    npst.byte_string_dtypes(),
    npst.unicode_string_dtypes(),
    npst.integer_dtypes(endianness="="),
    npst.floating_dtypes(endianness="=", sizes=(16, 32, 64, 128)),
    st.just(np.dtype(object)),
    npst.array_dtypes(),  # records
)
NEAR_IMAGE_SHAPES = st.sampled_from([IMAGE_SHAPE, (1, *IMAGE_SHAPE), (3, *IMAGE_SHAPE), (0, *IMAGE_SHAPE), (IMAGE_HEIGHT, IMAGE_WIDTH + 1), (2, 1, *IMAGE_SHAPE)])
SHAPES = st.one_of(NEAR_IMAGE_SHAPES, npst.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=6))


def assert_model_input(pixels: np.ndarray) -> None:
    """What the runners take: float32 (N, 28, 28), N >= 1, finite, within 0..255."""
    assert isinstance(pixels, np.ndarray) and pixels.dtype == np.float32
    assert pixels.ndim == 3 and pixels.shape[1:] == IMAGE_SHAPE and pixels.shape[0] >= 1
    assert np.isfinite(pixels).all() and pixels.min() >= PIXEL_MIN and pixels.max() <= PIXEL_MAX


def model_input_or_invalid(function, *args, **kwargs) -> None:
    """``function`` returns a model input or raises InvalidInput naming a field; nothing else, no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            pixels = function(*args, **kwargs)
        except InvalidInput as exc:
            assert exc.field and str(exc).startswith(f"{exc.field}: ")
            return
    assert_model_input(pixels)


@st.composite
def arrays(draw) -> np.ndarray:
    dtype, shape = draw(DTYPES), draw(SHAPES)
    if dtype != object:
        return draw(npst.arrays(dtype, shape))
    array = np.empty(shape, dtype=object)  # any Python values, lists and dicts included
    for index in np.ndindex(shape):
        array[index] = draw(JSON_VALUES)
    return array


@given(arrays())
@PROPERTY
@example(np.full(IMAGE_SHAPE, np.nan, dtype=np.float32))
@example(np.full((2, *IMAGE_SHAPE), np.inf))
@example(np.full(IMAGE_SHAPE, -1, dtype=np.int64))
@example(np.full(IMAGE_SHAPE, np.iinfo(np.uint64).max, dtype=np.uint64))
@example(np.full(IMAGE_SHAPE, 1e300, dtype=np.longdouble))
@example(np.full(IMAGE_SHAPE, 255.00001, dtype=np.float64))
@example(np.full(IMAGE_SHAPE, True))
@example(np.full(IMAGE_SHAPE, 1 + 1j))
@example(np.full(IMAGE_SHAPE, np.datetime64("2020-01-01")))
@example(np.array(7))
def test_check_pixels_takes_any_array(array):
    model_input_or_invalid(check_pixels, array, field="body")


@pytest.mark.parametrize("shape", [(10**6,), (1, 10**6), (10**5, IMAGE_HEIGHT, 1), (IMAGE_HEIGHT,) * 5, (1,) * 32])
def test_check_pixels_takes_large_shapes(shape):
    """Large or many-dimensional arrays, as zero-strided views (no memory)."""
    model_input_or_invalid(check_pixels, np.broadcast_to(np.uint8(0), shape), field="body")


def test_check_pixels_valid_inputs_keep_their_values():
    pixels = np.arange(2 * IMAGE_HEIGHT * IMAGE_WIDTH, dtype=np.uint16).reshape(2, *IMAGE_SHAPE) % (PIXEL_MAX + 1)
    np.testing.assert_array_equal(check_pixels(pixels, "body"), pixels.astype(np.float32))


# JSON as a client can send it: nulls, booleans, any integer, any float (NaN, infinity, huge), any
# text, nested in lists and objects.
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=4), inner, max_size=4), max_leaves=40)
PIXEL_VALUES = st.one_of(
    st.integers(PIXEL_MIN, PIXEL_MAX),
    st.floats(PIXEL_MIN, PIXEL_MAX),
    st.integers(),
    st.floats(),
    JSON_SCALARS,
    st.lists(st.integers(PIXEL_MIN, PIXEL_MAX), max_size=2),
)


@st.composite
def near_images(draw, batch: bool):
    """28x28 rows (a list of them when ``batch``) of mostly valid pixels, with a few wrong ones: a value
    of another type or range, a row too short or too long, a missing row."""
    rows = draw(st.integers(IMAGE_HEIGHT - 1, IMAGE_HEIGHT + 1))
    valid = draw(st.sampled_from([0, PIXEL_MAX, 17.5]))
    image = [[valid] * IMAGE_WIDTH for _ in range(rows)]
    for _ in range(draw(st.integers(0, 3))):
        row = image[draw(st.integers(0, rows - 1))]
        change = draw(st.sampled_from(["value", "shorter", "longer"]))
        if change == "shorter":
            del row[draw(st.integers(0, len(row))) :]
        elif change == "longer":
            row.append(valid)
        elif row:
            row[draw(st.integers(0, len(row) - 1))] = draw(PIXEL_VALUES)
    return [image] * draw(st.integers(0, 3)) if batch else image


@given(st.one_of(JSON_VALUES, near_images(batch=False), near_images(batch=True)), st.booleans())
@PROPERTY
@example([[float("nan")] * IMAGE_WIDTH] * IMAGE_HEIGHT, False)
@example([[2**64] * IMAGE_WIDTH] * IMAGE_HEIGHT, False)
@example([[2**63 - 1, -(2**63)] + [0] * (IMAGE_WIDTH - 2)] * IMAGE_HEIGHT, False)
@example([[2**64 - 1, -1] + [0] * (IMAGE_WIDTH - 2)] * IMAGE_HEIGHT, False)
@example([[True] * IMAGE_WIDTH] * IMAGE_HEIGHT, False)
@example([[[0] * IMAGE_WIDTH] * IMAGE_HEIGHT, [[0] * IMAGE_WIDTH] * (IMAGE_HEIGHT - 1)], True)
@example([], True)
@example([[]], False)
def test_pixels_from_json_takes_any_json(value, batch):
    model_input_or_invalid(pixels_from_json, value, field="image", batch=batch)


def test_pixels_from_json_takes_deep_nesting():
    value: list = []
    for _ in range(10_000):
        value = [value]
    model_input_or_invalid(pixels_from_json, value, field="image")


IMAGE_MODES = ["1", "L", "P", "RGB", "RGBA", "LA", "I", "I;16", "F", "CMYK", "YCbCr", "PA", "La", "RGBa"]
# Formats PIL can write, the accepted ones (preprocessing.IMAGE_FORMATS) and others, which must be refused.
WRITTEN_FORMATS = [*IMAGE_FORMATS, "ICO", "PPM", "TGA", "PCX", "SGI", "IM", "DDS", "QOI", "SPIDER"]


@st.composite
def image_files(draw) -> bytes:
    """A real image file of some mode, size and format; sometimes truncated or with bytes flipped."""
    mode, fmt = draw(st.sampled_from(IMAGE_MODES)), draw(st.sampled_from(WRITTEN_FORMATS))
    size = (draw(st.integers(1, 80)), draw(st.integers(1, 80)))
    pixels = draw(npst.arrays(np.uint8, (size[1], size[0], 3)))
    buf = io.BytesIO()
    try:
        Image.fromarray(pixels, "RGB").convert(mode).save(buf, format=fmt)
    except (OSError, ValueError, KeyError, TypeError):  # this format cannot hold this mode or size
        Image.fromarray(pixels, "RGB").save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    damage = draw(st.sampled_from(["none", "truncate", "flip"]))
    if damage == "truncate":
        del data[draw(st.integers(0, len(data))) :]
    elif damage == "flip":
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


INVERTS = st.one_of(st.sampled_from(list(Invert)), st.sampled_from(["auto", "TRUE", "False"]), st.text(max_size=6))


@given(st.one_of(st.binary(max_size=2048), image_files()), INVERTS)
@PROPERTY
@example(b"", Invert.AUTO)
@example(b"\x89PNG\r\n\x1a\n", Invert.AUTO)
@example(b"GIF89a", Invert.TRUE)
@example(b"BM" + b"\xff" * 60, Invert.FALSE)
def test_pixels_from_image_takes_any_bytes(data, invert):
    model_input_or_invalid(pixels_from_image, data, field="image", invert=invert)


@given(st.sampled_from(IMAGE_FORMATS), st.sampled_from(IMAGE_MODES), st.integers(1, 80), st.integers(1, 80), st.sampled_from(list(Invert)))
@PROPERTY
def test_undamaged_images_of_every_accepted_format_decode(fmt, mode, width, height, invert):
    buf = io.BytesIO()
    try:
        Image.new("RGB", (width, height), (200, 30, 90)).convert(mode).save(buf, format=fmt)
    except (OSError, ValueError, KeyError, TypeError):
        assume(False)  # this format cannot hold this mode
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_model_input(pixels_from_image(buf.getvalue(), field="image", invert=invert))


@pytest.mark.parametrize("size", [(1, 100_000), (100_000, 1), (7_000, 7_000)])
def test_images_too_large_to_pad_or_decode_are_refused(size):
    """A file of a few hundred bytes declaring a thin or huge image: refused before it takes gigabytes."""
    buf = io.BytesIO()
    Image.new("1", size).save(buf, format="PNG")
    with pytest.raises(InvalidInput, match=f"{MAX_IMAGE_PIXELS}"):
        pixels_from_image(buf.getvalue(), field="image")
