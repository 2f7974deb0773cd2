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
    config.update(models=models, course={}, promotion_record=str(tmp_path / "promotions.json"))
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
