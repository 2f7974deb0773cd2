"""Ground truth for answered predictions: feedback joined to what each version answered, within a bounded window.

Every answered request is recorded by its request id (serving/request_ids.py), cheaply: the data plane
appends it to this worker's buffer, and a thread of its own moves the buffer into a ring of the last
``feedback.max_predictions`` examples (id, version, alias, slice, predicted class, confidence, time).

Ground truth arrives two ways:

- ``POST /models/<name>/feedback`` with labels by request id (a regressor's true values), for
  requests answered earlier;
- the request itself, with ``X-Label`` (one label per example, comma-separated; names or class
  indices; a regressor's values, its targets separated by ``;``), so a labelled set replayed
  through the server is an evaluation stream.

A regressor's answers are kept in the ring too (its first MAX_TARGETS targets), and its joined examples
are ``residuals``, one row per target, for the live error (lifecycle/outcomes.py ``regression_report``).

Entry workers share one SQLite database in the runtime directory (``entry/feedback.sqlite3``): feedback
rows go in there, every worker joins the new ones against its own ring on its next pass (a prediction
is in its worker's buffer before its answer leaves, so one pass finds it), and the joined examples
(``outcomes``) are what reports read. Outcomes older than ``feedback.window_seconds``, or beyond
``feedback.max_outcomes``, are dropped. A feedback call waits until every live worker has looked, and
answers how many examples joined and which ids no worker knew (expired, or never answered here).

    >>> journal = Journal(config.feedback, runtime_dir(), labels_of=lambda model, version: card.labels)
    >>> journal.record("clothes", "v1", "stable", "req-1", probabilities, truth=None, slice_name=None)
    >>> journal.submit("clothes", [Item("req-1", 0, "Sneaker")])
    {'model': 'clothes', 'accepted': 1, 'joined': 1, 'unknown': [], 'unknown_ids': 0}
    >>> journal.outcomes("clothes", "v1")           # arrays for lifecycle/outcomes.py
    >>> journal.tally("clothes", "v1", since=t)     # (correct, labelled): a SQL count, for gauges and rollout gates

The SQLite file is in the runtime directory: one replica's, gone when it stops (live accuracy is about
recent traffic). Each replica joins the answers it gave itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from config import FeedbackSettings
from serving.errors import BadRequest

log = logging.getLogger(__name__)

SCHEMA = """
create table if not exists feedback (
    model text not null, request_id text not null, example integer not null,
    label text not null, slice text, received real not null, truth_values text);
create table if not exists outcomes (
    model text not null, request_id text not null, example integer not null,
    version text not null, alias text, slice text,
    label integer not null, predicted integer not null, confidence real not null,
    time real not null, joined real not null,
    primary key (model, request_id, example)) without rowid;
create index if not exists outcomes_by_version on outcomes (model, version, time);
create table if not exists residuals (
    model text not null, request_id text not null, example integer not null, target integer not null,
    version text not null, alias text, slice text,
    truth real not null, predicted real not null,
    time real not null, joined real not null,
    primary key (model, request_id, example, target)) without rowid;
