"""The promotion gate: a candidate version replaces ``stable`` only if it is better and regresses nowhere.

Both versions are evaluated on the same held-out images and the same seeded shifts
(lifecycle/slices.py). The candidate passes when

- its overall accuracy beats the stable version's by at least ``min_improvement``, and
- no class and no shift slice loses more than ``max_class_regression`` / ``max_slice_regression``.

Every decision, accepted or refused, is appended to the promotion record with the figures behind
it; the record's ``stable`` entry is what the service serves as its ``stable`` alias.

    >>> decision = decide("v2", evaluation_v2, "v1", evaluation_v1, Policy())
    >>> print(format_table(decision)); decision.accepted
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Policy:
    min_improvement: float = 0.002
    max_class_regression: float = 0.02
    max_slice_regression: float = 0.02


@dataclasses.dataclass
class Decision:
    candidate: str
    stable: str
    accepted: bool
    reasons: list[str]
    rows: list[dict]
    policy: Policy
    images: int

    def as_record(self) -> dict:
        return {
            "decided_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "candidate": self.candidate,
            "stable_before": self.stable,
            "accepted": self.accepted,
            "reasons": self.reasons,
            "policy": dataclasses.asdict(self.policy),
            "images": self.images,
            "figures": self.rows,
        }


def decide(candidate: str, candidate_eval: dict, stable: str, stable_eval: dict, policy: Policy) -> Decision:
    """Compare two ``evaluate_slices`` results under ``policy``."""
    rows = [_row("overall", stable_eval["overall"], candidate_eval["overall"], f">= +{policy.min_improvement:g}", policy.min_improvement)]
    for group, kind, limit in (("classes", "class", policy.max_class_regression), ("shifts", "shift", policy.max_slice_regression)):
        for name, before in stable_eval[group].items():
            rows.append(_row(f"{kind}:{name}", before, candidate_eval[group][name], f">= -{limit:g}", -limit))
    reasons = []
    for row in rows:
        if not row["ok"]:
            reasons.append(
                f"{row['slice']}: {row['candidate']:.4f} vs {row['stable']:.4f} ({row['delta']:+.4f}), required {row['required']}"
            )
    return Decision(candidate, stable, not reasons, reasons, rows, policy, int(candidate_eval["images"]))


def _row(name: str, before: float, after: float, required: str, bound: float) -> dict:
    delta = round(after - before, 6)
    return {"slice": name, "stable": before, "candidate": after, "delta": delta, "required": required, "ok": bool(delta >= bound - 1e-12)}


def format_table(decision: Decision) -> str:
    header = f"{'slice':<22} {decision.stable:>9} {decision.candidate:>9} {'delta':>8}  {'required':<9} ok"
    lines = [header, "-" * len(header)]
    for row in decision.rows:
        lines.append(
            f"{row['slice']:<22} {row['stable']:>9.4f} {row['candidate']:>9.4f} {row['delta']:>+8.4f}  {row['required']:<9} {'yes' if row['ok'] else 'NO'}"
        )
    verdict = "PROMOTED" if decision.accepted else "REFUSED"
    lines.append(f"{verdict}: {decision.candidate} {'replaces' if decision.accepted else 'does not replace'} {decision.stable} as stable ({decision.images:,} images)")
    lines.extend(f"  - {reason}" for reason in decision.reasons)
    return "\n".join(lines)


def read_record(path: str | Path) -> dict:
    """The promotion record: ``{"stable": version or None, "decisions": [...]}`` (empty if absent)."""
    path = Path(path)
    if not path.is_file():
        return {"stable": None, "decisions": []}
    return json.loads(path.read_text())


def write_decision(path: str | Path, decision: Decision) -> dict:
    """Append ``decision`` to the record; an accepted one makes its candidate the stable version."""
    path = Path(path)
    record = read_record(path)
    record["decisions"].append(decision.as_record())
    if decision.accepted:
        record["stable"] = decision.candidate
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return record
