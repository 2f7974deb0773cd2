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


def _save_module(path, input_signature, serve):
    """A SavedModel whose serving_default signature is ``serve`` over ``input_signature`` (a tf.Module with a weight)."""
    import tensorflow as tf

    module = tf.Module()
    module.weights = tf.Variable(np.random.default_rng(3).normal(size=(4, 2)).astype(np.float32))
    module.table = tf.Variable(np.random.default_rng(4).normal(size=(5, 2)).astype(np.float32))
    function = tf.function(lambda *tensors: serve(module, **dict(zip([s.name for s in input_signature], tensors, strict=True))), input_signature=input_signature)
    tf.saved_model.save(module, str(path), signatures={"serving_default": function})
    return path


def _pair(module, features, codes):
    import tensorflow as tf

    embedded = tf.reduce_sum(tf.gather(module.table, codes), axis=1)  # codes index the table's rows
    return {"score": tf.matmul(features, module.weights) + embedded, "count": tf.reduce_sum(codes, axis=1, keepdims=True)}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    import tensorflow as tf

    signature = [tf.TensorSpec([None, 4], tf.float32, name="features"), tf.TensorSpec([None, 3], tf.int64, name="codes")]
    return _save_module(tmp_path_factory.mktemp("pair") / "1", signature, _pair)


def test_a_signature_of_two_inputs_and_two_outputs_is_served_as_named_tensors(pair):
    import tensorflow as tf

    from models.engines.onnxruntime import OnnxRuntimeEngine
    from models.tensors import pack, unpack

    card, content, predict = inspect_savedmodel(pair, "sm-pair", "v1", None, task="tensor")
    function = tf.saved_model.load(str(pair)).signatures["serving_default"]
    # by name: a signature's tensors are a map, in no order TensorFlow keeps from one process to the next
    assert [(s.name, s.datatype, s.shape) for s in card.inputs] == [("codes", "INT64", (3,)), ("features", "FP32", (4,))]
    assert card.input.kind == "tensors" and card.input.shape == (3 * 8 + 4 * 4,) and card.task == "tensors"
    assert [(s.name, s.datatype, s.shape) for s in card.outputs] == [("count", "INT64", (1,)), ("score", "FP32", (2,))]
    assert card.output.kind == "tensors" and card.output.shape == (2 * 4 + 8,)
    entry = card.engines["onnxruntime"]
    session = onnxruntime.InferenceSession(content, providers=["CPUExecutionProvider"])
    assert entry["inputs"] == [i.name for i in session.get_inputs()] == ["codes", "features"]  # tf2onnx keeps the signature's names of inputs, not of outputs
    assert entry["outputs"] == [o.name for o in session.get_outputs()] and len(entry["outputs"]) == 2 and "output" not in entry
    assert entry["verification"]["max_abs_diff"] <= 1e-5 and entry["verification"]["examples"] == 256 and entry["verification"]["against"] == "the SavedModel signature"
    rng = np.random.default_rng(5)
    features, codes = rng.normal(size=(9, 4)).astype(np.float32), rng.integers(0, 5, (9, 3))
    answers = unpack(card.outputs, OnnxRuntimeEngine(content, card)(pack(card.inputs, {"features": features, "codes": codes})))
    expected = function(features=tf.constant(features), codes=tf.constant(codes))
    np.testing.assert_allclose(answers["score"], expected["score"].numpy(), atol=1e-5)
    np.testing.assert_array_equal(answers["count"], expected["count"].numpy())
    assert answers["count"].dtype == np.int64
    np.testing.assert_allclose(unpack(card.outputs, predict(pack(card.inputs, {"features": features, "codes": codes})))["score"], answers["score"], atol=1e-5)


def test_one_output_of_a_two_input_signature_is_served_by_its_task(pair):
    import tensorflow as tf

    from models.engines.onnxruntime import OnnxRuntimeEngine
    from models.tensors import pack

    card, content, _ = inspect_savedmodel(pair, "sm-pair", "v2", None, output="score", task="regression", targets=parse_targets("a,b:kg"))
    assert card.task == "regression" and card.output.kind == "regression" and not card.outputs and [s.name for s in card.inputs] == ["codes", "features"]
    entry = card.engines["onnxruntime"]
    assert entry["inputs"] == ["codes", "features"] and entry["output"] == onnxruntime.InferenceSession(content, providers=["CPUExecutionProvider"]).get_outputs()[0].name
    assert entry["verification"]["max_rel_diff"] <= 1e-5
    rng = np.random.default_rng(6)
    features, codes = rng.normal(size=(4, 4)).astype(np.float32), rng.integers(0, 5, (4, 3))
    served = OnnxRuntimeEngine(content, card)(pack(card.inputs, {"features": features, "codes": codes}))
    expected = tf.saved_model.load(str(pair)).signatures["serving_default"](features=tf.constant(features), codes=tf.constant(codes))["score"].numpy()
    np.testing.assert_allclose(served, expected, atol=1e-5)


