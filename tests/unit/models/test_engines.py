"""models/engines/ and training/export.py: both engines answer what Keras answers; an ONNX export is
stored only when it agrees; the configured engine is used where the version can run on it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from models import engines, store
from models.inference import predict_probabilities
from tests.unit.cards import colour_card, keras_model_for, sigmoid_card, tensor_card
from training import export

ROOT = __import__("pathlib").Path(__file__).resolve().parents[3]
CARDS = [colour_card(), sigmoid_card(), tensor_card()]


def values_for(card, count=5, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, *card.input.shape)).astype(np.uint8 if card.is_image else np.float32)


@pytest.mark.parametrize("card", CARDS, ids=["colour", "sigmoid", "tensor"])
def test_both_engines_answer_what_keras_answers(card, tmp_path):
    model = keras_model_for(card)
    values = values_for(card)
    expected = predict_probabilities(model, values, card)
    content, entry = export.onnx_export(model, card, values_for(card, 64, seed=2))
    assert content is not None and entry["file"] == engines.ONNX_FILE, entry
    assert entry["verification"]["examples"] == 64 and entry["verification"]["top1_agreement"] == 1.0
    assert entry["verification"]["max_abs_diff"] <= export.ONNX_TOLERANCE
    (tmp_path / engines.ONNX_FILE).write_bytes(content)
    for engine in (engines.OnnxRuntimeEngine(str(tmp_path / engines.ONNX_FILE), card), engines.TensorFlowEngine(model, card)):
        probabilities = engine(values)
        assert probabilities.shape == (len(values), card.classes) and probabilities.dtype == np.float32, engine.name
        np.testing.assert_allclose(probabilities, expected, atol=1e-5, err_msg=engine.name)
        assert engine.warm_up().shape == (1, card.classes)


def test_an_export_that_disagrees_is_not_stored(monkeypatch):
    card = colour_card()
    monkeypatch.setattr(export, "ONNX_TOLERANCE", -1.0)  # no export can be that close
    content, entry = export.onnx_export(keras_model_for(card), card, values_for(card, 16))
    assert content is None and "disagrees with Keras" in entry["reason"] and "file" not in entry
    assert entry["verification"]["examples"] == 16


def test_an_export_that_fails_is_recorded_with_its_reason():
    card = colour_card()
    content, entry = export.onnx_export(object(), card, values_for(card, 4))  # not a model at all
    assert content is None and entry["reason"].startswith("the ONNX export failed: TypeError")


def test_the_card_says_which_engines_a_version_can_run_on():
    card = colour_card()
    files: dict = {}
    exported = export.with_onnx(card, keras_model_for(card), values_for(card, 8), files)
    assert set(files) == {engines.ONNX_FILE} and exported.engines["tensorflow"] == {"file": store.MODEL_FILE}
    assert engines.can_run(exported, "onnxruntime") and engines.choose(exported, "onnxruntime") == "onnxruntime"
    assert engines.choose(exported, "tensorflow") == "tensorflow"
    without = card.model_copy(update={"engines": {"tensorflow": {"file": store.MODEL_FILE}, "onnxruntime": {"reason": "it failed"}}})
    assert not engines.can_run(without, "onnxruntime") and engines.choose(without, "onnxruntime") == "tensorflow"
    with pytest.raises(ValueError, match="unknown engine 'torch'"):
        engines.choose(exported, "torch")


def test_loading_a_stored_version_on_onnx_runtime_needs_no_tensorflow():
    """A fresh interpreter loads and runs a stored version's ONNX export: TensorFlow is never imported."""
    card = colour_card(name="engine-test", version="v1")
    model = keras_model_for(card)
    files: dict = {}
    card = export.with_onnx(card, model, values_for(card, 8), files)
    store.save(card, model, files, force=True)
    code = (
        "import sys, numpy as np; from models import engines, store; "
        "card = store.load_card('engine-test', 'v1'); engine = engines.load(store.get('engine-test', 'v1'), card, 'onnxruntime'); "
        "print(engine.name, engine(np.zeros((2, 32, 32, 3), np.uint8)).shape, 'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-5:] == ["onnxruntime", "(2,", "3)", "False", "False"], result.stdout


# --- the registry -------------------------------------------------------------------------------


class FakeEngine(engines.Engine):
    """An engine that answers a uniform distribution: enough to be named by configuration."""

    name, title = "fake", "Fake"
    packages = ("requirements-fake.txt",)

    def __init__(self, card):
        self.card = card

    @classmethod
    def load(cls, stored, card, threads=1):
        return cls(card)

    def infer(self, values):
        return np.full((len(values), self.card.classes), 1 / self.card.classes, np.float32)


@pytest.fixture
def fake_engine():
    assert "fake" not in engines.ENGINES
    try:
        yield engines.register(FakeEngine)
    finally:
        engines.ENGINES.pop("fake", None)


def test_the_registry_holds_the_shipped_engines():
    assert list(engines.ENGINES) == ["onnxruntime", "tensorflow"] and engines.DEFAULT in engines.ENGINES
    assert engines.get("onnxruntime") is engines.OnnxRuntimeEngine and engines.get("tensorflow") is engines.TensorFlowEngine
    assert engines.OnnxRuntimeEngine.packages == () and engines.TensorFlowEngine.packages == ("requirements-tensorflow.txt",)
    assert all((ROOT / file).is_file() for cls in engines.ENGINES.values() for file in cls.packages)
    card = colour_card().model_copy(update={"engines": {"tensorflow": {"file": store.MODEL_FILE}, "onnxruntime": {"file": engines.ONNX_FILE}}})
    assert engines.OnnxRuntimeEngine.artefact(card) == engines.ONNX_FILE and engines.TensorFlowEngine.artefact(card) == store.MODEL_FILE
    assert engines.OnnxRuntimeEngine.artefact(colour_card().model_copy(update={"engines": {}})) is None


def test_importing_the_engines_imports_no_engine_library():
    code = "import sys; from models import engines; import config; print(sorted(m for m in ('onnxruntime', 'tensorflow', 'keras') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.split()[-1] == "[]", (result.stdout, result.stderr[-2000:])


def test_a_registered_engine_is_accepted_by_configuration_and_loaded(fake_engine, tmp_path):
    from config import load_config

    path = tmp_path / "configuration.yaml"
    path.write_text("runners:\n  engine: fake\nmodels:\n  clothes:\n    versions:\n      v1: {}\n      v2: {engine: tensorflow}\n")
    config = load_config(path)
    assert config.runner("clothes", "v1").engine == "fake" and config.runner("clothes", "v2").engine == "tensorflow"
    card = colour_card()
    assert engines.choose(card, "fake") == "fake"  # no fallback: the configured engine, file or not
    engine = engines.load(None, card, "fake")
    assert isinstance(engine, FakeEngine) and engine(values_for(card)).shape == (5, card.classes) and engine.infer(values_for(card, 1)).shape == (1, card.classes)


def test_an_unknown_engine_is_refused_naming_the_known_ones(tmp_path):
    from config import ConfigError, load_config

    path = tmp_path / "configuration.yaml"
    path.write_text("models:\n  clothes:\n    versions:\n      v1: {engine: torch}\n")
    with pytest.raises(ConfigError, match=r"clothes:v1.*engine: Value error, unknown engine 'torch'; known: onnxruntime, tensorflow"):
        load_config(path)
    with pytest.raises(ValueError, match=r"unknown engine 'torch'; known: onnxruntime, tensorflow"):
        engines.get("torch")


def test_registering_checks_the_class(fake_engine):
    assert engines.register(FakeEngine) is FakeEngine  # again: nothing changes
    with pytest.raises(ValueError, match="'fake' is already registered by FakeEngine"):
        engines.register(type("OtherFake", (FakeEngine,), {}))
    with pytest.raises(TypeError, match="not an Engine subclass"):
        engines.register(object)
    with pytest.raises(TypeError, match="nstantiate abstract class Incomplete"):
        type("Incomplete", (engines.Engine,), {"name": "incomplete"})()
