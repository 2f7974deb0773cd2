"""The promotion record (``deploy/promotions.json``): every gate decision, and which version each model's
promoted alias serves. Its choice overrides the alias in ``configuration.yaml``.

    {"models": {"clothes": {"stable": "v2", "decisions": [{...}, ...]}}}

    >>> record = PromotionRecord("deploy/promotions.json")
    >>> record.stable("clothes")           # None until a promotion is accepted
    >>> record.append("clothes", {"candidate": "v2", "accepted": True, ...}, stable="v2")
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


class PromotionRecord:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def read(self) -> dict:
        if not self.path.is_file():
            return {"models": {}}
        record = json.loads(self.path.read_text())
        record.setdefault("models", {})
        return record

    def of(self, model: str) -> dict:
        return self.read()["models"].get(model, {"stable": None, "decisions": []})

    def stable(self, model: str) -> str | None:
        return self.of(model).get("stable")

    def append(self, model: str, decision: dict, stable: str | None = None) -> dict:
        """Append a decision; ``stable`` (when given) becomes the model's promoted version."""
        record = self.read()
        entry = record["models"].setdefault(model, {"stable": None, "decisions": []})
        entry["decisions"].append(decision)
        if stable is not None:
            entry["stable"] = stable
        self._write(record)
        return entry

    def _write(self, record: dict) -> None:
        # Written whole and renamed into place: a running server may read it at any moment.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False, suffix=".tmp") as f:
            f.write(json.dumps(record, indent=2) + "\n")
        os.replace(f.name, self.path)
