"""Progressive delivery: a rollout moves an alias to a candidate step by step while its gates hold, and
back to its baseline at once when one breaks. The rollout lives in the desired state
(serving/fleet/desired.py), so every replica routes its shares and a restart resumes it.

Gates, over the current step (the candidate's requests through the alias since the step began, against
the baseline's through it):

=======================  ==========================================================================
gate                     breaks when
=======================  ==========================================================================
``max_error_rate``       the candidate's share of failed requests (5xx) is above it
``max_p99_ms``           the candidate's 99th percentile latency is above it
``max_accuracy_drop``    with ``min_labelled`` labelled examples of each (feedback, serving/feedback.py):
                         the candidate's live accuracy is confidently lower, its 95% upper bound below
                         the baseline's accuracy minus the drop
``max_ood_increase``     the candidate's mean out-of-distribution score exceeds the baseline's by more
``min_shadow_agreement`` the candidate is confidently less often of one mind with the baseline: the 95%
                         upper bound of its agreement (the same top class) on the baseline's requests,
                         mirrored to it at ``shadow_share`` (serving/shadow.py), is below it
=======================  ==========================================================================

A step advances once it has lasted ``min_dwell_seconds``, the candidate answered ``min_requests`` in
it, and no gate broke (with ``min_labelled`` set, once both have that many labelled examples; with
``min_shadow_agreement`` set, once ``min_shadow_examples`` were compared and the agreement reaches it; the
100% step has no baseline answers to compare, so agreement gates the steps before it). Every
decision is an event with the gate values it was made on (``GET /models/<name>/rollouts``).

Each entry worker counts its answers per version (:class:`VersionStats`) and publishes them for the
replica's rollout driver (one entry worker per replica, serving/fleet/replica.py), which keeps two
minutes of them, so a step counts from its start (after a restart: from the driver's first tick). In a fleet each
replica's driver judges its own traffic: any of them rolls back for all, and a step advances once one
of them has its evidence; the desired state's compare-and-set takes each decision once.

    >>> decision = judge(rollout, candidate_stats, baseline_stats, accuracy, now)
    >>> decision.action, decision.reason
    ('rollback', 'error rate 0.0312 > 0.01 over 320 requests')
"""

from __future__ import annotations

import bisect
import dataclasses
from typing import TYPE_CHECKING, Any

from lifecycle.outcomes import proportion

if TYPE_CHECKING:
    from serving.fleet.desired import Rollout

LATENCY_EDGES_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000)
PUBLISH_SECONDS = 0.5
TICK_SECONDS = 0.5
HISTORY_TICKS = 240  # the driver keeps two minutes of counts: a step counts its requests from its start, not from when the driver saw it
DEFAULT_GATES: dict[str, Any] = {
    "max_error_rate": 0.01,
    "max_p99_ms": None,
    "max_accuracy_drop": 0.02,
    "min_labelled": 0,
    "max_ood_increase": None,
    "min_shadow_agreement": None,
    "min_shadow_examples": 100,
    "shadow_share": 0.2,
}


@dataclasses.dataclass
class Counts:
    """What one version answered: requests, failures, latencies in LATENCY_EDGES_MS buckets, OOD scores,
    and as a shadow, how many examples it compared with the answered version and agreed on."""

    requests: int = 0
    errors: int = 0
    latency: list[int] = dataclasses.field(default_factory=lambda: [0] * (len(LATENCY_EDGES_MS) + 1))
    ood_sum: float = 0.0
    ood_count: int = 0
    shadow_examples: int = 0
    shadow_agreed: int = 0

    def minus(self, earlier: Counts) -> Counts:
        return self._combined(earlier, -1)

    def plus(self, other: Counts) -> Counts:
        return self._combined(other, 1)

    def _combined(self, other: Counts, sign: int) -> Counts:
        values: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            mine, theirs = getattr(self, field.name), getattr(other, field.name)
            values[field.name] = [a + sign * b for a, b in zip(mine, theirs, strict=True)] if isinstance(mine, list) else mine + sign * theirs
        return Counts(**values)

    def p99_ms(self) -> float | None:
        """The upper edge of the bucket holding the 99th percentile (None without requests; inf past the last edge)."""
        total = sum(self.latency)
        if total == 0:
            return None
        seen = 0
        for edge, count in zip((*LATENCY_EDGES_MS, float("inf")), self.latency, strict=True):
            seen += count
            if seen >= 0.99 * total:
                return float(edge)
        return float("inf")

    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def ood_mean(self) -> float | None:
        return self.ood_sum / self.ood_count if self.ood_count else None


def stats_key(model: str, version: str, alias: str | None) -> str:
    return f"{model}+{version}@{alias or ''}"


class VersionStats:
    """This entry worker's answers per (model, version, the alias the request named), cumulative: the
    rollout driver takes differences, through the rollout's alias only."""

    def __init__(self) -> None:
        self.counts: dict[str, Counts] = {}

    def record(self, model: str, version: str, alias: str | None, ok: bool, seconds: float, ood_scores=None) -> None:
        key = stats_key(model, version, alias)
        counts = self.counts.get(key)
        if counts is None:
            counts = self.counts[key] = Counts()
        counts.requests += 1
        counts.errors += not ok
        counts.latency[bisect.bisect_left(LATENCY_EDGES_MS, seconds * 1000)] += 1
        if ood_scores is not None:
            counts.ood_sum += float(ood_scores.sum())
            counts.ood_count += len(ood_scores)

    def record_shadow(self, model: str, version: str, alias: str, examples: int, agreed: int) -> None:
        """``version`` answered ``examples`` of ``alias``'s requests as a shadow, ``agreed`` of them like the answered version."""
        counts = self.counts.setdefault(stats_key(model, version, alias), Counts())
        counts.shadow_examples += examples
        counts.shadow_agreed += agreed

    def snapshot(self) -> dict[str, dict]:
        return {key: dataclasses.asdict(counts) for key, counts in self.counts.items()}


