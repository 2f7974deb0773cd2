"""train_and_save.py install --configured (what `make models` runs): shipped archives first, then a recipe
for what is still missing; a configured version with neither is an error that says to import it."""

from __future__ import annotations

from pathlib import Path

import yaml

import train_and_save
from models import store

ROOT = Path(__file__).resolve().parents[2]


def configured(tmp_path: Path, models: dict, monkeypatch) -> None:
    config = yaml.safe_load((ROOT / "configuration.yaml").read_text())
    config.update(models=models, pipelines={}, course={}, promotion_record=str(tmp_path / "promotions.json"))
    path = tmp_path / "configuration.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("MODEL_SERVER_CONFIG", str(path))


def test_install_configured_takes_the_shipped_versions_and_trains_none(tmp_path, monkeypatch, capsys):
    configured(tmp_path, {"clothes": {"versions": ["v1"], "aliases": {"stable": "v1"}}}, monkeypatch)
    assert train_and_save.main(["install", "--configured"]) == 0
    assert store.is_current("clothes", "v1") and "Training" not in capsys.readouterr().out


def test_a_configured_version_without_archive_or_recipe_is_an_error_naming_the_import(tmp_path, monkeypatch, capsys):
    configured(tmp_path, {"no-recipe": {"versions": ["v1"], "aliases": {"stable": "v1"}}}, monkeypatch)
    assert not store.exists("no-recipe", "v1")
    empty = tmp_path / "shipped"
    empty.mkdir()
    assert train_and_save.main(["install", "--from", str(empty), "--configured"]) == 1
    error = capsys.readouterr().err
    assert "no-recipe:v1 is served by the configuration but is not in the store" in error and "train_and_save.py import" in error


def test_a_missing_version_without_a_recipe_is_to_be_imported_again_not_trained(tmp_path, capsys):
    assert not store.exists("no-recipe", "v1")
    for command in (["ship", "no-recipe", "v1", "--to", str(tmp_path)], ["publish", "no-recipe", "v1", "--to", str(tmp_path)]):
        assert train_and_save.main(command) == 1
        error = capsys.readouterr().err
        assert "no-recipe:v1 is not in the model store, and no recipe trains it: import it (again)" in error, error
        assert "train_and_save.py import <file>.keras --name no-recipe --version v1" in error and "train it" not in error
    assert train_and_save.main(["ship", "clothes", "v99", "--to", str(tmp_path)]) == 1  # a recipe's name, not its version
    assert "train_and_save.py import <file>.keras --name clothes --version v99" in capsys.readouterr().err
    trained = store.ModelStoreError(store.not_in_store("clothes", "v2"))  # a recipe's version: the store's "train it" stands
    assert train_and_save.store_error(trained, "clothes", "v2") == str(trained) and "train_and_save.py train clothes v2" in str(trained)


def test_promoting_a_model_without_a_recipe_says_how_imported_models_are_promoted(tmp_path, monkeypatch, capsys):
    configured(tmp_path, {"shapes": {"versions": ["v1", "v2"], "aliases": {"stable": "v1"}, "promotion": {"alias": "stable"}}}, monkeypatch)
    assert train_and_save.main(["promote", "shapes", "v2"]) == 2
    error = capsys.readouterr().err
    assert "shapes has no recipe" in error and "/models/shapes/rollouts" in error and "Traceback" not in error


def test_a_regressor_imported_with_evaluation_data_stores_its_drift_reference(tmp_path, capsys):
    """scikit-learn's diabetes regressor, imported as users do: its evaluation report and its drift
    reference (each input's values by name, the predicted values of its target on the held-out data)."""
    import json

    import joblib
    import numpy as np
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    from lifecycle.reference import REFERENCE_FILE
    from lifecycle.report import REPORT_FILE

    x, y = load_diabetes(return_X_y=True)
    model = LinearRegression().fit(x[:-100], y[:-100])
    joblib.dump(model, tmp_path / "diabetes.joblib")
    np.savez(tmp_path / "held.npz", x=x[-100:], y=y[-100:])
    names = "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6"
    command = ["import", str(tmp_path / "diabetes.joblib"), "--name", "unit-diabetes", "--version", "v1", "--trust-pickle", "--targets", "progression"]
    assert train_and_save.main([*command, "--input-names", names, "--eval-data", str(tmp_path / "held.npz")]) == 0
    stored = store.get("unit-diabetes", "v1")
    reference = json.loads(store.read_file(stored, REFERENCE_FILE))
    assert store.read_file(stored, REPORT_FILE) is not None
    assert reference["images"] == 100 and reference["inputs"]["names"] == names.split(",") and "classes" not in reference
    assert reference["targets"]["names"] == ["progression"] and len(reference["targets"]["values"][0]) == 100
    np.testing.assert_allclose(reference["targets"]["values"][0], model.predict(x[-100:]), rtol=1e-4)
    np.testing.assert_allclose(reference["inputs"]["values"][2], x[-100:, 2], rtol=1e-5)
    assert train_and_save.main([*command[:5], "v2", *command[6:]]) == 0  # without evaluation data: neither
    assert store.read_file(store.get("unit-diabetes", "v2"), REFERENCE_FILE) is None
