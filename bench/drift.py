"""Drift detection against a served process: false-alarm rate on clean traffic, detection delay per shift.

    python -m bench.drift                         # clothes v1: starts `bentoml serve`, writes docs/lifecycle.md
    python -m bench.drift --url http://127.0.0.1:3000 --version v1 --no-report   # a running server
    python -m bench.drift --model damage --version v2 --no-report

Clean traffic is the model's held-out test images (its recipe's data) drawn at random, in the card's
input shape; each shifted stream is the same images under one of the shifts the model's recipe
declares (``Recipe.shifts``, applied by lifecycle/slices.py). The report goes between the model's
markers in docs/lifecycle.md (``drift:begin`` for clothes, ``drift:<model>:begin`` for another). The
protocol, also used by tests/e2e/test_lifecycle.py:

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
from training import recipes

REPORT = servers.ROOT / "docs" / "lifecycle.md"
BEGIN, END = "<!-- drift:begin -->", "<!-- drift:end -->"
DEFAULT_MODEL = "clothes"  # its figures are the ones between BEGIN and END


def markers(model: str, kind: str = "drift") -> tuple[str, str]:
    """Where a model's figures of one kind (drift, cost) go in the report: ``<!-- drift:begin -->`` for
    the default model, ``<!-- drift:damage:begin -->`` for another."""
    tag = kind if model == DEFAULT_MODEL else f"{kind}:{model}"
    return f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"


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

    def input_shape(self) -> tuple[int, ...]:
        """The served version's input shape, from its card (GET on the version's URL)."""
        response = self.session.get(self.url, timeout=30)
        response.raise_for_status()
        return tuple(response.json()["input"]["shape"])

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


def measure(probe: DriftProbe, model: str, window: int, seed: int = 0, clean_images: int = 20_000, max_delay: int = 1000) -> dict:
    recipe = recipes.get(model)
    data = recipe.load_data(allow_download=False)
    shape = probe.input_shape()
    rng = np.random.default_rng(seed)
    pick = lambda n: data.x_test[rng.integers(0, len(data.x_test), n)].reshape(n, *shape).astype(np.float32)  # noqa: E731
    started = time.monotonic()
    results = {"false_alarms": probe.false_alarms(pick(clean_images)), "delays": {}, "max_delay": max_delay}
    for shift, spec in recipe.shifts.items():
        results["delays"][shift] = probe.detection_delay(pick(window), apply_shift(spec, pick(max_delay), seed=seed))
    results["seconds"] = round(time.monotonic() - started, 1)
    return results


def markdown(results: dict, model: str, version: str, settings) -> str:
    fa = results["false_alarms"]
    thresholds = settings.thresholds
    lines = [
        f"Measured by `python -m bench.drift` against `bentoml serve` ({model} {version}, window {settings.window}, "
        f"min_samples {thresholds.min_samples}, p < {thresholds.p_value:g}, PSI > {thresholds.psi:g}), {time.strftime('%Y-%m-%d')}, in {results['seconds']} s.",
        "",
        f"**False alarms on clean traffic:** {fa['false_alarms']} of {fa['checks']} checks ({fa['rate']:.1%}), "
        f"one check per 100 images over {fa['images']:,} random held-out test images.",
        "",
        "**Detection delay** after a full window of clean traffic, one shifted image per request, drift read every 10 requests:",
        "",
        "| shift | requests until drift | statistics that fired |",
        "|---|---:|---|",
    ]
    for shift, row in results["delays"].items():
        delay = "clean window already drifted" if row["clean_window_drifted"] else (row["delay"] or f"not within {results['max_delay']:,}")
        lines.append(f"| {shift} | {delay} | {', '.join(row['statistics'])} |")
    return "\n".join(lines)


def has_markers(begin: str, end: str, path: Path = REPORT) -> bool:
    current = path.read_text()
    return begin in current and end in current


def write_report(text: str, path: Path = REPORT, begin: str = BEGIN, end: str = END) -> None:
    """Replace the text between ``begin`` and ``end`` in ``path`` (both markers must be there)."""
    current = path.read_text()
    if not has_markers(begin, end, path):
        raise ValueError(f"{path} lacks the markers {begin} ... {end}")
    block = f"{begin}\n{text}\n{end}"
    path.write_text(re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, current, flags=re.S))


def main(argv: list[str] | None = None) -> int:
    from config import load_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server (default: start `bentoml serve` on a free loopback port)")
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=recipes.names(), help=f"a model with a recipe (default {DEFAULT_MODEL})")
    parser.add_argument("--version", default="v1")
    parser.add_argument("--no-report", action="store_true", help=f"print only; do not update {REPORT.relative_to(servers.ROOT)}")
    args = parser.parse_args(argv)
    begin, end = markers(args.model)
    if not args.no_report and not has_markers(begin, end):
        parser.error(f"{REPORT.relative_to(servers.ROOT)} has no {begin} ... {end} for {args.model}: add them, or pass --no-report")
    settings = load_config().monitoring
    path = f"/models/{args.model}/{args.version}"
    if args.url:
        results = measure(DriftProbe(args.url + path), args.model, settings.window)
    else:
        with servers.launch("served", Path(tempfile.mkdtemp(prefix="drift-bench-"))) as server:
            results = measure(DriftProbe(server.url + path), args.model, settings.window)
    text = markdown(results, args.model, args.version, settings)
    print(text)
    if not args.no_report:
        write_report(text, begin=begin, end=end)
    return 0


if __name__ == "__main__":
    sys.exit(main())
