"""SavedModel imports (training/savedmodel_import.py): a Keras model exported as a SavedModel here, its
signature converted to ONNX and verified against TensorFlow; the refusals and their messages."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

from training.importing import ImportRefused
from training.savedmodel_import import inspect_savedmodel
from training.tasks import parse_targets


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(2)
    tmp = tmp_path_factory.mktemp("savedmodel")
    classifier = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(3, activation="softmax")])
    classifier.export(str(tmp / "classifier"), verbose=False)
    regressor = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)])
    regressor.export(str(tmp / "regressor"), verbose=False)
    return tmp, classifier, regressor


def test_a_signature_is_converted_to_onnx_and_answers_as_tensorflow_does(exported):
    tmp, classifier, regressor = exported
    card, content, predict = inspect_savedmodel(tmp / "classifier", "sm", "v1", ["a", "b", "c"])
    assert set(card.engines) == {"onnxruntime"} and card.training["signature"] == "serving_default" and card.input.shape == (5,)
    assert card.engines["onnxruntime"]["verification"]["max_abs_diff"] <= 1e-5
    x = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    served = onnxruntime.InferenceSession(content, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(served, classifier.predict(x, verbose=0), atol=1e-5)
    card, _, _ = inspect_savedmodel(tmp / "regressor", "sm", "v2", None, task="regression", targets=parse_targets("y:kg,z"))
    assert card.task == "regression" and card.engines["onnxruntime"]["verification"]["max_rel_diff"] <= 1e-5


def test_refusals_name_the_cause(exported, tmp_path):
    tmp, _, _ = exported
    with pytest.raises(ImportRefused, match="not a SavedModel directory"):
        inspect_savedmodel(tmp_path, "sm", "v1", ["a", "b", "c"])
    with pytest.raises(ImportRefused, match="--signature 'predict'.*serving_default"):
        inspect_savedmodel(tmp / "classifier", "sm", "v1", ["a", "b", "c"], signature="predict")
    with pytest.raises(ImportRefused, match="3 unit.*2 labels"):
        inspect_savedmodel(tmp / "classifier", "sm", "v1", ["a", "b"])
