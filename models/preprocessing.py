"""Client data -> model input, by the model's card. Training and serving both call :func:`to_model_input`,
so they cannot skew.

Two ways in, both checked against the card and returning ``(N, *card.input.shape)`` arrays of client
values (uint8 or float32), or raising :class:`InvalidInput` naming the field and what was expected:

- :func:`values_from_json`: what a JSON body holds (nested lists of numbers; a grey image may leave
  out its channel axis, as the course sends 28x28 lists);
- :func:`values_from_image`: the bytes of an image file (PNG, JPEG, ...; any size, colour or grey),
  converted, squared, resized and possibly inverted as the card's ``preprocessing`` says.

:func:`to_model_input` then applies the card's scaling and shape.

    >>> values = values_from_json([[0] * 28] * 28, card, field="image")
    >>> to_model_input(values, card.input).shape
    (1, 28, 28, 1)
"""

from __future__ import annotations

import enum
import io
import itertools
import warnings
from collections.abc import Iterable

import numpy as np

from models.card import ImagePreprocessing, InputSpec, ModelCard

# Decoding a huge image costs memory before we can refuse it; PIL refuses past this many pixels.
MAX_IMAGE_PIXELS = 40_000_000
# The image formats PIL may decode: the common ones, not every plugin it has (some are deprecated or rarely used).
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")
LEVELS = 255  # image files hold 8-bit levels
LIGHT_BORDER = 128  # invert=auto: a border at least this bright means a light background


class InvalidInput(ValueError):
    """The client's data cannot become a model input. ``field`` names the part that is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class Invert(str, enum.Enum):
    AUTO = "auto"  # as the card's policy says: clothes invert light backgrounds, most models never invert
    TRUE = "true"
    FALSE = "false"


def to_model_input(values: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Client values (N, ...) -> the model's float32 input (N, *shape), scaled as the card's input says."""
    x = np.asarray(values, dtype=np.float32)
    if spec.divide_by:
        x = x / np.float32(spec.divide_by)
    return x.reshape(len(x), *spec.shape)


def example_text(card: ModelCard) -> str:
    """One example's shape as a client writes it: ``28x28`` (grey), ``128x128x3``, ``16``; named inputs by name: ``features 4, counts 3``."""
    if card.named_inputs:
        return ", ".join(f"{spec.name} {shape_text(spec.shape) or 'scalar'}" for spec in card.inputs)
    shape = card.input.shape
    return shape_text(shape[:2] if card.is_image and card.input.channels == 1 else shape)


