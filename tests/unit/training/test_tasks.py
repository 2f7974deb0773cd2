"""training/tasks.py: an imported model's output from its shape and --task, and the card's rules for each kind."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from models.card import OutputSpec, Target
from training.importing import ImportRefused
from training.tasks import card_task, output_for, parse_targets


def test_each_task_describes_its_output():
    assert output_for("classification", (3,), ["a", "b", "c"]).kind == "softmax"
    assert output_for("classification", (1,), ["no", "yes"]).positive_label == "yes"
    tagger = output_for("multilabel", (2,), ["red", "round"], threshold=0.3)
    assert tagger.thresholds == (0.3, 0.3) and tagger.tensor == "probabilities" and not tagger.single_label
    regressor = output_for("regression", (2,), targets=parse_targets("price:USD, area"))
    assert [(t.name, t.unit) for t in regressor.targets] == [("price", "USD"), ("area", None)] and regressor.tensor == "values"
    assert [t.name for t in output_for("regression", (1,)).targets] == ["value"]
    assert output_for("embedding", (16,)).answer_shape == (16,)
    assert output_for("tensor", (2, 3)).answer_shape == (2, 3) and output_for("tensor", (2, 3)).units == 6
    assert card_task(tagger, is_image=True) == "multilabel-classification" and card_task(output_for("classification", (3,), ["a", "b", "c"]), True) == "image-classification"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("regression", (2,), None, (Target(name="y"),)), "2 unit.*1 targets"),
        (("multilabel", (3,), ["a", "b"]), "3 unit.*2 labels.*one sigmoid unit per label"),
        (("classification", (3,), None), "--labels"),
        (("embedding", (4, 4)), "not one vector per example.*--task tensor"),
        (("tensor", (None, 3)), "must be fixed"),
        (("clustering", (3,)), "--task 'clustering'"),
    ],
)
def test_what_does_not_fit_is_refused(args, message):
    with pytest.raises(ImportRefused, match=message):
        output_for(*args)
    with pytest.raises(ImportRefused, match="distinct"):
        parse_targets("a,a")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "regression"}, "targets"),
        ({"kind": "softmax", "labels": ("a", "b"), "targets": (Target(name="y"),)}, "targets"),
        ({"kind": "multilabel", "labels": ("a", "b"), "thresholds": (0.5,)}, "one threshold"),
        ({"kind": "multilabel", "labels": ("a",), "thresholds": (1.5,)}, "one threshold"),
        ({"kind": "regression", "targets": (Target(name="y"),), "labels": ("a",)}, "no labels"),
        ({"kind": "embedding", "shape": (2, 2)}, "embedding output has a shape"),
        ({"kind": "softmax", "labels": ("a", "b"), "thresholds": (0.5, 0.5)}, "multilabel output only"),
    ],
)
def test_a_card_output_holds_only_what_its_kind_uses(fields, message):
    with pytest.raises(ValidationError, match=message):
        OutputSpec(**fields)


def test_a_classifier_card_reads_as_before_other_tasks_existed():
    dumped = OutputSpec(kind="softmax", labels=("a", "b")).model_dump()
    assert set(dumped) == {"kind", "labels", "positive_label"}
    assert set(OutputSpec(kind="regression", targets=(Target(name="y"),)).model_dump()) == {"kind", "labels", "positive_label", "targets"}


def test_a_vector_inputs_values_may_have_names():
    from models.card import InputSpec

    named = InputSpec(kind="tensor", shape=(3,), value_range=None, divide_by=None, names=("age", "income", "rooms"))
    assert named.model_dump()["names"] == ("age", "income", "rooms")
    assert "names" not in InputSpec(kind="tensor", shape=(3,), value_range=None, divide_by=None).model_dump()
    for names in (("a", "b"), ("a", "a", "b")):
        with pytest.raises(ValidationError, match="one distinct name per value"):
            InputSpec(kind="tensor", shape=(3,), value_range=None, divide_by=None, names=names)
