"""Out-of-distribution scores: how unlike the held-out data an example is, per example, from what each
version stores (its reference statistics, lifecycle/reference.py) and what it answered.

Higher is less familiar. Each score is a function ``score(values, probabilities, reference) -> (N,)``
in :data:`SCORES`, its one registry; ``bench/ood.py`` measures each one's AUROC against the recipes'
shifts and the other data set, and the configuration names the one a model uses (``models.<name>.ood``).

==================  ==========================================================  ====================
score               per example                                                 needs
==================  ==========================================================  ====================
``max_softmax``     1 - the top class probability (Hendrycks and Gimpel, 2017)  the answer only
``entropy``         entropy of the class probabilities, over log(classes)       the answer only
``pixel_distance``  mean squared z-score of its values against the held-out     the reference's
                    per-value mean and standard deviation (a diagonal Gaussian)   ``pixels``
==================  ==========================================================  ====================

    >>> reference = reference_of(json.loads(stored_reference_json), card)
    >>> SCORES["pixel_distance"](values, probabilities, reference)
    array([0.61, 7.9], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.card import ModelCard

STD_FLOOR = 0.05  # of the value range: a value that never varied in the held-out data must not divide by zero


def reference_of(stored: dict | None, card: ModelCard) -> dict | None:
    """What the scores need of a stored reference (reference.json, parsed), as arrays; None without one."""
    if not stored:
        return None
    pixels = stored.get("pixels")
    reference: dict = {"scale": float(card.input.value_range[1]) if card.input.value_range else 1.0}
    if pixels:
        reference["mean"] = np.asarray(pixels["mean"], dtype=np.float32).reshape(card.input.shape)
        reference["inverse_std"] = (1.0 / (np.asarray(pixels["std"], dtype=np.float32) + STD_FLOOR)).reshape(card.input.shape)
    confidence = stored.get("confidence", {}).get("values")
    if confidence:
        reference["held_out_max_softmax"] = 1.0 - np.asarray(confidence, dtype=np.float32)
    return reference


def max_softmax(values: np.ndarray, probabilities: np.ndarray, reference: dict | None) -> np.ndarray:
    return (1.0 - probabilities.max(axis=1)).astype(np.float32)


def entropy(values: np.ndarray, probabilities: np.ndarray, reference: dict | None) -> np.ndarray:
    p = np.clip(probabilities.astype(np.float32), 1e-12, 1.0)
    return (-(p * np.log(p)).sum(axis=1) / np.log(p.shape[1])).astype(np.float32)


def pixel_distance(values: np.ndarray, probabilities: np.ndarray, reference: dict | None) -> np.ndarray:
    if reference is None or "mean" not in reference:
        raise ValueError("pixel_distance needs the reference's per-value statistics (pixels); retrain the version, or import it with evaluation data")
    shape = reference["mean"].shape
    z = (np.asarray(values, dtype=np.float32).reshape(len(values), *shape) / reference["scale"] - reference["mean"]) * reference["inverse_std"]
    return np.square(z).reshape(len(values), -1).mean(axis=1)


Score = Callable[[np.ndarray, np.ndarray, dict | None], np.ndarray]
SCORES: dict[str, Score] = {"max_softmax": max_softmax, "entropy": entropy, "pixel_distance": pixel_distance}


def needs_reference(name: str) -> bool:
    return name == "pixel_distance"
