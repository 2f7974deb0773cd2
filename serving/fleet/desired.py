"""The desired state: what every replica serves (versions, aliases and splits, shadows, promotions), with a
generation that every change raises. Changes are pure functions here; serving/fleet/replica.py writes
them through a backend and makes the replica serve them.

    >>> state = seed(config)                               # what configuration.yaml serves: generation 0
    >>> add_version(state, "clothes", "v3")                # True: changed
    >>> set_alias(state, "clothes", "stable", {"v1": 90, "v3": 10})
    >>> remove_version(state, "clothes", "v1")             # 409 while an alias serves only v1
"""

from __future__ import annotations

import copy
import time
from typing import NotRequired, TypedDict

from config import Config
from serving.errors import BadRequest, Conflict, NotFound
from serving.registry import Target, targets


class PromotionEvent(TypedDict):
    action: str  # promote or rollback
    alias: str
    version: str  # what the alias serves after it
    previous: Target | None  # what it served before
    time: float
    generation: int  # the generation that made it
    undoes: int | None  # a rollback: the generation of the promotion it undid


class RolloutEvent(TypedDict):
    action: str  # start, advance, complete, rollback, pause, resume, abort
    step: int  # the step it left the rollout at (an index into steps)
    share: int  # the candidate's percentage of the alias's requests after it
    reason: str
    gates: dict  # the gate values it was decided on (advance, complete, rollback)
    time: float
    generation: int


class Rollout(TypedDict):
    """A progressive delivery of ``candidate`` through ``alias``: its share of the alias's requests goes up
    ``steps`` (percentages) while the gates hold; serving/fleet/rollouts.py decides, these functions record."""

    alias: str
    candidate: str
    baseline: str  # what the alias served when it started, and serves again after a rollback or an abort
    steps: list[int]
    step: int
    status: str  # running, paused, completed, rolled_back, aborted
    min_dwell_seconds: float
    min_requests: int
    gates: dict  # serving/fleet/rollouts.py DEFAULT_GATES (None: not gated)
    step_started: float
    events: list[RolloutEvent]


class DesiredModel(TypedDict):
    versions: list[str]
    aliases: dict[str, Target]
    default_version: str
    shadow: dict | None  # {"alias", "candidate", "share"}: serving/shadow.py
    promotions: list[PromotionEvent]  # oldest first
    rollouts: NotRequired[dict[str, Rollout]]  # by alias, the last one of each (states older than rollouts have none)


class DesiredState(TypedDict):
    generation: int  # 0: seeded from configuration.yaml, never changed
    models: dict[str, DesiredModel]


def seed(config: Config) -> DesiredState:
    """What configuration.yaml serves (with the promotion record's aliases): an empty backend starts from it."""
    return {
        "generation": 0,
        "models": {
            name: {
                "versions": list(settings.versions),
                "aliases": copy.deepcopy(dict(settings.aliases)),
                "default_version": settings.default,
                "shadow": None,
                "promotions": [],
                "rollouts": {},
            }
            for name, settings in config.models.items()
        },
    }


def model(state: DesiredState, name: str) -> DesiredModel:
    entry = state["models"].get(name)
    if entry is None:
        raise NotFound(f"unknown model {name!r}; available: {', '.join(state['models']) or 'none'}")
    return entry


def versions(state: DesiredState, name: str) -> list[str]:
    """The versions ``name`` should serve (none for a model the state does not know)."""
    entry = state["models"].get(name)
    return entry["versions"] if entry else []


def add_version(state: DesiredState, name: str, version: str) -> bool:
    """Serve ``version`` too (a new model starts with it as its default); False when it already is."""
    entry = state["models"].setdefault(name, {"versions": [], "aliases": {}, "default_version": version, "shadow": None, "promotions": []})
    if version in entry["versions"]:
        return False
    entry["versions"].append(version)
    return True


def remove_version(state: DesiredState, name: str, version: str, force: bool = False) -> None:
    """Stop serving ``version``: out of its aliases and shadow first; 409 when that would leave an alias
    without a version or the model without its default, unless ``force`` (the alias then goes)."""
    entry = state["models"].get(name)
    if entry is None or version not in entry["versions"]:
        raise NotFound(f"{name}:{version} is not loaded")
    detach(entry, name, version, force)
    entry["versions"].remove(version)


def detach(entry, name: str, version: str, force: bool) -> None:
    """Take ``version`` out of a model's aliases and shadow (a desired or a served entry); 409 when that
    would leave an alias without a version or the model without its default, unless ``force``."""
    for alias, target in list(entry["aliases"].items()):
        if version not in targets(target):
            continue
        remaining = {v: w for v, w in target.items() if v != version} if isinstance(target, dict) else {}
        if any(remaining.values()):
            entry["aliases"][alias] = remaining
        elif force:
            del entry["aliases"][alias]
        else:
            raise Conflict(f"{alias} serves only {name}:{version}: move {alias} to another version first, or unload with force")
    if entry["default_version"] == version and not force:
        raise Conflict(f"{version} is {name}'s default version: set another (configuration) or unload with force")
    if entry["shadow"] and entry["shadow"]["candidate"] == version:
        entry["shadow"] = None


