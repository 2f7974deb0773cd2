"""train_and_save.py measure-pipeline (training/pipeline_metrics.py): a configured pipeline run on its
steps' stored versions over evaluation data, its metrics recorded for its card."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models import store
from models.inference import predict_probabilities
from serving.pipelines import card_digest, read_measured
from tests.unit.cards import colour_card, keras_model_for
from tests.unit.serving.conftest import write_config
from training.importing import ImportRefused
from training.pipeline_metrics import measure_file, record

MODELS = {"pm": {"versions": ["v1", "v2"], "aliases": {"stable": "v2", "split": {"v1": 50, "v2": 50}}}}
PIPELINES = {
    "pm-ensemble": {"combine": "ensemble", "steps": ["pm:v1", "pm:stable"]},
    "pm-cascade": {"combine": "cascade", "steps": ["pm:v1", "pm:v2"], "threshold": 0.5},
    "pm-split": {"combine": "ensemble", "steps": ["pm:v1", "pm:split"]},
}


@pytest.fixture(scope="module")
def stored():
    """pm v1 and v2: two tiny Keras networks of the colour card, in the store; their Keras models."""
    models = {}
    for seed, version in enumerate(("v1", "v2")):
        card = colour_card(name="pm", version=version)
        model = keras_model_for(card, seed=seed)
        store.save(card.model_copy(update={"number_of_parameters": model.count_params()}), model, force=True)
        models[version] = model
    return models


@pytest.fixture
def held(tmp_path):
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 256, (40, 32, 32, 3)).astype(np.float32), rng.integers(0, 3, 40)
    np.savez(tmp_path / "held.npz", x=x, y=y)
    return tmp_path / "held.npz", x, y


def keras_answers(models, x: np.ndarray) -> dict[str, np.ndarray]:
    return {version: predict_probabilities(model, x, store.load_card("pm", version)) for version, model in models.items()}


def test_an_ensembles_metrics_are_its_mean_answers_scored_and_recorded_with_its_steps_cards(stored, held, tmp_path):
    config = write_config(tmp_path, MODELS, pipelines=PIPELINES, pipeline_metrics="pipelines.json")
    path, x, y = held
    answers = keras_answers(stored, x)
    (tmp_path / "pipelines.json").write_text(json.dumps({"other": {"steps": {}, "metrics": {"accuracy": 0.5}}}))
    entry = measure_file(config, "pm-ensemble", path)
    expected = ((answers["v1"] + answers["v2"]) / 2).argmax(axis=1)
    assert entry["metrics"]["accuracy"] == pytest.approx(float((expected == y).mean()), abs=1e-6)
    assert entry["metrics"]["examples"] == 40 and entry["metrics"]["data"] == "held.npz" and entry["metrics"]["compute_us_per_example"] > 0
    assert entry["steps"] == {"pm:v1": card_digest(store.load_card("pm", "v1")), "pm:stable": card_digest(store.load_card("pm", "v2"))}  # the alias as configured
    record(config, "pm-ensemble", entry)
    assert set(read_measured(config)) == {"other", "pm-ensemble"}  # the other pipelines' entries kept


def test_a_cascade_says_which_step_answered_how_many(stored, held, tmp_path):
    config = write_config(tmp_path, MODELS, pipelines=PIPELINES, pipeline_metrics="pipelines.json")
    path, x, y = held
    answers = keras_answers(stored, x)
    first = answers["v1"].max(axis=1) >= 0.5
    entry = measure_file(config, "pm-cascade", path)
    expected = np.where(first, answers["v1"].argmax(axis=1), answers["v2"].argmax(axis=1))
    assert entry["metrics"]["accuracy"] == pytest.approx(float((expected == y).mean()), abs=1e-6)
    assert entry["metrics"]["answered_by_step"] == [round(float(first.mean()), 4), round(float(1 - first.mean()), 4)]


def test_what_cannot_be_measured_is_refused_naming_why(stored, held, tmp_path):
    config = write_config(tmp_path, MODELS, pipelines=PIPELINES)
    path, x, y = held
    with pytest.raises(ImportRefused, match="pm is not a pipeline of .* pm-ensemble, pm-cascade, pm-split"):
        measure_file(config, "pm", path)
    with pytest.raises(ImportRefused, match=r"step pm:split is split \{'v1': 50, 'v2': 50\}: point the alias at one version"):
        measure_file(config, "pm-split", path)
    np.savez(tmp_path / "wrong.npz", x=x[:, :16], y=y)
    with pytest.raises(ImportRefused, match="--eval-data x"):
        measure_file(config, "pm-ensemble", tmp_path / "wrong.npz")
    with pytest.raises(ImportRefused, match="names no pipeline metrics record"):
        record(config, "pm-ensemble", {"steps": {}, "metrics": {}})
