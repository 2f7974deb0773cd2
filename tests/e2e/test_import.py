"""Bring your own model: a .keras file trained here, outside any recipe (32x32 colour, three classes),
goes through `train_and_save.py import` into the store and is served next to clothes by configuration.

The model learns which colour dominates an image (red, green or blue), so its answers can be checked.
A tabular model whose first layer is an adapted Normalization (its ONNX export cannot run: it serves on
TensorFlow) is imported and called with ``{"inputs": ...}``; what a new user got wrong without a word
(the scale, an image's value range, the aspect, the label order) is said or refused.
"""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
import requests
from PIL import Image

from models import store
from tests.e2e.conftest import CLOTHES, ROOT, assert_error, clothes, free_port, ready_server, write_config

TIMEOUT = 30
NAME = "shapes"
LABELS = ["red", "green", "blue"]
SIDE = 32
TABULAR = "readings"
FEATURES = 8


def colour_images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy 32x32 RGB images, each with one channel brighter than the others; the label is that channel."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    images = rng.integers(0, 120, (count, SIDE, SIDE, 3))
    images[np.arange(count), :, :, labels] += 120
    return images.astype(np.uint8), labels


def import_model(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train_and_save.py"), "import", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory) -> tuple:
    """A small CNN trained for a few seconds, saved as .keras, with 300 held-out examples as .npz."""
    import keras

    keras.utils.set_random_seed(3)
    tmp = tmp_path_factory.mktemp("byo")
    x, y = colour_images(1200, seed=1)
    model = keras.Sequential(
        [
            keras.Input((SIDE, SIDE, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ],
        name="colour_net",
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x / 255.0, y, epochs=4, batch_size=64, verbose=0)
    path = tmp / "colour_net.keras"
    model.save(path)
    x_eval, y_eval = colour_images(300, seed=2)
    evaluation = tmp / "held_out.npz"
    np.savez(evaluation, x=x_eval, y=y_eval)
    return path, evaluation, tmp


@pytest.mark.parametrize(
    "args,message",
    [
        (["--labels", "red,green"], "output has 3 unit(s), but 2 labels were given"),
        (["--labels", "red"], "at least two labels"),
        (["--labels", "red,green,blue", "--name", "Shapes"], "--name 'Shapes'"),
        (["--labels", "red,green,blue", "--kind", "tensor", "--eval-data", "missing.npz"], "--eval-data missing.npz"),
    ],
)
def test_mismatches_stop_the_import_and_save_nothing(keras_file, args, message):
    path, _, _ = keras_file
    arguments = [str(path), "--name", NAME, "--version", "bad", *args] if "--name" not in args else [str(path), "--version", "bad", *args]
    result = import_model(*arguments)
    assert result.returncode == 1 and message in result.stderr and "nothing was saved" in result.stderr, result.stderr[-2000:]
    assert not store.exists(NAME, "bad") and not store.exists("Shapes", "bad")


def test_a_file_that_is_not_a_keras_model_is_refused(tmp_path):
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a model")
    result = import_model(str(junk), "--name", NAME, "--version", "junk", "--labels", "a,b")
    assert result.returncode == 1 and "is not a Keras model" in result.stderr
    assert not store.exists(NAME, "junk")


@pytest.fixture(scope="module")
def imported(keras_file, trained_versions, tmp_path_factory):
    path, evaluation, _ = keras_file
    labels = tmp_path_factory.mktemp("labels") / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    result = import_model(
        str(path),
        "--name",
        NAME,
        "--version",
        "v1",
        "--labels",
        str(labels),
        "--scale",
        "255",
        "--description",
        "which colour dominates",
        "--eval-data",
        str(evaluation),
        "--force",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def readings(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of 8 readings in 0..100; the label is whether the first one is above 50."""
    x = np.random.default_rng(seed).uniform(0, 100, (count, FEATURES)).astype(np.float32)
    return x, (x[:, 0] > 50).astype(np.int64)


@pytest.fixture(scope="module")
def tabular_file(tmp_path_factory) -> tuple:
    """A tabular model that normalizes its readings itself (an adapted Normalization layer), then answers
    from the first one, with 200 held-out rows as .npz; and the same network without the layer."""
    import keras

    tmp = tmp_path_factory.mktemp("tabular")
    x, _ = readings(500, seed=1)
    kernel = np.zeros((FEATURES, 2))
    kernel[0] = [-8.0, 8.0]
    normalization = keras.layers.Normalization()
    normalization.adapt(x)
    dense = {"activation": "softmax", "kernel_initializer": keras.initializers.Constant(kernel), "bias_initializer": "zeros"}
    model = keras.Sequential([keras.Input((FEATURES,)), normalization, keras.layers.Dense(2, **dense)], name="readings_net")
    model.save(tmp / "readings.keras")
    threshold = {"activation": "softmax", "kernel_initializer": keras.initializers.Constant(kernel / 8), "bias_initializer": keras.initializers.Constant([50.0, -50.0])}
    plain = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(2, **threshold)], name="plain_net")  # the same on raw readings
    plain.save(tmp / "plain.keras")
    x_eval, y_eval = readings(200, seed=2)
    np.savez(tmp / "readings.npz", x=x_eval, y=y_eval)
    return tmp / "readings.keras", tmp / "readings.npz", tmp / "plain.keras"


@pytest.fixture(scope="module")
def tabular_imported(tabular_file):
    """Imported without --scale: the model's Normalization layer decides it."""
    path, evaluation, _ = tabular_file
    result = import_model(str(path), "--name", TABULAR, "--version", "v1", "--labels", "low,high", "--eval-data", str(evaluation), "--force")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def ranged_imported(keras_file):
    """The colour model, taking values in 0..1 (--scale none --range 0,1), stretched, without evaluation data."""
    path, _, _ = keras_file
    result = import_model(str(path), "--name", NAME, "--version", "v2", "--labels", ",".join(LABELS), "--scale", "none", "--range", "0,1", "--aspect", "stretch", "--force")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def byo_server(imported, tabular_imported, ranged_imported, trained_versions, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("byo-serve")
    models = {
        CLOTHES: clothes(["v1"], {"stable": "v1"}),
        NAME: {"versions": ["v1", "v2"], "aliases": {"stable": "v1"}},
        TABULAR: {"versions": ["v1"], "aliases": {"stable": "v1"}},
    }
    with ready_server(write_config(tmp / "configuration.yaml", models), free_port(), tmp / "serve.log") as srv:
        yield srv


def test_import_writes_the_card_from_the_model_itself(imported):
    card = store.load_card(NAME, "v1")
    assert card.input.shape == (SIDE, SIDE, 3) and card.input.kind == "image" and card.input.divide_by == 255
    assert card.preprocessing.colour_mode == "RGB" and card.output.kind == "softmax" and list(card.labels) == LABELS
    assert card.number_of_parameters == 3 * 3 * 3 * 4 + 4 + 4 * 3 + 3 and card.architecture == "colour_net"
    assert card.metrics["accuracy"] > 0.8 and card.metrics["test_images"] == 300  # it learned the colours
    assert card.description == "which colour dominates" and card.training["imported_from"] == "colour_net.keras"
    assert set(card.files) == {"report.html", "reference.json", "model.onnx"} and card.slices["images"] == 300
    assert {"tensorflow", "onnxruntime"} <= set(card.engines)  # the import verified an ONNX export too


def test_the_imported_model_is_served_next_to_clothes(byo_server):
    url = byo_server.url
    assert {m["name"] for m in requests.get(f"{url}/models", timeout=TIMEOUT).json()["models"]} == {CLOTHES, NAME, TABULAR}
    info = requests.get(f"{url}/models/{NAME}/stable", timeout=TIMEOUT).json()
    assert info["input"]["shape"] == [SIDE, SIDE, 3] and info["output"]["labels"] == LABELS
    images, labels = colour_images(20, seed=9)
    body = requests.post(f"{url}/models/{NAME}/v1", json={"images": images.tolist()}, timeout=TIMEOUT).json()
    assert np.mean([p["label"] == LABELS[y] for p, y in zip(body["predictions"], labels, strict=True)]) >= 0.8
    assert requests.post(f"{url}/models/{CLOTHES}/v1", json={"image": [[0] * 28] * 28}, timeout=TIMEOUT).status_code == 200


def test_an_uploaded_photo_of_any_size_is_resized_for_it(byo_server):
    photo = np.zeros((300, 200, 3), dtype=np.uint8)
    photo[..., 2] = 230  # a blue photo, portrait
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="JPEG")
    response = requests.post(f"{byo_server.url}/models/{NAME}/v1", files={"image": ("blue.jpg", buffer.getvalue(), "image/jpeg")}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["label"] == "blue"


def test_its_errors_speak_of_its_own_shape(byo_server):
    assert_error(requests.post(f"{byo_server.url}/models/{NAME}/v1", json={"image": [[0] * 28] * 28}, timeout=TIMEOUT), 422, "32x32x3")
    raw = requests.post(f"{byo_server.url}/models/{NAME}/v1", data=b"\0" * 784, headers={"content-type": "application/octet-stream"}, timeout=TIMEOUT)
    assert_error(raw, 422, "multiple of 3072 bytes")


def test_report_and_drift_come_from_its_evaluation_data(byo_server):
    report = requests.get(f"{byo_server.url}/models/{NAME}/v1/report", timeout=TIMEOUT)
    assert report.status_code == 200 and f"{NAME}:v1 evaluation report" in report.text and "green" in report.text
    drift = requests.get(f"{byo_server.url}/models/{NAME}/v1/drift", timeout=TIMEOUT).json()
    assert drift["reference_images"] == 300 and len(drift["class_shares"]["reference"]) == 3


def test_a_normalization_layer_is_imported_and_served_on_tensorflow(tabular_imported, tabular_file):
    """It crashed with ONNX Runtime's traceback and stored nothing; it needed no --scale either."""
    out = tabular_imported.stdout
    assert "scaling: --scale none, from --eval-data: accuracy on --eval-data 0." in out and "1.0000 with --scale none (the model's first layer is Normalization" in out, out
    assert "ONNX export not stored (the ONNX export failed: " in out and f"{TABULAR}:v1 serves with TensorFlow" in out, out
    card = store.load_card(TABULAR, "v1")
    assert card.engines["onnxruntime"]["reason"].startswith("the ONNX export failed: ") and card.engines["tensorflow"] == {"file": "model.keras"}
    assert card.input.kind == "tensor" and card.input.divide_by is None and card.input.value_range is None
    assert "model.onnx" not in card.files and {"report.html", "reference.json"} <= set(card.files) and card.metrics["accuracy"] > 0.9
    assert card.training["scaling"].startswith("--scale none, from --eval-data") and "Normalization" in card.training["scaling"]


def test_a_tabular_model_answers_inputs_as_keras_does(byo_server, tabular_file):
    import keras

    versions = requests.get(f"{byo_server.url}/models/{TABULAR}", timeout=TIMEOUT).json()["versions"]
    assert [(v["version"], v["engine"]) for v in versions] == [("v1", "tensorflow")]
    rows, labels = readings(16, seed=5)
    response = requests.post(f"{byo_server.url}/models/{TABULAR}/v1", json={"inputs": rows.tolist()}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    expected = keras.models.load_model(tabular_file[0]).predict(rows, verbose=0)
    np.testing.assert_allclose(response.json()["result"], expected, atol=1e-5)
    one = requests.post(f"{byo_server.url}/models/{TABULAR}/v1", json={"input": rows[0].tolist()}, timeout=TIMEOUT).json()
    assert one["predictions"][0]["label"] == ["low", "high"][labels[0]]


def test_a_tabular_model_without_a_scaling_layer_needs_the_scale(tabular_file):
    _, evaluation, plain = tabular_file
    result = import_model(str(plain), "--name", TABULAR, "--version", "unscaled", "--labels", "low,high")  # it was stored dividing by 255
    assert result.returncode == 1 and "--scale: how client values become the model's input cannot be read from this model" in result.stderr, result.stderr[-2000:]
    assert "--scale none (clients send the values the model takes, as they are" in result.stderr and "nothing was saved" in result.stderr
    assert not store.exists(TABULAR, "unscaled")
    result = import_model(str(plain), "--name", TABULAR, "--version", "unscaled", "--labels", "low,high", "--scale", "255", "--eval-data", str(evaluation))
    assert result.returncode == 1 and "--scale 255: accuracy on --eval-data" in result.stderr and "Pass --scale none" in result.stderr, result.stderr[-2000:]
    assert not store.exists(TABULAR, "unscaled")


def test_an_image_range_and_aspect_reach_the_card(ranged_imported):
    card = store.load_card(NAME, "v2")
    assert card.input.value_range == (0, 1) and card.input.divide_by is None and card.preprocessing.aspect == "stretch"
    out = ranged_imported.stdout
    assert "image input: clients send values in 0..1; files are converted to RGB, stretched to the input's proportions" in out, out
    assert "warning: the labels red,green,blue are not in alphabetical order. Keras' folder loader (image_dataset_from_directory)" in out
    assert "its order is blue,green,red. --eval-data would verify the order" in out


def test_an_image_range_is_enforced_and_files_are_mapped_into_it(byo_server):
    url = f"{byo_server.url}/models/{NAME}/v2"
    images, labels = colour_images(10, seed=9)
    response = requests.post(url, json={"images": (images / 255.0).round(3).tolist()}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    body = response.json()
    assert np.mean([p["label"] == LABELS[y] for p, y in zip(body["predictions"], labels, strict=True)]) >= 0.8
    assert_error(requests.post(url, json={"images": images[:1].tolist()}, timeout=TIMEOUT), 422, "values must lie in 0..1")  # 0..255 was accepted
    photo = np.zeros((300, 200, 3), dtype=np.uint8)
    photo[..., 2] = 230
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="PNG")
    response = requests.post(url, files={"image": ("blue.png", buffer.getvalue(), "image/png")}, timeout=TIMEOUT)
    assert response.status_code == 200 and response.json()["predictions"][0]["label"] == "blue", response.text


def test_an_image_model_imported_with_scale_none_needs_its_range(keras_file):
    result = import_model(str(keras_file[0]), "--name", NAME, "--version", "norange", "--labels", ",".join(LABELS), "--scale", "none")
    assert result.returncode == 1 and "--scale none on an image input" in result.stderr and "pass --range LOW,HIGH" in result.stderr, result.stderr[-2000:]
    assert not store.exists(NAME, "norange")


def test_labels_in_the_wrong_order_are_refused_naming_the_right_one(keras_file, tmp_path):
    """Evaluation data numbered alphabetically (blue 0, green 1, red 2), as Keras' folder loader would,
    for a model whose outputs are red, green, blue."""
    path, evaluation, _ = keras_file
    with np.load(evaluation) as arrays:
        np.savez(tmp_path / "alphabetical.npz", x=arrays["x"], y=np.array([2, 1, 0])[arrays["y"]])
    result = import_model(str(path), "--name", NAME, "--version", "order", "--labels", "blue,green,red", "--eval-data", str(tmp_path / "alphabetical.npz"))
    assert result.returncode == 1 and "with the labels in the order given" in result.stderr and "Pass --labels red,green,blue" in result.stderr, result.stderr[-2000:]
    assert not store.exists(NAME, "order")


def test_the_import_help_names_the_aspect_of_keras_folder_loader():
    result = subprocess.run([sys.executable, str(ROOT / "train_and_save.py"), "import", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    help_text = " ".join(result.stdout.split())
    assert "--aspect {pad,stretch,crop}" in help_text and "image_dataset_from_directory" in help_text and "saw stretched images: pass stretch" in help_text
