"""Drift detection against a served process: false-alarm rate on clean traffic, detection delay per shift.

    python -m bench.drift                         # starts `bentoml serve`, writes docs/lifecycle.md
    python -m bench.drift --url http://127.0.0.1:3000 --version v1 --no-report   # a running server

Clean traffic is held-out Fashion-MNIST test images drawn at random; each shifted stream is the same
images under one shift of lifecycle/slices.py. The protocol, also used by tests/e2e/test_drift.py:

- false alarms: clean images only; after every ``check_every`` images (once the window holds
  ``min_samples``) read ``/drift``; a drifted verdict is a false alarm;
- detection delay: fill the window with clean images, confirm no drift, then send shifted images one
  per request, reading ``/drift`` after every ``step`` requests: the delay is the number of shifted
  requests sent when the verdict first turns to drift (``step`` is the resolution).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

from bench import servers
from lifecycle.slices import apply_shift
from models.recipes.clothes import RECIPE, load_data

SHIFTS = ("inverted", "brightness", "contrast", "occlusion", "noise", "rotation", "translation")  # the clothes recipe's
REPORT = servers.ROOT / "docs" / "lifecycle.md"
BEGIN, END = "<!-- drift:begin -->", "<!-- drift:end -->"


@dataclasses.dataclass
class DriftProbe:
    """A client that feeds one served version and reads its drift verdict."""

    url: str  # the version's model URL, e.g. http://127.0.0.1:3000/models/clothes/v1
    session: requests.Session = dataclasses.field(default_factory=requests.Session)

    def send(self, images: np.ndarray, per_request: int = 1) -> None:
        for start in range(0, len(images), per_request):
            batch = np.rint(images[start : start + per_request]).astype(int).tolist()
            response = self.session.post(self.url, json={"images": batch}, timeout=30)
            response.raise_for_status()

    def drift(self) -> dict:
        response = self.session.get(self.url + "/drift", timeout=30)
        response.raise_for_status()
        return response.json()

    def false_alarms(self, clean: np.ndarray, check_every: int = 100, per_request: int = 20) -> dict:
        """Checks made and drifted verdicts seen while only clean images arrive."""
        checks = alarms = 0
        for start in range(0, len(clean), check_every):
            self.send(clean[start : start + check_every], per_request)
            report = self.drift()
            if report["window"]["size"] >= report["window"]["min_samples"]:
                checks += 1
                alarms += report["drifted"]
        return {"images": len(clean), "checks": checks, "false_alarms": alarms, "rate": alarms / max(checks, 1)}

    def detection_delay(self, clean: np.ndarray, shifted: np.ndarray, step: int = 10) -> dict:
        """Shifted requests (one image each) until drift, after a window of clean traffic."""
        self.send(clean, per_request=50)
        before = self.drift()
        if before["drifted"]:
            return {"delay": None, "clean_window_drifted": True, "statistics": []}
        for sent in range(step, len(shifted) + 1, step):
            self.send(shifted[sent - step : sent])
            report = self.drift()
            if report["drifted"]:
                flagged = [name for name, row in report["statistics"].items() if row["drifted"]]
                return {"delay": sent, "clean_window_drifted": False, "statistics": flagged}
        return {"delay": None, "clean_window_drifted": False, "statistics": []}


def measure(probe: DriftProbe, window: int, seed: int = 0, clean_images: int = 20_000, max_delay: int = 1000) -> dict:
    data = load_data(allow_download=False)
    rng = np.random.default_rng(seed)
    pick = lambda n: data.x_test[rng.integers(0, len(data.x_test), n), ..., None].astype(np.float32)  # noqa: E731
    started = time.monotonic()
    results = {"false_alarms": probe.false_alarms(pick(clean_images)), "delays": {}}
    for shift in SHIFTS:
        results["delays"][shift] = probe.detection_delay(pick(window), apply_shift(RECIPE.shifts[shift], pick(max_delay), seed=seed))
    results["seconds"] = round(time.monotonic() - started, 1)
    return results


def markdown(results: dict, version: str, settings) -> str:
    fa = results["false_alarms"]
    thresholds = settings.thresholds
    lines = [
        f"Measured by `python -m bench.drift` against `bentoml serve` ({version}, window {settings.window}, "
        f"min_samples {thresholds.min_samples}, p < {thresholds.p_value:g}, PSI > {thresholds.psi:g}), {time.strftime('%Y-%m-%d')}, in {results['seconds']} s.",
        "",
        f"**False alarms on clean traffic:** {fa['false_alarms']} of {fa['checks']} checks ({fa['rate']:.1%}), "
        f"one check per 100 images over {fa['images']:,} random held-out test images.",
        "",
        "**Detection delay** after a full window of clean traffic, one shifted image per request, "
        "drift read every 10 requests:",
        "",
        "| shift | requests until drift | statistics that fired |",
        "|---|---:|---|",
    ]
    for shift, row in results["delays"].items():
        delay = "clean window already drifted" if row["clean_window_drifted"] else (row["delay"] or "not within 1,000")
        lines.append(f"| {shift} | {delay} | {', '.join(row['statistics'])} |")
    return "\n".join(lines)


def write_report(text: str, path: Path = REPORT, begin: str = BEGIN, end: str = END) -> None:
    """Replace the text between ``begin`` and ``end`` in ``path`` (both markers must be there)."""
    current = path.read_text()
    if begin not in current or end not in current:
        raise ValueError(f"{path} lacks the markers {begin} ... {end}")
    block = f"{begin}\n{text}\n{end}"
    path.write_text(re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, current, flags=re.S))


def main(argv: list[str] | None = None) -> int:
    from config import load_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server (default: start `bentoml serve` on a free loopback port)")
    parser.add_argument("--version", default="v1")
    parser.add_argument("--no-report", action="store_true", help=f"print only; do not update {REPORT.relative_to(servers.ROOT)}")
    args = parser.parse_args(argv)
    settings = load_config().monitoring
    if args.url:
        results = measure(DriftProbe(f"{args.url}/models/clothes/{args.version}"), settings.window)
    else:
        with servers.launch("served", Path(tempfile.mkdtemp(prefix="drift-bench-"))) as server:
            results = measure(DriftProbe(f"{server.url}/models/clothes/{args.version}"), settings.window)
    text = markdown(results, args.version, settings)
    print(text)
    if not args.no_report:
        write_report(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
