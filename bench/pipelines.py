"""What a cascade and an ensemble of the shipped clothes versions buy: accuracy against cost.

    python -m bench.pipelines                 # writes the table into docs/models.md, and the configured
                                              # pipelines' metrics into deploy/pipelines.json (their cards)
    python -m bench.pipelines --no-report

The shipped clothes v1 (LeNet-5) and v2 (a small VGG) are imported into a scratch BentoML home (the
store the tests train into is left alone) and run on ONNX Runtime in this process, one thread each, as
a served runner runs them, over the 10,000 held-out images in batches of ``BATCH`` (a busy server's
batch). The combinators are serving/pipelines.py's own (a PipelineHandle over the two versions), so
what is measured is what is served, minus HTTP. Cost is the measured compute per example: v1's and v2's
alone, the ensemble's (both), and the cascade's at each threshold (v1 on every example, v2 on those
v1 was unsure of). The configured cascade threshold (configuration.yaml ``pipelines``) is the lowest
here that gives at least v2's accuracy. Each configured cascade and ensemble of these versions is
measured as configured, and its metrics recorded with its steps' card digests (serving/pipelines.py
shows them on the pipeline's card while its steps are those cards).
"""

from __future__ import annotations

import argparse
import asyncio
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
BATCH = 32
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99)


class EngineHandle:
    """A stored version's engine behind the handle interface the pipeline calls (``infer``), timed."""

    def __init__(self, name: str, version: str, engine, card):
        self.name, self.version, self.engine, self.card = name, version, engine, card
        self.tag = f"{name}:{version}"
        self.seconds = 0.0
        self.examples = 0

    async def infer(self, values: np.ndarray, request_id: str | None = None):
        started = time.perf_counter()
        answers = self.engine(values)
        self.seconds += time.perf_counter() - started
        self.examples += len(values)
        return answers, None, {}

    @property
    def status(self):
        from serving.core import VersionState

        return {"status": VersionState.READY, "reason": None, "engine": "onnxruntime"}


class Registry:
    def __init__(self, handles: dict[str, EngineHandle]):
        self.handles = handles

    def resolve(self, model: str, version: str) -> EngineHandle:
        return self.handles[version]


def run(pipeline, values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, float]:
    """The pipeline over ``values`` in batches: its answers, the answering steps (cascade) and the wall time per example."""
    answers, steps = [], []
    started = time.perf_counter()
    for start in range(0, len(values), BATCH):
        result, _, extra = asyncio.run(pipeline.infer(values[start : start + BATCH]))
        answers.append(result)
        if "step" in extra:
            steps.append(extra["step"])
    seconds = time.perf_counter() - started
    return np.concatenate(answers), np.concatenate(steps) if steps else None, seconds / len(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args(argv)
    os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="pipelines-bench-")  # before BentoML is imported
    from config.settings import PipelineSettings
    from models import engines, store
    from serving.pipelines import PipelineHandle
    from training.recipes import clothes

    data = clothes.load_data(allow_download=False)
    x, y = data.x_test.reshape(len(data.x_test), 28, 28, 1), np.asarray(data.y_test)
    handles = {}
    for archive in sorted((ROOT / "models" / "shipped" / "clothes").glob(f"*{store.ARCHIVE_SUFFIX}")):
        version = store.import_archive(archive, force=True)[0].split(":")[1]
        stored = store.get("clothes", version)
        card = store.load_card("clothes", version, stored)
        handles[version] = EngineHandle("clothes", version, engines.load(stored, card, "onnxruntime", threads=1), card)
    registry = Registry(handles)

    def pipeline(combine: str, threshold: float | None = None) -> PipelineHandle:
        settings = PipelineSettings(combine=combine, steps=["clothes:v1", "clothes:v2"], threshold=threshold)
        return PipelineHandle(f"clothes-{combine}", settings, registry)  # type: ignore[arg-type]

    rows = []
    for version, handle in handles.items():
        answers, _, _ = run(_Single(handle), x)
        rows.append((f"{version} alone", float((answers.argmax(1) == y).mean()), handle.seconds / handle.examples * 1e6, None))
        handle.seconds = handle.examples = 0
    v2_accuracy, v2_cost = rows[1][1], rows[1][2]
    answers, _, per_example = run(pipeline("ensemble"), x)
    rows.append(("ensemble (mean of v1, v2)", float((answers.argmax(1) == y).mean()), sum(h.seconds for h in handles.values()) / len(x) * 1e6, None))
    chosen = None
    for threshold in THRESHOLDS:
        for handle in handles.values():
            handle.seconds = handle.examples = 0
        answers, steps, _ = run(pipeline("cascade", threshold), x)
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
    record = configured_metrics(registry, handles, x, y)
    for name, entry in record.items():
        print(f"{name}: {entry['metrics']}")
    if not args.no_report:
        from serving.pipelines import read_measured

        config = load_config(CONFIG)
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


def configured_metrics(registry: Registry, handles: dict[str, EngineHandle], x: np.ndarray, y: np.ndarray) -> dict:
    """Each configured cascade and ensemble of these clothes versions, measured as configured: the pipeline metrics record's entries."""
    from serving.pipelines import PipelineHandle, card_digest

    record = {}
    for name, settings in load_config(CONFIG).pipelines.items():
        versions = [step.split(":") for step in settings.steps]
        if settings.combine == "graph" or any(model != "clothes" or version not in handles for model, version in versions):
            continue
        for handle in handles.values():
            handle.seconds = handle.examples = 0
        answers, steps, _ = run(PipelineHandle(name, settings, registry), x)  # type: ignore[arg-type]
        metrics = {
            "accuracy": round(float((answers.argmax(1) == y).mean()), 4),
            "examples": len(x),
            "compute_us_per_example": round(sum(h.seconds for h in handles.values()) / len(x) * 1e6, 1),
            "data": "Fashion-MNIST test set",
            "measured": time.strftime("%Y-%m-%d"),
            "by": "python -m bench.pipelines (ONNX Runtime, one thread per step, batches of 32)",
        }
        if steps is not None:
            metrics["answered_by_step"] = [round(float((steps == i).mean()), 4) for i in range(len(settings.steps))]
        record[name] = {"steps": {step: card_digest(handles[version].card) for step, (_, version) in zip(settings.steps, versions, strict=True)}, "metrics": metrics}
    return record


def load_config(path: Path):
    from config.settings import load_config as load

    return load(path)


class _Single:
    """One version alone, called as the pipeline calls it."""

    def __init__(self, handle: EngineHandle):
        self.handle = handle

    async def infer(self, values: np.ndarray):
        return await self.handle.infer(values)


if __name__ == "__main__":
    sys.exit(main())