def merged(snapshots: list[dict[str, dict]]) -> dict[str, Counts]:
    """Several workers' snapshots summed per version."""
    total: dict[str, Counts] = {}
    for snapshot in snapshots:
        for key, values in snapshot.items():
            total[key] = total.get(key, Counts()).plus(Counts(**values))
    return total


@dataclasses.dataclass(frozen=True)
class Decision:
    action: str  # wait, advance, rollback
    reason: str
    gates: dict


def judge(rollout: Rollout, candidate: Counts, baseline: Counts, accuracy: dict[str, tuple[int, int]], now: float) -> Decision:
    """What a running rollout's current step calls for: ``candidate`` and ``baseline`` are their answers
    in this step; ``accuracy`` their labelled (correct, examples): the candidate's in this step, the
    baseline's since the rollout began (it may have no traffic left at the last step)."""
    gates = {**DEFAULT_GATES, **rollout["gates"]}
    values: dict[str, Any] = {
        "requests": candidate.requests,
        "baseline_requests": baseline.requests,
        "error_rate": _round(candidate.error_rate()),
        "baseline_error_rate": _round(baseline.error_rate()),
        "p99_ms": candidate.p99_ms(),
        "baseline_p99_ms": baseline.p99_ms(),
        "ood_mean": _round(candidate.ood_mean()),
        "baseline_ood_mean": _round(baseline.ood_mean()),
        "dwell_seconds": round(now - rollout["step_started"], 3),
    }
    labelled = {name: proportion(*accuracy.get(name, (0, 0))) for name in ("candidate", "baseline")}
    values["accuracy"] = labelled["candidate"]["value"]
    values["accuracy_high"] = labelled["candidate"]["high"]
    values["labelled"] = labelled["candidate"]["examples"]
    values["baseline_accuracy"] = labelled["baseline"]["value"]
    values["baseline_labelled"] = labelled["baseline"]["examples"]
    agreement = proportion(candidate.shadow_agreed, candidate.shadow_examples)
    values["shadow_agreement"] = agreement["value"]
    values["shadow_agreement_high"] = agreement["high"]
    values["shadow_examples"] = agreement["examples"]

    broken = []
    limit = gates["max_error_rate"]
    if limit is not None and candidate.requests and candidate.errors > limit * max(candidate.requests, rollout["min_requests"]):
        broken.append(f"error rate {candidate.error_rate():.4f} > {limit} over {candidate.requests} requests")
    enough = candidate.requests >= rollout["min_requests"]
    if gates["max_p99_ms"] is not None and enough and (values["p99_ms"] or 0) > gates["max_p99_ms"]:
        broken.append(f"p99 {values['p99_ms']:g} ms > {gates['max_p99_ms']:g} ms over {candidate.requests} requests")
    ood, baseline_ood = candidate.ood_mean(), baseline.ood_mean()
    if gates["max_ood_increase"] is not None and enough and ood is not None and baseline_ood is not None and ood - baseline_ood > gates["max_ood_increase"]:
        broken.append(f"mean OOD score {ood:.4g} > the baseline's {baseline_ood:.4g} + {gates['max_ood_increase']:g}")
    min_labelled, drop = gates["min_labelled"], gates["max_accuracy_drop"]
    judged_accuracy = min_labelled and drop is not None and values["labelled"] >= min_labelled and values["baseline_labelled"] >= min_labelled
    if judged_accuracy and values["accuracy_high"] < values["baseline_accuracy"] - drop:
        broken.append(
            f"live accuracy {values['accuracy']:.4f} (95% upper bound {values['accuracy_high']:.4f}) < the baseline's {values['baseline_accuracy']:.4f} - {drop:g},"
            f" over {values['labelled']} labelled examples"
        )
    min_agreement = gates["min_shadow_agreement"]
    compares = min_agreement is not None and rollout["steps"][rollout["step"]] < 100
    if compares and values["shadow_examples"] and values["shadow_agreement_high"] < min_agreement:
        broken.append(
            f"shadow agreement {values['shadow_agreement']:.4f} (95% upper bound {values['shadow_agreement_high']:.4f}) < {min_agreement:g},"
            f" over {values['shadow_examples']} compared examples"
        )
    if broken:
        return Decision("rollback", "; ".join(broken), values)
    waiting = []
    if values["dwell_seconds"] < rollout["min_dwell_seconds"]:
        waiting.append(f"dwell {values['dwell_seconds']:.1f} of {rollout['min_dwell_seconds']:g} s")
    if not enough:
        waiting.append(f"{candidate.requests} of {rollout['min_requests']} requests")
    if min_labelled and drop is not None and not judged_accuracy:
        waiting.append(f"labelled {values['labelled']} (baseline {values['baseline_labelled']}) of {min_labelled}")
    if compares and values["shadow_examples"] < gates["min_shadow_examples"]:
        waiting.append(f"{values['shadow_examples']} of {gates['min_shadow_examples']} compared examples")
    elif compares and values["shadow_agreement"] < min_agreement:
        waiting.append(f"shadow agreement {values['shadow_agreement']:.4f} below {min_agreement:g}, not yet confidently")
    if waiting:
        return Decision("wait", "; ".join(waiting), values)
    return Decision("advance", "gates held", values)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