def set_alias(state: DesiredState, name: str, alias: str, target: Target) -> bool:
    """Point an alias at served versions (one, or weights); False when it already does."""
    entry = model(state, name)
    wanted = targets(target)
    if not wanted:
        raise BadRequest(f"alias {alias}: a split needs a version of weight above 0")
    if alias in entry["versions"]:
        raise Conflict(f"{alias!r} is a version of {name}, not an alias")
    for version in wanted:
        if version not in entry["versions"]:
            raise Conflict(f"{name}:{version} does not serve (load it first); {alias} stays {entry['aliases'].get(alias)}")
    if entry["aliases"].get(alias) == target:
        return False
    entry["aliases"][alias] = target
    return True


def set_shadow(state: DesiredState, name: str, shadow: dict | None) -> None:
    """Send ``share`` of ``alias``'s requests to ``candidate`` too (None: stop)."""
    entry = model(state, name)
    if shadow is not None:
        if shadow["alias"] not in entry["aliases"]:
            raise Conflict(f"{name} has no alias {shadow['alias']!r}")
        if shadow["candidate"] not in entry["versions"]:
            raise Conflict(f"{name}:{shadow['candidate']} does not serve (load it first)")
        if not 0 < shadow["share"] <= 1:
            raise BadRequest("share: expected a number in (0, 1]")
        mirrored = rollout_shadow(entry)
        if mirrored and (mirrored["alias"], mirrored["candidate"]) != (shadow["alias"], shadow["candidate"]):
            raise Conflict(f"{name}'s rollout mirrors {mirrored['alias']} to {mirrored['candidate']} to gate their agreement; a model has one shadow: wait for it or abort it")
    entry["shadow"] = shadow


def rollout_shadow(entry: DesiredModel) -> dict | None:
    """The shadow a running rollout gated on agreement needs: the baseline's requests through its alias mirrored to the candidate."""
    for alias, rollout in rollouts(entry).items():
        if rollout["status"] == "running" and rollout["gates"].get("min_shadow_agreement") is not None:
            return {"alias": alias, "candidate": rollout["candidate"], "share": rollout["gates"].get("shadow_share", 0.2)}
    return None


def effective_shadow(entry: DesiredModel) -> dict | None:
    """The shadow a model runs: the one set (serving/shadow.py), else the one its rollout needs."""
    return entry["shadow"] or rollout_shadow(entry)


def promote(state: DesiredState, name: str, alias: str, version: str) -> PromotionEvent:
    """Make ``version`` what ``alias`` serves, recorded so that a rollback can undo it."""
    entry = model(state, name)
    previous = entry["aliases"].get(alias)
    if previous == version:
        raise Conflict(f"{name}'s {alias} already serves {version}")
    set_alias(state, name, alias, version)
    return _record(entry, "promote", alias, version, previous, state["generation"] + 1)


def rollback(state: DesiredState, name: str, alias: str) -> PromotionEvent:
    """Give ``alias`` back what it served before its last promotion still in effect."""
    entry = model(state, name)
    undone = {event["undoes"] for event in entry["promotions"] if event["action"] == "rollback"}
    promotions = [e for e in entry["promotions"] if e["action"] == "promote" and e["alias"] == alias and e["generation"] not in undone]
    if not promotions or promotions[-1]["previous"] is None:
        raise Conflict(f"{name}'s {alias} has no promotion to roll back")
    last = promotions[-1]
    previous = last["previous"]
    assert previous is not None
    for version in targets(previous):
        if version not in entry["versions"]:
            raise Conflict(f"rolling back needs {name}:{version}, which is not loaded: load it first")
    entry["aliases"][alias] = previous
    return _record(entry, "rollback", alias, ",".join(targets(previous)), last["version"], state["generation"] + 1, undoes=last["generation"])


def _record(entry: DesiredModel, action: str, alias: str, version: str, previous: Target | None, generation: int, undoes: int | None = None) -> PromotionEvent:
    event: PromotionEvent = {
        "action": action,
        "alias": alias,
        "version": version,
        "previous": previous,
        "time": round(time.time(), 3),
        "generation": generation,
        "undoes": undoes,
    }
    entry["promotions"].append(event)
    return event


# --- rollouts ---------------------------------------------------------------------------------------------

ACTIVE = ("running", "paused")


def rollouts(entry: DesiredModel) -> dict[str, Rollout]:
    return entry.setdefault("rollouts", {})


