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
from typing import TypedDict

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


class DesiredModel(TypedDict):
    versions: list[str]
    aliases: dict[str, Target]
    default_version: str
    shadow: dict | None  # {"alias", "candidate", "share"}: serving/shadow.py
    promotions: list[PromotionEvent]  # oldest first


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
    entry["shadow"] = shadow


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
