"""training/importing.py: a .keras file trained elsewhere, checked and described by a card, or refused
with a message that names the problem. The networks are built and saved here."""

import numpy as np
import pytest

from models import store
from models.card import ModelCard
from training.datasets import sha256_of
from training.importing import ImportRefused, inspect_keras, load_evaluation, parse_labels

LABELS = ["circle", "square", "star"]


def save(tmp_path, name, *layers, shape=(32, 32, 3)):
    """A Keras model of ``layers`` on an input of ``shape``, saved as tmp_path/<name>.keras."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    model = keras.Model(inputs, x, name=name)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    return path, model


@pytest.fixture(scope="module")
def keras_layers():
    from keras import layers

    return layers


@pytest.fixture(scope="module")
def shapes_file(tmp_path_factory, keras_layers):
    """32x32x3 colour images, three softmax classes."""
    layers = keras_layers
    return save(tmp_path_factory.mktemp("import"), "shapes", layers.Conv2D(4, 3), layers.GlobalAveragePooling2D(), layers.Dense(3, activation="softmax"))


def test_a_colour_softmax_model_gets_a_colour_image_card(shapes_file):
    path, original = shapes_file
    model, card = inspect_keras(path, name="shapes", version="v1", labels=LABELS)
    assert isinstance(card, ModelCard) and card.tag == "shapes:v1"
    assert card.input.kind == "image" and card.input.shape == (32, 32, 3) and card.input.value_range == (0, 255) and card.input.divide_by == 255
    assert card.preprocessing.colour_mode == "RGB" and card.preprocessing.invert == "never" and card.preprocessing.resize == "bilinear"
    assert card.output.kind == "softmax" and card.labels == tuple(LABELS) and card.task == "image-classification"
    assert card.number_of_parameters == original.count_params() == model.count_params() and card.architecture == "shapes"
    assert card.metrics is None and card.training["imported_from"] == "shapes.keras"
    assert card.data["sha256"] == {"shapes.keras": sha256_of(path)}
    assert ModelCard.from_metadata(card.to_metadata()) == card
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), original.predict(x, verbose=0), atol=1e-6)


def test_the_imported_card_and_model_go_into_the_store(shapes_file):
    model, card = inspect_keras(shapes_file[0], name="shapes", version="import-store", labels=LABELS)
    store.save(card, model)
    assert store.check("shapes", "import-store") == card
    assert store.load_keras("shapes", "import-store").count_params() == card.number_of_parameters


def test_import_options_reach_the_card(shapes_file):
    _, card = inspect_keras(shapes_file[0], name="shapes", version="v2", labels=LABELS, divide_by=None, resize="lanczos", description="drawn shapes")
    assert card.input.divide_by is None and card.preprocessing.resize == "lanczos" and card.description == "drawn shapes"


def test_a_mismatched_label_count_is_refused(shapes_file):
    with pytest.raises(ImportRefused, match=r"the model's output has 3 unit\(s\), but 2 labels were given"):
        inspect_keras(shapes_file[0], name="shapes", version="v1", labels=["circle", "square"])
    with pytest.raises(ImportRefused, match=r"3 unit\(s\), but 4 labels"):
        inspect_keras(shapes_file[0], name="shapes", version="v1", labels=[*LABELS, "heart"])


def test_logits_are_refused(tmp_path, keras_layers):
    path, _ = save(tmp_path, "logits", keras_layers.Flatten(), keras_layers.Dense(3))  # no softmax: scores of any sign
    with pytest.raises(ImportRefused, match=r"not probabilities in 0..1 \(end it with a softmax or sigmoid layer\)"):
        inspect_keras(path, name="logits", version="v1", labels=LABELS)


def test_scores_in_0_1_that_do_not_sum_to_1_are_refused(tmp_path, keras_layers):
    import keras

    constant = keras.layers.Dense(3, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(0.1))  # 0.1 each
    path, _ = save(tmp_path, "scores", keras_layers.Flatten(), constant)
    with pytest.raises(ImportRefused, match=r"do not sum to 1 \(logits\?\): end it with a softmax layer"):
        inspect_keras(path, name="scores", version="v1", labels=LABELS)


def test_outputs_that_are_not_probabilities_are_refused(tmp_path, keras_layers):
    import keras

    path, _ = save(tmp_path, "relu", keras_layers.Flatten(), keras_layers.Dense(3, activation="relu", bias_initializer=keras.initializers.Constant(2.0)))
    with pytest.raises(ImportRefused, match=r"not probabilities in 0..1 \(end it with a softmax or sigmoid layer\)"):
        inspect_keras(path, name="relu", version="v1", labels=LABELS)


def test_an_input_shape_that_is_not_fixed_is_refused(tmp_path, keras_layers):
    layers = keras_layers
    path, _ = save(tmp_path, "any-size", layers.Conv2D(4, 3), layers.GlobalAveragePooling2D(), layers.Dense(3, activation="softmax"), shape=(None, None, 3))
    with pytest.raises(ImportRefused, match=r"input shape \[None, None, None, 3\] must be fixed apart from the batch axis"):
        inspect_keras(path, name="any-size", version="v1", labels=LABELS)


@pytest.mark.parametrize("positive,expected", [(None, "yes"), ("no", "no")])
def test_one_sigmoid_unit_with_two_labels_gives_a_sigmoid_card(tmp_path, keras_layers, positive, expected):
    path, _ = save(tmp_path, "binary", keras_layers.Flatten(), keras_layers.Dense(1, activation="sigmoid"), shape=(16, 16, 1))
    _, card = inspect_keras(path, name="binary", version="v1", labels=["no", "yes"], positive_label=positive)
    assert card.output.kind == "sigmoid" and card.output.positive_label == expected and card.classes == 2 and card.output.units == 1
    assert card.input.shape == (16, 16, 1) and card.preprocessing.colour_mode == "L"


def test_a_sigmoid_positive_label_must_be_a_label(tmp_path, keras_layers):
    path, _ = save(tmp_path, "binary", keras_layers.Flatten(), keras_layers.Dense(1, activation="sigmoid"), shape=(16, 16, 1))
    with pytest.raises(ImportRefused, match="--positive-label 'maybe' is not one of the labels"):
        inspect_keras(path, name="binary", version="v1", labels=["no", "yes"], positive_label="maybe")
    with pytest.raises(ImportRefused, match=r"1 unit\(s\), but 3 labels"):
        inspect_keras(path, name="binary", version="v1", labels=LABELS)


def test_a_vector_input_gets_a_tensor_card(tmp_path, keras_layers):
    path, _ = save(tmp_path, "vector", keras_layers.Dense(3, activation="softmax"), shape=(12,))
    _, card = inspect_keras(path, name="vector", version="v1", labels=LABELS, divide_by=None, value_range=(-5.0, 5.0))
    assert card.input.kind == "tensor" and card.input.shape == (12,) and card.preprocessing is None
    assert card.input.value_range == (-5.0, 5.0) and card.task == "classification"


def test_an_image_kind_needs_an_image_shape(tmp_path, keras_layers):
    path, _ = save(tmp_path, "vector", keras_layers.Dense(3, activation="softmax"), shape=(12,))
    with pytest.raises(ImportRefused, match=r"an image input has the shape \[height, width, 1 or 3\]; the model takes \[12\]"):
        inspect_keras(path, name="vector", version="v1", labels=LABELS, kind="image")


def test_several_outputs_are_refused(tmp_path):
    import keras

    inputs = keras.Input(shape=(4,))
    model = keras.Model(inputs, [keras.layers.Dense(3, activation="softmax")(inputs), keras.layers.Dense(3, activation="softmax")(inputs)])
    model.save(tmp_path / "two.keras")
    with pytest.raises(ImportRefused, match="the model has 2 outputs; one output tensor is served"):
        inspect_keras(tmp_path / "two.keras", name="two", version="v1", labels=LABELS)


@pytest.mark.parametrize("name,version,message", [("Shapes", "v1", "--name 'Shapes'"), ("shapes", "v1/../x", "--version 'v1/../x'"), ("", "v1", "--name ''")])
def test_bad_names_are_refused_before_loading(tmp_path, name, version, message):
    with pytest.raises(ImportRefused, match=message):
        inspect_keras(tmp_path / "absent.keras", name=name, version=version, labels=LABELS)


def test_missing_and_unreadable_files_are_refused(tmp_path):
    with pytest.raises(ImportRefused, match="no such file"):
        inspect_keras(tmp_path / "absent.keras", name="x", version="v1", labels=LABELS)
    (tmp_path / "junk.keras").write_bytes(b"not a model")
    with pytest.raises(ImportRefused, match="is not a Keras model this Keras .* can load"):
        inspect_keras(tmp_path / "junk.keras", name="x", version="v1", labels=LABELS)


def test_parse_labels(tmp_path):
    assert parse_labels("circle, square ,star") == LABELS
    (tmp_path / "labels.txt").write_text("circle\n\nsquare\nstar\n")
    assert parse_labels(str(tmp_path / "labels.txt")) == LABELS
    with pytest.raises(ImportRefused, match="at least two labels"):
        parse_labels("circle")
    with pytest.raises(ImportRefused, match="distinct"):
        parse_labels("circle,circle")


def test_load_evaluation(tmp_path, shapes_file):
    _, card = inspect_keras(shapes_file[0], name="shapes", version="v1", labels=LABELS)
    x = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "eval.npz", x=x, y=np.array([0, 1, 2, 0, 1, 2]))
    values, labels = load_evaluation(tmp_path / "eval.npz", card)
    np.testing.assert_array_equal(values, x)
    np.testing.assert_array_equal(labels, [0, 1, 2, 0, 1, 2])
    np.savez(tmp_path / "bad-y.npz", x=x, y=np.array([0, 1, 2, 3, 1, 2]))
    with pytest.raises(ImportRefused, match=r"--eval-data y: expected 6 label indices in 0..2"):
        load_evaluation(tmp_path / "bad-y.npz", card)
    np.savez(tmp_path / "bad-x.npz", x=x[..., 0], y=np.zeros(6, int))
    with pytest.raises(ImportRefused, match="--eval-data x: expected 32x32x3"):
        load_evaluation(tmp_path / "bad-x.npz", card)
    np.savez(tmp_path / "no-y.npz", x=x)
    with pytest.raises(ImportRefused, match="expected an .npz with arrays x and y"):
        load_evaluation(tmp_path / "no-y.npz", card)
