"""Bring a scikit-learn classifier or regressor: a joblib or pickle file, converted to ONNX at import time.

Loading a pickle runs code from the file, so the import asks for ``trusted=True`` (``--trust-pickle``)
and says so. What is stored and served is the ONNX conversion (skl2onnx, which scikit-learn's own
documentation points to for deployment): the server never unpickles anything. The conversion is run
with ONNX Runtime on the evaluation examples (or on generated ones) and kept only when its answers
equal the estimator's (``predict_proba`` of a classifier, ``predict`` of a regressor) within the export
tolerance, relative to the values' size for a regressor; the figures go on the card.

    >>> card, onnx_bytes, predict = inspect_sklearn("iris.joblib", name="iris", version="v1", trusted=True)
    >>> card.input.shape, card.labels
    ((4,), ('setosa', 'versicolor', 'virginica'))
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from models.card import InputSpec, ModelCard, OutputSpec, Target, TensorSpec
from models.store import ONNX_FILE
from training.datasets import sha256_of
from training.export import ONNX_TOLERANCE, probe_examples
from training.importing import DEFAULT_MAX_BYTES, ImportRefused, check_names, package_version
from training.tasks import output_for

PROBABILITIES = "probabilities"  # skl2onnx's name for a classifier's predict_proba output (zipmap off)


def load_estimator(path: str | Path, trusted: bool):
    """The estimator in a joblib or pickle file, loaded only when the caller trusts it."""
    path = Path(path)
    if not path.is_file():
        raise ImportRefused(f"{path}: no such file")
    if not trusted:
        raise ImportRefused(
            f"{path.name} is a pickle: loading it runs code from the file. Import only a file you trust, with --trust-pickle;"
            " the import converts it to ONNX and the server stores and runs only that, never the pickle"
        )
    import joblib
    import sklearn

    try:
        return joblib.load(path)
    except Exception as exc:  # a pickle can fail in any way: a missing module, another scikit-learn, not a pickle at all
        raise ImportRefused(f"{path} is not a scikit-learn model this scikit-learn ({sklearn.__version__}) can load: {type(exc).__name__}: {exc}") from None


def inspect_sklearn(
    path: str | Path,
    name: str,
    version: str,
    labels: list[str] | None = None,
    trusted: bool = False,
    targets: tuple[Target, ...] | None = None,
    value_range: tuple[float, float] | None = None,
    description: str | None = None,
    evaluation: tuple[np.ndarray, np.ndarray] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[ModelCard, bytes, Callable[[np.ndarray], np.ndarray]]:
    """Load, convert and verify a classifier or a regressor: (card without metrics, the ONNX file, the
    estimator's answers on client values: ``predict_proba``, or ``predict`` as (N, targets)). ``labels``
    name a classifier's classes in the order of its ``classes_`` (default: those classes as text);
    ``targets`` a regressor's outputs (default: value, or value_0, value_1, ...). A pipeline starting
    with a text vectorizer takes one string per example, ``text``, of at most ``max_bytes``. Raises ImportRefused."""
    from sklearn.base import is_regressor

    check_names(name, version)
    path = Path(path)
    estimator = load_estimator(path, trusted)
    classifier = hasattr(estimator, "predict_proba") and hasattr(estimator, "classes_")
    if not classifier and not is_regressor(estimator):
        raise ImportRefused(
            f"{type(estimator).__name__} is neither a fitted classifier with predict_proba nor a regressor; a classifier or a regressor (or a pipeline ending in one) is imported"
        )
    if text_vectorizer(estimator) is not None:
        if value_range is not None:
            raise ImportRefused("--range applies to numeric inputs; a text pipeline takes strings")
        held_texts = _texts(evaluation[0]) if evaluation is not None else []
        return _text_pipeline(estimator, path, name, version, labels, targets, classifier, description, max_bytes, held_texts)
    features = getattr(estimator, "n_features_in_", None)
    if not isinstance(features, int | np.integer) or features < 1:
        raise ImportRefused(f"{type(estimator).__name__} does not say how many features it takes (n_features_in_): fit it on an array, not a list of dicts or text")
    names = getattr(estimator, "feature_names_in_", None)  # fitted on a DataFrame: its columns
    spec = InputSpec(kind="tensor", shape=(int(features),), value_range=value_range, divide_by=None, names=tuple(map(str, names)) if names is not None else None)
    content, input_name, output_name = _convert(estimator, int(features), classifier)
    examples = evaluation[0] if evaluation is not None else probe_examples(SimpleNamespace(input=spec))

    def predict(values: np.ndarray) -> np.ndarray:
        rows = np.asarray(values, np.float32).reshape(len(values), -1)
        answers = estimator.predict_proba(rows) if classifier else estimator.predict(rows)
        return np.asarray(answers, dtype=np.float32).reshape(len(rows), -1)

    output = _output(estimator, classifier, labels, targets, lambda: predict(examples[:1]))
    verification = verify(content, input_name, output_name, examples.reshape(len(examples), -1), predict, relative=not classifier)
    card = _card(estimator, path, name, version, description, classifier, output, content, {"input": spec}, {"input": input_name, "output": output_name}, verification)
    return card, content, predict


def _output(estimator, classifier: bool, labels, targets, answer_one: Callable[[], np.ndarray]) -> OutputSpec:
    """A classifier's classes (``labels`` name them, in the order of ``classes_``), or a regressor's targets (as many as it answers)."""
    if not classifier:
        return output_for("regression", (answer_one().shape[1],), targets=targets)
    classes = [str(c) for c in estimator.classes_]
    if labels is not None and len(labels) != len(classes):
        raise ImportRefused(f"--labels: the estimator has {len(classes)} classes {classes}, but {len(labels)} labels were given (one per class, in that order)")
    return OutputSpec(kind="softmax", labels=tuple(labels or classes))


def _card(
    estimator,
    path: Path,
    name: str,
    version: str,
    description,
    classifier: bool,
    output: OutputSpec,
    content: bytes,
    taken: dict,
    names: dict,
    verification: dict,
    converted: str = "",
) -> ModelCard:
    """The card of a converted estimator: ``taken`` its input fields, ``names`` the graph's input and output for the engine."""
    return ModelCard(
        name=name,
        version=version,
        description=description or f"{describe(estimator)}, imported from {path.name}",
        task="classification" if classifier else "regression",
        preprocessing=None,
        output=output,
        architecture=describe(estimator),
        number_of_parameters=max(_parameters(content), 1),
        metrics=None,
        training={
            "imported_from": path.name,
            "framework": "scikit-learn",
            "converted_with": f"skl2onnx {package_version('skl2onnx')}{converted}",
            **({"estimator_classes": [str(c) for c in estimator.classes_]} if classifier else {}),
            "imported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        },
        data={"source": None, "sha256": {path.name: sha256_of(path)}},
        framework_versions={"scikit-learn": package_version("scikit-learn"), "skl2onnx": package_version("skl2onnx"), "onnx": package_version("onnx")},
        engines={"onnxruntime": {"file": ONNX_FILE, **names, "sha256": hashlib.sha256(content).hexdigest(), "verification": verification}},
        **taken,
    )


TEXT_VECTORIZERS = ("CountVectorizer", "TfidfVectorizer", "HashingVectorizer")
TEXT_INPUT = "text"
TEXT_LOCALE = "C.UTF-8"  # ONNX Runtime's StringNormalizer needs a locale the machine has; glibc builds this one in
PROBE_TEXTS = 64
SKLEARN_WORDS = r"(?u)\b\w\w+\b"  # scikit-learn's default token_pattern: runs of two or more Unicode word characters
# The same in RE2 (ONNX Runtime's Tokenizer), whose \w is ASCII only: skl2onnx would split "café" where scikit-learn does not.
RE2_WORDS = r"[\p{L}\p{N}_][\p{L}\p{N}_]+"


def text_vectorizer(estimator):
    """The text vectorizer a pipeline starts with (it takes one string per example), or None."""
    steps = getattr(estimator, "steps", None)
    first = steps[0][1] if steps else estimator
    return first if type(first).__name__ in TEXT_VECTORIZERS else None


def _text_pipeline(estimator, path: Path, name: str, version: str, labels, targets, classifier: bool, description, max_bytes: int, held_texts: list[str]):
    """A pipeline from text: converted with a string input ``text`` [1] per example, verified on texts made
    of its vocabulary (and words it does not know, in other cases) and on the evaluation texts, against
    the pipeline itself."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType

    from models.tensors import unpack

    vectorizer = text_vectorizer(estimator)
    options: dict = {id(vectorizer): {"locale": TEXT_LOCALE}}
    if getattr(vectorizer, "token_pattern", None) == SKLEARN_WORDS and getattr(vectorizer, "tokenizer", None) is None:
        options[id(vectorizer)]["tokenexp"] = RE2_WORDS
    if classifier:
        options[id(estimator.steps[-1][1])] = {"zipmap": False}
    try:
        onnx_model = convert_sklearn(estimator, initial_types=[(TEXT_INPUT, StringTensorType([None, 1]))], options=options)
    except Exception as exc:
        raise _cannot_convert(estimator, exc) from None
    content, output_name = onnx_model.SerializeToString(), _answer(onnx_model, estimator, classifier)
    texts = probe_texts(vectorizer, max_bytes) + held_texts
    inputs = (TensorSpec(name=TEXT_INPUT, datatype="BYTES", shape=(1,), max_bytes=max_bytes),)

    def predict(values) -> np.ndarray:
        """The pipeline's answers on texts, or on rows packed as the card says (checked evaluation data)."""
        values = np.asarray(values)
        if values.dtype.kind in "iuf":
            values = unpack(inputs, values)[TEXT_INPUT]
        rows = [value.decode() if isinstance(value, bytes) else str(value) for value in np.asarray(values, dtype=object).reshape(-1)]
        answers = estimator.predict_proba(rows) if classifier else estimator.predict(rows)
        return np.asarray(answers, dtype=np.float32).reshape(len(rows), -1)

    output = _output(estimator, classifier, labels, targets, lambda: predict(texts[:1]))
    verification = verify(content, TEXT_INPUT, output_name, np.asarray(texts, dtype=object).reshape(-1, 1), predict, relative=not classifier)
    taken = {"input": InputSpec.packed(inputs), "inputs": inputs}
    card = _card(
        estimator, path, name, version, description, classifier, output, content, taken, {"inputs": [TEXT_INPUT], "output": output_name}, verification, f" (locale {TEXT_LOCALE})"
    )
    return card, content, predict


def _texts(values) -> list[str]:
    """The evaluation data's texts, each a str (bytes as UTF-8)."""
    try:
        return [value.decode() if isinstance(value, bytes) else str(value) for value in np.asarray(values).reshape(-1)]
    except UnicodeDecodeError as exc:
        raise ImportRefused(f"--eval-data: a text is not UTF-8 ({exc.reason} at byte {exc.start})") from None


def probe_texts(vectorizer, max_bytes: int, count: int = PROBE_TEXTS, seed: int = 0) -> list[str]:
    """Texts to verify a conversion on: words of the vectorizer's vocabulary (a hashing one has none:
    common words), in upper and lower case, with punctuation and words it never saw; and an empty one."""
    rng = np.random.default_rng(seed)
    vocabulary = sorted(getattr(vectorizer, "vocabulary_", {}) or []) or ["the", "model", "server", "answers", "every", "request"]
    words = [word for word in vocabulary if " " not in word] or vocabulary
    texts = [""]
    for i in range(count - 1):
        chosen = [str(word) for word in rng.choice(words, size=int(rng.integers(1, 12)))]
        if i % 4 == 1:
            chosen = [word.upper() for word in chosen] + ["unseen-word"]
        elif i % 4 == 2:
            chosen = [f"{word}," for word in chosen] + ["Café", "naïve!"]
        texts.append(" ".join(chosen).encode()[:max_bytes].decode(errors="ignore"))
    return texts


def describe(estimator) -> str:
    """``Pipeline(StandardScaler, LogisticRegression)``, or the estimator's class name."""
    steps = getattr(estimator, "steps", None)
    if steps:
        return f"{type(estimator).__name__}({', '.join(type(step).__name__ for _, step in steps)})"
    return type(estimator).__name__


def _convert(estimator, features: int, classifier: bool) -> tuple[bytes, str, str]:
    """The estimator as ONNX (float32 input; a classifier's probabilities as a tensor), its input's and its answer's names."""
    from skl2onnx import to_onnx

    try:
        onnx_model = to_onnx(estimator, np.zeros((1, features), np.float32), options={"zipmap": False} if classifier else None)
    except Exception as exc:  # skl2onnx raises its own errors and plain ones for estimators it has no converter for
        raise _cannot_convert(estimator, exc) from None
    return onnx_model.SerializeToString(), onnx_model.graph.input[0].name, _answer(onnx_model, estimator, classifier)


def _cannot_convert(estimator, exc: Exception) -> ImportRefused:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return ImportRefused(
        f"skl2onnx cannot convert {describe(estimator)}: {type(exc).__name__}: {first}"
        " A custom estimator needs a converter registered with skl2onnx (update_registered_converter), or export it to ONNX yourself and import the .onnx"
    )


def _answer(onnx_model, estimator, classifier: bool) -> str:
    """The conversion's output served: a classifier's probabilities (zipmap off), a regressor's first output."""
    names = [output.name for output in onnx_model.graph.output]
    if classifier and PROBABILITIES not in names:
        raise ImportRefused(f"the ONNX conversion of {describe(estimator)} has no {PROBABILITIES!r} output (it has {names})")
    return PROBABILITIES if classifier else names[0]


def verify(content: bytes, input_name: str, output_name: str, examples: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], relative: bool = False) -> dict:
    """Run the conversion with ONNX Runtime against the estimator: the figures, or ImportRefused. A
    regressor's values (``relative``) are compared relative to their size, at least 1: float32 holds
    about seven digits of a large value."""
    import onnxruntime

    session = onnxruntime.InferenceSession(content, providers=["CPUExecutionProvider"])
    values = examples if examples.dtype == object else np.asarray(examples, np.float32)  # text, or numbers
    converted = session.run([output_name], {input_name: values})[0].reshape(len(values), -1)
    expected = predict(values)
    difference = np.abs(converted - expected)
    figures: dict = {"examples": int(len(values)), "max_abs_diff": float(difference.max()), "tolerance": ONNX_TOLERANCE, "onnxruntime": onnxruntime.__version__}
    if relative:
        figures |= {"max_rel_diff": float((difference / np.maximum(np.abs(expected), 1.0)).max()), "against": "predict"}
        judged = figures["max_rel_diff"]
    else:
        figures |= {"top1_agreement": float((converted.argmax(axis=1) == expected.argmax(axis=1)).mean()), "against": "predict_proba"}
        judged = figures["max_abs_diff"]
    if not judged <= ONNX_TOLERANCE:
        raise ImportRefused(
            f"the ONNX conversion disagrees with {figures['against']} on {len(values)} examples: max {'relative ' if relative else ''}|difference| {judged:.3g}"
            f" (tolerance {ONNX_TOLERANCE}); nothing was converted that serves the same answers"
        )
    return figures


def _parameters(content: bytes) -> int:
    """Numbers the ONNX graph holds: its initializers' and its nodes' numeric attributes (a tree ensemble keeps its trees there)."""
    import onnx

    model = onnx.load_from_string(content)
    count = sum(int(np.prod(tensor.dims)) for tensor in model.graph.initializer)
    for node in model.graph.node:
        count += sum(len(attribute.floats) + len(attribute.ints) for attribute in node.attribute)
    return count
