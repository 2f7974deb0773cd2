"""The trained models the repository ships (models/shipped/): each card says what the training code of
today records for its recipe and data, so a shipped model is what `train_and_save.py train` makes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from models import engines, store
from training.architectures import build
from training.datasets import sha256_of
from training.recipes import get

SHIPPED = Path(__file__).resolve().parents[3] / "models" / "shipped"
ARCHIVES = sorted(SHIPPED.glob(f"*/*{store.ARCHIVE_SUFFIX}"))


def test_the_repository_ships_every_configured_version():
    from config import load_config

    shipped = {(archive.parent.name, archive.name.removesuffix(store.ARCHIVE_SUFFIX)) for archive in ARCHIVES}
    assert set(load_config().served()) <= shipped


@pytest.fixture(scope="module", params=ARCHIVES, ids=[f"{a.parent.name}:{a.stem}" for a in ARCHIVES])
def card(request):
    tag, _ = store.import_archive(request.param, force=True)
    name, version = tag.split(":")
    return store.load_card(name, version)


def test_the_card_is_what_its_recipe_trains(card):
    recipe = get(card.name)
    training = recipe.training(card.version)
    assert (card.input, card.preprocessing, card.output, card.task) == (recipe.input, recipe.preprocessing, recipe.output, recipe.task)
    assert card.architecture == training.architecture and card.description == f"{recipe.description} {training.description}"
    assert {k: card.training[k] for k in dataclasses.asdict(training)} == json.loads(json.dumps(dataclasses.asdict(training)))
    assert card.number_of_parameters == build(training.architecture, recipe.input, recipe.output).count_params()
    assert card.slices["shift_specs"] == recipe.shifts and card.metrics["test_images"] == card.slices["images"]


def test_the_card_names_the_data_it_was_trained_on(card):
    recipe = get(card.name)
    if card.name == "damage":
        from training.recipes.damage import split

        plan = split()
        assert card.data["sha256"] == {"files": str(len(plan.paths)), "sha256_of_files": plan.fingerprint}
        assert card.data["split"] == plan.summary
    else:
        data = recipe.load_data(allow_download=False)
        assert card.data["sha256"] == {name: sha256_of(Path(data.source) / name) for name in card.data["sha256"]} == data.fingerprint


def test_the_card_carries_a_verified_onnx_export(card):
    assert engines.can_run(card, "onnxruntime")
    verification = card.engines["onnxruntime"]["verification"]
    assert verification["top1_agreement"] == 1.0 and verification["max_abs_diff"] <= verification["tolerance"]
    assert verification["examples"] == card.metrics["test_images"]


def test_the_shipped_pipeline_metrics_were_measured_with_the_shipped_versions():
    """deploy/pipelines.json (python -m bench.pipelines) names each configured pipeline's steps by the
    digest of the card they were measured with: the shipped archives' cards, so a server of them shows the metrics."""
    from config import load_config
    from serving.pipelines import card_digest, read_measured

    config = load_config()
    measured = read_measured(config)
    assert set(measured) == {name for name, settings in config.pipelines.items() if settings.combine != "graph"}
    for name, entry in measured.items():
        for step, digest in entry["steps"].items():
            model, version = step.split(":")
            tag, _ = store.import_archive(SHIPPED / model / f"{version}{store.ARCHIVE_SUFFIX}", force=True)
            assert card_digest(store.load_card(model, version)) == digest, f"{name}: {step} is not the card it was measured with: run python -m bench.pipelines"
        assert 0 < entry["metrics"]["accuracy"] <= 1 and entry["metrics"]["examples"] > 0
