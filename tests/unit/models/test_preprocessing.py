"""models/preprocessing.py: client JSON values and image files -> model inputs, as each model's card says."""

import io

import numpy as np
import pytest
from PIL import Image

from models.preprocessing import InvalidInput, Invert, check_values, example_text, parse_invert, to_model_input, values_from_image, values_from_json
from tests.unit.cards import clothes_card, colour_card, make_card, sigmoid_card, tensor_card

CLOTHES = clothes_card()
COLOUR = colour_card()


def encode(pixels, fmt="PNG", mode=None):
    """An image file of ``pixels`` (H x W grey or H x W x 3 colour), converted to ``mode`` when given."""
    image = Image.fromarray(np.asarray(pixels, dtype=np.uint8))
    buf = io.BytesIO()
    (image.convert(mode) if mode else image).save(buf, format=fmt)
    return buf.getvalue()


def garment():
    """A light garment on a dark background, as Fashion-MNIST has them."""
    img = np.zeros((28, 28), dtype=np.uint8)
    img[6:22, 9:19] = 200
    return img


def colour_scene(height=32, width=32):
    """Three vertical bands, red, green and blue, on a black background."""
    img = np.zeros((height, width, 3), dtype=np.uint8)
    third = width // 3
    img[4:-4, :third, 0] = 250
    img[4:-4, third : 2 * third, 1] = 250
    img[4:-4, 2 * third :, 2] = 250
    return img


# --- to_model_input -----------------------------------------------------------------------------


def test_to_model_input_scales_by_the_card_and_keeps_its_shape():
    x = to_model_input(np.full((2, 28, 28), 255, dtype=np.uint8), CLOTHES.input)
    assert x.shape == (2, 28, 28, 1) and x.dtype == np.float32 and x.max() == 1.0
    x = to_model_input(np.full((3, 32, 32, 3), 51, dtype=np.uint8), COLOUR.input)
    assert x.shape == (3, 32, 32, 3) and np.allclose(x, 0.2)


def test_to_model_input_without_divide_by_keeps_the_values():
    values = np.array([[-3.5, 0, 1e6, 7]], dtype=np.float32)
    np.testing.assert_array_equal(to_model_input(values, tensor_card().input), values)


# --- JSON ---------------------------------------------------------------------------------------


def test_json_grey_single_with_or_without_channel_axis_and_batch():
    assert values_from_json([[0] * 28] * 28, CLOTHES, "image").shape == (1, 28, 28, 1)
    assert values_from_json([[[0]] * 28] * 28, CLOTHES, "image").shape == (1, 28, 28, 1)
    assert values_from_json([[[1.5] * 28] * 28] * 3, CLOTHES, "images", batch=True).shape == (3, 28, 28, 1)
    assert values_from_json([[[[1.5]] * 28] * 28] * 2, CLOTHES, "images", batch=True).shape == (2, 28, 28, 1)


def test_json_values_keep_their_numbers():
    image = np.arange(28 * 28).reshape(28, 28) % 256
    values = values_from_json(image.tolist(), CLOTHES, "image")
    assert values.dtype == np.float32  # JSON integers arrive as int64, then float32
    np.testing.assert_array_equal(values[0, :, :, 0], image)


def test_json_colour_single_and_batch():
    scene = colour_scene()
    one = values_from_json(scene.tolist(), COLOUR, "image")
    assert one.shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(one[0], scene)
    batch = values_from_json([scene.tolist(), (255 - scene).tolist()], COLOUR, "images", batch=True)
    assert batch.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(batch[1], 255 - scene)


@pytest.mark.parametrize(
    "value,batch,message",
    [
        ([[0] * 32] * 32, False, "expected a 32x32x3 image, got 32x32"),  # grey HxW: grey cards only
        ([[[0] * 32] * 32] * 2, True, "expected a list of 32x32x3 images, got 2x32x32"),
        ([[[0, 0, 0]] * 32] * 32, True, "list of 32x32x3 images"),  # one image where a batch goes
        ([[[[0, 0, 0]] * 32] * 32], False, "a 32x32x3 image"),  # a batch where one image goes
        ([[[0, 0, 0, 0]] * 32] * 32, False, "expected 32x32x3 per image, got 32x32x4"),
        ([[[0, 0]] * 32] * 32, False, "got 32x32x2"),
        ([[[0, 0, 0]] * 28] * 28, False, "expected 32x32x3 per image, got 28x28x3"),
        ([[[0, 0, 256]] * 32] * 32, False, "0..255"),
        ([[[0, 0, -1]] * 32] * 32, False, "0..255"),
    ],
)
def test_colour_json_refusals(value, batch, message):
    with pytest.raises(InvalidInput, match=message) as info:
        values_from_json(value, COLOUR, "images" if batch else "image", batch=batch)
    assert info.value.field == ("images" if batch else "image")


