import logging

import numpy as np
import pytest

from models import store
from models.architectures import build
from models.inference import Predictor


def test_major_mismatch_is_refused():
    with pytest.raises(store.VersionMismatch, match="keras 2.15.0 cannot be loaded by keras 3.15.0"):
        store.check_versions({"keras": "2.15.0"}, {"keras": "3.15.0"})


def test_minor_mismatch_warns():
    warnings = store.check_versions({"tensorflow": "2.20.0", "keras": "3.15.1"}, {"tensorflow": "2.21.0", "keras": "3.15.0"})
    assert warnings == ["model saved with tensorflow 2.20.0, running 2.21.0: minor versions differ"]


def test_save_load_round_trip_and_overwrite_guard(caplog):
    model = build("lenet5")
    saved = store.save("unit-test", model, {"description": "round trip"})
    assert saved.info.metadata["framework_versions"] == store.framework_versions()
    with pytest.raises(store.ModelStoreError, match="already exists"):
        store.save("unit-test", model, {})
    store.save("unit-test", model, {"description": "replaced"}, force=True)
    loaded, info = store.load("unit-test")
    assert info["description"] == "replaced" and info["tag"] == "clothes:unit-test"
    x = np.random.default_rng(0).integers(0, 256, (3, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(Predictor(loaded)(x), model.predict(x[..., None] / 255, verbose=0), atol=1e-5)


def test_load_refuses_a_model_from_another_major_version():
    import bentoml

    store.save("old-keras", build("lenet5"), {})
    stored = bentoml.models.get("clothes:old-keras")
    stored.info.metadata["framework_versions"] = {"keras": "2.15.0"}
    with pytest.raises(store.VersionMismatch, match="major versions differ"):
        store.load("old-keras", stored)


def test_missing_version_says_how_to_train_it():
    with pytest.raises(store.ModelStoreError, match="train_and_save.py --version v99"):
        store.load("v99")


def test_check_finds_a_missing_or_damaged_model_without_loading_it():
    import zipfile

    import bentoml

    store.save("checked", build("lenet5"), {}, force=True)
    store.check("checked")
    path = bentoml.models.get("clothes:checked").path_of(store.MODEL_FILE)
    with zipfile.ZipFile(path) as archive:
        weights = archive.getinfo("model.weights.h5")
    data = bytearray(open(path, "rb").read())
    data[weights.header_offset + 30 + len(weights.filename) + weights.compress_size // 2] ^= 0xFF  # inside the stored weights
    open(path, "wb").write(bytes(data))
    with pytest.raises(store.ModelStoreError, match="clothes:checked cannot be loaded: model.keras is damaged: model.weights.h5 fails its checksum"):
        store.check("checked")
    open(path, "wb").write(b"not a keras archive")
    with pytest.raises(store.ModelStoreError, match="not a readable Keras archive"):
        store.check("checked")
    with pytest.raises(store.ModelStoreError, match="clothes:v98 is not in the model store; train it with train_and_save.py --version v98"):
        store.check("v98")
