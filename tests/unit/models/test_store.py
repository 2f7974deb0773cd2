"""models/store.py: a model and its card saved together in BentoML's store, checked and read back."""

import json
import re
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import bentoml
import numpy as np
import pytest

from models import store
from models.card import ModelCard
from models.engines import TensorFlowEngine
from models.preprocessing import to_model_input
from tests.conftest import ROOT
from tests.unit.cards import clothes_card, colour_card, keras_model_for, sigmoid_card


def saved(card, **kwargs):
    """``card`` saved with a tiny network of its shape; the card as saved (with the real parameter count)."""
    model = keras_model_for(card)
    card = card.model_copy(update={"number_of_parameters": model.count_params(), "framework_versions": store.framework_versions()})
    store.save(card, model, **kwargs)
    return card, model


def test_major_mismatch_is_refused():
    with pytest.raises(store.VersionMismatch, match="keras 2.15.0 cannot be loaded by keras 3.15.0"):
        store.check_versions({"keras": "2.15.0"}, {"keras": "3.15.0"})


def test_minor_mismatch_warns():
    warnings = store.check_versions({"tensorflow": "2.20.0", "keras": "3.15.1"}, {"tensorflow": "2.21.0", "keras": "3.15.0"})
    assert warnings == ["model saved with tensorflow 2.20.0, running 2.21.0: minor versions differ"]
    assert store.check_versions({"tensorflow": "2.21.0rc1"}, {"keras": "3.15.0"}) == []  # not installed: nothing to compare


def test_save_load_round_trip_and_overwrite_guard():
    card, model = saved(colour_card(name="store-test", version="round-trip"), files={"report.html": "<html>first</html>"})
    assert store.exists("store-test", "round-trip") and store.tag("store-test", "round-trip") == "store-test:round-trip"
    assert store.load_card("store-test", "round-trip") == card.model_copy(update={"files": ("report.html",)})
    with pytest.raises(store.ModelStoreError, match="store-test:round-trip already exists in the store; pass --force"):
        store.save(card, model)
    replaced = card.model_copy(update={"description": "replaced"})
    store.save(replaced, model, files={"reference.json": b"{}", "report.html": "<html>second</html>"}, force=True)
    stored = store.get("store-test", "round-trip")
    assert store.load_card("store-test", "round-trip").description == "replaced"
    assert store.load_card("store-test", "round-trip").files == ("reference.json", "report.html")
    assert store.read_file(stored, "report.html") == b"<html>second</html>" and store.read_file(stored, "absent.txt") is None
    assert stored.info.labels == {"framework": "keras", "task": "image-classification"}

    loaded = store.load_keras("store-test", "round-trip")
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(TensorFlowEngine(loaded, card)(x), model.predict(to_model_input(x, card.input), verbose=0), atol=1e-5)


def test_versions_oldest_first_and_only_of_that_name():
    for version in ("b2", "a1", "c3"):
        saved(sigmoid_card(name="store-order", version=version))
    saved(sigmoid_card(name="store-order-other", version="z9"))
    assert store.versions("store-order") == ["b2", "a1", "c3"]
    assert not store.exists("store-order", "z9")


def test_a_name_with_no_versions_has_none():
    assert store.versions("store-absent") == []


def test_load_refuses_a_model_from_another_major_version():
    saved(clothes_card(name="store-test", version="old-keras"))
    stored = bentoml.models.get("store-test:old-keras")
    document = json.loads(stored.info.metadata["card"])
    document["framework_versions"] = {"keras": "2.15.0"}
    stored.info.metadata["card"] = json.dumps(document)
    with pytest.raises(store.VersionMismatch, match="major versions differ"):
        store.load_keras("store-test", "old-keras", stored)


def test_missing_version_says_how_to_train_or_import_it():
    message = "clothes:v99 is not in the model store; train it with train_and_save.py train clothes v99 (a model with a recipe), or import it with train_and_save.py import FILE --name clothes --version v99"
    for call in (store.load_card, store.load_keras, store.check, store.get):
        with pytest.raises(store.ModelStoreError, match=re.escape(message)):
            call("clothes", "v99")
    assert not store.exists("clothes", "v99") and not store.is_current("clothes", "v99")


def test_a_model_without_a_card_is_named_and_explained():
    with bentoml.models.create("store-test:no-card", metadata={"description": "saved by an older train_and_save.py"}):
        pass
    with pytest.raises(store.ModelStoreError, match="store-test:no-card: the stored model has no card"):
        store.load_card("store-test", "no-card")
    with pytest.raises(store.ModelStoreError, match="no card"):
        store.check("store-test", "no-card")
    assert store.exists("store-test", "no-card") and not store.is_current("store-test", "no-card")


