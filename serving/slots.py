"""Runner slots: the BentoML runner services, and which version each one hosts right now.

BentoML's services are fixed when `bentoml serve` starts, so versions come and go through *slots*:
one runner service per configured version (named after it, ``clothes-v1``) and ``spare_runners``
empty ones (``spare-1``, ...). What a slot hosts is a desired state in a small file the entry writes
(:class:`SlotState`); every worker process of the slot follows it (:class:`SlotWorker`) and reports
what it did in a file of its own, so that the entry knows when all of them have loaded a version,
failed, or emptied. A worker killed while loading is restarted by BentoML and does not try the same
load again: the load is reported failed with the reason.

    runtime/slots/clothes-v1.json            {"generation": 3, "model": "clothes", "version": "v3", ...}
    runtime/slots/clothes-v1/<pid>.json      {"generation": 3, "state": "ready", "engine": "onnxruntime", ...}

The runtime directory is made by the first process that imports service.py (`bentoml serve`) and
inherited by every worker through MODEL_SERVER_RUNTIME.

    >>> slots = plan(config)                                   # the slots of this configuration
    >>> SlotState(runtime, "spare-1").assign("clothes", "v3", engine="onnxruntime", threads=1)
    >>> SlotState(runtime, "spare-1").reports()                # {pid: report} of its live workers
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import enum
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

from config import Config, RunnerSettings, runner_name
from serving.core import VersionState

log = logging.getLogger(__name__)
RUNTIME_ENV = "MODEL_SERVER_RUNTIME"
FOLLOW_SECONDS = 0.2  # how often a worker looks at its slot's desired state
MAX_DEATHS = 2  # workers that died while loading one generation before the load is reported failed


def runtime_dir() -> Path:
    """The serving tree's runtime directory: created once (and removed at exit) by the process that
    asks first, `bentoml serve`; inherited by every worker it starts."""
    if not os.environ.get(RUNTIME_ENV):
        os.environ[RUNTIME_ENV] = tempfile.mkdtemp(prefix="model-server-")
        atexit.register(shutil.rmtree, os.environ[RUNTIME_ENV], ignore_errors=True)
    return Path(os.environ[RUNTIME_ENV])


class SlotPhase(enum.StrEnum):
    """What a runner worker does with its slot's desired state (its reports' ``state``)."""

    EMPTY = "empty"  # hosts nothing
    LOADING = "loading"  # loads the version the desired state names (a worker dead in this phase: a death while loading)
    READY = "ready"  # its engine answers predictions
    FAILED = "failed"  # the load failed, or killed the worker MAX_DEATHS times: with the reason

    @property
    def version_state(self) -> VersionState:
        """The state the entry gives the version the slot is about (ready, unavailable, else loading)."""
        return {SlotPhase.READY: VersionState.READY, SlotPhase.FAILED: VersionState.UNAVAILABLE}.get(self, VersionState.LOADING)


class SlotStatus(TypedDict):
    """A worker's phase, and why it is not ready (None when there is nothing to say)."""

    state: SlotPhase
    reason: str | None


class RunnerStatus(TypedDict):
    """A slot runner's ``status`` answer (service.py): the version's status the entry's probes read
    (serving/registry.py), what the slot is about and its phase. Plain strings once over the wire."""

    status: VersionState
    reason: str | None
    engine: str | None
    model: str | None
    version: str | None
    state: SlotPhase
    generation: int


@dataclasses.dataclass(frozen=True)
class Slot:
    name: str  # the BentoML service name
    settings: RunnerSettings  # workers are fixed per slot; engine and threads apply to what it loads
    initial: tuple[str, str] | None  # the version a fresh start puts in it


def plan(config: Config) -> list[Slot]:
    """One slot per configured version, then ``live.spare_runners`` empty ones with the shared runner settings."""
    slots = [Slot(runner_name(name, version), config.runner(name, version), (name, version)) for name, version in config.served()]
    spare = config.runner_defaults()
    slots += [Slot(f"spare-{i}", spare, None) for i in range(1, config.live.spare_runners + 1)]
    return slots