create index if not exists residuals_by_version on residuals (model, version, time);
create table if not exists workers (pid integer primary key, checked integer not null, seen real not null);
"""
MAX_TARGETS = 8  # a regressor's targets the ring keeps (and feedback joins)
PRUNE_SECONDS = 10.0
MAX_TAGS = 4096  # (model, version, alias, slice) combinations a worker tells apart: clients name slices
OTHER_SLICE = "other"
WAIT_FOR_WORKERS_SECONDS = 3.0


@dataclasses.dataclass(frozen=True)
class Item:
    """One example's ground truth: the request's id, the example's index in it, the true label's name
    (a regressor's: ``values``, one per target, and no label)."""

    request_id: str
    example: int
    label: str | None
    slice: str | None = None
    values: tuple[float, ...] | None = None


SLICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")  # a slice's name, as clients send it


def label_name(label: str | int, labels: tuple[str, ...], field: str) -> str:
    """A label as its name: a name of ``labels``, or a class index into them."""
    if isinstance(label, bool):
        raise BadRequest(f"{field}: expected a label name or a class index, got {str(label).lower()}")
    if isinstance(label, int):
        if 0 <= label < len(labels):
            return labels[label]
        raise BadRequest(f"{field}: class index {label} is out of range: 0 to {len(labels) - 1}")
    if label in labels:
        return label
    raise BadRequest(f"{field}: unknown label {label[:64]!r}; labels: {', '.join(labels)}")


def truth_of(text: str, labels: tuple[str, ...], examples: int, field: str) -> list[int]:
    """A request's own ground truth (``X-Label: Sneaker`` or ``X-Label: 7,Bag``) as class indices, one per example."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != examples:
        raise BadRequest(f"{field}: {len(parts)} label{'s' if len(parts) != 1 else ''} for {examples} example{'s' if examples != 1 else ''}; send one per example, comma-separated")
    return [labels.index(label_name(int(part) if part.isdigit() else part, labels, field)) for part in parts]


def values_of(text: str, targets: int, examples: int, field: str) -> list[tuple[float, ...]]:
    """A regressor's request's own ground truth (``X-Label: 3.5`` or ``X-Label: 3.5;120,4.1;95``): per example, one value per target."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != examples:
        raise BadRequest(f"{field}: {len(parts)} value{'s' if len(parts) != 1 else ''} for {examples} example{'s' if examples != 1 else ''}; send one per example, comma-separated")
    rows = []
    for part in parts:
        try:
            row = tuple(float(value) for value in part.split(";"))
        except ValueError:
            raise BadRequest(f"{field}: expected numbers, one per target separated by ';', got {part[:64]!r}") from None
        if len(row) != targets or not all(np.isfinite(row)):
            raise BadRequest(f"{field}: expected {targets} finite number{'s' if targets != 1 else ''} per example (one per target, separated by ';'), got {part[:64]!r}")
        rows.append(row)
    return rows


def key_of(model: str, request_id: str) -> int:
    """A request's 64-bit key (its examples are key + index): fixed width for the ring, the same in every process."""
    return int.from_bytes(hashlib.blake2b(f"{model}\0{request_id}".encode(), digest_size=8).digest(), "little")


class Ring:
    """The last ``capacity`` answered examples of this worker, as columns."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.keys = np.zeros(capacity, dtype=np.uint64)
        self.tags = np.zeros(capacity, dtype=np.int32)  # index into ``names``: (model, version, alias, slice)
        self.example = np.zeros(capacity, dtype=np.int32)
        self.predicted = np.zeros(capacity, dtype=np.int16)
        self.confidence = np.zeros(capacity, dtype=np.float32)
        self.times = np.zeros(capacity)
        self.values: np.ndarray | None = None  # a regressor's answers (capacity, MAX_TARGETS), NaN elsewhere; made at its first
        self.count = 0
        self._next = 0
        self.names: list[tuple[str, str, str | None, str | None]] = []
        self._tags: dict[tuple[str, str, str | None, str | None], int] = {}
        self._order: np.ndarray | None = None  # argsort of keys[:count], rebuilt when rows were added

    def tag(self, model: str, version: str, alias: str | None, slice_name: str | None) -> int:
        """The index of a (model, version, alias, slice); slices past MAX_TAGS combinations are "other"."""
        names = (model, version, alias, slice_name)
        found = self._tags.get(names)
        if found is None:
            if len(self.names) >= MAX_TAGS and slice_name is not None:
                return self.tag(model, version, alias, OTHER_SLICE)
            found = self._tags[names] = len(self.names)
            self.names.append(names)
        return found

    def add(self, key: int, tag: int, predicted: np.ndarray, confidence: np.ndarray, when: float) -> None:
        """One request's examples (key, key + 1, ...)."""
        n = len(predicted)
        examples = np.arange(n)
        self.add_many(np.uint64(key) + examples.astype(np.uint64), np.full(n, tag, dtype=np.int32), examples, predicted, confidence, np.full(n, when))

    def add_many(
        self, keys: np.ndarray, tags: np.ndarray, examples: np.ndarray, predicted: np.ndarray, confidence: np.ndarray, times: np.ndarray, values: np.ndarray | None = None
    ) -> None:
        """Many examples at once, in order; only the last ``capacity`` of them when there are more.
        ``values``: a regressor's answers (n, targets), kept up to MAX_TARGETS."""
        if len(keys) > self.capacity:
            keys, tags, examples, predicted, confidence, times = (a[-self.capacity :] for a in (keys, tags, examples, predicted, confidence, times))
            values = values[-self.capacity :] if values is not None else None
        n = len(keys)
        slots = (self._next + np.arange(n)) % self.capacity
        self.keys[slots], self.tags[slots], self.example[slots] = keys, tags, examples
        self.predicted[slots], self.confidence[slots], self.times[slots] = predicted, confidence, times
        if values is not None and self.values is None:
            self.values = np.full((self.capacity, MAX_TARGETS), np.nan, dtype=np.float32)
        if self.values is not None:
            self.values[slots] = np.nan
            if values is not None:
                width = min(values.shape[1], MAX_TARGETS)
                self.values[slots, :width] = values[:, :width]
        self._next = (self._next + n) % self.capacity
        self.count = min(self.count + n, self.capacity)
        self._order = None

    def find(self, keys: np.ndarray, since: float) -> np.ndarray:
        """Each key's slot in the ring (-1 where absent, or older than ``since``)."""
        if self.count == 0 or len(keys) == 0:
            return np.full(len(keys), -1)
        held = self.keys[: self.count]
        if self._order is None:
            self._order = np.argsort(held, kind="stable")
        order = self._order
        at = np.searchsorted(held[order], keys)
        at = np.minimum(at, len(order) - 1)
        slots = order[at]
        found = (held[slots] == keys) & (self.times[slots] >= since)
        return np.where(found, slots, -1)


class Journal:
    """This entry worker's recorded predictions and its share of the join."""

    def __init__(
        self,
        settings: FeedbackSettings,
        runtime: Path,
        labels_of: Callable[[str, str], tuple[str, ...] | None],
        worker: int | None = None,
        targets_of: Callable[[str, str], int | None] | None = None,
    ):
        self.settings = settings
        self.worker = worker or os.getpid()  # this entry worker, in the workers table
        self.labels_of = labels_of  # a served version's labels (its card's), None when it no longer serves
        self.targets_of = targets_of or (lambda model, version: None)  # a served regressor's number of targets, None otherwise
        self.path = runtime / "entry" / "feedback.sqlite3"
        self.ring = Ring(settings.max_predictions)
        self._buffer: deque[tuple] = deque()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._checked = 0  # the last feedback row this worker joined against its ring
        self._pruned = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_outcomes: list[Callable[[int], None]] = []  # called after each pass with the outcomes it wrote (the gauges)

    # --- the request path (the event loop): an append, nothing more ------------------------------------

    def record(
        self, model: str, version: str, alias: str | None, request_id: str | None, answers: np.ndarray, truth: list | None, slice_name: str | None, regression: bool = False
    ) -> None:
        """An answer: a classifier's probabilities and true class indices, or a regressor's values and true values per example."""
        if request_id is not None:
            self._buffer.append((time.time(), model, version, alias, request_id, answers, truth, slice_name, regression))

    # --- the journal's thread ----------------------------------------------------------------------------

    def start(self) -> None:
        self._connect()
        self._thread = threading.Thread(target=self._run, name="feedback-join", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock, contextlib.suppress(sqlite3.Error):
            if self._db is not None:
                self._db.execute("delete from workers where pid = ?", (self.worker,))
                self._db.close()
                self._db = None

    def _run(self) -> None:
        while not self._stop.wait(self.settings.join_seconds):
            try:
                self.join()
            except Exception:  # the next pass tries again; serving goes on
                log.exception("joining feedback failed")

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path.with_suffix(".lock"), "a") as lock:
                # workers starting together: switching a new file to WAL while another connection reads it
                # fails at once with "database is locked" (SQLite's busy timeout does not cover it)
                fcntl.flock(lock, fcntl.LOCK_EX)
                db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
                db.execute("pragma journal_mode=wal")
                db.execute("pragma synchronous=normal")
                db.executescript(SCHEMA)
                if "truth_values" not in {column[1] for column in db.execute("pragma table_info(feedback)")}:  # a file from before regressors
                    db.execute("alter table feedback add column truth_values text")
            (newest,) = db.execute("select coalesce(max(rowid), 0) from feedback").fetchone()
            self._checked = newest  # a worker that starts later has no predictions older feedback could name
            db.execute("insert or replace into workers values (?, ?, ?)", (self.worker, newest, time.time()))
            self._db = db
        return self._db

    def join(self) -> int:
        """Move the buffer into the ring, write the outcomes of labelled requests, join new feedback
        against the ring; returns the outcomes written."""
        with self._lock:
            db = self._connect()
            carried = self._drain()
            written = self._write_outcomes(db, carried)
            written += self._join_feedback(db)
            now = time.time()
            if now - self._pruned >= PRUNE_SECONDS:
                self._prune(db, now)
                self._pruned = now
        for hook in self.on_outcomes:
            hook(written)
        return written

    def _drain(self) -> list[tuple]:
        """The buffered answers into the ring, as arrays at once (per class count: models differ); the
        rows of those that carried their labels."""
        taken = [self._buffer.popleft() for _ in range(len(self._buffer))]
        by_width: dict[tuple[int, bool], list[tuple]] = {}
        for entry in taken:
            by_width.setdefault((entry[5].shape[1], entry[8]), []).append(entry)
        carried: list[tuple] = []
        for (_, regression), group in by_width.items():
            carried += self._add(group, regression)
        return carried

    def _add(self, taken: list[tuple], regression: bool = False) -> list[tuple]:
        """Outcome rows of the answers that carried their truth: (table, row)."""
        ring = self.ring
        probabilities = np.concatenate([entry[5] for entry in taken]) if len(taken) > 1 else taken[0][5]
        if regression:
            predicted, confidence = np.zeros(len(probabilities), dtype=np.int64), np.zeros(len(probabilities), dtype=np.float32)
        else:
            predicted, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)
        counts = np.fromiter((len(entry[5]) for entry in taken), dtype=np.int64, count=len(taken))
        examples = np.arange(len(predicted)) - np.repeat(np.cumsum(counts) - counts, counts)
        keys = np.repeat(np.fromiter((key_of(entry[1], entry[4]) for entry in taken), dtype=np.uint64, count=len(taken)), counts) + examples.astype(np.uint64)
        tags = np.repeat(np.fromiter((ring.tag(entry[1], entry[2], entry[3], entry[7]) for entry in taken), dtype=np.int32, count=len(taken)), counts)
        times = np.repeat(np.fromiter((entry[0] for entry in taken), dtype=np.float64, count=len(taken)), counts)
        ring.add_many(keys, tags, examples, predicted, confidence, times, probabilities if regression else None)
        carried, start, joined_at = [], 0, time.time()
        for (when, model, version, alias, request_id, answers, truth, slice_name, _), count in zip(taken, counts.tolist(), strict=True):
            if truth is not None and regression:
                carried += [
                    ("residuals", (model, request_id, example, target, version, alias, slice_name, float(value), float(answers[example, target]), when, joined_at))
                    for example, values in enumerate(truth)
                    for target, value in enumerate(values[:MAX_TARGETS])
                ]
            elif truth is not None:
                carried += [
                    (
                        "outcomes",
                        (model, request_id, example, version, alias, slice_name, label, int(predicted[start + example]), float(confidence[start + example]), when, joined_at),
                    )
                    for example, label in enumerate(truth)
                ]
            start += count
        return carried

    @staticmethod
    def _write_outcomes(db: sqlite3.Connection, rows: list[tuple[str, tuple]]) -> int:
        """(table, row) pairs: outcomes of classifiers, residuals of regressors; the examples written."""
        if rows:
            db.execute("begin")
            for table in ("outcomes", "residuals"):
                chosen = [row for name, row in rows if name == table]
                if chosen:
                    db.executemany(f"insert or replace into {table} values ({', '.join('?' * len(chosen[0]))})", chosen)
            db.execute("commit")
        return sum(1 for name, row in rows if name == "outcomes" or row[3] == 0)

    def _join_feedback(self, db: sqlite3.Connection) -> int:
        rows = db.execute("select rowid, model, request_id, example, label, slice, truth_values from feedback where rowid > ? order by rowid", (self._checked,)).fetchall()
        written = 0
        if rows:
            ring = self.ring
            keys = np.asarray([(key_of(row[1], row[2]) + row[3]) % 2**64 for row in rows], dtype=np.uint64)
            slots = ring.find(keys, time.time() - self.settings.window_seconds)
            joined: list[tuple[str, tuple]] = []
            for (_, model, rid, example, label, slice_name, truth_values), slot in zip(rows, slots.tolist(), strict=True):
                if slot < 0:
                    continue
                held_model, version, alias, held_slice = ring.names[ring.tags[slot]]
                if held_model != model:  # keys hash the model's name too: a 64-bit collision
                    continue
                if truth_values is not None:
                    joined += self._residuals(model, rid, example, version, alias, slice_name or held_slice, json.loads(truth_values), slot)
                    continue
                labels = self.labels_of(model, version)
                if labels is None or label not in labels:
                    continue
                joined.append(
                    (
                        "outcomes",
                        (
                            model,
                            rid,
                            example,
                            version,
                            alias,
                            slice_name or held_slice,
                            labels.index(label),
                            int(ring.predicted[slot]),
                            float(ring.confidence[slot]),
                            float(ring.times[slot]),
                            time.time(),
                        ),
                    )
                )
            written = self._write_outcomes(db, joined)
            self._checked = rows[-1][0]
        db.execute("insert or replace into workers values (?, ?, ?)", (self.worker, self._checked, time.time()))
        return written

    def _residuals(self, model: str, rid: str, example: int, version: str, alias: str | None, slice_name: str | None, truth: list[float], slot: int) -> list[tuple[str, tuple]]:
        """A regressor's joined example, one residual row per target; none when the answer held no values or the targets differ."""
        targets = self.targets_of(model, version)
        ring = self.ring
        if targets is None or len(truth) != targets or ring.values is None or np.isnan(ring.values[slot, 0]):
            return []
        joined_at = time.time()
        return [
            ("residuals", (model, rid, example, target, version, alias, slice_name, float(value), float(ring.values[slot, target]), float(ring.times[slot]), joined_at))
            for target, value in enumerate(truth[:MAX_TARGETS])
        ]

    def _prune(self, db: sqlite3.Connection, now: float) -> None:
        cutoff = now - self.settings.window_seconds
        db.execute("delete from outcomes where time < ?", (cutoff,))
        db.execute("delete from residuals where time < ?", (cutoff,))
        db.execute("delete from feedback where received < ?", (cutoff,))
        (count,) = db.execute("select count(*) from outcomes").fetchone()
        if count > self.settings.max_outcomes:
            # the oldest beyond the bound (outcomes has no rowid: by time, ties included)
            db.execute("delete from outcomes where time <= (select time from outcomes order by time limit 1 offset ?)", (count - self.settings.max_outcomes - 1,))
        (count,) = db.execute("select count(*) from residuals").fetchone()
        if count > self.settings.max_outcomes:
            db.execute("delete from residuals where time <= (select time from residuals order by time limit 1 offset ?)", (count - self.settings.max_outcomes - 1,))
        db.execute("delete from workers where seen < ?", (now - 60,))

    # --- feedback calls and reports (worker threads, off the event loop) ------------------------------

    def store(self, model: str, items: list[Item]) -> int:
        """Store ground truth for every worker to join on its next pass; the last feedback row written."""
        received = time.time()
        with self._lock:
            db = self._connect()
            db.execute("begin")
            db.executemany(
                "insert into feedback values (?, ?, ?, ?, ?, ?, ?)",
                [(model, item.request_id, item.example, item.label or "", item.slice, received, json.dumps(item.values) if item.values is not None else None) for item in items],
            )
            (last,) = db.execute("select coalesce(max(rowid), 0) from feedback").fetchone()
            db.execute("commit")
        return last

    def submit(self, model: str, items: list[Item]) -> dict:
        """Store the ground truth, join it now here and within a pass in every other worker; what joined."""
        last = self.store(model, items)
        self.join()
        self._wait_for_workers(last)
        joined = self._joined(model, items)
        unknown = sorted({item.request_id for item, found in zip(items, joined, strict=True) if not found})
        return {"model": model, "accepted": len(items), "joined": int(sum(joined)), "unknown": unknown[:20], "unknown_ids": len(unknown)}

    def _wait_for_workers(self, rowid: int) -> None:
        """Until every worker seen within a few passes has joined feedback up to ``rowid`` (bounded)."""
        deadline = time.monotonic() + WAIT_FOR_WORKERS_SECONDS
        while time.monotonic() < deadline:
            with self._lock:
                (behind,) = (
                    self._connect().execute("select count(*) from workers where checked < ? and seen >= ?", (rowid, time.time() - 4 * self.settings.join_seconds - 1)).fetchone()
                )
            if behind == 0:
                return
            time.sleep(self.settings.join_seconds / 4)

    def _joined(self, model: str, items: list[Item]) -> list[bool]:
        with self._lock:
            db = self._connect()
            found = set()
            for start in range(0, len(items), 500):
                chunk = items[start : start + 500]
                marks = ",".join("(?, ?)" for _ in chunk)
                values = [value for item in chunk for value in (item.request_id, item.example)]
                for table in ("outcomes", "residuals"):
                    found |= set(db.execute(f"select request_id, example from {table} where model = ? and (request_id, example) in (values {marks})", [model, *values]).fetchall())
        return [(item.request_id, item.example) in found for item in items]

    def tally(self, model: str, version: str, since: float = 0.0) -> tuple[int, int]:
        """(correct, labelled) of a version's joined examples predicted at ``since`` or later: a SQL count, no rows read."""
        with self._lock:
            correct, labelled = (
                self._connect()
                .execute("select coalesce(sum(label = predicted), 0), count(*) from outcomes where model = ? and version = ? and time >= ?", (model, version, since))
                .fetchone()
            )
        return int(correct), int(labelled)

    def calibration_tally(self, model: str, version: str, bins: int) -> list[tuple[int, int, float, int]]:
        """Per confidence bin (index, examples, sum of confidence, correct) of a version's joined examples: SQL aggregates."""
        with self._lock:
            return (
                self._connect()
                .execute(
                    "select min(cast(confidence * ? as integer), ? - 1), count(*), sum(confidence), sum(label = predicted) from outcomes"
                    " where model = ? and version = ? group by 1",
                    (bins, bins, model, version),
                )
                .fetchall()
            )

    def outcomes(self, model: str, version: str | None = None) -> dict[str, np.ndarray]:
        """The joined examples of a model (one version of it), as columns for lifecycle/outcomes.py."""
        query = "select version, coalesce(alias, ''), coalesce(slice, ''), label, predicted, confidence, time from outcomes where model = ?"
        arguments: list = [model]
        if version is not None:
            query += " and version = ?"
            arguments.append(version)
        with self._lock:
            rows = self._connect().execute(query, arguments).fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [()] * 7
        names = ("version", "alias", "slice", "label", "predicted", "confidence", "time")
        kinds = (object, object, object, np.int64, np.int64, np.float64, np.float64)
        return {name: np.asarray(column, dtype=kind) for name, column, kind in zip(names, columns, kinds, strict=True)}

    def residuals(self, model: str, version: str) -> dict[str, np.ndarray]:
        """A regressor's joined examples, one row per target, as columns for lifecycle/outcomes.py ``regression_report``."""
        query = "select coalesce(alias, ''), coalesce(slice, ''), target, truth, predicted, time from residuals where model = ? and version = ?"
        with self._lock:
            rows = self._connect().execute(query, (model, version)).fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [()] * 6
        names = ("alias", "slice", "target", "truth", "predicted", "time")
        kinds = (object, object, np.int64, np.float64, np.float64, np.float64)
        return {name: np.asarray(column, dtype=kind) for name, column, kind in zip(names, columns, kinds, strict=True)}

    def error_tally(self, model: str, version: str) -> list[tuple[int, int, float, float]]:
        """Per target (index, examples, sum of |error|, sum of error squared) of a regressor's joined examples: SQL aggregates, for the gauges."""
        with self._lock:
            return (
                self._connect()
                .execute(
                    "select target, count(*), sum(abs(predicted - truth)), sum((predicted - truth) * (predicted - truth)) from residuals where model = ? and version = ? group by target",
                    (model, version),
                )
                .fetchall()
            )
