"""training/export.py: the ONNX export is kept only when verified, and any failure of the conversion or of
running it is a reason on the card (the version serves on TensorFlow), never an exception."""

import numpy as np
import pytest

from models import engines
from models.engines import ONNX_FILE
from models.store import MODEL_FILE
from tests.unit.cards import keras_model_for, named_card, tensor_card
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


def test_an_exports_strings_must_equal_keras_and_strings_alone_are_compared():
    """Named outputs: numbers within the tolerance, strings equal (they were left out of the comparison,
    and a model answering strings alone failed on the maximum of no differences)."""
    from models.card import TensorSpec
    from models.tensors import pack
    from training.export import agreement

    colour = TensorSpec(name="colour", datatype="BYTES", shape=(1,), max_bytes=8)
    both = named_card(outputs=(TensorSpec(name="scores", datatype="FP32", shape=(2,)), colour))
    scores = np.array([[0.25, 0.75], [0.5, 0.5]], np.float32)
    keras_says = pack(both.outputs, {"scores": scores, "colour": np.array([[b"red"], [b"green"]], dtype=object)})
    close = pack(both.outputs, {"scores": scores + 1e-6, "colour": np.array([[b"red"], [b"green"]], dtype=object)})
    verification, disagreement = agreement(both, close, keras_says)
    assert disagreement is None and 0 < verification["max_abs_diff"] < 1e-5, verification
    other = pack(both.outputs, {"scores": scores, "colour": np.array([[b"red"], [b"blue"]], dtype=object)})
    verification, disagreement = agreement(both, other, keras_says)
    assert verification["strings_differ"] == ["colour"] and disagreement.endswith("other strings in colour"), disagreement
    alone = named_card(outputs=(colour,))
    rows = pack(alone.outputs, {"colour": np.array([[b"red"]], dtype=object)})
    assert agreement(alone, rows, rows) == ({"examples": 1, "max_abs_diff": 0.0, "tolerance": 1e-4, "max_rel_diff": 0.0}, None)
    assert agreement(alone, pack(alone.outputs, {"colour": np.array([[b"blue"]], dtype=object)}), rows)[1] is not None
