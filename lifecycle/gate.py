"""The promotion gate: a candidate version replaces ``stable`` only if it is better and regresses nowhere.

Both versions are evaluated on the same held-out images and the same seeded shifts
(lifecycle/slices.py). The candidate passes when

- its overall accuracy beats the stable version's by at least ``min_improvement``,
- no class and no shift slice loses more than ``max_class_regression`` / ``max_slice_regression``,
- and, when asked, it agreed with the stable version's answers on live traffic as a shadow (the
  running server's ``GET /models/<name>/shadow``) at least ``min_shadow_agreement`` of the time;
- and, when asked (``min_live_examples``), its live accuracy from ground truth sent to the server
  (``GET /models/<name>/<version>/live``) loses no more than ``max_slice_regression`` against the
  stable version's, each over that many labelled examples.

Every decision, accepted or refused, is appended to the promotion record with the figures behind
it (config/record.py); the record's choice is what the service serves as the promoted alias.

    >>> decision = decide("clothes", "v2", evaluation_v2, "v1", evaluation_v1, PromotionPolicy())
    >>> print(format_table(decision)); decision.accepted
    >>> write_decision(config.record(), decision)
"""

from __future__ import annotations

import dataclasses
import datetime

from config import PromotionPolicy, PromotionRecord


@dataclasses.dataclass
class Decision:
    model: str
    candidate: str
    stable: str
    accepted: bool
    reasons: list[str]
    rows: list[dict]
    policy: PromotionPolicy
    images: int

    def as_record(self) -> dict:
        return {
            "decided_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "action": "promote",
            "candidate": self.candidate,
            "stable_before": self.stable,
            "accepted": self.accepted,
            "reasons": self.reasons,
            "policy": self.policy.model_dump(exclude={"alias"}),
            "images": self.images,
            "figures": self.rows,
        }


def decide(
    model: str,
    candidate: str,
    candidate_eval: dict,
    stable: str,
    stable_eval: dict,
    policy: PromotionPolicy,
    shadow: dict | None = None,
    min_shadow_agreement: float | None = None,
    min_shadow_examples: int = 200,
    live: dict[str, dict] | None = None,
    min_live_examples: int | None = None,
) -> Decision:
    """Compare two ``evaluate_slices`` results under ``policy``; with ``min_shadow_agreement``, also the
    server's shadow summary of ``candidate`` (``shadow``, None when there is none); with
    ``min_live_examples``, also both versions' live accuracy from feedback (``live``: the server's
    ``GET /models/<name>/<version>/live`` of each, by version)."""
    rows = [_row("overall", stable_eval["overall"], candidate_eval["overall"], f">= +{policy.min_improvement:g}", policy.min_improvement)]
    for group, kind, limit in (("classes", "class", policy.max_class_regression), ("shifts", "shift", policy.max_slice_regression)):
        for name, before in stable_eval[group].items():
            rows.append(_row(f"{kind}:{name}", before, candidate_eval[group][name], f">= -{limit:g}", -limit))
    if min_shadow_agreement is not None:
        rows.append(_shadow_row(shadow, candidate, min_shadow_agreement, min_shadow_examples))
    if min_live_examples is not None:
        rows.append(_live_row((live or {}).get(stable), (live or {}).get(candidate), min_live_examples, policy.max_slice_regression))
    reasons = []
    for row in rows:
        if not row["ok"]:
            reasons.append(f"{row['slice']}: {row['candidate']:.4f} vs {row['stable']:.4f} ({row['delta']:+.4f}), required {row['required']}")
    return Decision(model, candidate, stable, not reasons, reasons, rows, policy, int(candidate_eval["images"]))


def _shadow_row(summary: dict | None, candidate: str, minimum: float, min_examples: int) -> dict:
    """Live agreement with the stable version as its shadow: 1.0 would be agreeing on every example."""
    setting = (summary or {}).get("shadow") or {}
    examples = (summary or {}).get("examples", 0) if setting.get("candidate") == candidate else 0
    agreement = summary["agreement"] if examples else 0.0
    ok = examples >= min_examples and agreement >= minimum
    required = f">= {minimum:g} on {min_examples}+ live examples" + ("" if examples >= min_examples else f" (shadowed: {examples})")
    return {"slice": "shadow:agreement", "stable": 1.0, "candidate": agreement, "delta": round(agreement - 1.0, 6), "required": required, "ok": ok}


def _live_row(stable: dict | None, candidate: dict | None, min_examples: int, limit: float) -> dict:
    """Live accuracy from ground truth sent to the server: both versions need ``min_examples`` labelled
    examples, and the candidate may lose no more than ``limit`` against the stable version."""
    counts = [(report or {}).get("accuracy", {}).get("examples", 0) for report in (stable, candidate)]
    values = [(report or {}).get("accuracy", {}).get("value") or 0.0 for report in (stable, candidate)]
    delta = round(values[1] - values[0], 6)
    enough = min(counts) >= min_examples
    required = f">= -{limit:g} on {min_examples}+ labelled" + ("" if enough else f" (labelled: {counts[0]} / {counts[1]})")
    return {"slice": "live:accuracy", "stable": values[0], "candidate": values[1], "delta": delta, "required": required, "ok": bool(enough and delta >= -limit - 1e-12)}


def _row(name: str, before: float, after: float, required: str, bound: float) -> dict:
    delta = round(after - before, 6)
    return {"slice": name, "stable": before, "candidate": after, "delta": delta, "required": required, "ok": bool(delta >= bound - 1e-12)}


def format_table(decision: Decision) -> str:
    header = f"{'slice':<22} {decision.stable:>9} {decision.candidate:>9} {'delta':>8}  {'required':<9} ok"
    lines = [header, "-" * len(header)]
    for row in decision.rows:
        lines.append(f"{row['slice']:<22} {row['stable']:>9.4f} {row['candidate']:>9.4f} {row['delta']:>+8.4f}  {row['required']:<9} {'yes' if row['ok'] else 'NO'}")
    verdict = "PROMOTED" if decision.accepted else "REFUSED"
    lines.append(
        f"{verdict}: {decision.model}:{decision.candidate} {'replaces' if decision.accepted else 'does not replace'} "
        f"{decision.stable} as {decision.policy.alias} ({decision.images:,} images)"
    )
    lines.extend(f"  - {reason}" for reason in decision.reasons)
    return "\n".join(lines)


def write_decision(record: PromotionRecord, decision: Decision) -> dict:
    """Append ``decision`` to the record; an accepted one makes its candidate the promoted version."""
    return record.append(decision.model, decision.as_record(), stable=decision.candidate if decision.accepted else None)
