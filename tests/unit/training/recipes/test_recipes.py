"""training/recipes/__init__.py: recipes found by module name; per-version training settings."""

import pytest

from training import recipes
from training.recipes import clothes


def test_recipes_are_the_modules_of_the_package():
    assert "clothes" in recipes.names() and recipes.names() == sorted(recipes.names())
    assert recipes.get("clothes") is clothes.RECIPE


@pytest.mark.parametrize("name", ["shoes", "__init__", "_private", "../clothes"])
def test_unknown_recipes_are_refused_with_the_known_ones(name):
    with pytest.raises(ValueError, match="no recipe for model .*; known: clothes"):
        recipes.get(name)


def test_training_overrides_apply_to_one_run_only():
    recipe = recipes.get("clothes")
    settings = recipe.training("v1", epochs=1, seed=7, batch_size=None)
    assert settings.epochs == 1 and settings.seed == 7 and settings.batch_size == recipe.versions["v1"].batch_size  # None: unchanged
    assert recipe.versions["v1"].epochs == 20 and recipe.training("v1") == recipe.versions["v1"]


def test_an_unknown_version_names_the_known_ones():
    with pytest.raises(ValueError, match="no recipe for clothes:v9; known versions: v1, v2"):
        recipes.get("clothes").training("v9")
