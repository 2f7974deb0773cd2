"""models/inference.py: client values in, one probability per label out, for softmax and sigmoid cards."""

import numpy as np
import pytest

from models.inference import class_probabilities, predict_probabilities, warm_up
from models.preprocessing import to_model_input
from tests.unit.cards import colour_card, keras_model_for, sigmoid_card, tensor_card


def test_a_softmax_is_already_one_probability_per_label():
    outputs = np.array([[0.2, 0.5, 0.3]], dtype=np.float32)
    np.testing.assert_array_equal(class_probabilities(outputs, colour_card().output), outputs)


@pytest.mark.parametrize("positive,expected", [("damage", [[0.9, 0.1], [0.25, 0.75]]), ("no_damage", [[0.1, 0.9], [0.75, 0.25]])])
def test_a_sigmoid_unit_becomes_two_columns_in_label_order(positive, expected):
    """Labels are (no_damage, damage): the unit's value goes to the positive label's column."""
    outputs = np.array([[0.1], [0.75]], dtype=np.float32)
    np.testing.assert_allclose(class_probabilities(outputs, sigmoid_card(positive_label=positive).output), expected)


@pytest.mark.parametrize("card", [colour_card(), sigmoid_card(), tensor_card()], ids=["colour", "sigmoid", "tensor"])
def test_predict_probabilities_is_keras_by_the_card(card):
    model = keras_model_for(card)
    values = np.random.default_rng(1).integers(0, 256, (5, *card.input.shape)).astype(np.uint8 if card.is_image else np.float32)
    expected = class_probabilities(model.predict(to_model_input(values, card.input), verbose=0), card.output)
    probabilities = predict_probabilities(model, values, card)
    assert probabilities.shape == (5, card.classes)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_warm_up_checks_the_output_width():
    card = colour_card()
    wrong = keras_model_for(colour_card().model_copy(update={"output": sigmoid_card().output}))  # one unit, not three
    with pytest.raises(RuntimeError, match=r"expected \(1, 3\)"):
        warm_up(lambda values: wrong.predict(to_model_input(values, card.input), verbose=0), card)
