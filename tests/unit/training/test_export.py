"""training/export.py: the ONNX export is kept only when verified, and any failure of the conversion or of
running it is a reason on the card (the version serves on TensorFlow), never an exception."""

import numpy as np
import pytest

from models import engines
from models.engines import ONNX_FILE
from models.store import MODEL_FILE
from tests.unit.cards import keras_model_for, tensor_card
from training.export import probe_examples, with_onnx


@pytest.fixture(scope="module")
def normalized():
    """A tabular model whose first layer is an adapted Normalization: its export to ONNX has the layer's
    constants as graph inputs, which ONNX Runtime then asks for."""
    import keras

    keras.utils.set_random_seed(0)
    card = tensor_card()
    layer = keras.layers.Normalization()
    layer.adapt(np.random.default_rng(0).normal(50, 20, (64, *card.input.shape)).astype(np.float32))
    model = keras.Sequential([keras.Input(card.input.shape), layer, keras.layers.Dense(card.classes, activation="softmax")], name="normalized")
    return card, model


def test_an_export_that_onnx_runtime_cannot_run_is_a_recorded_fallback(normalized):
    card, model = normalized
    files: dict = {}
    exported = with_onnx(card, model, probe_examples(card), files)  # was a ValueError from ONNX Runtime: nothing stored
    assert ONNX_FILE not in files and exported.engines["tensorflow"] == {"file": MODEL_FILE}
    reason = exported.engines["onnxruntime"]["reason"]
    assert reason.startswith("the ONNX export failed: ") and "file" not in exported.engines["onnxruntime"]
    assert engines.choose(exported, "onnxruntime") == "tensorflow"


def test_a_model_onnx_runtime_runs_is_stored_with_its_verification():
    card = tensor_card()
    files: dict = {}
    exported = with_onnx(card, keras_model_for(card), probe_examples(card, 64), files)
    assert ONNX_FILE in files and exported.engines["onnxruntime"]["file"] == ONNX_FILE
    check = exported.engines["onnxruntime"]["verification"]
    assert check["examples"] == 64 and check["max_abs_diff"] <= check["tolerance"] and check["top1_agreement"] == 1.0
