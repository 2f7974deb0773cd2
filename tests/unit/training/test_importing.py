"""training/importing.py: a .keras file trained elsewhere, checked and described by a card, or refused
with a message that names the problem. The networks are built and saved here."""

import re

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
    _, card = inspect_keras(
        shapes_file[0], name="shapes", version="v2", labels=LABELS, scale="none", value_range=(0.0, 1.0), resize="lanczos", aspect="stretch", description="drawn shapes"
    )
    assert card.input.divide_by is None and card.input.value_range == (0, 1) and card.description == "drawn shapes"
    assert card.preprocessing.resize == "lanczos" and card.preprocessing.aspect == "stretch"
    assert inspect_keras(shapes_file[0], name="shapes", version="v2", labels=LABELS)[1].preprocessing.aspect == "pad"  # the default


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


def test_an_input_of_dynamic_shape_needs_its_bound_and_is_then_a_named_tensor(tmp_path, keras_layers):
    layers = keras_layers
    path, _ = save(tmp_path, "any-size", layers.Conv2D(4, 3), layers.GlobalAveragePooling2D(), layers.Dense(3, activation="softmax"), shape=(None, None, 3))
    with pytest.raises(ImportRefused, match=r"has the shape \['N', None, None, 3\]: a dynamic dimension besides the batch axis needs a bound.*--max-dim SIZE"):
        inspect_keras(path, name="any-size", version="v1", labels=LABELS)
    with pytest.raises(ImportRefused, match="--scale, --kind image, --aspect and --range apply to a model with one float input"):
        inspect_keras(path, name="any-size", version="v1", labels=LABELS, kind="image", dim_range=(3, 32))
    with pytest.raises(
        ImportRefused,
        match=r"one inference on a probe batch failed \(examples of the smallest and largest shapes: input_layer\S* \[1, 1, 3\] to \[32, 32, 3\]; --min-dim and --max-dim set them\): .*Negative dimension size",
    ):  # a 3x3 convolution of a 1x1 image
        inspect_keras(path, name="any-size", version="v1", labels=LABELS, dim_range=(1, 32))
    _, card = inspect_keras(path, name="any-size", version="v1", labels=LABELS, dim_range=(3, 32))
    (spec,) = card.inputs
    assert (spec.shape, spec.min_shape, spec.max_shape, spec.datatype) == ((-1, -1, 3), (3, 3, 3), (32, 32, 3), "FP32") and card.output.kind == "softmax"


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
    _, card = inspect_keras(path, name="vector", version="v1", labels=LABELS, scale="none", value_range=(-5.0, 5.0))
    assert card.input.kind == "tensor" and card.input.shape == (12,) and card.preprocessing is None
    assert card.input.value_range == (-5.0, 5.0) and card.task == "classification"


def test_a_sequential_model_imports_as_a_functional_one_does(tmp_path, keras_layers):
    """A Sequential model has no output_names: its output is found by its tensor (the e2e head model is one)."""
    import keras

    model = keras.Sequential([keras.Input((3,)), keras_layers.Dense(3, activation="softmax")], name="head")
    model.save(tmp_path / "head.keras")
    _, card = inspect_keras(tmp_path / "head.keras", name="head", version="v1", labels=LABELS, scale="none")
    assert card.input.shape == (3,) and card.output.kind == "softmax" and card.labels == tuple(LABELS)


def test_an_image_kind_needs_an_image_shape(tmp_path, keras_layers):
    path, _ = save(tmp_path, "vector", keras_layers.Dense(3, activation="softmax"), shape=(12,))
    with pytest.raises(ImportRefused, match=r"an image input has the shape \[height, width, 1 or 3\]; the model takes \[12\]"):
        inspect_keras(path, name="vector", version="v1", labels=LABELS, kind="image")


def test_several_outputs_are_refused(tmp_path):
    import keras

    inputs = keras.Input(shape=(4,))
    model = keras.Model(inputs, [keras.layers.Dense(3, activation="softmax")(inputs), keras.layers.Dense(3, activation="softmax")(inputs)])
    model.save(tmp_path / "two.keras")
    with pytest.raises(ImportRefused, match=r"the model has 2 outputs \(dense\w*, dense\w*\): serve one with --output, or all of them as named tensors with --task tensor"):
        inspect_keras(tmp_path / "two.keras", name="two", version="v1", labels=LABELS)


