"""What this replica serves while it runs: versions loaded into runner slots and unloaded, aliases
(weighted splits), shadows. The desired state (serving/fleet/) says what should serve; this module does it here.

Availability first. A version loads into a free runner slot (serving/slots.py) and answers its
warm-up in every worker of the slot before anything routes to it; an alias moves only to versions
that serve; an unloaded version leaves the routing at once, finishes its requests in flight, and
only then is its slot emptied (its memory returned). A load that fails or hangs leaves everything
that was serving as it was and is reported with its reason (listings, the repository index, TF
Serving's status, a log line, ``serving_version_loads_total``).

What is served now is a small shared file (``runtime/serving.json``) that every entry worker
follows (:meth:`LiveModels.reconcile`), so a change made through one worker reaches all of them:
each worker acknowledges the generation it applied (``runtime/entry/<pid>.json``), and a change
returns once every live entry worker has applied it (or ``ACK_TIMEOUT_SECONDS`` passed, named in
the log), so that a request sent after an admin call's answer meets the change whichever worker takes it.

    >>> live = LiveModels(config, registry, slots)
    >>> await live.load("clothes", "v3")                     # into a spare slot; returns when it serves
    >>> await live.route("clothes", {"stable": {"v1": 90, "v3": 10}}, "stable", None)
    >>> await live.unload("clothes", "v1", force=True)
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import enum
import fcntl
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import TypedDict

import bentoml

from config import Config, Placement, VersionPolicy
from models import store
from models.card import NAME_PATTERN
from serving.core import VersionState
from serving.errors import BadRequest, NotFound, Unavailable
from serving.fleet.desired import detach
from serving.registry import ModelRegistry, RunnerClient, ServedModel, Target, VersionHandle
from serving.slots import Slot, SlotPhase, SlotState, alive, runtime_dir, write_json

log = logging.getLogger(__name__)
RECONCILE_SECONDS = 0.1  # how often an entry worker looks at the shared serving state (a stat; read when it changed)
ACK_TIMEOUT_SECONDS = 5.0  # an admin call waits this long at most for the other entry workers to apply its change
EMPTY_TIMEOUT_SECONDS = 60  # a slot's workers report empty (or restart) within this after an unload


class ServingState(enum.StrEnum):
    """Where a version is in its life while serving: in the shared serving state (its ``versions``),
    the repository index's rows and the load and unload answers."""

    LOADING = "loading"  # its slot loads it; nothing routes to it yet
    SERVING = "serving"  # routed to
    UNLOADING = "unloading"  # out of the routing, finishing its requests; then its slot empties
    FAILED = "failed"  # its load failed (the model's ``failures``, with the reason): index rows only
    UNLOADED = "unloaded"  # gone, its slot empty: the unload answer only


class LoadOutcome(enum.StrEnum):
    """The ``outcome`` of ``serving_version_loads_total``."""

    LOADED = "loaded"
    FAILED = "failed"
    UNLOADED = "unloaded"


class VersionEntry(TypedDict):
    slot: str  # the runner slot hosting it (serving/slots.py)
    state: ServingState  # loading, serving or unloading


class ModelEntry(TypedDict):
    versions: dict[str, VersionEntry]
    aliases: dict[str, Target]
    default_version: str
    failures: dict[str, str]  # versions whose load failed, with the reason
    shadow: dict | None  # {"alias", "candidate", "share"}: serving/shadow.py


class ServingFile(TypedDict):
    """``runtime/serving.json``: what every entry worker serves (as JSON: the states as plain strings)."""

    generation: int
    models: dict[str, ModelEntry]


class IndexRow(TypedDict):
    """A row of the repository index: a version with where it is, its status and its runner."""

    name: str
    version: str
    state: ServingState
    status: VersionState
    reason: str | None
    runner: str | None


LOADS = bentoml.metrics.Counter(
    name="serving_version_loads",
    documentation="Versions loaded while serving, by outcome (loaded, failed, unloaded)",
    labelnames=["model", "version", "outcome"],
)
LOAD_SECONDS = bentoml.metrics.Histogram(
    name="serving_version_load_seconds",
    documentation="Seconds from a load call to the version serving",
    labelnames=["model"],
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
)


class LoadFailed(BadRequest):
    """The version could not be loaded: the reason says why; nothing that served changed."""


@dataclasses.dataclass
class SlotRef:
    slot: Slot
    state: SlotState
    client: RunnerClient
    workers: int = 0  # the processes hosting it: its runner's workers, or every entry worker for an in-process slot

    def __post_init__(self) -> None:
        self.workers = self.workers or self.slot.settings.workers

    @property
    def in_process(self) -> bool:
        return self.slot.settings.placement == Placement.INPROCESS


