"""The feedback join (serving/feedback.py): two journals over one runtime directory stand for two entry
workers; predictions recorded in one are joined by feedback sent to the other, exactly, within bounds."""

from __future__ import annotations

import multiprocessing
import time

import numpy as np
import pytest

from config import FeedbackSettings
from serving.errors import BadRequest
from serving.feedback import Item, Journal, Ring, key_of, label_name, truth_of

LABELS = ("cat", "dog", "bird")


def one_hot(classes, confidence=0.9):
    probabilities = np.full((len(classes), 3), (1 - confidence) / 2, dtype=np.float32)
    probabilities[np.arange(len(classes)), classes] = confidence
    return probabilities


@pytest.fixture
def workers(tmp_path):
    settings = FeedbackSettings(join_seconds=0.05, max_predictions=1000)
    journals = [Journal(settings, tmp_path, labels_of=lambda model, version: LABELS, worker=worker) for worker in (1, 2)]
    for journal in journals:
        journal.start()
    yield journals
    for journal in journals:
        journal.stop()


def test_feedback_sent_to_another_worker_joins_exactly(workers):
    first, second = workers
    rng = np.random.default_rng(1)
    predicted = rng.integers(0, 3, 200)
    truth = np.where(rng.random(200) < 0.7, predicted, (predicted + 1) % 3)
    for index, cls in enumerate(predicted):
        (first if index % 2 else second).record("pets", "v1", "stable" if index < 100 else None, f"req-{index}", one_hot([cls]), None, None)
    answer = second.submit("pets", [Item(f"req-{i}", 0, LABELS[t]) for i, t in enumerate(truth)] + [Item("never-answered", 0, "cat")])
    assert answer == {"model": "pets", "accepted": 201, "joined": 200, "unknown": ["never-answered"], "unknown_ids": 1}
    rows = first.outcomes("pets", "v1")
    assert len(rows["label"]) == 200
    assert (rows["label"] == rows["predicted"]).mean() == pytest.approx((truth == predicted).mean())
    assert (rows["alias"] == "stable").sum() == 100


def test_a_batch_joins_per_example_and_carried_labels_need_no_feedback(workers):
    first, second = workers
    first.record("pets", "v2", None, "batch-1", one_hot([0, 1, 2]), None, "night")
    first.record("pets", "v2", None, "carried", one_hot([2, 2]), [2, 0], None)
    answer = second.submit("pets", [Item("batch-1", 0, "cat"), Item("batch-1", 2, "dog", "day")])
    assert answer["joined"] == 2
    rows = second.outcomes("pets", "v2")
    table = sorted(zip(rows["label"].tolist(), rows["predicted"].tolist(), rows["slice"].tolist(), strict=True))
    assert table == [(0, 0, "night"), (0, 2, ""), (1, 2, "day"), (2, 2, "")]


def _start_at_once(runtime, barrier, answers) -> None:
    try:
        journal = Journal(FeedbackSettings(), runtime, labels_of=lambda model, version: LABELS, worker=multiprocessing.current_process().pid)
        barrier.wait(timeout=30)  # a sibling that failed first breaks the barrier instead of leaving this one waiting
        journal.start()
        journal.stop()
        answers.put("started")
    except Exception as exc:  # noqa: BLE001 - the answer is the test's
        answers.put(f"{type(exc).__name__}: {exc}")


def test_workers_starting_together_on_a_new_file_all_start(tmp_path):
    """Entry workers open a fresh runtime's journal at once; switching it to WAL must not lock one out
    (it did in a container: "database is locked", that worker's startup failed)."""
    context = multiprocessing.get_context("fork")
    outcomes = []
    for trial in range(25):
        barrier, answers = context.Barrier(3), context.Queue()
        processes = [context.Process(target=_start_at_once, args=(tmp_path / str(trial), barrier, answers), daemon=True) for _ in range(3)]
        for process in processes:
            process.start()
        try:
            outcomes += [answers.get(timeout=60) for _ in processes]
        finally:
            for process in processes:
                process.join(timeout=60)
                process.terminate()  # none left behind to hold pytest at its exit
    assert outcomes == ["started"] * 75


def test_feedback_for_an_expired_prediction_does_not_join(tmp_path):
    journal = Journal(FeedbackSettings(window_seconds=0.2, join_seconds=0.05), tmp_path, labels_of=lambda model, version: LABELS)
    journal.start()
    try:
        journal.record("pets", "v1", None, "old", one_hot([1]), None, None)
        journal.join()
        time.sleep(0.3)
        assert journal.submit("pets", [Item("old", 0, "dog")])["joined"] == 0
    finally:
        journal.stop()


def test_the_ring_keeps_the_newest_predictions_only():
    ring = Ring(4)
    for index in range(6):
        ring.add(key_of("m", f"r{index}"), 0, np.asarray([index % 3]), np.asarray([0.5]), 100.0 + index)
    keys = np.asarray([key_of("m", f"r{index}") for index in range(6)], dtype=np.uint64)
    found = ring.find(keys, since=0)
    assert (found[:2] == -1).all() and (found[2:] >= 0).all()
    assert (ring.find(keys, since=104.5) >= 0).tolist() == [False, False, False, False, False, True]


