"""What a cascade and an ensemble of the shipped clothes versions buy: accuracy against cost.

    python -m bench.pipelines                 # writes the table into docs/models.md, and the configured
                                              # pipelines' metrics into deploy/pipelines.json (their cards)
    python -m bench.pipelines --no-report

The shipped clothes v1 (LeNet-5) and v2 (a small VGG) are imported into a scratch BentoML home (the
store the tests train into is left alone) and run on ONNX Runtime in this process, one thread each, as
a served runner runs them, over the 10,000 held-out images in batches (training/pipeline_metrics.py's
``BATCH``, a busy server's). The combinators are serving/pipelines.py's own (a PipelineHandle over the
two versions, through training/pipeline_metrics.py as ``measure-pipeline`` runs them), so what is
measured is what is served, minus HTTP. Cost is the measured compute per example: v1's and v2's
alone, the ensemble's (both), and the cascade's at each threshold (v1 on every example, v2 on those
v1 was unsure of). The configured cascade threshold (configuration.yaml ``pipelines``) is the lowest
here that gives at least v2's accuracy. Each configured cascade and ensemble of these versions is
measured as configured, and its metrics recorded with its steps' card digests (serving/pipelines.py
shows them on the pipeline's card while its steps are those cards).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "models.md"
CONFIG = ROOT / "configuration.yaml"
BEGIN, END = "<!-- pipelines:begin -->", "<!-- pipelines:end -->"
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args(argv)
    os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="pipelines-bench-")  # before BentoML is imported
    from config.settings import PipelineSettings
    from models import store
    from serving.pipelines import PipelineHandle
    from training.pipeline_metrics import BATCH, StoredStep, StoredSteps, run
    from training.recipes import clothes

    data = clothes.load_data(allow_download=False)
    x, y = data.x_test.reshape(len(data.x_test), 28, 28, 1), np.asarray(data.y_test)
    handles = {}
    for archive in sorted((ROOT / "models" / "shipped" / "clothes").glob(f"*{store.ARCHIVE_SUFFIX}")):
        version = store.import_archive(archive, force=True)[0].split(":")[1]
        handles[version] = StoredStep.load("clothes", version)
    config = load_config(CONFIG)
    registry = StoredSteps(config, {("clothes", version): handle for version, handle in handles.items()})

    def pipeline(combine: str, threshold: float | None = None) -> PipelineHandle:
        settings = PipelineSettings(combine=combine, steps=["clothes:v1", "clothes:v2"], threshold=threshold)
        return PipelineHandle(f"clothes-{combine}", settings, registry)  # type: ignore[arg-type]

    rows = []
    for version, handle in handles.items():
        handle.seconds = 0.0
        answers, _ = run(_Single(handle), x)
        rows.append((f"{version} alone", float((answers.argmax(1) == y).mean()), handle.seconds / len(x) * 1e6, None))
    v2_accuracy, v2_cost = rows[1][1], rows[1][2]
    for handle in handles.values():
        handle.seconds = 0.0
    answers, _ = run(pipeline("ensemble"), x)
    rows.append(("ensemble (mean of v1, v2)", float((answers.argmax(1) == y).mean()), sum(h.seconds for h in handles.values()) / len(x) * 1e6, None))
    chosen = None
    for threshold in THRESHOLDS:
        for handle in handles.values():
            handle.seconds = 0.0
        answers, steps = run(pipeline("cascade", threshold), x)
        accuracy = float((answers.argmax(1) == y).mean())
        cost = sum(h.seconds for h in handles.values()) / len(x) * 1e6
        escalated = float((steps == 1).mean())
        rows.append((f"cascade at {threshold}", accuracy, cost, escalated))
        if chosen is None and accuracy >= v2_accuracy:
            chosen = (threshold, accuracy, cost, escalated)
    lines = [
        f"Measured by `python -m bench.pipelines` on {time.strftime('%Y-%m-%d')}: the shipped clothes versions on ONNX Runtime (one thread each) over the "
        f"{len(x):,} held-out images in batches of {BATCH}; cost = measured compute per example.",
        "",
        "| pipeline | accuracy | cost per example | sent on to v2 |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {accuracy:.4f} | {cost:.1f} us | {'' if escalated is None else f'{escalated:.1%}'} |" for name, accuracy, cost, escalated in rows]
    lines.append("")
    if chosen:
        lines.append(
            f"The lowest threshold giving at least v2's accuracy is {chosen[0]}: {chosen[1]:.4f} against {v2_accuracy:.4f}, at {chosen[2]:.1f} us per example"
            f" against v2's {v2_cost:.1f} us ({chosen[2] / v2_cost:.0%}), {chosen[3]:.1%} of the examples sent on to v2."
        )
    else:
        lines.append(f"No threshold here reaches v2's accuracy ({v2_accuracy:.4f}): v1 is confidently wrong on examples v2 gets right.")
    text = "\n".join(lines)
    print(text)
    record = configured_metrics(config, registry, x, y)
    for name, entry in record.items():
        metrics = entry["metrics"]
        print(f"{name}: accuracy {metrics['accuracy']}, macro F1 {metrics['macro_f1']}, {metrics['compute_us_per_example']} us of compute per example")
    if not args.no_report:
        from serving.pipelines import read_measured

        path = config.pipeline_metrics_path()
        if path is not None:
            path.write_text(json.dumps({**read_measured(config), **record}, indent=2, sort_keys=True) + "\n")
        report = REPORT.read_text()
        if BEGIN not in report:
            print(f"{REPORT} has no {BEGIN} ... {END}", file=sys.stderr)
            return 1
        head, rest = report.split(BEGIN, 1)
        REPORT.write_text(head + BEGIN + "\n" + text + "\n" + END + rest.split(END, 1)[1])
    return 0


def configured_metrics(config, registry, x: np.ndarray, y: np.ndarray) -> dict:
    """Each configured cascade and ensemble of the shipped clothes versions, measured as configured: the pipeline metrics record's entries."""
    from training.pipeline_metrics import BATCH, measure

    record = {}
    for name, settings in config.pipelines.items():
        versions = [step.split(":") for step in settings.steps]
        if settings.combine == "graph" or any(model != "clothes" or ("clothes", version) not in registry.steps for model, version in versions):
            continue
        record[name] = measure(config, name, x, y, "Fashion-MNIST test set", registry, by=f"python -m bench.pipelines (ONNX Runtime, one thread per step, batches of {BATCH})")
    return record


def load_config(path: Path):
    from config.settings import load_config as load

    return load(path)


class _Single:
    """One version alone, called as the pipeline calls it."""

    def __init__(self, handle):
        self.handle = handle

    async def infer(self, values: np.ndarray):
        answers, _, _ = await self.handle.infer(values)
        return answers, None, {}


if __name__ == "__main__":
    sys.exit(main())
