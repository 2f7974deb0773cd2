"""models/card.py: what a card accepts, what it refuses, and its round trip through BentoML metadata."""

import json

import pytest
from pydantic import ValidationError

from models.card import CARD_FORMAT, NAME_PATTERN, ImagePreprocessing, InputSpec, ModelCard, OutputSpec
from tests.unit.cards import ALL_CARDS, clothes_card, colour_card, make_card, sigmoid_card, tensor_card


def test_derived_properties():
    card = clothes_card()
    assert card.tag == "clothes:v1" and card.classes == 10 and card.labels[0] == "T-shirt/top"
    assert card.is_image and card.input.channels == 1 and card.example_bytes == 28 * 28
    assert colour_card().input.channels == 3 and colour_card().example_bytes == 32 * 32 * 3
    assert tensor_card().input.channels is None and not tensor_card().is_image and tensor_card().example_bytes == 4
    assert clothes_card().output.units == 10 and sigmoid_card().output.units == 1


@pytest.mark.parametrize("shape", [(28, 28), (28, 28, 2), (28, 28, 4), (1, 28, 28, 1), (784,)])
def test_an_image_input_is_height_width_and_1_or_3_channels(shape):
    with pytest.raises(ValidationError, match="an image input has the shape"):
        InputSpec(kind="image", shape=shape, value_range=(0, 255), divide_by=255)


@pytest.mark.parametrize("shape", [(28, 28), (784,), (2, 3, 4, 5)])
def test_a_tensor_input_takes_any_shape(shape):
    assert InputSpec(kind="tensor", shape=shape, value_range=None, divide_by=None).shape == shape


@pytest.mark.parametrize("kind,shape", [("image", (0, 28, 1)), ("image", (28, -1, 1)), ("tensor", (4, 0))])
def test_dimensions_are_positive(kind, shape):
    with pytest.raises(ValidationError):
        InputSpec(kind=kind, shape=shape, value_range=None, divide_by=None)


@pytest.mark.parametrize("value_range", [(255, 0), (1, 1)])
def test_value_range_is_low_then_high(value_range):
    with pytest.raises(ValidationError, match="low < high"):
        InputSpec(kind="image", shape=(28, 28, 1), value_range=value_range, divide_by=255)


@pytest.mark.parametrize(
    "labels,positive,message",
    [
        (("a", "b", "c"), "a", "two labels"),
        (("a",), "a", "at least two labels"),
        (("a", "b"), None, "positive_label"),
        (("a", "b"), "c", "positive_label"),
    ],
)
def test_a_sigmoid_has_two_labels_and_a_positive_one(labels, positive, message):
    with pytest.raises(ValidationError, match=message):
        OutputSpec(kind="sigmoid", labels=labels, positive_label=positive)


def test_a_softmax_has_distinct_labels_and_no_positive_label():
    with pytest.raises(ValidationError, match="distinct"):
        OutputSpec(kind="softmax", labels=("a", "b", "a"))
    with pytest.raises(ValidationError, match="sigmoid output only"):
        OutputSpec(kind="softmax", labels=("a", "b"), positive_label="a")
    assert OutputSpec(kind="sigmoid", labels=("a", "b"), positive_label="a").positive_label == "a"


def test_image_inputs_need_preprocessing_and_tensors_none():
    grey = clothes_card()
    with pytest.raises(ValidationError, match="image inputs need preprocessing"):
        make_card("x", "v1", grey.input, None, grey.output)
    with pytest.raises(ValidationError, match="image inputs need preprocessing"):
        make_card("x", "v1", tensor_card().input, grey.preprocessing, grey.output)


@pytest.mark.parametrize("card,mode", [(clothes_card, "RGB"), (colour_card, "L")])
def test_colour_mode_matches_the_channels(card, mode):
    base = card()
    with pytest.raises(ValidationError, match=f"colour mode {mode} does not match"):
        make_card("x", "v1", base.input, base.preprocessing.model_copy(update={"colour_mode": mode}), base.output)


@pytest.mark.parametrize("name", ["Clothes", "-clothes", "clothes-", "a/b", "a b", "", "x" * 64, "clothes:v1", "ü"])
def test_names_and_versions_follow_bentomls_tag_alphabet(name):
    assert not NAME_PATTERN.fullmatch(name)
    with pytest.raises(ValidationError):
        clothes_card(name=name)
    with pytest.raises(ValidationError):
        clothes_card(version=name)


@pytest.mark.parametrize("name", ["clothes", "a", "v1.2", "model_2-b", "x" * 63])
def test_valid_names(name):
    assert clothes_card(name=name, version=name).tag == f"{name}:{name}"


def test_unknown_fields_are_refused_and_cards_are_frozen():
    with pytest.raises(ValidationError, match="extra"):
        clothes_card(owner="someone")
    card = clothes_card()
    with pytest.raises(ValidationError, match="frozen"):
        card.version = "v2"
    with pytest.raises(ValidationError):
        ImagePreprocessing(colour_mode="L", aspect="pad", resize="lanczos", invert="always")


@pytest.mark.parametrize("builder", sorted(ALL_CARDS))
def test_round_trip_through_bentoml_metadata(builder):
    card = ALL_CARDS[builder](metrics=None, slices={"overall": 0.5, "worst": None}, files=("report.html",))
    metadata = card.to_metadata()
    assert metadata["card_format"] == CARD_FORMAT and isinstance(metadata["card"], str)
    json.loads(metadata["card"])  # one JSON document: BentoML's metadata takes no nulls, the card has some
    assert None not in metadata.values()
    assert ModelCard.from_metadata(metadata) == card
    assert ModelCard.from_metadata(json.loads(json.dumps(metadata))) == card  # as BentoML stores it (YAML/JSON)


def test_metadata_survives_bentomls_store(tmp_path):
    import bentoml

    card = sigmoid_card(version="card-round-trip", metrics=None)
    with bentoml.models.create(card.tag, metadata=card.to_metadata()):
        pass
    assert ModelCard.from_metadata(bentoml.models.get(card.tag).info.metadata) == card


def test_metadata_without_a_card_says_what_to_do():
    with pytest.raises(ValueError, match="no card.*retrain or re-import"):
        ModelCard.from_metadata({"framework_versions": {"keras": "3.15.0"}})


def test_a_damaged_card_is_refused():
    metadata = clothes_card().to_metadata()
    document = json.loads(metadata["card"])
    document["output"]["labels"] = ["only one"]
    with pytest.raises(ValidationError):
        ModelCard.from_metadata({"card": json.dumps(document)})
