"""Rollouts: the pure steps of the desired state (serving/fleet/desired.py) and the gates' judgement
(serving/fleet/rollouts.py), on counts made up here."""

from __future__ import annotations

import pytest

from serving.errors import Conflict
from serving.fleet import desired
from serving.fleet.rollouts import LATENCY_EDGES_MS, Counts, VersionStats, judge, merged

PLAN = {"alias": "stable", "candidate": "v2", "steps": [10, 50, 100], "min_dwell_seconds": 5, "min_requests": 100, "gates": {"max_error_rate": 0.01, "max_p99_ms": 100}}


def state() -> desired.DesiredState:
    return {"generation": 3, "models": {"m": {"versions": ["v1", "v2"], "aliases": {"stable": "v1"}, "default_version": "stable", "shadow": None, "promotions": []}}}


def counts(requests: int, errors: int = 0, milliseconds: float = 3.0, ood: float | None = None) -> Counts:
    stats = VersionStats()
    for index in range(requests):
        stats.record("m", "v", "stable", index >= errors, milliseconds / 1000, None)
    found = stats.counts.get("m+v@stable", Counts())
    if ood is not None:
        found.ood_sum, found.ood_count = ood * requests, requests
    return found


def test_a_rollout_splits_the_alias_step_by_step_and_completes_as_a_promotion():
    current = state()
    rollout = desired.start_rollout(current, "m", PLAN, now=100.0)
    assert current["models"]["m"]["aliases"]["stable"] == {"v1": 90, "v2": 10} and rollout["baseline"] == "v1"
    assert desired.advance_rollout(current, "m", "stable", 0, {"requests": 120}, now=110.0)["step"] == 1
    assert current["models"]["m"]["aliases"]["stable"] == {"v1": 50, "v2": 50}
    assert desired.advance_rollout(current, "m", "stable", 0, {}, now=111.0) is False  # another replica decided step 0 already
    desired.advance_rollout(current, "m", "stable", 1, {}, now=120.0)
    assert current["models"]["m"]["aliases"]["stable"] == "v2"
    final = desired.advance_rollout(current, "m", "stable", 2, {}, now=130.0)
    assert final["status"] == "completed" and current["models"]["m"]["promotions"][-1]["previous"] == "v1"
    assert [e["action"] for e in final["events"]] == ["start", "advance", "advance", "complete"]
    assert [e["share"] for e in final["events"]] == [10, 50, 100, 100]


def test_a_rollback_restores_the_baseline_once_and_records_why():
    current = state()
    desired.start_rollout(current, "m", PLAN, now=100.0)
    ended = desired.end_rollout(current, "m", "stable", "rollback", "error rate 0.5 > 0.01", {"error_rate": 0.5}, now=101.0, step=0)
    assert current["models"]["m"]["aliases"]["stable"] == "v1"
    assert ended["status"] == "rolled_back" and ended["events"][-1]["reason"] == "error rate 0.5 > 0.01" and ended["events"][-1]["share"] == 0
    assert desired.end_rollout(current, "m", "stable", "rollback", "again", {}, now=102.0, step=0) is False
    with pytest.raises(Conflict, match="no rollout in progress"):
        desired.end_rollout(current, "m", "stable", "abort", "by an admin", {}, now=103.0)


def test_pause_resume_and_refusals():
    current = state()
    with pytest.raises(Conflict, match="already serves v1"):
        desired.start_rollout(current, "m", {**PLAN, "candidate": "v1"}, now=0)
    with pytest.raises(Conflict, match="v3 does not serve"):
        desired.start_rollout(current, "m", {**PLAN, "candidate": "v3"}, now=0)
    desired.start_rollout(current, "m", PLAN, now=0)
    with pytest.raises(Conflict, match="in a rollout of v2"):
        desired.start_rollout(current, "m", PLAN, now=1)
    assert desired.pause_rollout(current, "m", "stable", True, now=2)["status"] == "paused"
    assert desired.advance_rollout(current, "m", "stable", 0, {}, now=3) is False
    assert desired.pause_rollout(current, "m", "stable", False, now=9)["step_started"] == 9
    current["models"]["m"]["aliases"]["stable"] = {"v1": 50, "v2": 50}
    current["models"]["m"]["rollouts"] = {}
    with pytest.raises(Conflict, match="must serve one version"):
        desired.start_rollout(current, "m", PLAN, now=0)


def rollout(step_started: float = 0.0, **gates) -> dict:
    return {**PLAN, "gates": {**PLAN["gates"], **gates}, "step": 0, "status": "running", "step_started": step_started, "events": []}


def test_a_step_waits_for_its_dwell_and_requests_then_advances():
    assert judge(rollout(), counts(150), counts(1000), {}, now=2).action == "wait"
    waiting = judge(rollout(), counts(50), counts(1000), {}, now=10)
    assert waiting.action == "wait" and "50 of 100 requests" in waiting.reason
    advanced = judge(rollout(), counts(150), counts(1000), {}, now=10)
    assert advanced.action == "advance" and advanced.gates["requests"] == 150 and advanced.gates["p99_ms"] == 5.0


