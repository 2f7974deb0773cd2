import numpy as np

from models import training
from models.data import load_fashion_mnist
from models.specs import CLASS_NAMES


def tiny_run(seed=7):
    data = load_fashion_mnist(allow_download=False)
    recipe = training.recipe_for("v1", epochs=1, seed=seed)
    return training.train(data, recipe, train_limit=600, test_limit=200, verbose=0), data


def test_same_seed_same_model_and_metrics():
    first, _ = tiny_run()
    second, _ = tiny_run()
    for a, b in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert first.metrics == second.metrics


def test_metadata_counts_and_describes_the_model():
    run, data = tiny_run()
    meta = training.metadata(run, data, slices={"overall": 0.5})
    assert meta["number_of_parameters"] == 44_426 == run.model.count_params()
    assert meta["class_names"] == list(CLASS_NAMES) and meta["input_spec"]["shape"] == [28, 28, 1]
    assert meta["training"]["train_images"] == 600 and meta["training"]["epochs"] == 1 and meta["training"]["seed"] == 7
    assert meta["metrics"]["test_images"] == 200 and sum(map(sum, meta["metrics"]["confusion_matrix"])) == 200
    assert set(meta["history"]) >= {"accuracy", "val_accuracy", "loss", "val_loss"}
    assert meta["data"]["sha256"] == data.fingerprint and meta["slices"] == {"overall": 0.5}