class SlotState:
    """The desired state of one slot (written by the entry) and its workers' reports (written by them)."""

    def __init__(self, runtime: Path, slot: str):
        self.path = runtime / "slots" / f"{slot}.json"
        self.reports_dir = runtime / "slots" / slot
        self.reports_dir.mkdir(parents=True, exist_ok=True)

    def desired(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {"generation": 0, "model": None, "version": None}

    def ensure(self, initial: tuple[str, str] | None, engine: str, threads: int) -> dict:
        """The desired state, created with the slot's initial version by the first process to look."""
        if not self.path.exists() and initial is not None:
            state = {"generation": 1, "model": initial[0], "version": initial[1], "engine": engine, "threads": threads}
            with contextlib.suppress(FileExistsError):  # another worker was first: both wrote the same
                write_json(self.path, state, replace=False)
        return self.desired()

    def assign(self, model: str | None, version: str | None, engine: str = "onnxruntime", threads: int = 1) -> int:
        """Host ``model:version`` from now on (None: nothing); returns the new generation."""
        generation = self.desired()["generation"] + 1
        write_json(self.path, {"generation": generation, "model": model, "version": version, "engine": engine, "threads": threads})
        return generation

    def report(self, state: dict) -> None:
        write_json(self.reports_dir / f"{os.getpid()}.json", {**state, "pid": os.getpid(), "at": time.time()})

    def reports(self) -> dict[int, dict]:
        """The reports of the slot's workers that are alive (their ``state`` a :class:`SlotPhase`)."""
        found = {}
        for path in self.reports_dir.glob("*.json"):
            try:
                report = json.loads(path.read_text())
                report["state"] = SlotPhase(report["state"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if alive(report.get("pid", 0)):  # a dead worker's last report stays: it tells a death while loading
                found[report["pid"]] = report
        return found

    def died_loading(self, generation: int) -> int:
        """Workers that died while loading ``generation`` (their last report says loading)."""
        deaths = 0
        for path in self.reports_dir.glob("*.json"):
            try:
                report = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if report.get("generation") == generation and report.get("state") == SlotPhase.LOADING and not alive(report.get("pid", 0)):
                deaths += 1
        return deaths


class SlotWorker:
    """A runner worker's side of its slot: loads what the desired state names, reports, follows changes.

    ``load(model, version, engine, threads)`` returns an engine (models/engines/); ``self.engine`` is
    what answers predictions (None while empty, loading or failed) and ``self.report`` why. ``exit``
    ends a runner process emptied of its version (its memory goes back with it); None for a slot
    hosted in an entry worker (serving/inprocess.py), which only drops the engine.
    """

    def __init__(self, slot: Slot, load: Callable[[str, str, str, int], object], exit: Callable[[int], None] | None = os._exit):
        self.slot = slot
        self._exit = exit
        self.state = SlotState(runtime_dir(), slot.name)
        self._load = load
        self.engine = None
        self.version: tuple[str, str] | None = None  # (model, version) the slot loads, hosts or failed to load
        self.generation = 0
        self.status: SlotStatus = {"state": SlotPhase.EMPTY, "reason": None}
        self._stopped = threading.Event()
        desired = self.state.ensure(slot.initial, slot.settings.engine, slot.settings.threads)
        self._set(None, None, 0, SlotPhase.EMPTY, None)
        self.follow(desired)  # the initial version loads before BentoML reports this worker started
        threading.Thread(target=self._follow_forever, name=f"slot-{slot.name}", daemon=True).start()

    def describe(self) -> RunnerStatus:
        """What the runner's ``status`` API answers: the state the entry's probes map, and what it hosts."""
        model, version = self.version or (None, None)
        state = self.status["state"]
        return {
            "status": state.version_state,
            "reason": self.status["reason"] or (f"runner {self.slot.name} is {state}" if state != SlotPhase.READY else None),
            "engine": getattr(self.engine, "name", None),
            "model": model,
            "version": version,
            "state": state,
            "generation": self.generation,
        }

    @property
    def hosting(self) -> tuple[str, str] | None:
        """The (model, version) whose engine answers predictions; None unless ready."""
        return self.version if self.engine is not None else None

    def stop(self) -> None:
        self._stopped.set()

    def follow(self, desired: dict) -> None:
        generation = desired["generation"]
        if generation == self.generation:
            return
        self.generation = generation
        if desired.get("model") is None:
            self._empty(generation)
            return
        model, version = desired["model"], desired["version"]
        deaths = self.state.died_loading(generation)
        if deaths >= MAX_DEATHS:
            self._set(None, (model, version), generation, SlotPhase.FAILED, f"the runner process died {deaths} times while loading {model}:{version}; not trying again")
            return
        self._set(None, (model, version), generation, SlotPhase.LOADING, None)
        try:
            engine = self._load(model, version, desired.get("engine", "onnxruntime"), int(desired.get("threads", 1)))
        except Exception as exc:  # reported; the entry leaves every other version as it was
            log.exception("%s could not load %s:%s", self.slot.name, model, version)
            self._set(None, (model, version), generation, SlotPhase.FAILED, f"{model}:{version} failed to load: {exc}")
            return
        self._set(engine, (model, version), generation, SlotPhase.READY, None)

    def _empty(self, generation: int) -> None:
        had_engine = self.engine is not None
        self._set(None, None, generation, SlotPhase.EMPTY, None)
        if had_engine and self._exit is not None:
            # What a loaded version leaves behind (the engine's library, its arenas, TensorFlow's whole
            # runtime) stays in a process: a fresh one gives it all back. BentoML restarts the worker,
            # empty, and it follows the slot from there.
            log.info("%s: emptied; exiting to return the version's memory", self.slot.name)
            self._exit(0)

    def _set(self, engine, version: tuple[str, str] | None, generation: int, state: SlotPhase, reason: str | None) -> None:
        """``version``: what the state is about, loading or failed too, so a failure is reported as that version's."""
        self.engine, self.version = engine, version
        self.status = {"state": state, "reason": reason}
        model, number = version or (None, None)
        self.state.report({"generation": generation, "state": state, "reason": reason, "model": model, "version": number, "engine": getattr(engine, "name", None)})

    def _follow_forever(self) -> None:
        while not self._stopped.wait(FOLLOW_SECONDS):
            try:
                self.follow(self.state.desired())
            except Exception:  # never let the follower die: the next change must still be followed
                log.exception("%s: following its desired state failed", self.slot.name)


def write_json(path: Path, content: dict, replace: bool = True) -> None:
    """Written whole, then put in place: renamed over what is there, or (``replace`` False) linked
    unless the file exists (FileExistsError). Readers never see an empty or half-written file (the two
    entry workers creating a slot's state at the same moment once read each other's empty file as
    "host nothing")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        f.write(json.dumps(content))
    if replace:
        os.replace(f.name, path)
        return
    try:
        os.link(f.name, path)
    finally:
        os.unlink(f.name)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, OverflowError):
        return False
    return True
