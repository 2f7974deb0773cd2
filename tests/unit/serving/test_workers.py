"""serving/workers.py: what one entry worker counts reaches the summaries another answers: shadow
comparisons summed, drift windows merged by the newest rows."""

from __future__ import annotations

import json

import numpy as np

from config.settings import Monitoring
from lifecycle.drift import RollingWindow
from serving.monitoring import VersionMonitor
from serving.shadow import Shadows, ShadowStats
from serving.workers import Board
from tests.unit.cards import clothes_card


class Model:
    name = "clothes"
    shadow = {"alias": "stable", "candidate": "v2", "share": 1.0}


def as_other_worker(board: Board, key: str, snapshot: dict, pid: int = 999_999) -> None:
    board.dir.mkdir(parents=True, exist_ok=True)
    (board.dir / f"{pid}@{key}.json").write_text(json.dumps(snapshot))


def test_a_shadow_summary_sums_every_workers_counts_for_the_current_candidate(tmp_path):
    board = Board("shadow", tmp_path)
    shadows = Shadows(board=board)
    mine = shadows._stats("clothes", "v2")
    mine.requests, mine.examples, mine.agreed = 3, 3, 2
    mine.latencies.extend([0.001, 0.002, 0.003])
    other = ShadowStats("v2")
    other.requests, other.examples, other.agreed, other.errors = 5, 7, 7, 1
    other.latencies.extend([0.004] * 5)
    as_other_worker(board, "clothes", other.snapshot())
    as_other_worker(board, "clothes", {**ShadowStats("v9").snapshot(), "requests": 100}, pid=999_998)  # an earlier candidate: not counted
    summary = shadows.summary(Model())
    assert (summary["requests"], summary["examples"], summary["errors"]) == (8, 10, 1)
    assert summary["agreement"] == 0.9 and summary["latency_ms"]["p50"] == 4.0


def test_published_windows_merge_into_the_newest_rows_of_all_workers(tmp_path):
    card = clothes_card(name="merge", version="v1")
    first, second = RollingWindow(4, card), RollingWindow(4, card)
    for i in range(6):  # interleaved in time: the newest four rows are rows 2..5, from both windows
        window = first if i % 2 == 0 else second
        window.add(np.full((1, 28, 28, 1), i, np.uint8), np.asarray([i / 10]), np.asarray([i]))
    merged = RollingWindow.merged([first.rows(), second.rows()], 4, card)
    assert merged.count == 4 and merged.seen == 6
    assert sorted(merged.predicted[:4].tolist()) == [2, 3, 4, 5]


def test_a_monitor_reports_on_the_window_of_every_worker(tmp_path):
    card = clothes_card(name="merge", version="v1")
    reference = {"images": 10, "intensity": {"shares": None, "mean_per_image": [0.0, 1.0]}, "confidence": {"values": [0.5, 0.9]}, "classes": {"shares": [0.1] * 10}}
    settings = Monitoring(window=20, min_samples=2, log_sample_rate=0)
    mine = VersionMonitor(card, reference, settings, board=Board("drift", tmp_path))
    theirs = VersionMonitor(card, reference, settings, board=Board("drift", tmp_path / "elsewhere"))
    mine.window.add(np.zeros((3, 28, 28, 1), np.uint8), np.full(3, 0.9), np.zeros(3, int))
    theirs.window.add(np.zeros((5, 28, 28, 1), np.uint8), np.full(5, 0.9), np.ones(5, int))
    rows = theirs.window.rows()
    board = Board("drift", tmp_path)
    board.dir.mkdir(parents=True, exist_ok=True)
    np.savez(board.dir / f"999999@{mine.key}.npz", **rows)
    report = mine.drift()
    assert report["window"]["size"] == 8 and report["window"]["predictions_seen"] == 8