class LiveModels:
    def __init__(self, config: Config, registry: ModelRegistry, slots: dict[str, SlotRef], runtime: Path | None = None):
        self.config = config
        self.registry = registry
        self.slots = slots
        self.path = (runtime or runtime_dir()) / "serving.json"
        self.lock_path = self.path.with_suffix(".lock")
        self.acks = self.path.parent / "entry"  # each entry worker's applied generation
        self.generation = -1
        self.written = 0  # the generation this worker's last change wrote
        self._seen_mtime = 0
        self.operation = asyncio.Lock()  # one admin operation at a time in this worker
        self.watches: dict[tuple[str, str], asyncio.Task] = {}  # each serving handle's runner probe
        self.retiring: dict[tuple[str, str], VersionHandle] = {}  # out of the routing, finishing their requests
        with self._locked():
            if not self.path.exists():
                self._write(self.initial_state())

    # --- the shared state -------------------------------------------------------------------------

    def initial_state(self) -> ServingFile:
        """What configuration.yaml (with the promotion record's aliases) serves."""
        return {
            "generation": 0,
            "models": {
                name: {
                    "versions": {version: {"slot": f"{name}-{version}", "state": ServingState.SERVING} for version in settings.versions},
                    "aliases": copy.deepcopy(settings.aliases),
                    "default_version": settings.default,
                    "failures": {},
                    "shadow": None,
                }
                for name, settings in self.config.models.items()
            },
        }

    @contextlib.contextmanager
    def _locked(self):
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def state(self) -> ServingFile:
        """What this replica serves now (every entry worker follows it)."""
        return self._read()

    def _read(self) -> ServingFile:
        state = json.loads(self.path.read_text())
        for entry in state["models"].values():
            for info in entry["versions"].values():
                info["state"] = ServingState(info["state"])
        return state

    def _write(self, state: ServingFile) -> None:
        state["generation"] += 1
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(state))
        os.replace(temporary, self.path)
        self.written = state["generation"]

    def _acknowledge(self) -> None:
        """Tell the other entry workers which generation this one serves."""
        write_json(self.acks / f"{os.getpid()}.json", {"generation": self.generation})

    async def _applied_everywhere(self) -> None:
        """Apply this worker's last change here, then wait until every live entry worker has applied it."""
        await self.reconcile()
        generation, deadline = self.written, time.monotonic() + ACK_TIMEOUT_SECONDS
        while True:
            behind = [pid for pid, applied in self._applied().items() if applied < generation]
            if not behind:
                return
            if time.monotonic() > deadline:
                log.warning("entry worker(s) %s did not apply serving generation %d within %g s", behind, generation, ACK_TIMEOUT_SECONDS)
                return
            await asyncio.sleep(0.02)

    def _applied(self) -> dict[int, int]:
        """pid -> the generation each live entry worker applied."""
        applied = {}
        for path in self.acks.glob("*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                pid = int(path.stem)
                if alive(pid):
                    applied[pid] = json.loads(path.read_text())["generation"]
        return applied

    @contextlib.contextmanager
    def _change(self):
        """The shared state, to change in place: written back (a new generation) when the block ends."""
        with self._locked():
            state = self._read()
            yield state
            self._write(state)

    # --- following the shared state ---------------------------------------------------------------

    def build(self) -> None:
        """The registry as the shared state has it now (at start: what the configuration serves);
        the runners are probed from ``start`` on."""
        state = self._read()
        self.generation = state["generation"]
        self._acknowledge()
        for name, entry in state["models"].items():
            handles = {
                version: VersionHandle.from_store(name, version, self.config, self.slots[info["slot"]].client, settings=self.slots[info["slot"]].slot.settings, slot=info["slot"])
                for version, info in entry["versions"].items()
                if info["state"] == ServingState.SERVING
            }
            model = self.registry.models[name] = ServedModel(name, handles, entry["aliases"], entry["default_version"])
            model.failures, model.shadow = entry["failures"], entry["shadow"]

    async def reconcile(self) -> None:
        """Make this worker's registry what the shared state says: handles for serving versions, aliases, shadows."""
        mtime = self.path.stat().st_mtime_ns
        if mtime == self._seen_mtime:
            return
        state = self._read()
        self._seen_mtime = mtime
        if state["generation"] == self.generation:
            return
        for name, entry in state["models"].items():
            model = self.registry.models.get(name)
            if model is None:
                model = self.registry.models[name] = ServedModel(name, {}, {}, entry["default_version"])
            serving = {version: info for version, info in entry["versions"].items() if info["state"] == ServingState.SERVING}
            for version, info in serving.items():
                if version not in model.handles:
                    model.handles[version] = await self._handle(name, version, info["slot"])
            for version in [v for v in model.handles if v not in serving]:
                handle = model.handles.pop(version)  # out of the routing now; finishes what it holds
                self.retiring[name, version] = handle
                asyncio.get_running_loop().create_task(self._retire(handle))
            model.aliases = entry["aliases"]
            model.default_version = entry["default_version"]
            model.failures = entry["failures"]
            model.shadow = entry["shadow"]
        self.generation = state["generation"]
        self._acknowledge()

    async def _handle(self, name: str, version: str, slot: str) -> VersionHandle:
        ref = self.slots[slot]
        handle = VersionHandle.from_store(name, version, self.config, ref.client, settings=ref.slot.settings, slot=slot)
        handle.health.update(await handle.health.probe())  # a loaded version serves at once, not after the next probe
        self.watches[name, version] = asyncio.get_running_loop().create_task(handle.health.watch())
        return handle

    async def _retire(self, handle: VersionHandle) -> None:
        await drain(handle, self.config.live.drain_timeout_seconds)
        self.retiring.pop((handle.name, handle.version), None)
        task = self.watches.pop((handle.name, handle.version), None)
        if task is not None:
            task.cancel()

    def start(self, registry_handles: list[VersionHandle]) -> None:
        """Probe the handles the entry started with, and follow the shared state from now on."""
        loop = asyncio.get_running_loop()
        for handle in registry_handles:
            self.watches[handle.name, handle.version] = loop.create_task(handle.health.watch())
        self.follower = loop.create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            try:
                await self.reconcile()
            except Exception:  # the next round tries again; serving goes on as it was
                log.exception("following the serving state failed")
            await asyncio.sleep(RECONCILE_SECONDS)

    def stop(self) -> None:
        for task in [*self.watches.values(), getattr(self, "follower", None)]:
            if task is not None:
                task.cancel()

    # --- operations -------------------------------------------------------------------------------

    async def load(self, name: str, version: str) -> dict:
        """Load a stored version here; returns once it serves."""
        async with self.operation:
            check_name(version)
            try:
                card = store.load_card(name, version)
            except store.ModelStoreError as exc:
                raise NotFound(str(exc)) from None
            started = time.monotonic()
            with self._change() as state:
                entry = state["models"].setdefault(name, {"versions": {}, "aliases": {}, "default_version": version, "failures": {}, "shadow": None})
                if version in entry["versions"]:
                    return {"model": name, "version": version, "state": entry["versions"][version]["state"], "loaded": False}
                slot = self._free_slot(state)
                entry["versions"][version] = {"slot": slot, "state": ServingState.LOADING}
                entry["failures"].pop(version, None)
            ref = self.slots[slot]
            configured = self.config.models.get(name)
            settings = self.config.runner(name, version) if configured and version in configured.versions else ref.slot.settings
            generation = ref.state.assign(name, version, settings.engine, settings.threads)
            log.info("loading %s into runner %s (%s)", card.tag, slot, settings.engine)
            failure = await self._wait(ref, generation, SlotPhase.READY, self.config.live.load_timeout_seconds)
            if failure is not None:
                await self._empty(ref, kill=failure.startswith("no answer"))
                with self._change() as state:
                    entry = state["models"][name]
                    entry["versions"].pop(version, None)
                    entry["failures"][version] = failure
                    if not entry["versions"]:  # a model that never served: nothing left of it but the failure
                        entry["default_version"] = entry.get("default_version") or version
                await self._applied_everywhere()
                LOADS.labels(model=name, version=version, outcome=LoadOutcome.FAILED).inc()
                log.error("loading %s failed: %s; everything that served still serves", card.tag, failure)
                raise LoadFailed(f"{card.tag} could not be loaded: {failure}")
            with self._change() as state:
                state["models"][name]["versions"][version]["state"] = ServingState.SERVING
            await self._applied_everywhere()
            seconds = time.monotonic() - started
            LOADS.labels(model=name, version=version, outcome=LoadOutcome.LOADED).inc()
            LOAD_SECONDS.labels(model=name).observe(seconds)
            log.info("%s serves, %.1f s after its load call, in runner %s", card.tag, seconds, slot)
            return {"model": name, "version": version, "state": ServingState.SERVING, "runner": slot, "seconds": round(seconds, 3), "loaded": True}

    async def unload(self, name: str, version: str, force: bool = False) -> dict:
        """Take a version out of the routing, let it finish what it holds, then empty its runner."""
        async with self.operation:
            with self._change() as state:
                entry = state["models"].get(name)
                if entry is None or version not in entry["versions"]:
                    raise NotFound(f"{name}:{version} is not loaded")
                detach(entry, name, version, force)
                entry["versions"][version]["state"] = ServingState.UNLOADING
                slot = entry["versions"][version]["slot"]
            await self._applied_everywhere()  # out of the routing in every entry worker
            handle = self.retiring.get((name, version))
            if handle is not None:
                await drain(handle, self.config.live.drain_timeout_seconds)
            await self._empty(self.slots[slot])
            with self._change() as state:
                state["models"][name]["versions"].pop(version, None)
            await self._applied_everywhere()
            LOADS.labels(model=name, version=version, outcome=LoadOutcome.UNLOADED).inc()
            log.info("%s:%s unloaded; runner %s is empty", name, version, slot)
            return {"model": name, "version": version, "state": ServingState.UNLOADED, "runner": slot}

    async def route(self, name: str, aliases: dict[str, Target], default_version: str, shadow: dict | None) -> None:
        """Aliases, default version and shadow of a model, as the desired state has them for what serves
        here (serving/fleet/replica.py checked that)."""
        entry = self._read()["models"].get(name)
        if entry is None or (entry["aliases"], entry["default_version"], entry["shadow"]) == (aliases, default_version, shadow):
            return
        with self._change() as state:
            entry = state["models"][name]
            entry["aliases"], entry["default_version"], entry["shadow"] = copy.deepcopy(aliases), default_version, shadow
        await self._applied_everywhere()

    def index(self) -> list[IndexRow]:
        """Every version served, loading, unloading or failed, with its state and reason. A version this
        worker routes nothing to (loading, unloading, or serving but not followed yet) is not ready here:
        loading, or unavailable once it is unloading."""
        rows: list[IndexRow] = []
        for name, entry in self._read()["models"].items():
            model = self.registry.models.get(name)
            for version, info in entry["versions"].items():
                handle = model.handles.get(version) if model else None
                status, reason = (handle.status["status"], handle.status["reason"]) if handle else (not_routed(info["state"]), None)
                rows.append({"name": name, "version": version, "state": info["state"], "status": status, "reason": reason, "runner": info["slot"]})
            rows += [
                {"name": name, "version": v, "state": ServingState.FAILED, "status": VersionState.UNAVAILABLE, "reason": r, "runner": None} for v, r in entry["failures"].items()
            ]
        return rows

    # --- helpers ----------------------------------------------------------------------------------

    def _free_slot(self, state: ServingFile) -> str:
        used = {info["slot"] for entry in state["models"].values() for info in entry["versions"].values()}
        free = [name for name, ref in self.slots.items() if name not in used]
        if not free:
            raise Unavailable("no free runner: unload a version first, or raise live.spare_runners", retry_after=10)
        return sorted(free, key=lambda slot: (not slot.startswith("spare-"), slot))[0]

    async def _wait(self, ref: SlotRef, generation: int, wanted: SlotPhase, timeout: float) -> str | None:
        """None once every worker of the slot reports ``wanted`` for ``generation``, else why not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reports = [r for r in ref.state.reports().values() if r.get("generation") == generation]
            failed = [r for r in reports if r["state"] == SlotPhase.FAILED]
            if failed:
                return failed[0]["reason"]
            if len([r for r in reports if r["state"] == wanted]) >= ref.workers:
                return None
            await asyncio.sleep(0.1)
        return f"no answer within {timeout:g} s (the runner hung or kept dying while loading)"

    async def _empty(self, ref: SlotRef, kill: bool = False) -> None:
        """Empty a slot; a hung runner has its workers killed (BentoML restarts them empty). A hung
        in-process load cannot be killed without its entry worker: the slot empties once it returns."""
        if kill and ref.in_process:
            ref.state.assign(None, None)
            return
        if kill:
            for pid in ref.state.reports():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        generation = ref.state.assign(None, None)
        await self._wait(ref, generation, SlotPhase.EMPTY, EMPTY_TIMEOUT_SECONDS)


def not_routed(state: ServingState) -> VersionState:
    """The status of a version in the serving state that this worker has no handle for."""
    return VersionState.UNAVAILABLE if state == ServingState.UNLOADING else VersionState.LOADING


async def drain(handle: VersionHandle, timeout: float) -> None:
    """Wait until a version out of the routing has answered the requests it holds (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    while handle.in_flight and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise BadRequest(f"{name!r} is not a version or alias name: 1 to 63 characters of a-z, 0-9, '.', '_', '-'")


def wanted_versions(stored: list[str], policy: VersionPolicy) -> list[str]:
    """The stored versions (oldest first) a version policy serves."""
    if policy.all:
        return stored
    if policy.latest is not None:
        return stored[-policy.latest :]
    return [v for v in stored if v in (policy.specific or [])]
