import io

import numpy as np
import pytest
from PIL import Image

from models.preprocessing import InvalidInput, check_pixels, pixels_from_image, pixels_from_json, to_model_input


def encode(pixels, fmt="PNG", mode="L"):
    buf = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).convert(mode).save(buf, format=fmt)
    return buf.getvalue()


def garment():
    img = np.zeros((28, 28), dtype=np.uint8)
    img[6:22, 9:19] = 200
    return img


def test_to_model_input_scales_and_adds_channel():
    x = to_model_input(np.full((2, 28, 28), 255, dtype=np.uint8))
    assert x.shape == (2, 28, 28, 1) and x.dtype == np.float32 and x.max() == 1.0


def test_json_single_and_batch():
    assert pixels_from_json([[0] * 28] * 28, "image").shape == (1, 28, 28)
    assert pixels_from_json([[[1.5] * 28] * 28] * 3, "images", batch=True).shape == (3, 28, 28)


@pytest.mark.parametrize(
    "value,batch,message",
    [
        ({"a": 1}, False, "got an object"),
        ([[0] * 28] * 28, True, "list of 28x28 images"),
        ([[[0] * 28] * 28], False, "a 28x28 image"),
        ([[0, "1"] + [0] * 26] * 28, False, "numbers only"),
        ([[None] * 28] * 28, False, "numbers only"),
        ([[10**30] * 28] * 28, False, "numbers only"),
        ([[0] * 28] * 27 + [[0] * 5], False, "ragged"),
        ([[256] * 28] * 28, False, "0..255"),
        ([[float("nan")] * 28] * 28, False, "finite"),
        ([], True, "28x28"),
    ],
)
def test_json_refusals_name_the_field(value, batch, message):
    with pytest.raises(InvalidInput, match=message) as info:
        pixels_from_json(value, "image", batch=batch)
    assert info.value.field == "image"


def test_check_pixels_refuses_empty_batch():
    with pytest.raises(InvalidInput, match="at least one image"):
        check_pixels(np.zeros((0, 28, 28)), "images")


def test_png_of_a_test_image_round_trips_exactly():
    pixels = garment()
    np.testing.assert_array_equal(pixels_from_image(encode(pixels))[0], pixels.astype(np.float32))


def test_colour_jpeg_of_any_size_becomes_28x28():
    big = np.kron(garment(), np.ones((10, 10), dtype=np.uint8))
    out = pixels_from_image(encode(big, "JPEG", "RGB"))
    assert out.shape == (1, 28, 28) and out.dtype == np.float32
    assert out[0, 14, 14] > 150 and out[0, 1, 1] < 30


def test_non_square_is_padded_not_stretched():
    tall = np.zeros((56, 28), dtype=np.uint8)
    tall[:, 10:18] = 255
    out = pixels_from_image(encode(tall))[0]
    assert out[:, :7].max() < 10  # padding columns stay background
    assert out[14, 14] > 200


def test_invert_auto_flips_light_backgrounds_only():
    dark_on_light = 255 - garment()
    auto = pixels_from_image(encode(dark_on_light))
    np.testing.assert_allclose(auto[0], garment(), atol=1)
    np.testing.assert_allclose(pixels_from_image(encode(garment()), invert="auto")[0], garment(), atol=1)
    np.testing.assert_allclose(pixels_from_image(encode(garment()), invert="true")[0], 255 - garment(), atol=1)
    np.testing.assert_allclose(pixels_from_image(encode(dark_on_light), invert="false")[0], dark_on_light, atol=1)


@pytest.mark.parametrize("data", [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20])
def test_undecodable_bytes(data):
    with pytest.raises(InvalidInput) as info:
        pixels_from_image(data)
    assert info.value.field == "image"


def test_bad_invert_value():
    with pytest.raises(InvalidInput, match="auto, true, false"):
        pixels_from_image(encode(garment()), invert="sometimes")