def test_errors_break_the_gate_at_once_latency_once_enough_requests():
    broken = judge(rollout(), counts(10, errors=2), counts(100), {}, now=1)
    assert broken.action == "rollback" and "error rate 0.2000 > 0.01 over 10 requests" in broken.reason
    assert judge(rollout(), counts(10, errors=1), counts(100), {}, now=1).action == "wait"  # 1 error in 100 allowed
    slow = judge(rollout(), counts(120, milliseconds=400), counts(100), {}, now=10)
    assert slow.action == "rollback" and "p99 500 ms > 100 ms" in slow.reason


def test_live_accuracy_gates_only_with_enough_labels_and_only_when_confidently_worse():
    gated = rollout(min_labelled=100, max_accuracy_drop=0.02)
    assert "labelled 40" in judge(gated, counts(200), counts(200), {"candidate": (30, 40), "baseline": (90, 100)}, now=10).reason
    worse = judge(gated, counts(200), counts(200), {"candidate": (60, 120), "baseline": (90, 100)}, now=10)
    assert worse.action == "rollback" and "live accuracy 0.5000" in worse.reason
    close = judge(gated, counts(200), counts(200), {"candidate": (85, 100), "baseline": (90, 100)}, now=10)
    assert close.action == "advance" and close.gates["accuracy"] == 0.85


def test_ood_gate_and_counts_merge_across_workers():
    judged = judge(rollout(max_ood_increase=0.5), counts(150, ood=2.0), counts(150, ood=1.0), {}, now=10)
    assert judged.action == "rollback" and "mean OOD score 2" in judged.reason
    first, second = VersionStats(), VersionStats()
    first.record("m", "v1", "stable", True, 0.001)
    second.record("m", "v1", "stable", False, 50.0)
    second.record("m", "v1", None, True, 0.001)  # named by its version: not the alias's
    total = merged([first.snapshot(), second.snapshot()])["m+v1@stable"]
    assert (total.requests, total.errors, total.p99_ms()) == (2, 1, float("inf"))
    assert len(total.latency) == len(LATENCY_EDGES_MS) + 1


def agreeing(examples: int, agreed: int, requests: int = 150) -> Counts:
    found = counts(requests)
    stats = VersionStats()
    stats.record_shadow("m", "v", "stable", examples, agreed)
    found.shadow_examples, found.shadow_agreed = stats.counts["m+v@stable"].shadow_examples, stats.counts["m+v@stable"].shadow_agreed
    return found


def test_shadow_agreement_breaks_only_when_confidently_low_and_is_not_judged_at_100_percent():
    gated = rollout(min_shadow_agreement=0.9, min_shadow_examples=100)
    noise = judge(gated, agreeing(60, 6), counts(600), {}, now=10)
    assert noise.action == "rollback" and "shadow agreement 0.1000" in noise.reason and noise.gates["shadow_examples"] == 60
    few = judge(gated, agreeing(40, 38), counts(600), {}, now=10)
    assert few.action == "wait" and "40 of 100 compared examples" in few.reason
    unsure = judge(gated, agreeing(200, 176), counts(600), {}, now=10)  # 0.88: below 0.9, but its upper bound is not
    assert unsure.action == "wait" and "not yet confidently" in unsure.reason
    assert judge(gated, agreeing(200, 190), counts(600), {}, now=10).action == "advance"
    last = rollout(min_shadow_agreement=0.9) | {"step": 2}  # 100%: the baseline answers nothing to compare
    assert judge(last, agreeing(0, 0), counts(0), {}, now=10).action == "advance"
    assert judge(rollout(), agreeing(60, 6), counts(600), {}, now=10).action == "advance"  # not gated


def test_a_rollout_gated_on_agreement_mirrors_its_alias_and_keeps_one_shadow_per_model():
    current = state()
    plan = {**PLAN, "gates": {"min_shadow_agreement": 0.9, "shadow_share": 0.3}}
    desired.start_rollout(current, "m", plan, now=0)
    entry = current["models"]["m"]
    assert desired.effective_shadow(entry) == {"alias": "stable", "candidate": "v2", "share": 0.3}
    desired.set_shadow(current, "m", {"alias": "stable", "candidate": "v2", "share": 0.5})  # the same pair: its share wins
    assert desired.effective_shadow(entry)["share"] == 0.5
    entry["aliases"]["beta"] = "v1"
    with pytest.raises(Conflict, match="one shadow"):
        desired.set_shadow(current, "m", {"alias": "beta", "candidate": "v2", "share": 0.5})
    desired.set_shadow(current, "m", None)
    desired.end_rollout(current, "m", "stable", "rollback", "agreement", {}, now=1, step=0)
    assert desired.effective_shadow(entry) is None  # mirrored only while the rollout runs
    desired.set_shadow(current, "m", {"alias": "beta", "candidate": "v2", "share": 0.5})
    with pytest.raises(Conflict, match="stop that shadow first"):
        desired.start_rollout(current, "m", plan, now=2)
    assert desired.start_rollout(current, "m", PLAN, now=3)["status"] == "running"  # not gated on agreement: the shadow stays