def test_one_input_that_is_not_float32_is_a_named_tensor(tmp_path):
    import tensorflow as tf

    from models.engines.onnxruntime import OnnxRuntimeEngine
    from models.tensors import pack

    counts = _save_module(
        tmp_path / "counts", [tf.TensorSpec([None, 3], tf.int64, name="codes")], lambda module, codes: {"score": tf.reduce_sum(tf.gather(module.table, codes), axis=1)}
    )
    card, content, _ = inspect_savedmodel(counts, "sm", "v1", None, task="tensor")
    assert [(s.name, s.datatype) for s in card.inputs] == [("codes", "INT64")] and card.output.kind == "tensor" and card.output.shape == (2,) and not card.outputs
    codes = np.array([[0, 1, 4], [2, 2, 3]])
    expected = tf.saved_model.load(str(counts)).signatures["serving_default"](codes=tf.constant(codes))["score"].numpy()
    np.testing.assert_allclose(OnnxRuntimeEngine(content, card)(pack(card.inputs, {"codes": codes})), expected, atol=1e-5)


def test_named_inputs_refusals_name_the_cause(pair, tmp_path, monkeypatch):
    import tensorflow as tf

    import training.savedmodel_import

    with pytest.raises(ImportRefused, match="2 outputs .*serve one with --output, or all of them as named tensors with --task tensor"):
        inspect_savedmodel(pair, "sm", "v1", None, task="regression", targets=parse_targets("a,b"))
    with pytest.raises(ImportRefused, match="takes named tensors as clients send them: --scale, --kind image and --range apply"):
        inspect_savedmodel(pair, "sm", "v1", None, task="tensor", value_range=(0, 1))
    with pytest.raises(ImportRefused, match="--output 'nope': signature serving_default answers"):
        inspect_savedmodel(pair, "sm", "v1", None, output="nope", task="tensor")
    words = _save_module(
        tmp_path / "words",
        [tf.TensorSpec([None, 4], tf.float32, name="features"), tf.TensorSpec([None, 1], tf.string, name="words")],
        lambda module, features, words: {"score": tf.matmul(features, module.weights) + tf.cast(tf.strings.length(words), tf.float32)},
    )
    with pytest.raises(ImportRefused, match="the input words is string: strings are served as inputs of Keras models, ONNX graphs and scikit-learn text pipelines"):
        inspect_savedmodel(words, "sm", "v1", None, task="tensor")
    ragged = _save_module(
        tmp_path / "ragged",
        [tf.TensorSpec([None, 4], tf.float32, name="features"), tf.TensorSpec([None, None], tf.int64, name="codes")],
        lambda module, features, codes: {"score": tf.matmul(features, module.weights) + tf.cast(tf.reduce_sum(codes, axis=1, keepdims=True), tf.float32)},
    )
    with pytest.raises(ImportRefused, match=r"the input codes has the shape \['N', None\]: a dynamic dimension besides the batch axis needs a bound.*--max-dim"):
        inspect_savedmodel(ragged, "sm", "v1", None, task="tensor")
    card, _, predict = inspect_savedmodel(ragged, "sm", "v1", None, task="tensor", dim_range=(1, 6))  # codes of any count up to 6
    codes = card.inputs[0]
    assert (codes.name, codes.shape, codes.max_shape) == ("codes", (-1,), (6,)) and card.engines["onnxruntime"]["verification"]["examples"] == 256
    monkeypatch.setattr(training.savedmodel_import, "ONNX_TOLERANCE", -1.0)  # any difference, even none, is too large
    with pytest.raises(ImportRefused, match=r"the ONNX conversion disagrees with the SavedModel on 256 examples: max relative \|difference\| .* \(tolerance -1.0\)"):
        inspect_savedmodel(pair, "sm", "v1", None, task="tensor")