def two_input_model(tmp_path, outputs: int):
    """features float32 (4,) and counts int64 (3,) through an embedding; a softmax over 3, and a second output."""
    import keras

    keras.utils.set_random_seed(3)
    features, counts = keras.Input((4,), name="features"), keras.Input((3,), name="counts", dtype="int64")
    hidden = keras.layers.Dense(6, activation="relu")(keras.layers.Concatenate()([features, keras.layers.Flatten()(keras.layers.Embedding(10, 2)(counts))]))
    kind = keras.layers.Dense(3, activation="softmax", name="kind")(hidden)
    model = keras.Model([features, counts], [kind, keras.layers.Dense(2, name="size")(hidden)] if outputs == 2 else kind, name="pair")
    path = tmp_path / f"pair{outputs}.keras"
    model.save(path)
    return model, path


def test_a_two_input_model_takes_named_tensors_and_keeps_its_task(tmp_path):
    model, path = two_input_model(tmp_path, outputs=1)
    said = []
    _, card = inspect_keras(path, name="pair", version="v1", labels=LABELS, say=said.append)
    assert [(spec.name, spec.datatype, spec.shape) for spec in card.inputs] == [("features", "FP32", (4,)), ("counts", "INT64", (3,))]
    assert card.named_inputs and card.input.shape == (4 * 4 + 3 * 8,) and card.preprocessing is None
    assert card.output.kind == "softmax" and card.labels == tuple(LABELS) and not card.outputs and card.task == "classification"
    assert "named tensors: inputs features FP32 [4], counts INT64 [3]" in said[0]
    with pytest.raises(ImportRefused, match="--scale, --kind image, --aspect and --range apply to a model with one float input"):
        inspect_keras(path, name="pair", version="v1", labels=LABELS, scale="255")


def test_a_named_input_models_evaluation_data_is_an_array_per_input_checked_and_packed(tmp_path):
    from models.card import InputSpec, TensorSpec
    from models.tensors import unpack
    from tests.unit.cards import clothes_card

    inputs = (TensorSpec(name="features", datatype="FP32", shape=(2,)), TensorSpec(name="counts", datatype="INT64", shape=(1,)))
    card = clothes_card().model_copy(update={"input": InputSpec.packed(inputs), "inputs": inputs, "preprocessing": None})
    features, counts = np.arange(6, dtype=np.float32).reshape(3, 2), np.array([[1], [2], [3]])
    np.savez(tmp_path / "named.npz", features=features, counts=counts, y=np.array([0, 9, 4]))
    rows, labels = load_evaluation(tmp_path / "named.npz", card)
    unpacked = unpack(inputs, rows)
    np.testing.assert_array_equal(unpacked["features"], features)
    np.testing.assert_array_equal(unpacked["counts"], counts)
    assert labels.tolist() == [0, 9, 4]
    for arrays, message in (
        ({"x": features}, "takes named inputs: expected an array per input (features, counts) and y, not x"),
        ({"features": features}, "missing 'counts'"),
        ({"features": features, "counts": counts[:2]}, "--eval-data counts: 2 examples of counts, but 3 of features"),
        ({"features": features, "counts": counts + 0.5}, "--eval-data counts: counts is INT64: values must be whole numbers"),
    ):
        np.savez(tmp_path / "wrong.npz", **arrays, y=np.array([0, 1, 2]))
        with pytest.raises(ImportRefused, match=re.escape(message)):
            load_evaluation(tmp_path / "wrong.npz", card)
    xk = (TensorSpec(name="x", datatype="FP32", shape=(2,)), TensorSpec(name="k", datatype="INT64", shape=(1,)))  # an input may be named x
    xk_card = card.model_copy(update={"input": InputSpec.packed(xk), "inputs": xk})
    np.savez(tmp_path / "xk.npz", x=features, k=counts, y=np.array([0, 1, 2]))
    np.testing.assert_array_equal(unpack(xk, load_evaluation(tmp_path / "xk.npz", xk_card)[0])["x"], features)
    one = inputs[:1]  # one named input: x is its array
    np.savez(tmp_path / "one.npz", x=features, y=np.array([0, 1, 2]))
    np.testing.assert_array_equal(
        unpack(one, load_evaluation(tmp_path / "one.npz", card.model_copy(update={"input": InputSpec.packed(one), "inputs": one}))[0])["features"], features
    )
    np.savez(tmp_path / "named-for-one.npz", features=features, y=np.array([0, 1, 2]))
    with pytest.raises(ImportRefused, match="takes one input: expected an array x, got arrays features"):
        load_evaluation(tmp_path / "named-for-one.npz", clothes_card())


