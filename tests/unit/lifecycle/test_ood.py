"""Out-of-distribution scores (lifecycle/ood.py) and how an answer carries them (serving/schemas.py)."""

from __future__ import annotations

import numpy as np
import pytest

from config import OodSettings
from lifecycle.ood import SCORES, reference_of
from serving.registry import OodScorer
from serving.schemas import prediction_body
from tests.unit.serving.conftest import make_card

CARD = make_card("grey", "v1", shape=(4, 4, 1))


def stored(mean=0.5, std=0.1) -> dict:
    return {"pixels": {"mean": [[[mean]] * 4] * 4, "std": [[[std]] * 4] * 4}, "confidence": {"values": [0.9, 0.8]}}


def test_pixel_distance_is_the_mean_squared_z_score_with_a_floor_on_the_spread():
    reference = reference_of(stored(), CARD)
    values = np.full((2, 4, 4), 0.5 * 255, dtype=np.float32)
    values[1] = 0.8 * 255  # 0.3 above the mean: z = 0.3 / (0.1 + 0.05) = 2
    scores = SCORES["pixel_distance"](values, np.zeros((2, 3)), reference)
    assert scores == pytest.approx([0.0, 4.0], abs=1e-5)


def test_softmax_scores_rise_as_the_answer_spreads():
    probabilities = np.asarray([[0.98, 0.01, 0.01], [1 / 3, 1 / 3, 1 / 3]], dtype=np.float32)
    assert SCORES["max_softmax"](None, probabilities, None) == pytest.approx([0.02, 2 / 3], abs=1e-6)
    assert SCORES["entropy"](None, probabilities, None)[1] == pytest.approx(1.0, abs=1e-5)
    assert SCORES["entropy"](None, probabilities, None)[0] < 0.15


def test_a_version_without_pixel_statistics_gets_no_pixel_score_but_a_softmax_one():
    assert OodScorer.of(CARD, None, OodSettings()) is None
    assert OodScorer.of(CARD, stored(), OodSettings(enabled=False)) is None
    scorer = OodScorer.of(CARD, None, OodSettings(score="max_softmax", abstain_above=0.5))
    scores, abstained = scorer(None, np.asarray([[0.9, 0.05, 0.05], [0.4, 0.3, 0.3]]))
    assert abstained.tolist() == [False, True]


def test_an_abstention_has_no_class_and_no_label():
    probabilities = np.asarray([[0.9, 0.05, 0.05], [0.4, 0.3, 0.3]], dtype=np.float32)
    body = prediction_body(CARD, probabilities, np.asarray([0.1, 0.6]), np.asarray([False, True]))
    assert body["predictions"][0] == {"class_id": 0, "label": "a", "confidence": pytest.approx(0.9), "ood_score": 0.1, "abstained": False}
    assert body["predictions"][1]["class_id"] is None and body["predictions"][1]["label"] is None and body["predictions"][1]["abstained"] is True
    assert "ood_score" not in prediction_body(CARD, probabilities)["predictions"][0]


def test_an_unknown_score_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown score 'mahalanobis'; scores: max_softmax, entropy, pixel_distance"):
        OodSettings(score="mahalanobis")