@pytest.mark.parametrize(
    "value,batch,message",
    [
        ({"a": 1}, False, "got an object"),
        ("28x28", False, "got a string"),
        (None, False, "got null"),
        (3, False, "got a number"),
        ([[0] * 28] * 28, True, "list of 28x28 images"),
        ([[[[0]] * 28] * 28], False, "a 28x28 image"),
        ([[0, "1"] + [0] * 26] * 28, False, "numbers only"),
        ([[None] * 28] * 28, False, "numbers only"),
        ([[10**30] * 28] * 28, False, "numbers only"),
        ([[0] * 28] * 27 + [[0] * 5], False, "ragged"),
        ([[256] * 28] * 28, False, "0..255"),
        ([[-0.5] * 28] * 28, False, "0..255"),
        ([[float("nan")] * 28] * 28, False, "finite"),
        ([[float("inf")] * 28] * 28, False, "0..255|finite"),
        ([[0] * 27] * 28, False, "expected 28x28 per image, got 28x27"),
        ([], True, "28x28"),
    ],
)
def test_json_refusals_name_the_field(value, batch, message):
    with pytest.raises(InvalidInput, match=message) as info:
        values_from_json(value, CLOTHES, "image", batch=batch)
    assert info.value.field == "image" and str(info.value).startswith("image: ")


def test_tensor_json_takes_any_finite_number_unless_the_card_bounds_them():
    values = values_from_json([-1e6, 0, 2.5, 7], tensor_card(), "input")
    assert values.shape == (1, 4) and values.dtype == np.float32
    assert values_from_json([[0, 1, 2, 3]] * 5, tensor_card(), "inputs", batch=True).shape == (5, 4)
    with pytest.raises(InvalidInput, match="expected 4 per example, got 5"):
        values_from_json([0, 1, 2, 3, 4], tensor_card(), "input")
    with pytest.raises(InvalidInput, match="finite"):
        values_from_json([0, float("nan"), 0, 0], tensor_card(), "input")
    with pytest.raises(InvalidInput, match="values must lie in -1..1"):
        values_from_json([0, 0.5, -2, 0], tensor_card(value_range=(-1, 1)), "input")


def test_tensor_values_beyond_float32_are_refused_not_made_infinite():
    try:
        values = values_from_json([1e300, 0, 0, 0], tensor_card(), "input")
    except InvalidInput:
        return
    assert np.isfinite(values).all(), values


# --- check_values -------------------------------------------------------------------------------


def test_check_values_refuses_an_empty_batch():
    with pytest.raises(InvalidInput, match="at least one image"):
        check_values(np.zeros((0, 28, 28)), CLOTHES, "images")
    with pytest.raises(InvalidInput, match="at least one example"):
        check_values(np.zeros((0, 4)), tensor_card(), "inputs")


def test_check_values_one_example_a_batch_or_either():
    one, many = np.zeros((32, 32, 3), np.uint8), np.zeros((5, 32, 32, 3), np.uint8)
    assert check_values(one, COLOUR, "body").shape == (1, 32, 32, 3)
    assert check_values(many, COLOUR, "body").shape == (5, 32, 32, 3)
    assert check_values(one, COLOUR, "body", batch=False).shape == (1, 32, 32, 3)
    with pytest.raises(InvalidInput):
        check_values(many, COLOUR, "body", batch=False)
    with pytest.raises(InvalidInput, match="expected 32x32x3 per image, got 32x3"):
        check_values(one, COLOUR, "body", batch=True)


def test_check_values_keeps_uint8_and_makes_the_rest_float32():
    assert check_values(np.zeros((2, 28, 28), np.uint8), CLOTHES, "body").dtype == np.uint8
    for dtype in (np.int64, np.uint16, np.float64, np.float16):
        assert check_values(np.zeros((2, 28, 28), dtype), CLOTHES, "body").dtype == np.float32
    with pytest.raises(InvalidInput, match="expected numbers, got values of type bool"):
        check_values(np.zeros((28, 28), bool), CLOTHES, "body")


def test_grey_without_channel_axis_is_for_grey_cards_only():
    assert check_values(np.zeros((28, 28)), CLOTHES, "body").shape == (1, 28, 28, 1)
    with pytest.raises(InvalidInput, match="32x32x3"):
        check_values(np.zeros((32, 32)), COLOUR, "body")


