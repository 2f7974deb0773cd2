"""training/architectures.py: every network sized by the card's input and output."""

import pytest

from tests.unit.cards import clothes_card, colour_card, sigmoid_card
from training import recipes
from training.architectures import ARCHITECTURES, build


def test_lenet5_has_the_courses_parameter_count():
    card = clothes_card()
    assert build("lenet5", card.input, card.output).count_params() == 44_426


@pytest.mark.parametrize("version", sorted(recipes.get("clothes").versions))
def test_every_clothes_version_builds_a_ten_class_softmax(version):
    recipe = recipes.get("clothes")
    model = build(recipe.versions[version].architecture, recipe.input, recipe.output)
    assert model.input_shape == (None, 28, 28, 1)
    assert model.output_shape == (None, 10) and model.layers[-1].activation.__name__ == "softmax"


@pytest.mark.parametrize("architecture", ["lenet5", "small_vgg"])
def test_the_recipes_architectures_take_a_colour_card(architecture):
    card = colour_card()
    model = build(architecture, card.input, card.output)
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 3)


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_every_architecture_takes_a_larger_colour_card(architecture):
    """alternate_lenet5 (four valid 3x3 convolutions, four poolings) needs at least 46x46."""
    card = colour_card()
    spec = card.input.model_copy(update={"shape": (64, 64, 3)})
    model = build(architecture, spec, card.output)
    assert model.input_shape == (None, 64, 64, 3) and model.output_shape == (None, 3)


@pytest.mark.parametrize("architecture", ["lenet5", "small_vgg"])
def test_a_sigmoid_card_gets_one_sigmoid_unit(architecture):
    card = sigmoid_card()
    model = build(architecture, card.input, card.output)
    assert model.input_shape == (None, 16, 16, 1)
    assert model.output_shape == (None, 1) and model.layers[-1].activation.__name__ == "sigmoid"


def test_unknown_architecture():
    card = clothes_card()
    with pytest.raises(ValueError, match="unknown architecture 'resnet'; known: "):
        build("resnet", card.input, card.output)