def test_a_model_with_several_outputs_answers_them_all_as_named_tensors_with_task_tensor(tmp_path):
    from models.inference import predict_probabilities
    from models.tensors import pack, unpack

    model, path = two_input_model(tmp_path, outputs=2)
    _, card = inspect_keras(path, name="pair", version="v1", labels=[], task="tensor")
    assert [(spec.name, spec.datatype, spec.shape) for spec in card.outputs] == [("kind", "FP32", (3,)), ("size", "FP32", (2,))]
    assert card.output.kind == "tensors" and card.task == "tensors"
    features, counts = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32), np.arange(15).reshape(5, 3) % 10
    answers = unpack(card.outputs, predict_probabilities(model, pack(card.inputs, {"features": features, "counts": counts}), card))
    kind, size = model.predict([features, counts], verbose=0)
    np.testing.assert_array_equal(answers["kind"], kind)
    np.testing.assert_array_equal(answers["size"], size)


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
    with pytest.raises(ImportRefused, match=re.escape("expected an .npz with arrays x (or one per named input) and y")):
        load_evaluation(tmp_path / "no-y.npz", card)


# What a new user got wrong without a word (issue 19, item 4): scaling, value ranges, aspect, label order.


def threshold_file(tmp_path, name="threshold", first=()):
    """Four features, two softmax classes: class 1 when the first feature, as the model sees it, is above 50.
    Right on raw values (0..100), wrong on the same values divided by 255 (always class 0)."""
    import keras

    dense = keras.layers.Dense(
        2, activation="softmax", kernel_initializer=keras.initializers.Constant(np.array([[0, 1], [0, 0], [0, 0], [0, 0]])), bias_initializer=keras.initializers.Constant([0, -50])
    )
    return save(tmp_path, name, *first, dense, shape=(4,))


def threshold_data(count=200, seed=0):
    x = np.random.default_rng(seed).uniform(0, 100, (count, 4)).astype(np.float32)
    return x, (x[:, 0] > 50).astype(np.int64)


def colour_file(tmp_path, name, order, first=()):
    """A 4x4 colour model that answers the brightest channel (whatever the scale), its output units in
    ``order`` of the channels red, green, blue: (2, 1, 0) is Keras' alphabetical blue, green, red."""
    import keras

    kernel = np.zeros((3, 3))
    kernel[list(order), range(3)] = 20.0
    dense = keras.layers.Dense(3, activation="softmax", kernel_initializer=keras.initializers.Constant(kernel), bias_initializer="zeros")
    return save(tmp_path, name, *first, keras.layers.GlobalAveragePooling2D(), dense, shape=(4, 4, 3))