def test_example_text():
    assert example_text(CLOTHES) == "28x28" and example_text(COLOUR) == "32x32x3" and example_text(tensor_card()) == "4"


# --- image files --------------------------------------------------------------------------------


def test_png_of_a_test_image_round_trips_exactly():
    pixels = garment()
    out = values_from_image(encode(pixels), CLOTHES)
    assert out.shape == (1, 28, 28, 1) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, :, :, 0], pixels)


def test_colour_png_of_the_cards_size_round_trips_exactly():
    scene = colour_scene()
    out = values_from_image(encode(scene), COLOUR)
    assert out.shape == (1, 32, 32, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0], scene)


def test_colour_jpeg_of_any_size_becomes_28x28_grey():
    big = np.kron(garment(), np.ones((10, 10), dtype=np.uint8))
    out = values_from_image(encode(big, "JPEG", "RGB"), CLOTHES)
    assert out.shape == (1, 28, 28, 1) and out.dtype == np.uint8
    assert out[0, 14, 14, 0] > 150 and out[0, 1, 1, 0] < 30


def test_any_size_becomes_the_colour_cards_32x32x3_and_keeps_its_colours():
    big = np.kron(colour_scene(30, 30), np.ones((7, 7, 1), dtype=np.uint8))  # 210 x 210
    out = values_from_image(encode(big, "JPEG"), COLOUR)[0]
    assert out.shape == (32, 32, 3)
    left, middle, right = out[16, 4], out[16, 16], out[16, 28]
    assert left.argmax() == 0 and middle.argmax() == 1 and right.argmax() == 2
    assert min(left[0], middle[1], right[2]) > 200


def test_grey_files_become_three_equal_channels_for_a_colour_card():
    out = values_from_image(encode(np.kron(garment(), np.ones((2, 2), np.uint8))[:32, :32]), COLOUR)[0]
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 1], out[..., 2])


def test_colour_files_become_grey_by_luma_for_a_grey_card():
    img = np.zeros((28, 28, 3), dtype=np.uint8)
    img[..., 0] = 200  # pure red: L = 200 * 299 / 1000
    out = values_from_image(encode(img), make_card("red", "v1", CLOTHES.input, CLOTHES.preprocessing.model_copy(update={"invert": "never"}), CLOTHES.output))
    assert out.shape == (1, 28, 28, 1) and abs(int(out[0, 0, 0, 0]) - 60) <= 1


def test_non_square_is_padded_not_stretched():
    tall = np.zeros((56, 28), dtype=np.uint8)
    tall[:, 10:18] = 255
    out = values_from_image(encode(tall), CLOTHES)[0, :, :, 0]
    assert out[:, :7].max() < 10  # padding columns stay background
    assert out[14, 14] > 200


def test_padding_takes_the_colour_of_the_border():
    wide = np.zeros((32, 64, 3), dtype=np.uint8)
    wide[...] = (10, 200, 30)  # a green background
    wide[12:20, 28:36] = (250, 0, 0)
    out = values_from_image(encode(wide), COLOUR)[0]
    np.testing.assert_array_equal(out[0, 0], (10, 200, 30))  # a padded corner: the background, not black
    np.testing.assert_array_equal(out[-1, -1], (10, 200, 30))
    assert out[16, 16, 0] > 200  # the red square, centred


@pytest.mark.parametrize("aspect", ["pad", "stretch", "crop"])
def test_aspect_policy(aspect):
    """A 32x96 image (wide): three 32x32 squares, red | green | blue."""
    wide = np.zeros((32, 96, 3), dtype=np.uint8)
    wide[:, :32, 0] = wide[:, 32:64, 1] = wide[:, 64:, 2] = 255
    out = values_from_image(encode(wide), colour_card(aspect=aspect))[0].astype(int)
    if aspect == "crop":  # the centre square only: green everywhere
        assert (out[..., 1] > 240).all() and (out[..., [0, 2]] < 15).all()
    elif aspect == "stretch":  # squeezed: every row red | green | blue over the full height
        for row in (0, 16, 31):
            assert out[row, 2].argmax() == 0 and out[row, 16].argmax() == 1 and out[row, 29].argmax() == 2
    else:  # padded: the bands in the middle third of the height, the border colour (red on the left,
        # blue on the right: median of the border per channel) above and below
        assert out[16, 2].argmax() == 0 and out[16, 16].argmax() == 1 and out[16, 29].argmax() == 2
        assert not np.array_equal(out[0], out[16])


