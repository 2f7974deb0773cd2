"""training/fit.py: training from a recipe is reproducible, learns, and writes a truthful card."""

import dataclasses

import numpy as np
import pytest

from models.card import ModelCard, OutputSpec
from training import fit
from training.datasets import Dataset
from training.recipes import Training, get
from training.recipes.clothes import LABELS, load_data


@pytest.fixture(scope="module")
def data():
    return load_data(allow_download=False)


@pytest.fixture(scope="module")
def recipe():
    return get("clothes")


def tiny_run(recipe, data, seed=7):
    return fit.train(recipe, "v1", data, train_limit=600, test_limit=200, verbose=0, epochs=1, seed=seed)


@pytest.fixture(scope="module")
def run(recipe, data):
    return tiny_run(recipe, data)


def test_same_seed_same_model_and_metrics(recipe, data, run):
    second = tiny_run(recipe, data)
    for a, b in zip(run.model.get_weights(), second.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert run.metrics == second.metrics and run.history == second.history


def test_the_card_counts_and_describes_the_model(recipe, data, run):
    card = fit.card_for(recipe, run, data, slices={"overall": 0.5})
    assert isinstance(card, ModelCard) and card.tag == "clothes:v1"
    assert card.number_of_parameters == 44_426 == run.model.count_params() and card.architecture == "lenet5"
    assert card.labels == LABELS and card.input.shape == (28, 28, 1) and card.preprocessing == recipe.preprocessing
    assert card.training["train_images"] == 600 and card.training["epochs"] == 1 and card.training["seed"] == 7
    assert card.training["validation_images"] == 120 and card.training["loss"] == "categorical_crossentropy"
    assert card.metrics == run.metrics and card.metrics["test_images"] == 200 and sum(map(sum, card.metrics["confusion_matrix"])) == 200
    assert set(card.history) >= {"accuracy", "val_accuracy", "loss", "val_loss"} and len(card.history["loss"]) == 1
    assert card.data == {"source": data.source, "sha256": data.fingerprint} and card.slices == {"overall": 0.5}
    assert card.description.startswith(recipe.description) and card.engines == {"tensorflow": {"file": "model.keras"}}
    assert ModelCard.from_metadata(card.to_metadata()).model_dump(mode="json") == card.model_dump(mode="json")  # tuples come back as lists
    assert run.images.shape == (200, 28, 28) and run.probabilities.shape == (200, 10)
    np.testing.assert_array_equal(run.labels, data.y_test[:200])


def test_training_learns(recipe, data):
    """A tiny run (one epoch, 3,000 images) beats chance (0.1) by far on held-out images."""
    run = fit.train(recipe, "v1", data, train_limit=3000, test_limit=500, verbose=0, epochs=1, seed=3)
    assert run.metrics["test_images"] == 500
    assert run.metrics["accuracy"] >= 0.4, run.metrics["accuracy"]
    assert (run.probabilities.argmax(axis=1) == data.y_test[:500]).mean() == pytest.approx(run.metrics["accuracy"], abs=1e-6)


def test_targets():
    recipe = get("clothes")
    np.testing.assert_array_equal(fit.targets(np.array([0, 9]), recipe), np.eye(10)[[0, 9]])
    sigmoid = dataclasses.replace(recipe, output=OutputSpec(kind="sigmoid", labels=("trouser", "other"), positive_label="other"))
    np.testing.assert_array_equal(fit.targets(np.array([0, 1, 1, 0]), sigmoid), [0, 1, 1, 0])
    flipped = dataclasses.replace(sigmoid, output=OutputSpec(kind="sigmoid", labels=("trouser", "other"), positive_label="trouser"))
    np.testing.assert_array_equal(fit.targets(np.array([0, 1, 1, 0]), flipped), [1, 0, 0, 1])


def test_a_sigmoid_recipe_with_its_own_validation_split_and_augmentation(recipe, data):
    """Trousers or not: one sigmoid unit, a validation split given by the data, random flips."""
    is_trouser = lambda y: (y == 1).astype(np.uint8)  # noqa: E731
    binary = Dataset(
        data.x_train[:400],
        is_trouser(data.y_train[:400]),
        data.x_test[:100],
        is_trouser(data.y_test[:100]),
        source="fashion-mnist, trousers",
        fingerprint={},
        x_val=data.x_train[400:500],
        y_val=is_trouser(data.y_train[400:500]),
    )
    sigmoid = dataclasses.replace(
        recipe,
        name="trousers",
        output=OutputSpec(kind="sigmoid", labels=("other", "trouser"), positive_label="trouser"),
        versions={"v1": Training(architecture="lenet5", description="LeNet-5, one sigmoid unit.", epochs=1, batch_size=64, augment=("flip_lr",))},
    )
    run = fit.train(sigmoid, "v1", binary, verbose=0)
    assert run.model.output_shape == (None, 1) and run.probabilities.shape == (100, 2)
    np.testing.assert_allclose(run.probabilities.sum(axis=1), 1, atol=1e-6)
    assert run.settings["validation_images"] == 100 and run.settings["loss"] == "binary_crossentropy"
    assert set(run.history) >= {"loss", "val_loss"} and run.metrics["test_images"] == 100
    card = fit.card_for(sigmoid, run, binary, slices=None)
    assert card.output.kind == "sigmoid" and card.classes == 2 and card.number_of_parameters == run.model.count_params()
