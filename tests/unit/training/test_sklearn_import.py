"""scikit-learn imports (training/sklearn_import.py): real estimators fitted here on scikit-learn's own
data sets, converted with skl2onnx, verified against predict_proba; the refusals and their messages."""

from __future__ import annotations

import joblib
import numpy as np
import onnxruntime
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_diabetes, load_digits, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from training.importing import ImportRefused
from training.sklearn_import import inspect_sklearn
from training.tasks import parse_targets


class Custom(ClassifierMixin, BaseEstimator):
    """A classifier skl2onnx has no converter for."""

    def fit(self, x, y):
        self.classes_, self.n_features_in_ = np.unique(y), x.shape[1]
        return self

    def predict_proba(self, x):
        return np.full((len(x), len(self.classes_)), 1 / len(self.classes_))


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    x, y = load_iris(return_X_y=True)
    path = tmp_path_factory.mktemp("sklearn") / "iris.joblib"
    joblib.dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y), path)
    return path, x.astype(np.float32), y


def test_a_pipeline_is_converted_verified_and_described_by_its_card(iris):
    path, x, y = iris
    names = list(load_iris().target_names)
    card, content, predict = inspect_sklearn(path, "iris", "v1", labels=names, trusted=True, evaluation=(x, y))
    assert card.input.shape == (4,) and card.input.kind == "tensor" and card.input.divide_by is None
    assert card.labels == tuple(names) and card.output.kind == "softmax" and card.architecture == "Pipeline(StandardScaler, LogisticRegression)"
    entry = card.engines["onnxruntime"]
    assert set(card.engines) == {"onnxruntime"} and entry["output"] == "probabilities" and entry["verification"]["examples"] == 150
    assert entry["verification"]["max_abs_diff"] <= 1e-5 and entry["verification"]["top1_agreement"] == 1.0
    assert card.training["framework"] == "scikit-learn" and card.training["estimator_classes"] == ["0", "1", "2"]
    session = onnxruntime.InferenceSession(content, providers=["CPUExecutionProvider"])
    served = session.run(["probabilities"], {entry["input"]: x})[0]
    np.testing.assert_allclose(served, predict(x), atol=1e-5)


def test_a_random_forest_keeps_its_classes_as_labels(tmp_path):
    x, y = load_digits(return_X_y=True)
    path = tmp_path / "forest.pkl"
    joblib.dump(RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0).fit(x, y), path)
    card, _, _ = inspect_sklearn(path, "digits", "v1", trusted=True, value_range=(0, 16))
    assert card.labels == tuple(str(d) for d in range(10)) and card.input.value_range == (0, 16)
    assert card.engines["onnxruntime"]["verification"]["max_abs_diff"] <= 1e-5 and card.number_of_parameters > 1000


def test_refusals_name_the_cause_and_what_to_do(iris, tmp_path):
    path, x, y = iris
    with pytest.raises(ImportRefused, match="runs code from the file.*--trust-pickle.*never the pickle"):
        inspect_sklearn(path, "iris", "v1")
    with pytest.raises(ImportRefused, match="3 classes.*2 labels"):
        inspect_sklearn(path, "iris", "v1", labels=["a", "b"], trusted=True)
    with pytest.raises(ImportRefused, match="--name"):
        inspect_sklearn(path, "Iris!", "v1", trusted=True)
    scaler = tmp_path / "scaler.joblib"
    joblib.dump(StandardScaler().fit(x), scaler)
    with pytest.raises(ImportRefused, match="neither a fitted classifier with predict_proba nor a regressor"):
        inspect_sklearn(scaler, "s", "v1", trusted=True)
    custom = tmp_path / "custom.joblib"
    joblib.dump(Custom().fit(x, y), custom)
    with pytest.raises(ImportRefused, match="skl2onnx cannot convert Custom.*update_registered_converter"):
        inspect_sklearn(custom, "c", "v1", trusted=True)
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(ImportRefused, match="not a scikit-learn model"):
        inspect_sklearn(garbage, "g", "v1", trusted=True)
    with pytest.raises(ImportRefused, match="no such file"):
        inspect_sklearn(tmp_path / "missing.joblib", "m", "v1", trusted=True)