def colour_data(count=120, seed=0):
    """Images with one bright channel; y is that channel (red 0, green 1, blue 2)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, count)
    x = rng.integers(0, 100, (count, 4, 4, 3))
    x[np.arange(count), :, :, y] += 150
    return x.astype(np.uint8), y


def test_a_tensor_input_without_a_scaling_layer_needs_the_scale(tmp_path):
    path, _ = threshold_file(tmp_path)
    with pytest.raises(
        ImportRefused,
        match=r"--scale: .* cannot be read from this model .*: pass --scale 255 \(clients send 0..255 and the server divides by 255.*--scale none \(clients send the values the model takes, as they are",
    ):
        inspect_keras(path, name="threshold", version="v1", labels=["low", "high"])  # was stored dividing by 255: wrong answers, no warning
    _, card = inspect_keras(path, name="threshold", version="v1", labels=["low", "high"], scale="none")
    assert card.input.divide_by is None and card.input.value_range is None and card.training["scaling"] == "--scale none, as given"
    _, card = inspect_keras(path, name="threshold", version="v1", labels=["low", "high"], scale="255")
    assert card.input.divide_by == 255 and card.input.value_range == (0, 255)  # the card's range is true to --scale 255


def test_evaluation_data_decides_the_scale_and_says_so(tmp_path):
    path, _ = threshold_file(tmp_path)
    said = []
    _, card = inspect_keras(path, name="threshold", version="v1", labels=["low", "high"], evaluation=threshold_data(), say=said.append)
    assert card.input.divide_by is None and card.input.value_range is None
    assert any(line.startswith("scaling: --scale none, from --eval-data: accuracy on --eval-data 0.") for line in said), said
    assert card.training["scaling"].startswith("--scale none, from --eval-data")
    with pytest.raises(ImportRefused, match=r"--scale 255: accuracy on --eval-data 0\.\d+ with --scale 255, 1\.0000 with --scale none\. Pass --scale none"):
        inspect_keras(path, name="threshold", version="v1", labels=["low", "high"], scale="255", evaluation=threshold_data())


def test_a_normalization_layer_means_the_model_scales_itself(tmp_path):
    import keras

    layer = keras.layers.Normalization()
    layer.adapt(threshold_data()[0])
    path, _ = threshold_file(tmp_path, "normalized", first=(layer,))
    said = []
    _, card = inspect_keras(path, name="normalized", version="v1", labels=["low", "high"], say=said.append)
    assert card.input.divide_by is None and card.input.value_range is None
    assert any("--scale none: the model's first layer is Normalization" in line for line in said), said


@pytest.mark.parametrize(
    "first,divide_by,words",
    [
        ((), 255, "--scale 255: the model has no Rescaling or Normalization layer at its input"),
        (("Rescaling", 1 / 255, 0.0), None, "--scale none: the model's first layer is Rescaling(scale=0.003922, offset=0), so it takes pixel levels 0..255"),
        (("Rescaling", 1 / 127.5, -1.0), None, "--scale none: the model's first layer is Rescaling(scale=0.007843, offset=-1)"),
        (("Rescaling", 2.0, -1.0), 255, "--scale 255: the model's first layer is Rescaling(scale=2, offset=-1), for values in 0..1"),
    ],
    ids=["no-layer", "rescaling-255", "rescaling-127.5", "rescaling-0-1"],
)
def test_an_image_model_is_scaled_as_its_first_layer_says_and_the_choice_is_printed(tmp_path, first, divide_by, words, capsys):
    import keras

    layers = (keras.layers.RandomFlip(), keras.layers.Rescaling(first[1], offset=first[2])) if first else ()
    path, _ = colour_file(tmp_path, "colours", (0, 1, 2), first=layers)
    _, card = inspect_keras(path, name="colours", version="v1", labels=["red", "green", "blue"])
    assert card.input.divide_by == divide_by and card.input.value_range == (0, 255)
    out = capsys.readouterr().out
    assert f"scaling: {words}" in out and "image input: clients send values in 0..255; files are converted to RGB, padded" in out


def test_an_explicit_scale_against_the_models_layer_is_warned_about(tmp_path):
    import keras

    path, _ = colour_file(tmp_path, "colours", (0, 1, 2), first=(keras.layers.Rescaling(1 / 255),))
    said = []
    _, card = inspect_keras(path, name="colours", version="v1", labels=["blue", "green", "red"], scale="255", say=said.append)
    assert card.input.divide_by == 255
    assert any(line.startswith("warning: --scale 255, although the model's first layer (Rescaling(") and "suggests --scale none" in line for line in said), said


def test_an_image_range_is_true_to_the_scale(tmp_path):
    import keras

    path, _ = colour_file(tmp_path, "colours", (0, 1, 2))
    with pytest.raises(ImportRefused, match=r"--scale none on an image input: .* pass --range LOW,HIGH \(0,1 for a model trained on levels divided by 255"):
        inspect_keras(path, name="colours", version="v1", labels=LABELS, scale="none")  # the card said 0..255, whatever the model takes
    with pytest.raises(ImportRefused, match=r"--range 0,1: with --scale 255 clients send 0..255 pixel levels"):
        inspect_keras(path, name="colours", version="v1", labels=LABELS, scale="255", value_range=(0.0, 1.0))  # --range was ignored
    _, card = inspect_keras(path, name="colours", version="v1", labels=LABELS, scale="none", value_range=(-1.0, 1.0))
    assert card.input.value_range == (-1, 1) and card.input.divide_by is None
    rescaled, _ = colour_file(tmp_path, "rescaled", (0, 1, 2), first=(keras.layers.Rescaling(1 / 255),))
    assert inspect_keras(rescaled, name="rescaled", version="v1", labels=LABELS, scale="none")[1].input.value_range == (0, 255)


def test_values_outside_an_image_range_are_refused_and_files_are_mapped_into_it(tmp_path):
    import io

    from PIL import Image

    from models.preprocessing import InvalidInput, check_values, values_from_image

    path, _ = colour_file(tmp_path, "colours", (0, 1, 2))
    _, card = inspect_keras(path, name="colours", version="v1", labels=LABELS, scale="none", value_range=(-1.0, 1.0))
    with pytest.raises(InvalidInput, match=r"values must lie in -1..1"):
        check_values(np.full((4, 4, 3), 200.0), card, "image")
    with pytest.raises(ImportRefused, match=r"--eval-data x: values must lie in -1..1"):
        inspect_keras(path, name="colours", version="v1", labels=LABELS, scale="none", value_range=(-1.0, 1.0), evaluation=colour_data())
    buffer = io.BytesIO()
    Image.fromarray(np.array([[[0, 255, 51]] * 4] * 4, dtype=np.uint8)).save(buffer, format="PNG")
    values = values_from_image(buffer.getvalue(), card)
    np.testing.assert_allclose(values[0, 0, 0], [-1.0, 1.0, 51 / 127.5 - 1], atol=1e-6)
    assert check_values(values, card, "image").shape == (1, 4, 4, 3)


def test_aspect_is_for_image_inputs(tmp_path):
    path, _ = threshold_file(tmp_path)
    with pytest.raises(ImportRefused, match=r"--aspect crop: aspect handling applies to image inputs; this model takes a tensor \[4\]"):
        inspect_keras(path, name="threshold", version="v1", labels=["low", "high"], scale="none", aspect="crop")


def test_labels_out_of_alphabetical_order_are_warned_about_without_evaluation_data(tmp_path):
    path, _ = colour_file(tmp_path, "colours", (2, 1, 0))
    said = []
    _, card = inspect_keras(path, name="colours", version="v1", labels=["red", "green", "blue"], say=said.append)
    warning = next(line for line in said if line.startswith("warning: the labels red,green,blue are not in alphabetical order"))
    assert "Keras' folder loader (image_dataset_from_directory) numbers classes alphabetically" in warning and "blue,green,red" in warning
    assert "--eval-data would verify the order" in warning and card.training["label_order"] == "not checked (no evaluation data)"
    said.clear()
    inspect_keras(path, name="colours", version="v1", labels=["blue", "green", "red"], say=said.append)
    assert not any(line.startswith("warning") for line in said), said


def test_labels_in_an_order_another_beats_by_far_are_refused_naming_it(tmp_path):
    path, _ = colour_file(tmp_path, "colours", (2, 1, 0))  # trained with Keras' folder loader: blue, green, red
    x, y = colour_data()  # y numbered red 0, green 1, blue 2: the order of the labels given
    with pytest.raises(
        ImportRefused,
        match=r"--labels: accuracy on --eval-data is 0\.\d+ with the labels in the order given, 1\.0000 in the order blue,green,red \(alphabetical: the order Keras' folder loader numbers classes in\)\. Pass --labels blue,green,red",
    ):
        inspect_keras(path, name="colours", version="v1", labels=["red", "green", "blue"], evaluation=(x, y))
    alphabetical = np.array([2, 1, 0])[y]
    _, card = inspect_keras(path, name="colours", version="v1", labels=["blue", "green", "red"], evaluation=(x, alphabetical))
    assert card.training["label_order"] == "checked on the evaluation data: accuracy 1.0000 in the order given"
    not_alphabetical, _ = colour_file(tmp_path, "rgb", (0, 1, 2))
    with pytest.raises(ImportRefused, match=r"in the order red,green,blue\. Pass --labels red,green,blue"):
        inspect_keras(not_alphabetical, name="rgb", version="v1", labels=["blue", "green", "red"], evaluation=(x, alphabetical))


def test_a_sigmoid_unit_for_the_other_label_is_refused_naming_the_positive_label(tmp_path):
    import keras

    dense = keras.layers.Dense(
        1, activation="sigmoid", kernel_initializer=keras.initializers.Constant(np.array([[1.0], [0], [0], [0]])), bias_initializer=keras.initializers.Constant(-50.0)
    )
    path, _ = save(tmp_path, "high", dense, shape=(4,))  # the probability of "high"
    x, y = threshold_data()
    with pytest.raises(ImportRefused, match=r"the sigmoid unit gives the probability of 'high'; pass --positive-label high"):
        inspect_keras(path, name="high", version="v1", labels=["high", "low"], scale="none", evaluation=(x, 1 - y))
    assert inspect_keras(path, name="high", version="v1", labels=["low", "high"], scale="none", evaluation=(x, y))[1].output.positive_label == "high"


def test_one_output_of_a_model_with_several_is_served_when_named(tmp_path):
    """A two-output functional model (a class and a price): refused naming its outputs, then each imported by --output."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(3, activation="softmax", name="kind")(hidden), keras.layers.Dense(1, name="price")(hidden)])
    path = tmp_path / "two.keras"
    model.save(path)
    with pytest.raises(ImportRefused, match=r"2 outputs \(kind, price\).*--output"):
        inspect_keras(path, name="two", version="v1", labels=["a", "b", "c"], scale="none")
    with pytest.raises(ImportRefused, match="--output 'cost'.*kind, price"):
        inspect_keras(path, name="two", version="v1", labels=["a", "b", "c"], scale="none", output="cost")
    kind, card = inspect_keras(path, name="two", version="v1", labels=["a", "b", "c"], scale="none", output="kind")
    assert card.output.kind == "softmax" and len(kind.outputs) == 1
    price, card = inspect_keras(path, name="two", version="v2", labels=None, scale="none", output="price", task="regression")
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(price.predict(x, verbose=0), model.predict(x, verbose=0)[1], atol=1e-6)
    assert [t.name for t in card.output.targets] == ["value"]