def test_check_finds_a_missing_or_damaged_model_without_loading_it():
    card, _ = saved(clothes_card(name="store-test", version="checked"))
    assert store.check("store-test", "checked") == card and store.is_current("store-test", "checked")
    path = bentoml.models.get("store-test:checked").path_of(store.MODEL_FILE)
    with zipfile.ZipFile(path) as archive:
        weights = archive.getinfo("model.weights.h5")
    data = bytearray(open(path, "rb").read())
    data[weights.header_offset + 30 + len(weights.filename) + weights.compress_size // 2] ^= 0xFF  # inside the stored weights
    open(path, "wb").write(bytes(data))
    with pytest.raises(store.ModelStoreError, match="store-test:checked cannot be loaded: model.keras is damaged: model.weights.h5 fails its checksum"):
        store.check("store-test", "checked")
    open(path, "wb").write(b"not a keras archive")
    with pytest.raises(store.ModelStoreError, match="not a readable Keras archive"):
        store.check("store-test", "checked")
    with pytest.raises(store.ModelStoreError, match="could not be loaded"):
        store.load_keras("store-test", "checked")


def test_check_refuses_a_card_recorded_with_another_major_version():
    card = clothes_card(name="store-test", version="keras2")
    model = keras_model_for(card)
    store.save(card.model_copy(update={"framework_versions": {"keras": "2.15.0"}}), model)
    with pytest.raises(store.VersionMismatch, match="keras 2.15.0 cannot be loaded"):
        store.check("store-test", "keras2")


def test_the_card_is_stored_as_json_in_the_metadata():
    card, _ = saved(colour_card(name="store-test", version="metadata", metrics=None))
    metadata = bentoml.models.get("store-test:metadata").info.metadata
    assert ModelCard.model_validate_json(metadata["card"]) == card and metadata["card_format"] == card.format


def test_an_unreadable_model_yaml_names_its_cause():
    """BentoML's own error says only "While structuring ModelInfo (1 sub-exception)"; ours names the cause.

    Read in a fresh process: this one's BentoML keeps the info of the model it just created."""
    with bentoml.models.create("store-test:bad-yaml", metadata={"card_format": 1}):
        pass
    yaml_path = bentoml.models.get("store-test:bad-yaml").path_of("model.yaml")
    with open(yaml_path) as f:
        text = f.read()
    with open(yaml_path, "w") as f:
        f.write(re.sub(r"(?m)^creation_time:.*$", "creation_time: yesterday", text))
    read = subprocess.run(
        [sys.executable, "-c", "from models import store\ntry:\n    store.get('store-test', 'bad-yaml')\nexcept store.ModelStoreError as exc:\n    print(exc)"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert read.stdout.strip() == "store-test:bad-yaml: its model.yaml cannot be read: While structuring ModelInfo: ValueError: Invalid isoformat string: 'yesterday'", read.stderr


def test_a_version_that_is_its_onnx_file_alone_is_saved_checked_and_run_without_keras(tmp_path):
    from tests.unit.training.test_onnx_import import linear
    from training.onnx_import import inspect_onnx

    card, content = inspect_onnx(linear(tmp_path / "net.onnx"), "store-onnx", "v1", ["a", "b", "c"])
    with pytest.raises(store.ModelStoreError, match="a Keras model or an ONNX file"):
        store.save(card, None, {}, force=True)
    stored = store.save(card, None, {store.ONNX_FILE: content}, force=True)
    assert not store.has_keras(card) and store.check("store-onnx", "v1") == card.model_copy(update={"files": (store.ONNX_FILE,)})
    assert stored.info.labels["framework"] == "onnx" and not (tmp_path / stored.path_of(store.MODEL_FILE)).exists()
    from models import engines

    assert engines.choose(card, "tensorflow") == "onnxruntime"  # configured for TensorFlow: it has no Keras model
    engine = engines.load(stored, card, preferred="tensorflow")
    assert engine.name == "onnxruntime" and engine(np.zeros((2, 4), np.float32)).shape == (2, 3)
    with open(stored.path_of(store.ONNX_FILE), "r+b") as f:
        f.seek(10)
        f.write(b"\xff")
    with pytest.raises(store.ModelStoreError, match="model.onnx is damaged.*import it again"):
        store.check("store-onnx", "v1")


STORE_CALLS = {
    "get": lambda archive: store.get("lock-test", "locked"),
    "versions": lambda archive: store.versions("lock-test"),
    "export_archive": lambda archive: store.export_archive("lock-test", "locked", archive.parent / "again"),
    "import_archive": lambda archive: store.import_archive(archive, force=True),
    "save": lambda archive: store.save(store.load_card("lock-test", "locked").model_copy(update={"version": "locked-copy"}), None, {store.ONNX_FILE: b"x"}, force=True),
}


def held_elsewhere(lock) -> bool:
    """Whether another thread holds ``lock`` (asked from a thread of its own, as a re-entrant lock is)."""
    free = []
    probe = threading.Thread(target=lambda: free.append(lock.acquire(blocking=False)) or (free[0] and lock.release()))
    probe.start()
    probe.join()
    return not free[0]


@pytest.mark.parametrize("call", list(STORE_CALLS))
def test_every_bentoml_store_call_holds_the_store_lock(call, tmp_path, monkeypatch):
    """BentoML's metadata check fails on a half-imported scipy.sparse (a replica's fetch of a version met
    one in CI while the drift monitor imported scipy): each call into BentoML's store holds the lock that
    store.import_module takes."""
    saved(colour_card(name="lock-test", version="locked"), force=True)
    archive = Path(store.export_archive("lock-test", "locked", tmp_path / "exported"))
    calls: list[tuple[str, bool]] = []
    for name in ("get", "list", "create", "delete", "export_model", "import_model"):
        original = getattr(bentoml.models, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            calls.append((_name, held_elsewhere(store._STORE_LOCK)))
            return _original(*args, **kwargs)

        monkeypatch.setattr(bentoml.models, name, spy)
    STORE_CALLS[call](archive)
    assert calls and all(held for _, held in calls), calls
