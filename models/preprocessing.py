"""Client data -> model input. Training and serving both call :func:`to_model_input`, so they cannot skew.

Two ways in:

- :func:`pixels_from_json` takes what a JSON body holds (nested lists of 0..255 numbers);
- :func:`pixels_from_image` takes the bytes of an image file (PNG, JPEG, ...; any size, colour or grey).

Both return ``uint8``-range ``float32`` pixels of shape (N, 28, 28) or raise :class:`InvalidInput`
naming the field and what was expected. :func:`to_model_input` then scales to 0..1 and adds the
channel axis.

    >>> batch = pixels_from_json([[0] * 28] * 28, field="image")
    >>> to_model_input(batch).shape
    (1, 28, 28, 1)
"""

from __future__ import annotations

import enum
import io
import warnings

import numpy as np

from models.specs import IMAGE_HEIGHT, IMAGE_SHAPE, IMAGE_WIDTH, PIXEL_MAX, PIXEL_MIN

# Decoding a huge image costs memory before we can refuse it; PIL refuses past this many pixels.
MAX_IMAGE_PIXELS = 40_000_000
# The image formats PIL may decode: the common ones, not every plugin it has (some are deprecated or rarely used).
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")
# A border this bright (0..255) means a light background, which Fashion-MNIST never has.
LIGHT_BACKGROUND = 128


class InvalidInput(ValueError):
    """The client's data cannot become a model input. ``field`` names the part that is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class Invert(str, enum.Enum):
    AUTO = "auto"
    TRUE = "true"
    FALSE = "false"


def to_model_input(pixels: np.ndarray) -> np.ndarray:
    """(N, 28, 28) intensities in 0..255 -> (N, 28, 28, 1) float32 in 0..1."""
    x = np.asarray(pixels, dtype=np.float32)
    return (x / np.float32(PIXEL_MAX)).reshape(x.shape[0], IMAGE_HEIGHT, IMAGE_WIDTH, 1)


def check_pixels(array: np.ndarray, field: str) -> np.ndarray:
    """Validate an (N, 28, 28) or (28, 28) numeric array of 0..255 values; return float32 (N, 28, 28)."""
    if array.dtype.kind not in "uif":
        raise InvalidInput(field, f"expected numbers, got values of type {array.dtype}")
    if array.shape[-2:] != IMAGE_SHAPE or array.ndim not in (2, 3):
        raise InvalidInput(field, f"expected 28x28 per image, got {_shape_text(array.shape)}")
    if array.ndim == 2:
        array = array[None]
    if array.shape[0] == 0:
        raise InvalidInput(field, "expected at least one image")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InvalidInput(field, "values must be finite numbers (no NaN or infinity)")
    if array.size and (array.min() < PIXEL_MIN or array.max() > PIXEL_MAX):
        raise InvalidInput(field, f"values must lie in {PIXEL_MIN}..{PIXEL_MAX}")
    return array.astype(np.float32, copy=False)


def pixels_from_json(value: object, field: str, batch: bool = False) -> np.ndarray:
    """A JSON value (28x28 nested lists, or a list of them when ``batch``) -> float32 (N, 28, 28)."""
    if not isinstance(value, list):
        raise InvalidInput(field, f"expected a {'list of ' if batch else ''}28x28 list of numbers, got {_json_type(value)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            array = np.asarray(value)
        except (ValueError, OverflowError):
            raise InvalidInput(field, "expected equal-length rows of numbers (got ragged or mixed data)") from None
    if array.dtype == bool or array.dtype == object or array.dtype.kind in "USV":
        raise InvalidInput(field, "expected numbers only")
    expected_ndim = 3 if batch else 2
    if array.ndim != expected_ndim:
        want = "a list of 28x28 images" if batch else "a 28x28 image"
        raise InvalidInput(field, f"expected {want}, got {_shape_text(array.shape)}")
    return check_pixels(array, field)


def pixels_from_image(data: bytes, field: str = "image", invert: Invert | str = Invert.AUTO) -> np.ndarray:
    """Decode an image file and turn it into one Fashion-MNIST-like (1, 28, 28) float32 image.

    Steps: decode with PIL, convert to greyscale, pad to a square with the border's colour,
    resize to 28x28 (Lanczos), then invert if the background is light (``invert=auto``) or
    when asked (``invert=true``).
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
                if max(width, height) ** 2 > MAX_IMAGE_PIXELS:
                    raise InvalidInput(field, f"image of {width}x{height} pixels: padded to a square it exceeds the limit of {MAX_IMAGE_PIXELS}")
                grey = img.convert("L")
    except InvalidInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # PIL's guard, from the header alone
        raise InvalidInput(field, f"more than {MAX_IMAGE_PIXELS} pixels, refused before decoding") from None
    except UnidentifiedImageError as exc:
        raise InvalidInput(field, f"not a decodable image ({type(exc).__name__})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidInput(field, f"not a decodable image ({exc})") from None
    pixels = np.asarray(_square(grey).resize(IMAGE_SHAPE[::-1], Image.Resampling.LANCZOS), dtype=np.float32)
    if invert is Invert.TRUE or (invert is Invert.AUTO and _border_level(pixels) >= LIGHT_BACKGROUND):
        pixels = PIXEL_MAX - pixels
    return pixels[None]


def parse_invert(invert: Invert | str) -> Invert:
    """``auto``, ``true`` or ``false`` in any case, or :class:`InvalidInput`."""
    try:
        return Invert(str(getattr(invert, "value", invert)).lower())
    except ValueError:
        raise InvalidInput("invert", f"expected one of auto, true, false, got {invert!r}") from None


def _square(img):
    """Pad to a square with the colour of the image's border, keeping the garment's proportions."""
    width, height = img.size
    if width == height:
        return img
    from PIL import Image

    side = max(width, height)
    fill = int(round(_border_level(np.asarray(img))))
    canvas = Image.new("L", (side, side), fill)
    canvas.paste(img, ((side - width) // 2, (side - height) // 2))
    return canvas


def _border_level(pixels: np.ndarray) -> float:
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return float(np.median(border))


def _shape_text(shape: tuple) -> str:
    return "x".join(str(s) for s in shape) if shape else "a single number"


def _json_type(value: object) -> str:
    return {dict: "an object", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
