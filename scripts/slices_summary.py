"""Print the stored slice results of served versions as a markdown table (for docs/lifecycle.md).

    .venv/bin/python scripts/slices_summary.py v1 v2
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bentoml  # noqa: E402

from lifecycle.slices import SHIFTS  # noqa: E402
from models import store  # noqa: E402


def main(versions: list[str]) -> int:
    slices = {v: bentoml.models.get(store.tag(v)).info.metadata["slices"] for v in versions}
    print("| slice | " + " | ".join(versions) + " |")
    print("|---|" + "---:|" * len(versions))
    print("| overall | " + " | ".join(f"{slices[v]['overall']:.4f}" for v in versions) + " |")
    print("| **worst slice** | " + " | ".join(f"**{slices[v]['worst']['slice']} {slices[v]['worst']['accuracy']:.4f}**" for v in versions) + " |")
    for name in slices[versions[0]]["classes"]:
        print(f"| class: {name} | " + " | ".join(f"{slices[v]['classes'][name]:.4f}" for v in versions) + " |")
    for name in SHIFTS:
        print(f"| shift: {name} | " + " | ".join(f"{slices[v]['shifts'][name]:.4f}" for v in versions) + " |")
    print(f"\n{slices[versions[0]]['images']:,} test images per slice of shifts; classes have 1,000 each.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["v1", "v2"]))
