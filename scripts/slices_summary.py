"""Print the stored slice results of a model's versions as a markdown table (for docs/lifecycle.md).

.venv/bin/python scripts/slices_summary.py clothes v1 v2
.venv/bin/python scripts/slices_summary.py damage v1 v2
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models import store  # noqa: E402


def table(name: str, versions: list[str]) -> str:
    slices = {v: store.load_card(name, v).slices for v in versions}
    missing = [v for v, s in slices.items() if not s]
    if missing:
        raise SystemExit(f"{name}: no slice results stored for {', '.join(missing)}")
    first = slices[versions[0]]
    lines = [
        f"| slice | {' | '.join(versions)} |",
        "|---|" + "---:|" * len(versions),
        "| overall | " + " | ".join(f"{slices[v]['overall']:.4f}" for v in versions) + " |",
        "| **worst slice** | " + " | ".join(f"**{slices[v]['worst']['slice']} {slices[v]['worst']['accuracy']:.4f}**" for v in versions) + " |",
    ]
    lines += [f"| class: {c} | " + " | ".join(f"{slices[v]['classes'][c]:.4f}" for v in versions) + " |" for c in first["classes"]]
    lines += [f"| shift: {s} | " + " | ".join(f"{slices[v]['shifts'][s]:.4f}" for v in versions) + " |" for s in first["shifts"]]
    about = "; ".join(f"{s}: {spec.get('about', spec.get('kind'))}" for s, spec in first.get("shift_specs", {}).items())
    lines += ["", f"{first['images']:,} held-out examples per slice of shifts (seed {first['seed']}). Shifts: {about}."]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    print(table(sys.argv[1], sys.argv[2:]))