def range_text(card: ModelCard) -> str:
    if card.input.value_range is None:
        return "any finite number"
    low, high = card.input.value_range
    return f"{low:g}..{high:g}"


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_values(array: np.ndarray, card: ModelCard, field: str, batch: bool | None = None) -> np.ndarray:
    """Validate one example (``batch`` False), a batch (True) or either (None) against the card;
    return (N, *shape), uint8 kept, anything else as float32."""
    shape = card.input.shape
    accepted = [shape]
    if card.is_image and card.input.channels == 1:
        accepted.append(shape[:2])  # grey images without their channel axis, as the course sends them
    if array.dtype.kind not in "uif":
        raise InvalidInput(field, f"expected numbers, got values of type {array.dtype}")
    if array.shape in accepted and batch is not True:
        array = array[None]
    elif array.shape[1:] not in accepted or batch is False:
        got = array.shape[1:] if batch is not False and len(array.shape) - 1 in {len(s) for s in accepted} else array.shape
        raise InvalidInput(field, f"expected {example_text(card)} per {_example(card)}, got {shape_text(got)}")
    if array.shape[0] == 0:
        raise InvalidInput(field, f"expected at least one {_example(card)}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InvalidInput(field, "values must be finite numbers (no NaN or infinity)")
    if card.input.value_range is not None and array.size:
        low, high = card.input.value_range
        if array.min() < low or array.max() > high:
            raise InvalidInput(field, f"values must lie in {range_text(card)}")
    if array.dtype != np.uint8:
        bounded = card.input.value_range is not None and max(map(abs, card.input.value_range)) < FLOAT32_MAX
        with np.errstate(over="ignore"):
            array = array.astype(np.float32, copy=False)
        # Within a float32 range checked above, nothing can overflow: the test is for unbounded inputs only.
        if not bounded and not np.isfinite(array).all():  # beyond float32's range: the model would see infinity
            raise InvalidInput(field, "values must be finite 32-bit numbers (at most about 3.4e38 in size)")
    return array.reshape(len(array), *shape)


NUMBER_LEAVES = frozenset({int, float, bool})


def leaf_types(rows: list) -> set[type] | None:
    """The types of nested lists' leaves, at the depth of their first elements; None when a leaf there is
    not iterable (lists ragged in depth). Read before NumPy sees client JSON: NumPy makes one string
    among 20,000 numbers a fixed-width array of 20,001 such strings (15 GB from a 200 kB body)."""
    depth, first = 1, rows
    while first and isinstance(first[0], list):
        depth, first = depth + 1, first[0]
    leaves: Iterable = rows
    try:
        for _ in range(depth - 1):
            leaves = itertools.chain.from_iterable(leaves)
        return set(map(type, leaves))
    except TypeError:
        return None


def values_from_json(value: object, card: ModelCard, field: str, batch: bool = False) -> np.ndarray:
    """A JSON value (one example, or a list of them when ``batch``) -> (N, *shape) values."""
    want = f"a list of {example_text(card)} {_example(card)}s" if batch else f"a {example_text(card)} {_example(card)}"
    if not isinstance(value, list):
        raise InvalidInput(field, f"expected {want} of numbers, got {_json_type(value)}")
    types = leaf_types(value)
    if types is None or list in types:
        raise InvalidInput(field, "expected equal-length rows of numbers (got ragged or mixed data)")
    if not types <= NUMBER_LEAVES:
        raise InvalidInput(field, "expected numbers only")
    try:
        array = np.asarray(value)  # ragged rows raise ValueError (NumPy >= 1.24), integers past 64 bits OverflowError
    except (ValueError, OverflowError):
        raise InvalidInput(field, "expected equal-length rows of numbers (got ragged or mixed data)") from None
    if array.dtype == bool or array.dtype == object or array.dtype.kind in "USV":
        raise InvalidInput(field, "expected numbers only")
    ranks = {len(card.input.shape)} | ({2} if card.is_image and card.input.channels == 1 else set())
    if array.ndim - batch not in ranks:
        raise InvalidInput(field, f"expected {want}, got {shape_text(array.shape)}")
    return check_values(array, card, field, batch=batch)


def values_from_image(data: bytes, card: ModelCard, field: str = "image", invert: Invert | str = Invert.AUTO) -> np.ndarray:
    """Decode an image file into one (1, H, W, C) example as the card's preprocessing says: uint8
    levels, or for a card whose values are not 0..255 those levels mapped into its range."""
    if card.preprocessing is None:
        raise InvalidInput(field, f"{card.tag} takes {card.input.kind} values, not image files")
    return levels_in_range(decode_image(data, card.input, card.preprocessing, field, invert), card.input)


def levels_in_range(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """0..255 levels as the values an image input takes: as they are for a 0..255 range, otherwise
    mapped linearly onto the card's range (0..1: levels / 255; -1..1: levels / 127.5 - 1), as float32."""
    if spec.value_range is None or tuple(spec.value_range) == (0, LEVELS):
        return pixels
    low, high = spec.value_range
    return np.clip(np.float32(low) + pixels.astype(np.float32) * np.float32((high - low) / LEVELS), low, high).astype(np.float32)


def decode_image(data: bytes, spec: InputSpec, prep: ImagePreprocessing, field: str = "image", invert: Invert | str = Invert.AUTO) -> np.ndarray:
    """An image file as one (1, H, W, C) uint8 example: what serving does to an upload, and what
    training does to its image files (training/datasets/image_folder.py).

    Steps: decode with PIL, convert to the colour mode, bring to the input's proportions (pad with the
    border's colour, or centre-crop) unless it stretches, resize with the filter, then invert when
    asked (``invert=true``) or when the policy is ``auto`` and the border is light.
    """
    from PIL import Image, UnidentifiedImageError

    invert = parse_invert(invert)
    if not data:
        raise InvalidInput(field, "expected an image file, got an empty upload")
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's remarks on a client's damaged file help no one
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as img:
                width, height = img.size
                # Padded to a square before resizing: a thin image (1 x 100,000) would take gigabytes.
                if prep.aspect == "pad" and max(width, height) ** 2 > MAX_IMAGE_PIXELS:
                    raise InvalidInput(field, f"image of {width}x{height} pixels: padded to a square it exceeds the limit of {MAX_IMAGE_PIXELS}")
                converted = img.convert(prep.colour_mode)
    except InvalidInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # PIL's guard, from the header alone
        raise InvalidInput(field, f"more than {MAX_IMAGE_PIXELS} pixels, refused before decoding") from None
    except UnidentifiedImageError:  # its text names the BytesIO object, of no use to a client
        raise InvalidInput(field, f"not a decodable image (the formats read are {', '.join(IMAGE_FORMATS)})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # a damaged file of a known format: PIL's words say how
        raise InvalidInput(field, f"not a decodable image ({exc})" if str(exc).strip() else "not a decodable image (a damaged file)") from None
    height, width, channels = spec.shape
    resized = _to_aspect(converted, prep.aspect, width / height).resize((width, height), Image.Resampling[prep.resize.upper()])
    pixels = np.asarray(resized, dtype=np.uint8).reshape(height, width, channels)
    if invert is Invert.TRUE or (invert is Invert.AUTO and prep.invert == "auto" and _border_level(pixels) >= LIGHT_BORDER):
        pixels = LEVELS - pixels
    return pixels[None]


def parse_invert(invert: Invert | str) -> Invert:
    """``auto``, ``true`` or ``false`` in any case, or :class:`InvalidInput`."""
    try:
        return Invert(str(getattr(invert, "value", invert)).lower())
    except ValueError:
        raise InvalidInput("invert", f"expected one of auto, true, false, got {invert!r}") from None


def _to_aspect(img, aspect: str, ratio: float):
    """The image in the model's proportions (``ratio``, width / height): padded with the colour of its
    border (its own proportions kept), or centre-cropped; "stretch" leaves it for the resize."""
    width, height = img.size
    if aspect == "stretch":
        return img
    wide = width / height > ratio  # wider than the model's input
    if aspect == "pad":
        target = (width, round(width / ratio)) if wide else (round(height * ratio), height)
    else:
        target = (round(height * ratio), height) if wide else (width, round(width / ratio))
    target = (max(target[0], 1), max(target[1], 1))
    if target == (width, height):
        return img
    if aspect == "crop":
        left, top = (width - target[0]) // 2, (height - target[1]) // 2
        return img.crop((left, top, left + target[0], top + target[1]))
    from PIL import Image

    fill = tuple(int(round(v)) for v in np.atleast_1d(_border_levels(np.asarray(img))))
    canvas = Image.new(img.mode, target, fill[0] if img.mode == "L" else fill)
    canvas.paste(img, ((target[0] - width) // 2, (target[1] - height) // 2))
    return canvas


def _border_levels(pixels: np.ndarray) -> np.ndarray:
    """The median level of an image's border, per channel."""
    pixels = pixels.reshape(pixels.shape[0], pixels.shape[1], -1)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return np.median(border, axis=0)


def _border_level(pixels: np.ndarray) -> float:
    return float(np.mean(_border_levels(pixels)))


def _example(card: ModelCard) -> str:
    return "image" if card.is_image else "example"


def shape_text(shape: tuple) -> str:
    return "x".join(str(s) for s in shape) if shape else "a single number"


def _json_type(value: object) -> str:
    return {dict: "an object", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
