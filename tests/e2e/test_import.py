"""Bring your own model: a .keras file trained here, outside any recipe (32x32 colour, three classes),
goes through `train_and_save.py import` into the store and is served next to clothes by configuration.

The model learns which colour dominates an image (red, green or blue), so its answers can be checked.
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


@pytest.fixture(scope="module")
def byo_server(imported, trained_versions, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("byo-serve")
    models = {CLOTHES: clothes(["v1"], {"stable": "v1"}), NAME: {"versions": ["v1"], "aliases": {"stable": "v1"}}}
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
    assert {m["name"] for m in requests.get(f"{url}/models", timeout=TIMEOUT).json()["models"]} == {CLOTHES, NAME}
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