def start_rollout(state: DesiredState, name: str, plan: dict, now: float) -> Rollout:
    """Start moving ``plan["alias"]`` to ``plan["candidate"]``: its first step's share at once."""
    entry = model(state, name)
    alias, candidate, steps = plan["alias"], plan["candidate"], plan["steps"]
    existing = rollouts(entry).get(alias)
    if existing is not None and existing["status"] in ACTIVE:
        raise Conflict(f"{name}'s {alias} is in a rollout of {existing['candidate']} ({existing['status']}): abort it first")
    current = entry["aliases"].get(alias)
    if not isinstance(current, str):
        raise Conflict(f"{name}'s {alias} must serve one version to start a rollout (it is {current or 'not an alias'})")
    if current == candidate:
        raise Conflict(f"{name}'s {alias} already serves {candidate}")
    if candidate not in entry["versions"]:
        raise Conflict(f"{name}:{candidate} does not serve (load it first)")
    shadow = entry["shadow"]
    if plan["gates"].get("min_shadow_agreement") is not None and shadow and (shadow["alias"], shadow["candidate"]) != (alias, candidate):
        raise Conflict(
            f"{name} shadows {shadow['alias']} by {shadow['candidate']}; a model has one shadow, and gating agreement mirrors {alias} to {candidate}: stop that shadow first"
        )
    rollout: Rollout = {
        "alias": alias,
        "candidate": candidate,
        "baseline": current,
        "steps": list(steps),
        "step": 0,
        "status": "running",
        "min_dwell_seconds": plan["min_dwell_seconds"],
        "min_requests": plan["min_requests"],
        "gates": dict(plan["gates"]),
        "step_started": now,
        "events": [],
    }
    rollouts(entry)[alias] = rollout
    _share(entry, rollout)
    _event(state, rollout, "start", f"{candidate} takes {steps[0]}% of {alias} (from {current})", {}, now)
    return rollout


def advance_rollout(state: DesiredState, name: str, alias: str, step: int, gates: dict, now: float) -> Rollout | bool:
    """The next step (the last makes the candidate what the alias serves, recorded as a promotion);
    False when the rollout is no longer at ``step`` or no longer running (another replica decided)."""
    entry = model(state, name)
    rollout = rollouts(entry).get(alias)
    if rollout is None or rollout["status"] != "running" or rollout["step"] != step:
        return False
    if step + 1 >= len(rollout["steps"]):
        rollout["status"] = "completed"
        entry["aliases"][alias] = rollout["candidate"]
        _record(entry, "promote", alias, rollout["candidate"], rollout["baseline"], state["generation"] + 1)
        _event(state, rollout, "complete", f"{rollout['candidate']} serves all of {alias}", gates, now)
        return rollout
    rollout["step"] = step + 1
    rollout["step_started"] = now
    _share(entry, rollout)
    _event(state, rollout, "advance", f"gates held for {rollout['steps'][step]}%: {rollout['steps'][step + 1]}% now", gates, now)
    return rollout


def end_rollout(state: DesiredState, name: str, alias: str, action: str, reason: str, gates: dict, now: float, step: int | None = None) -> Rollout | bool:
    """Roll back (a gate broke) or abort (an admin): the alias serves its baseline again. False when the
    rollout is not active (or no longer at ``step``, when given)."""
    entry = model(state, name)
    rollout = rollouts(entry).get(alias)
    if rollout is None or rollout["status"] not in ACTIVE or (step is not None and rollout["step"] != step):
        if action == "abort":
            raise Conflict(f"{name}'s {alias} has no rollout in progress")
        return False
    if rollout["baseline"] not in entry["versions"]:
        raise Conflict(f"{name}:{rollout['baseline']} no longer serves: load it, then abort")
    rollout["status"] = "rolled_back" if action == "rollback" else "aborted"
    entry["aliases"][alias] = rollout["baseline"]
    _event(state, rollout, action, reason, gates, now)
    return rollout


def pause_rollout(state: DesiredState, name: str, alias: str, paused: bool, now: float) -> Rollout:
    """Hold a rollout at its step (no advance, no gate: its share stays), or let it go on."""
    entry = model(state, name)
    rollout = rollouts(entry).get(alias)
    wanted_before = "running" if paused else "paused"
    if rollout is None or rollout["status"] != wanted_before:
        raise Conflict(f"{name}'s {alias} has no {wanted_before} rollout")
    rollout["status"] = "paused" if paused else "running"
    if not paused:
        rollout["step_started"] = now  # the dwell starts again: what happened while paused was not judged
    _event(state, rollout, "pause" if paused else "resume", "by an admin", {}, now)
    return rollout


def _share(entry: DesiredModel, rollout: Rollout) -> None:
    share = rollout["steps"][rollout["step"]]
    entry["aliases"][rollout["alias"]] = rollout["candidate"] if share >= 100 else {rollout["baseline"]: 100 - share, rollout["candidate"]: share}


def _event(state: DesiredState, rollout: Rollout, action: str, reason: str, gates: dict, now: float) -> None:
    share = 0 if action in ("rollback", "abort") else rollout["steps"][rollout["step"]]
    rollout["events"].append(
        {"action": action, "step": rollout["step"], "share": share, "reason": reason, "gates": gates, "time": round(now, 3), "generation": state["generation"] + 1}
    )