@pytest.mark.parametrize("resize", ["nearest", "box", "bilinear", "lanczos"])
def test_resizing_uses_the_cards_filter(resize):
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(noise).resize((32, 32), Image.Resampling[resize.upper()]))
    np.testing.assert_array_equal(values_from_image(encode(noise), colour_card(resize=resize))[0], expected)


@pytest.mark.parametrize("aspect", ["pad", "crop"])
def test_an_image_already_in_a_non_square_cards_proportions_is_not_distorted(aspect):
    card = make_card(
        "portrait",
        "v1",
        clothes_card().input.model_copy(update={"shape": (32, 16, 1)}),
        clothes_card().preprocessing.model_copy(update={"aspect": aspect, "invert": "never"}),
        clothes_card().output,
    )
    tall = np.zeros((64, 32), dtype=np.uint8)  # twice the card's size, same proportions
    tall[:, :16] = 255  # left half white, right half black
    tall[:8] = 128  # and a grey band across the top eighth
    out = values_from_image(encode(tall), card)[0, :, :, 0].astype(int)
    assert (abs(out[:3] - 128) < 5).all(), out  # the band: neither cropped away nor moved
    assert (out[5:, :7] > 240).all() and (out[5:, 9:] < 15).all(), out  # the halves: neither squeezed nor stretched


def test_a_batch_where_one_image_goes_is_named_as_such():
    with pytest.raises(InvalidInput) as info:
        values_from_json([[[0] * 28] * 28], CLOTHES, "image")
    assert "got 28x28" not in str(info.value), info.value  # "expected 28x28 per image, got 28x28" contradicts itself
    assert "1x28x28" in str(info.value)


def test_invert_auto_flips_light_backgrounds_only_when_the_card_says_auto():
    dark_on_light = 255 - garment()
    np.testing.assert_array_equal(values_from_image(encode(dark_on_light), CLOTHES)[0, ..., 0], garment())
    np.testing.assert_array_equal(values_from_image(encode(garment()), CLOTHES, invert="auto")[0, ..., 0], garment())
    np.testing.assert_array_equal(values_from_image(encode(garment()), CLOTHES, invert="true")[0, ..., 0], 255 - garment())
    np.testing.assert_array_equal(values_from_image(encode(dark_on_light), CLOTHES, invert="false")[0, ..., 0], dark_on_light)


def test_invert_never_keeps_light_backgrounds_unless_asked():
    light = 255 - colour_scene()
    np.testing.assert_array_equal(values_from_image(encode(light), COLOUR)[0], light)  # the card says never
    np.testing.assert_array_equal(values_from_image(encode(light), COLOUR, invert=Invert.AUTO)[0], light)
    np.testing.assert_array_equal(values_from_image(encode(light), COLOUR, invert="TRUE")[0], colour_scene())
    auto = colour_card(invert="auto")
    np.testing.assert_array_equal(values_from_image(encode(light), auto)[0], colour_scene())
    np.testing.assert_array_equal(values_from_image(encode(colour_scene()), auto)[0], colour_scene())


def test_a_tensor_card_takes_no_image_files():
    with pytest.raises(InvalidInput, match="vector:v1 takes tensor values, not image files") as info:
        values_from_image(encode(garment()), tensor_card())
    assert info.value.field == "image"


def test_a_sigmoid_cards_image_is_stretched_to_its_16x16():
    out = values_from_image(encode(np.full((40, 10), 99, np.uint8)), sigmoid_card())
    assert out.shape == (1, 16, 16, 1) and (out == 99).all()


@pytest.mark.parametrize("data", [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20])
@pytest.mark.parametrize("card", [CLOTHES, COLOUR], ids=["grey", "colour"])
def test_undecodable_bytes(data, card):
    with pytest.raises(InvalidInput) as info:
        values_from_image(data, card, field="upload")
    assert info.value.field == "upload"


@pytest.mark.parametrize("value", ["sometimes", "", "yes", 1])
def test_bad_invert_value(value):
    with pytest.raises(InvalidInput, match="auto, true, false") as info:
        values_from_image(encode(garment()), CLOTHES, invert=value)
    assert info.value.field == "invert"


@pytest.mark.parametrize("value,expected", [("auto", Invert.AUTO), ("TRUE", Invert.TRUE), ("False", Invert.FALSE), (Invert.TRUE, Invert.TRUE)])
def test_parse_invert(value, expected):
    assert parse_invert(value) is expected
