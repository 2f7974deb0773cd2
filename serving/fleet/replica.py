"""One replica's side of the desired state: admin operations write it, and the replica serves it.

Every admin operation, through any replica and any protocol, is a compare-and-set write of the desired
state (serving/fleet/desired.py) through the configured backend; then the replica that took the call
applies it (:meth:`Fleet.apply`) and answers once it serves the change. Every other replica learns of
the change at once (the backend's notice; a poll every ``state.poll_seconds`` as the safety net) and
applies it too. Applying is local work done by serving/live.py, one pass at a time per replica (a lock
in the runtime directory, shared by its entry workers): first load what is missing (fetched from the
model repository when the store lacks it), then set aliases, default and shadow to what serves here,
then unload what is no longer wanted. What could not be applied is reported, never guessed.

A replica answers /readyz only once it has applied the desired state it found at start. When the
backend is unreachable, replicas serve what they applied last, admin calls answer 503, and the replicas
catch up when it is back. Each replica reports what it serves (``GET /fleet``).

    >>> fleet = Fleet(config, live, open_backend(config, runtime), runtime)
    >>> await fleet.load("clothes", "v3")                   # desired everywhere; returns once it serves here
    >>> await fleet.set_alias("clothes", "stable", {"v1": 90, "v3": 10}, based_on=7)   # 409 unless generation 7 is current
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import fcntl
import json
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from config import Config, VersionPolicy
from models import repository, store
from serving.errors import BadRequest, Conflict, NotFound, ServingError, Unavailable
from serving.feedback import Item
from serving.fleet import desired
from serving.fleet.backends import BackendUnreachable, StaleState, StateBackend
from serving.fleet.desired import DesiredModel, DesiredState, Rollout
from serving.fleet.rollouts import HISTORY_TICKS, PUBLISH_SECONDS, TICK_SECONDS, Counts, Decision, VersionStats, judge, merged, stats_key
from serving.live import LiveModels, LoadFailed, ServingState, check_name, wanted_versions
from serving.registry import Target, targets
from serving.slots import write_json
from serving.workers import Board

if TYPE_CHECKING:
    from serving.feedback import Journal

log = logging.getLogger(__name__)
WRITE_ATTEMPTS = 20  # read-change-write rounds lost to other writers before an admin call gives up (503)
LOCK_POLL_SECONDS = 0.02
RETRY_FAILED_SECONDS = 60.0  # a version that could not be loaded here is tried again after this long
STARTUP_SECONDS = 10.0  # a starting worker catches up with the desired state for this long before it takes requests


class Applied(TypedDict):
    """``runtime/fleet.json``: what this replica applied, shared by its entry workers."""

    generation: int  # the desired generation applied (0: none yet)
    failures: dict[str, str]  # "model:version" -> why it could not be loaded here
    failed_at: dict[str, float]  # "model:version" -> when (a follower tries it again RETRY_FAILED_SECONDS later)
    divergence: list[str]  # what of the desired state this replica does not serve, and why
    time: float


class Fleet:
    def __init__(self, config: Config, live: LiveModels, backend: StateBackend, runtime: Path):
        self.config, self.live, self.backend = config, live, backend
        self.replica = config.state.replica or socket.gethostname()
        self.applied_path = runtime / "fleet.json"
        self.lock_path = runtime / "fleet.lock"
        self.repository = config.repository_dir()
        self.first_seen: int | None = None  # the desired generation this worker found first: ready once it is applied
        self._caught_up = False
        self.unreachable: str | None = None  # why the backend did not answer, while it does not
        self.tasks: list[asyncio.Task] = []
        self.load_errors: dict[tuple[str, str], Exception] = {}  # the last failed load of each version in this worker
        self.ready_check: Callable[[], bool] | None = None  # the data plane's readiness, for the reports
        self.drift_counts: Callable[[], dict] | None = None  # the data plane's drift windows as counts, for the reports
        self.stats: VersionStats = VersionStats()  # the data plane's answers per version (its own), for rollouts
        self.journal: Journal | None = None  # the data plane's feedback join: live accuracy for rollouts
        self.board = Board("rollout", runtime)
        self._step_baselines: dict[tuple, tuple[Counts, Counts]] = {}  # (model, alias, step, step_started) -> (candidate, baseline) counts as it began
        self._history: collections.deque[tuple[float, dict[str, Counts]]] = collections.deque(maxlen=HISTORY_TICKS)  # the driver's recent counts

    # --- reading and writing the desired state -----------------------------------------------------

    async def desired(self) -> DesiredState:
        """The desired state; an empty backend is seeded from configuration.yaml first."""
        state = await self.backend.read()
        if state is None:
            with contextlib.suppress(StaleState):  # another replica seeded it first
                await self.backend.write(desired.seed(self.config), 0)
            state = await self.backend.read()
            assert state is not None
        return state

    async def change(self, operation: Callable[[DesiredState], Any], based_on: int | None = None) -> tuple[int, Any]:
        """Apply ``operation`` to the current state and write it: (the generation written, its result).

        Without ``based_on`` a lost race is retried on the newer state, so concurrent admins lose nothing;
        with it (the client's ``If-Match``), a state that moved on is a 409 naming the current generation.
        An operation that returns False changed nothing: nothing is written.
        """
        for _ in range(WRITE_ATTEMPTS):
            state = await self.desired()
            if based_on is not None and state["generation"] != based_on:
                raise StaleState(based_on, state["generation"])
            result = operation(state)
            if result is False:
                return state["generation"], result
            try:
                return await self.backend.write(state, state["generation"]), result
            except StaleState:
                if based_on is not None:
                    raise
        raise Unavailable(f"the desired state changed under this call {WRITE_ATTEMPTS} times; retry", retry_after=1)

    # --- applying it here ----------------------------------------------------------------------------

    def applied(self) -> Applied:
        try:
            return json.loads(self.applied_path.read_text())
        except (OSError, ValueError):
            return {"generation": 0, "failures": {}, "failed_at": {}, "divergence": [], "time": 0.0}

    def caught_up(self) -> bool:
        """This replica serves the desired state it found at start (or a later one): until then it is not
        ready, and answers no prediction (503: a load balancer retries elsewhere) rather than answer with
        what configuration.yaml serves. Once true, true for good: a plain attribute on the request path."""
        if not self._caught_up:
            self._caught_up = self.first_seen is not None and self.applied()["generation"] >= self.first_seen
        return self._caught_up

    @contextlib.asynccontextmanager
    async def _replica_lock(self):
        with open(self.lock_path, "a") as lock:
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(LOCK_POLL_SECONDS)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _elected(self, name: str):
        """True for the one entry worker of this replica that holds the lock ``name`` (for as long as the
        block runs), False for the others: a replica's reporter, rollout driver, feedback relay, store watch."""
        with open(self.lock_path.with_name(name), "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True

    async def apply(self, retry: frozenset[tuple[str, str]] = frozenset()) -> Applied:
        """Serve the current desired state here (a version that failed here is tried again only when in ``retry``)."""
        async with self._replica_lock():
            state = await self.desired()
            done: Applied = self.applied()
            if state["generation"] <= done["generation"] and not retry:
                return done
            failures = {key: reason for key, reason in done["failures"].items() if _version(key) not in retry}
            failed_at = {key: at for key, at in done.get("failed_at", {}).items() if key in failures}
            for name, entry in state["models"].items():
                here = self._local_versions(name)  # read once: the loads below add only the versions they load
                for version in entry["versions"]:
                    if version in here or f"{name}:{version}" in failures:
                        continue
                    try:
                        if await asyncio.to_thread(repository.ensure_local, self.repository, name, version):
                            log.info("%s fetched from the repository %s", store.tag(name, version), self.repository)
                        await self.live.load(name, version)
                    except (store.ModelStoreError, LoadFailed, NotFound, Unavailable) as exc:
                        self.load_errors[name, version] = exc
                        failures[f"{name}:{version}"] = getattr(exc, "message", str(exc))
                        failed_at[f"{name}:{version}"] = time.time()
                        log.error("desired generation %d: %s:%s cannot be served here: %s", state["generation"], name, version, failures[f"{name}:{version}"])
            divergence = []
            for name, entry in state["models"].items():
                divergence += await self._route(name, entry)
            for name in list(self.live.state()["models"]):
                wanted = desired.versions(state, name)
                for version in [v for v in self._local_versions(name, every=True) if v not in wanted]:
                    with contextlib.suppress(NotFound):
                        await self.live.unload(name, version, force=True)
            failures = {key: reason for key, reason in failures.items() if _wanted(state, key)}
            failed_at = {key: at for key, at in failed_at.items() if key in failures}
            done = {"generation": state["generation"], "failures": failures, "failed_at": failed_at, "divergence": divergence, "time": time.time()}
            write_json(self.applied_path, dict(done))
            with contextlib.suppress(BackendUnreachable):  # /fleet shows the change now, not at the next report
                await self.put_report()
            log.info("desired generation %d applied%s", state["generation"], f"; diverging: {'; '.join(divergence)}" if divergence else "")
            return done

    def _local_versions(self, name: str, every: bool = False) -> set[str]:
        entry = self.live.state()["models"].get(name)
        if entry is None:
            return set()
        return {v for v, info in entry["versions"].items() if every or info["state"] == ServingState.SERVING}

    async def _route(self, name: str, entry: DesiredModel) -> list[str]:
        """Aliases, default and shadow as desired, for what serves here; what cannot be is said. An alias
        whose versions do not all serve here keeps answering with those that do (a split narrowed to
        them), else with what it answered here before, else it is left out."""
        serving, divergence = self._local_versions(name), []
        here = self.live.state()["models"].get(name)
        before: dict[str, Target] = here["aliases"] if here else {}
        aliases: dict[str, Target] = {}
        for alias, target in entry["aliases"].items():
            missing = [v for v in targets(target) if v not in serving]
            if not missing:
                aliases[alias] = target
                continue
            narrowed = {v: w for v, w in target.items() if v in serving and w > 0} if isinstance(target, dict) else {}
            kept = before.get(alias)
            fallback: Target | None = narrowed or (kept if kept is not None and all(v in serving for v in targets(kept)) else None)
            if fallback is not None:
                aliases[alias] = fallback
            divergence.append(f"{name} alias {alias} -> {target}: {', '.join(missing)} not served here; here it answers {fallback or 'nothing'}")
        shadow = desired.effective_shadow(entry)
        if shadow and (shadow["candidate"] not in serving or shadow["alias"] not in aliases):
            divergence.append(f"{name} shadow of {shadow['alias']} by {shadow['candidate']}: not served here")
            shadow = None
        await self.live.route(name, aliases, entry["default_version"], shadow)
        return divergence

    # --- following it -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Follow the desired state from now on. At a worker's start (before it takes requests) it first
        catches up with it, for up to ``STARTUP_SECONDS`` (then in the background, not ready meanwhile):
        usually there is nothing to load, and the worker answers from the desired state from its first request."""
        loop = asyncio.get_running_loop()
        catching_up = loop.create_task(self._catch_up())
        await asyncio.wait([catching_up], timeout=STARTUP_SECONDS)  # not cancelled after: a load must not be cut in half
        self.tasks = [catching_up, loop.create_task(self._follow()), loop.create_task(self._report())]
        self.tasks += [loop.create_task(self._publish_stats()), loop.create_task(self._drive_rollouts())]
        if self.backend.shares_feedback:
            self.tasks.append(loop.create_task(self._receive_feedback()))
        if any(settings.watch for settings in self.config.models.values()):
            self.tasks.append(loop.create_task(self.watch_store()))

    async def _catch_up(self) -> None:
        """Apply the desired state found now. A worker that cannot read or apply it, in a replica whose other
        workers applied a generation, serves that one as they do (the follower catches up later); in a
        replica that applied none, it stays unready until the backend answers."""
        try:
            state = await self.desired()
            self.first_seen = state["generation"] if self.first_seen is None else self.first_seen
            if state["generation"] > self.applied()["generation"]:
                await self.apply()
        except BackendUnreachable as exc:  # the follower keeps trying, and says so
            applied = self.applied()["generation"]
            if applied and not self.caught_up():
                self.first_seen = applied
                log.warning("%s; this worker starts serving generation %d, as this replica does, until it is back", exc.message, applied)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await self.backend.close()

    async def _follow(self) -> None:
        while True:
            try:
                await self.backend.wait_change(self.config.state.poll_seconds)
                state = await self.desired()
                if self.unreachable:
                    log.warning("the state backend answers again (%s): desired generation %d", self.backend.describe(), state["generation"])
                self.unreachable = None
                if self.first_seen is None:
                    self.first_seen = state["generation"]
                done = self.applied()
                due = frozenset(_version(key) for key, at in done.get("failed_at", {}).items() if time.time() - at > RETRY_FAILED_SECONDS)
                if state["generation"] > done["generation"] or due:
                    await self.apply(retry=due)  # a version that failed here is tried again now and then: the cause may be gone
            except BackendUnreachable as exc:
                if self.unreachable is None:
                    log.error("%s; serving generation %d until it is back", exc.message, self.applied()["generation"])
                self.unreachable = exc.message
                await asyncio.sleep(min(1.0, self.config.state.poll_seconds))
            except asyncio.CancelledError:
                raise
            except Exception:  # the next round tries again; serving goes on as it was
                log.exception("following the desired state failed")
                await asyncio.sleep(1.0)

    async def _report(self) -> None:
        """One entry worker per replica reports what the replica serves, every ``state.report_seconds``."""
        with self._elected("fleet-report.lock") as elected:
            if not elected:
                return  # another entry worker reports
            period = self.config.state.report_seconds
            while True:
                with contextlib.suppress(BackendUnreachable):
                    await self.put_report()
                await asyncio.sleep(period)

    async def put_report(self) -> None:
        report = await asyncio.to_thread(self.report)  # the drift windows' counts take milliseconds: off the event loop
        await self.backend.put_report(self.replica, report, ttl=3 * self.config.state.report_seconds)

    def report(self) -> dict:
        """What this replica serves now: applied generation, versions with their status, routing, health."""
        done, local = self.applied(), self.live.state()
        rows = self.live.index()
        return {
            "replica": self.replica,
            "generation": done["generation"],
            "ready": bool(self.ready_check()) if self.ready_check else None,
            "models": {
                name: {
                    "versions": {row["version"]: row["status"] for row in rows if row["name"] == name},
                    "aliases": entry["aliases"],
                    "default_version": entry["default_version"],
                    "shadow": entry["shadow"],
                }
                for name, entry in local["models"].items()
            },
            "failures": done["failures"],
            "divergence": done["divergence"],
            "drift": self.drift_counts() if self.drift_counts else {},
            "live": self._live_tallies(rows),
            "time": round(time.time(), 3),
        }

    def _live_tallies(self, rows) -> dict[str, dict[str, list[int]]]:
        """Each served version's (correct, labelled) joined here: GET /fleet adds them up over the replicas."""
        if self.journal is None:
            return {}
        tallies: dict[str, dict[str, list[int]]] = {}
        for row in rows:
            tallies.setdefault(row["name"], {})[row["version"]] = list(self.journal.tally(row["name"], row["version"]))
        return tallies

    # --- admin operations -------------------------------------------------------------------------

    async def load(self, name: str, version: str | None = None, based_on: int | None = None) -> dict:
        """Serve a stored or published version everywhere (the newest not served, without ``version``);
        returns once it serves here. A version that fails here is taken out again, and the call fails."""
        version = version or await self._newest_unserved(name)
        check_name(version)
        if not store.exists(name, version) and not repository.published(self.repository, name, version):
            raise NotFound(store.not_in_store(name, version) + (f", nor published in {self.repository}" if self.repository else ""))
        started = time.monotonic()
        self.load_errors.pop((name, version), None)
        generation, added = await self.change(lambda state: desired.add_version(state, name, version), based_on)
        done = await self.apply(retry=frozenset({(name, version)}))
        failure = done["failures"].get(f"{name}:{version}")
        if failure is not None:
            if added:
                with contextlib.suppress(Conflict, NotFound):  # an alias set meanwhile keeps it: reported, not forced
                    await self.change(lambda state: desired.remove_version(state, name, version))
                await self.apply()
            error = self.load_errors.pop((name, version), None)  # as this worker met it (503 for no free runner), else as reported
            raise error if isinstance(error, ServingError) else LoadFailed(failure)
        info = self.live.state()["models"][name]["versions"][version]
        answer = {"model": name, "version": version, "state": info["state"], "runner": info["slot"], "loaded": added, "generation": generation}
        return {**answer, "seconds": round(time.monotonic() - started, 3)} if added else answer

    async def unload(self, name: str, version: str, force: bool = False, based_on: int | None = None) -> dict:
        """Stop serving a version everywhere; returns once it is unloaded here (its requests finished)."""
        entry = self.live.state()["models"].get(name)
        slot = entry["versions"][version]["slot"] if entry and version in entry["versions"] else None
        generation, _ = await self.change(lambda state: desired.remove_version(state, name, version, force), based_on)
        await self.apply()
        return {"model": name, "version": version, "state": ServingState.UNLOADED, "runner": slot, "generation": generation}

    async def set_alias(self, name: str, alias: str, target: Target, based_on: int | None = None) -> dict:
        """Point an alias at serving versions everywhere, or split it by weights: {"v1": 90, "v2": 10}."""
        check_name(alias)

        def operation(state: DesiredState):
            self._serve_here(name, targets(target))
            return desired.set_alias(state, name, alias, target)

        generation, _ = await self.change(operation, based_on)
        await self.apply()
        log.info("%s alias %s -> %s (generation %d)", name, alias, target, generation)
        return {"model": name, "alias": alias, "target": target, "generation": generation}

    async def set_shadow(self, name: str, shadow: dict | None, based_on: int | None = None) -> dict:
        """Send ``share`` of ``alias``'s requests to ``candidate`` too, everywhere (None: stop)."""

        def operation(state: DesiredState):
            if shadow is not None:
                self._serve_here(name, [shadow["candidate"]])
            return desired.set_shadow(state, name, shadow)

        generation, _ = await self.change(operation, based_on)
        await self.apply()
        return {"model": name, "shadow": shadow, "generation": generation}

    async def promote(self, name: str, version: str, based_on: int | None = None) -> dict:
        """Make ``version`` what the model's promoted alias serves (promotion.alias, else stable), recorded."""
        alias = self._promoted_alias(name)
        check_name(version)

        def operation(state: DesiredState):
            self._serve_here(name, [version])
            return desired.promote(state, name, alias, version)

        generation, event = await self.change(operation, based_on)
        await self.apply()
        log.info("%s: %s promoted to %s (was %s; generation %d)", name, version, alias, event["previous"], generation)
        return {"model": name, **event, "generation": generation}

    async def rollback(self, name: str, based_on: int | None = None) -> dict:
        """Give the promoted alias back what it served before its last promotion."""
        alias = self._promoted_alias(name)
        generation, event = await self.change(lambda state: desired.rollback(state, name, alias), based_on)
        await self.apply()
        log.info("%s: %s rolled back to %s (generation %d)", name, alias, event["version"], generation)
        return {"model": name, **event, "generation": generation}

    async def fleet(self) -> dict:
        """The desired state and every replica's report, with whether each serves the current generation."""
        state, reports = await self.desired(), await self.backend.reports()
        now = time.time()
        replicas = [
            {**report, "in_sync": report["generation"] == state["generation"] and not report["divergence"], "age_seconds": round(now - report["time"], 3)}
            for _, report in sorted(reports.items())
        ]
        return {"backend": self.backend.describe(), "generation": state["generation"], "desired": state, "replicas": replicas}

    def _serve_here(self, name: str, versions: list[str]) -> None:
        failures = self.applied()["failures"]
        for version in versions:
            if f"{name}:{version}" in failures:
                raise Conflict(f"{name}:{version} does not serve on replica {self.replica}: {failures[f'{name}:{version}']}")

    def _promoted_alias(self, name: str) -> str:
        settings = self.config.models.get(name)
        return settings.promotion.alias if settings and settings.promotion else "stable"

    async def _newest_unserved(self, name: str) -> str:
        """The newest version in this replica's store that is not served; else the newest published one."""
        served = set(desired.versions(await self.desired(), name))
        stored = [v for v in store.versions(name) if v not in served]  # oldest first
        published = [v for v in repository.versions(self.repository, name) if v not in served]  # oldest first
        candidates = stored or published
        if not candidates:
            raise NotFound(f"no stored or published version of {name} that is not served; name one in parameters.version")
        return candidates[-1]

    # --- rollouts ----------------------------------------------------------------------------------------

    async def start_rollout(self, name: str, plan: dict, based_on: int | None = None) -> dict:
        """Start a rollout (serving/fleet/rollouts.py): the candidate takes the first step's share at once."""
        check_name(plan["alias"])
        check_name(plan["candidate"])

        def operation(state: DesiredState):
            self._serve_here(name, [plan["candidate"]])
            return desired.start_rollout(state, name, plan, time.time())

        generation, rollout = await self.change(operation, based_on)
        await self.apply()
        log.info("%s: rollout of %s through %s started at %d%% (generation %d)", name, plan["candidate"], plan["alias"], plan["steps"][0], generation)
        return {"model": name, **rollout, "generation": generation}

    async def rollout_action(self, name: str, alias: str, action: str, based_on: int | None = None) -> dict:
        """pause, resume or abort a rollout (abort: the alias serves its baseline again)."""
        now = time.time()

        def operation(state: DesiredState):
            if action == "abort":
                return desired.end_rollout(state, name, alias, "abort", "aborted by an admin", {}, now)
            return desired.pause_rollout(state, name, alias, action == "pause", now)

        generation, rollout = await self.change(operation, based_on)
        await self.apply()
        return {"model": name, **rollout, "generation": generation}

    async def rollouts(self, name: str) -> dict:
        entry = desired.model(await self.desired(), name)
        return {"model": name, "rollouts": list(desired.rollouts(entry).values())}

    async def _publish_stats(self) -> None:
        """Every entry worker: its answers per version, for the replica's rollout driver."""
        while True:
            await asyncio.sleep(PUBLISH_SECONDS)
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self.board.publish, "stats", self.stats.snapshot())

    def replica_counts(self) -> dict[str, Counts]:
        """Every entry worker's answers per version, summed (this one's live, the others' as published)."""
        return merged([self.stats.snapshot(), *self.board.others("stats")])

    async def _drive_rollouts(self) -> None:
        """One entry worker per replica judges the running rollouts every TICK_SECONDS."""
        with self._elected("rollouts.lock") as elected:
            if not elected:
                return  # another entry worker drives them
            while True:
                await asyncio.sleep(TICK_SECONDS)
                try:
                    await self.drive_once()
                except (BackendUnreachable, Conflict, StaleState):
                    pass  # the next tick tries again
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("driving the rollouts failed")

    async def drive_once(self) -> list[tuple[str, str, str]]:
        """Judge each running rollout's step and write what it calls for: [(model, alias, action)] written."""
        state, now, done = await self.desired(), time.time(), []
        counts = await asyncio.to_thread(self.replica_counts)
        self._history.append((now, counts))
        for name, entry in state["models"].items():
            for alias, rollout in desired.rollouts(entry).items():
                if rollout["status"] != "running":
                    continue
                key = (name, alias, rollout["step"], rollout["step_started"])
                keys = stats_key(name, rollout["candidate"], alias), stats_key(name, rollout["baseline"], alias)
                candidate_now, baseline_now = counts.get(keys[0], Counts()), counts.get(keys[1], Counts())
                if key not in self._step_baselines:  # the counts as the step began (from this driver's history), else as now
                    found = self._counts_at(rollout["step_started"])
                    at = counts if found is None else found
                    self._step_baselines[key] = (at.get(keys[0], Counts()), at.get(keys[1], Counts()))
                before = self._step_baselines[key]
                accuracy = await asyncio.to_thread(self._accuracy, name, rollout)
                decision = judge(rollout, candidate_now.minus(before[0]), baseline_now.minus(before[1]), accuracy, now)
                if rollout["candidate"] not in entry["versions"]:
                    decision = Decision("rollback", f"{name}:{rollout['candidate']} no longer serves", decision.gates)
                if decision.action == "wait":
                    continue
                step = rollout["step"]
                if decision.action == "advance":
                    operation = lambda state, n=name, a=alias, st=step, g=decision.gates: desired.advance_rollout(state, n, a, st, g, time.time())  # noqa: E731
                else:
                    operation = lambda state, n=name, a=alias, st=step, d=decision: desired.end_rollout(state, n, a, "rollback", d.reason, d.gates, time.time(), step=st)  # noqa: E731
                generation, result = await self.change(operation)
                if result is not False:
                    log.info("%s %s rollout of %s: %s at step %d (%s; generation %d)", name, alias, rollout["candidate"], decision.action, step, decision.reason, generation)
                    done.append((name, alias, decision.action))
                    await self.apply()
        return done

    def _counts_at(self, when: float) -> dict[str, Counts] | None:
        """The replica's counts as of the last tick at or before ``when``; None when this driver has none that old."""
        found = None
        for at, counts in self._history:
            if at > when:
                break
            found = counts
        return found

    def _accuracy(self, name: str, rollout: Rollout) -> dict[str, tuple[int, int]]:
        """(correct, labelled) of the candidate in this step and of the baseline since the rollout began."""
        if self.journal is None:
            return {}
        began = rollout["events"][0]["time"] if rollout["events"] else rollout["step_started"]
        return {
            "candidate": self.journal.tally(name, rollout["candidate"], rollout["step_started"]),
            "baseline": self.journal.tally(name, rollout["baseline"], began),
        }

    # --- feedback across the fleet -------------------------------------------------------------------

    async def share_feedback(self, model: str, items: list[Item]) -> bool:
        """Send feedback this replica took to the others, which join the answers they gave; False where
        the backend shares none (one replica) or is unreachable (this replica joined its own)."""
        if not self.backend.shares_feedback:
            return False
        try:
            await self.backend.put_feedback(self.replica, model, [dataclasses.asdict(item) for item in items])
        except BackendUnreachable as exc:
            log.warning("feedback for %s not shared with the fleet: %s", model, exc.message)
            return False
        return True

    async def _receive_feedback(self) -> None:
        """One entry worker per replica takes the feedback other replicas took, into this replica's join."""
        with self._elected("feedback-relay.lock") as elected:
            if not elected:
                return  # another entry worker receives it
            cursor: str | None = None
            while True:
                try:
                    cursor, entries = await self.backend.feedback_since(cursor)
                    for entry in entries:
                        if entry["origin"] != self.replica and self.journal is not None:
                            await asyncio.to_thread(self.journal.store, entry["model"], [Item(**item) for item in entry["items"]])
                except BackendUnreachable:
                    pass  # feedback sent meanwhile is read when it is back (the stream keeps it)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("receiving the fleet's feedback failed")
                await asyncio.sleep(self.config.feedback.join_seconds)

    # --- the store's watched models -------------------------------------------------------------------

    async def watch_store(self) -> None:
        """Load and unload the watched models' stored versions by their policies (one entry worker per replica;
        every replica may: the desired state takes each change once)."""
        watched = {name: settings.watch for name, settings in self.config.models.items() if settings.watch}
        with self._elected("watch.lock") as elected:
            if not elected:
                return  # another entry worker watches
            tried: set[tuple[str, str]] = set()
            while True:
                for name, watch in watched.items():
                    assert watch is not None
                    with contextlib.suppress(BackendUnreachable):
                        await self._apply_policy(name, watch.policy, tried)
                await asyncio.sleep(min(w.poll_seconds for w in watched.values() if w))

    async def _apply_policy(self, name: str, policy: VersionPolicy, tried: set[tuple[str, str]]) -> None:
        wanted = set(wanted_versions(store.versions(name), policy))
        served = set(desired.versions((await self.desired()), name))
        for version in sorted(wanted - served):
            if (name, version) in tried:
                continue  # a failed load is not retried every poll: unload or retrain it
            tried.add((name, version))
            with contextlib.suppress(LoadFailed, Unavailable, NotFound, BadRequest):
                await self.load(name, version)
        for version in sorted(served - wanted):
            with contextlib.suppress(Conflict, NotFound):  # the last version of an alias stays
                await self.unload(name, version)


def _version(key: str) -> tuple[str, str]:
    name, version = key.split(":", 1)
    return name, version


def _wanted(state: DesiredState, key: str) -> bool:
    name, version = _version(key)
    return version in desired.versions(state, name)