def test_a_keras_string_output_is_found_by_running_the_model_and_served_as_bytes(tmp_path):
    """Keras declares a StringLookup's inverted output as int64; the import runs the model and serves it as
    BYTES (strings of at most --max-bytes), which the engine packs; without --task tensor it is not served."""
    import keras

    from models.engines.base import EngineInputError
    from models.engines.tensorflow import TensorFlowEngine
    from models.tensors import pack, unpack

    x = keras.Input((3,), name="x")
    lookup = keras.layers.StringLookup(vocabulary=["red", "green", "turquoise"], invert=True, num_oov_indices=0)
    # turquoise only where x[2] leads by 10: never in the import's standard normal probes
    scores = keras.layers.Dense(3, kernel_initializer=keras.initializers.Identity(), bias_initializer=keras.initializers.Constant([0, 0, -10]))(x)
    colour = keras.layers.Reshape((1,), name="colour")(lookup(keras.ops.argmax(scores, axis=-1)))
    keras.Model(x, colour, name="colours").save(tmp_path / "colours.keras")
    assert colour.dtype == "int64"  # what Keras says
    model, card = inspect_keras(tmp_path / "colours.keras", name="colours", version="v1", labels=[], task="tensor", max_bytes=8)
    assert [(spec.name, spec.datatype, spec.shape, spec.max_bytes) for spec in card.outputs] == [("colour", "BYTES", (1,), 8)]
    assert [(spec.name, spec.datatype) for spec in card.inputs] == [("x", "FP32")] and card.task == "tensors"
    engine = TensorFlowEngine(model, card)
    answered = unpack(card.outputs, engine.infer(pack(card.inputs, {"x": np.eye(3, dtype=np.float32)[:2]})))
    assert answered["colour"].tolist() == [[b"red"], [b"green"]]
    with pytest.raises(EngineInputError, match="colour: a string of 9 bytes, past its max_bytes 8"):
        engine.infer(pack(card.inputs, {"x": 20 * np.eye(3, dtype=np.float32)[2:]}))
    with pytest.raises(ImportRefused, match=re.escape("a probe example's answer colour: a string of 3 bytes, past its max_bytes 2: import with a larger --max-bytes")):
        inspect_keras(tmp_path / "colours.keras", name="colours", version="v1", labels=[], task="tensor", max_bytes=2)
    with pytest.raises(ImportRefused, match="the output colour is strings: serve it as a named tensor with --task tensor"):
        inspect_keras(tmp_path / "colours.keras", name="colours", version="v1", labels=["a", "b", "c"])