def test_outcomes_are_bounded(tmp_path):
    journal = Journal(FeedbackSettings(max_outcomes=50), tmp_path, labels_of=lambda model, version: LABELS)
    for index in range(120):
        journal.record("pets", "v1", None, f"r{index}", one_hot([0]), [0], None)
    journal.join()
    journal._prune(journal._connect(), time.time())
    assert len(journal.outcomes("pets")["label"]) <= 51
    journal.stop()


def test_labels_are_names_or_indices_and_mistakes_name_the_field():
    assert label_name("dog", LABELS, "f") == "dog" and label_name(2, LABELS, "f") == "bird"
    assert truth_of("cat, 2", LABELS, 2, "X-Label") == [0, 2]
    with pytest.raises(BadRequest, match=r"X-Label: 1 label for 2 examples"):
        truth_of("cat", LABELS, 2, "X-Label")
    with pytest.raises(BadRequest, match=r"f: unknown label 'horse'; labels: cat, dog, bird"):
        label_name("horse", LABELS, "f")
    with pytest.raises(BadRequest, match="out of range"):
        label_name(3, LABELS, "f")
    with pytest.raises(BadRequest, match="got true"):
        label_name(True, LABELS, "f")


def test_a_regressors_values_join_per_target_beside_a_classifiers_labels(tmp_path):
    """Two workers, a two-target regressor and a classifier in the same ring: values by feedback and carried
    by the request join as one residual per target; the errors are the ones computed here."""
    settings = FeedbackSettings(join_seconds=0.05, max_predictions=1000)
    targets = {"house": 2}
    journals = [Journal(settings, tmp_path, labels_of=lambda model, version: LABELS, worker=worker, targets_of=lambda model, version: targets.get(model)) for worker in (1, 2)]
    for journal in journals:
        journal.start()
    try:
        first, second = journals
        rng = np.random.default_rng(3)
        predicted = rng.normal(100, 20, (60, 2)).astype(np.float32)
        truth = predicted + rng.normal(0, 5, (60, 2))
        for index in range(50):
            (first if index % 2 else second).record("house", "v1", "stable", f"h-{index}", predicted[index : index + 1], None, None, regression=True)
        first.record("house", "v1", None, "h-carried", predicted[50:60], [tuple(row) for row in truth[50:60]], "night", regression=True)
        first.record("pets", "v1", None, "p-1", one_hot([1]), None, None)
        items = [Item(f"h-{i}", 0, None, None, tuple(truth[i])) for i in range(50)] + [Item("p-1", 0, "dog")]
        answer = second.submit("house", items[:50])
        assert answer["joined"] == 50 and answer["unknown_ids"] == 0
        assert second.submit("pets", items[50:])["joined"] == 1
        rows = second.residuals("house", "v1")
        assert len(rows["target"]) == 120 and (rows["slice"] == "night").sum() == 20
        expected_error = np.abs(predicted - truth.astype(np.float64))
        tally = {index: (count, absolute) for index, count, absolute, _ in second.error_tally("house", "v1")}
        for target in (0, 1):
            assert tally[target][0] == 60 and tally[target][1] / 60 == pytest.approx(expected_error[:, target].mean(), rel=1e-5)
        assert len(second.outcomes("pets", "v1")["label"]) == 1  # the classifier's outcome beside them
    finally:
        for journal in journals:
            journal.stop()


def test_a_regressors_own_values_are_read_one_per_target():
    from serving.feedback import values_of

    assert values_of("3.5;120, 4.1;95", 2, 2, "X-Label") == [(3.5, 120.0), (4.1, 95.0)]
    for text, message in (("3.5", "2 finite numbers"), ("1;2,3;4", "2 values for 1 example"), ("a;b", "expected numbers"), ("nan;1", "finite")):
        with pytest.raises(BadRequest, match=message):
            values_of(text, 2, 1, "X-Label")


def test_a_regressors_values_relayed_as_json_join_as_sent_ones(tmp_path):
    """What the Redis relay carries (serving/fleet/replica.py: dataclasses.asdict -> JSON -> Item(**item)) joins like a local call."""
    import dataclasses
    import json

    journal = Journal(FeedbackSettings(join_seconds=0.05), tmp_path, labels_of=lambda model, version: None, targets_of=lambda model, version: 2)
    journal.start()
    try:
        journal.record("house", "v1", None, "h-1", np.array([[100.0, 4.0]], dtype=np.float32), None, None, regression=True)
        relayed = Item(**json.loads(json.dumps(dataclasses.asdict(Item("h-1", 0, None, "replica-b", (110.0, 3.5))))))
        journal.store("house", [relayed])
        journal.join()
        rows = journal.residuals("house", "v1")
        assert sorted(zip(rows["target"].tolist(), rows["truth"].tolist(), rows["predicted"].tolist(), strict=True)) == [(0, 110.0, 100.0), (1, 3.5, 4.0)]
        assert set(rows["slice"].tolist()) == {"replica-b"}
    finally:
        journal.stop()