def test_a_regressor_answers_its_targets_as_predict_does(tmp_path):
    x, y = load_diabetes(return_X_y=True)
    path = tmp_path / "diabetes.joblib"
    joblib.dump(make_pipeline(StandardScaler(), LinearRegression()).fit(x, y), path)
    card, content, predict = inspect_sklearn(path, "diabetes", "v1", trusted=True, targets=parse_targets("progression"), evaluation=(x.astype(np.float32), y))
    assert card.task == "regression" and card.output.kind == "regression" and [t.name for t in card.output.targets] == ["progression"]
    entry = card.engines["onnxruntime"]
    assert entry["verification"]["against"] == "predict" and entry["verification"]["max_rel_diff"] <= 1e-5
    served = onnxruntime.InferenceSession(content, providers=["CPUExecutionProvider"]).run([entry["output"]], {entry["input"]: x.astype(np.float32)})[0]
    np.testing.assert_allclose(served.reshape(-1, 1), predict(x), rtol=1e-5, atol=1e-3)
    two = tmp_path / "two.joblib"
    joblib.dump(LinearRegression().fit(x, np.stack([y, -y], axis=1)), two)
    assert [t.name for t in inspect_sklearn(two, "two", "v1", trusted=True)[0].output.targets] == ["value_0", "value_1"]


@pytest.mark.parametrize("vectorizer", ["TfidfVectorizer", "CountVectorizer"])
def test_a_text_pipeline_takes_one_string_per_example_and_is_verified_on_its_vocabulary(tmp_path, vectorizer):
    """scikit-learn's tokens are runs of Unicode word characters: ONNX Runtime's must be too ("café", "ΑΒΓ")."""
    from sklearn import feature_extraction

    from models.engines.onnxruntime import OnnxRuntimeEngine
    from models.tensors import pack

    texts = ["good film great acting", "bad plot awful", "café naïve charm good", "ΑΒΓ αβγ bad", "fine good", "terrible bad boring"] * 2
    make = getattr(feature_extraction.text, vectorizer)
    pipeline = make_pipeline(make(), LogisticRegression()).fit(texts, ["pos", "neg", "pos", "neg", "pos", "neg"] * 2)
    path = tmp_path / "text.joblib"
    joblib.dump(pipeline, path)
    card, content, _ = inspect_sklearn(path, "reviews", "v1", trusted=True, max_bytes=32)
    assert [(spec.name, spec.datatype, spec.shape, spec.max_bytes) for spec in card.inputs] == [("text", "BYTES", (1,), 32)] and card.labels == ("neg", "pos")
    verification = card.engines["onnxruntime"]["verification"]
    assert verification["examples"] == 64 and verification["max_abs_diff"] <= 1e-4
    sent = np.array([["CAFÉ naïve"], ["ΑΒΓ"], [""], ["good, GOOD!"]], dtype=object)
    served = OnnxRuntimeEngine(content, card)(pack(card.inputs, {"text": np.vectorize(str.encode, otypes=[object])(sent)}))
    np.testing.assert_allclose(served, pipeline.predict_proba(sent[:, 0]), atol=1e-5)
    with pytest.raises(ImportRefused, match="--range applies to numeric inputs; a text pipeline takes strings"):
        inspect_sklearn(path, "reviews", "v1", trusted=True, value_range=(0.0, 1.0))


def test_a_text_pipelines_evaluation_texts_are_verified_on_too_and_its_answers_read_packed_rows(tmp_path):
    from models.tensors import pack

    texts = ["good film great acting", "bad plot awful", "fine good", "terrible bad boring"] * 3
    pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, ["pos", "neg", "pos", "neg"] * 3)
    joblib.dump(pipeline, tmp_path / "text.joblib")
    held = np.array([["good acting"], ["naïve and bad"], ["unseen"]])
    card, _, predict = inspect_sklearn(tmp_path / "text.joblib", "reviews", "v1", trusted=True, evaluation=(held, np.array([1, 0, 1])), max_bytes=32)
    assert card.engines["onnxruntime"]["verification"]["examples"] == 64 + 3
    rows = pack(card.inputs, {"text": np.vectorize(str.encode, otypes=[object])(held)})  # what --eval-data gives, checked
    np.testing.assert_allclose(predict(rows), pipeline.predict_proba(held[:, 0]), atol=1e-6)
    np.testing.assert_allclose(predict(held), pipeline.predict_proba(held[:, 0]), atol=1e-6)
    with pytest.raises(ImportRefused, match="--eval-data: a text is not UTF-8"):
        inspect_sklearn(tmp_path / "text.joblib", "reviews", "v1", trusted=True, evaluation=(np.array([[b"\xff"]]), np.array([1])))


def test_a_text_pipeline_skl2onnx_cannot_convert_is_refused_naming_it(tmp_path):
    from sklearn.feature_extraction.text import HashingVectorizer

    path = tmp_path / "hashing.joblib"
    joblib.dump(make_pipeline(HashingVectorizer(n_features=64), LogisticRegression()).fit(["good film", "bad film"], [1, 0]), path)
    with pytest.raises(ImportRefused, match=r"skl2onnx cannot convert Pipeline\(HashingVectorizer, LogisticRegression\)"):
        inspect_sklearn(path, "reviews", "v1", trusted=True)
