"""lifecycle/report.py: the evaluation report page of a version, for a grey and a colour model."""

from html import escape as html_escape

import numpy as np
import pytest

from lifecycle.report import evaluation_report
from lifecycle.slices import default_shifts, evaluate_slices
from tests.unit.cards import clothes_card, colour_card, tensor_card
from training.evaluation import evaluate


@pytest.mark.parametrize("make", [clothes_card, colour_card], ids=["grey", "colour"])
def test_the_report_of_a_version(make):
    card = make()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (60, *card.input.shape)).astype(np.uint8)
    labels = rng.integers(0, card.classes, 60)
    probabilities = rng.dirichlet(np.ones(card.classes), 60)
    probabilities[np.arange(30), labels[:30]] += 2  # right on half of them
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    slices = evaluate_slices(lambda x: probabilities, images, labels, card.labels, default_shifts(card.input.shape), card.input.shape)
    card = card.model_copy(
        update={
            "metrics": evaluate(labels, probabilities, card.labels),
            "slices": slices,
            "history": {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.7], "val_accuracy": [0.4, 0.6]},
            "description": "a <b>bold</b> model",
        }
    )

    html = evaluation_report(card, images, labels, probabilities)

    assert html.startswith("<!doctype html>") and f"<title>{card.tag} evaluation</title>" in html
    assert html.count("<img") == 6  # per class, confusion matrix, curves, slices, shift examples, misclassified and "data:image/png;base64," in html
    assert "a &lt;b&gt;bold&lt;/b&gt; model" in html  # the card's text is escaped
    assert f"{card.metrics['accuracy']:.4f}" in html and slices["worst"]["slice"] in html
    assert all(html_escape(label) in html for label in card.labels)


def test_the_report_of_a_tabular_model_lists_its_misclassified_examples():
    card = tensor_card()
    rng = np.random.default_rng(0)
    rows, labels = rng.normal(0, 1, (40, *card.input.shape)).astype(np.float32), rng.integers(0, card.classes, 40)
    probabilities = np.eye(card.classes)[(labels + (np.arange(40) % 4 == 0)) % card.classes]  # every fourth one wrong
    slices = evaluate_slices(lambda x: probabilities, rows, labels, card.labels, {}, card.input.shape)
    card = card.model_copy(update={"metrics": evaluate(labels, probabilities, card.labels), "slices": slices})

    html = evaluation_report(card, rows, labels, probabilities)  # was a TypeError: a row of 4 values is no image

    assert "Misclassified test examples" in html and html.count("<tr><td class=n>") == 10


def test_a_regressors_report_gives_its_errors_per_target_and_residual_plots():
    from lifecycle.report import regression_report
    from models.card import OutputSpec, Target
    from tests.unit.cards import tensor_card
    from training.evaluation import evaluate_regression

    rng = np.random.default_rng(0)
    truth = rng.normal(0, 1, (50, 2))
    predicted = truth + rng.normal(0, 0.1, (50, 2))
    card = tensor_card().model_copy(
        update={
            "task": "regression",
            "output": OutputSpec(kind="regression", targets=(Target(name="price", unit="USD"), Target(name="area"))),
            "metrics": evaluate_regression(truth, predicted, ["price", "area"]),
        }
    )
    page = regression_report(card, truth, predicted)
    assert page.startswith("<!doctype html>") and "<td>price</td><td>USD</td>" in page and page.count("data:image/png;base64,") == 1
    assert f"{card.metrics['per_target']['area']['mae']:.4g}" in page
