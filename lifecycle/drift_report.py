"""Offline drift report of a served version, from BentoML's data-collection logs.

The service logs a sample of its inputs and predictions with ``bentoml.monitor("predictions")``
(serving/monitoring.py) to ``<logs>/predictions/data/data.<worker>.log`` (rotated to ``.1``,
``.2``, ...), one JSON object per example with its ``model`` and ``version``, the example's
feature view (lifecycle/reference.py) and what the model answered (a classifier's predicted class and
confidence, a regressor's predicted value per target). This command reads them all, splits the records of one
version in time order into windows, compares each window with the version's reference statistics
by the same code as the live ``GET /models/<name>/<version>/drift`` (lifecycle/drift.py), and
writes one self-contained HTML page with a table and figures. It reads the configuration
(``config``) and the model store, never the server.

    $ python -m lifecycle.drift_report --model clothes --version v1     # card and reference from the store
    $ python -m lifecycle.drift_report --model clothes --version v1 --logs monitoring --window 500 --out drift.html
    $ python -m lifecycle.drift_report --model clothes --version v1 --reference reference.json

    >>> records, skipped = read_records("monitoring", card)
    >>> reports = window_reports(records, reference, 1000, DriftThresholds(), card)
    >>> html = render(card, records, reports, reference, DriftThresholds(), skipped=skipped)
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np

from config import ConfigError, DriftThresholds, load_config
from lifecycle.drift import MONITOR_NAME, RollingWindow, drift_report
from lifecycle.reference import INTENSITY_BINS, REFERENCE_FILE, drift_card, feature_view, image_features, view_grid
from lifecycle.report import STYLE, _e, figure_html
from models import store
from models.card import ModelCard

STATISTICS = {
    "intensity_psi": "intensity PSI",
    "mean_intensity_ks": "mean intensity KS",
    "confidence_ks": "confidence KS",
    "predicted_class_chi2": "predicted class χ²",
}
P_FLOOR = 1e-30  # p-values below this are drawn at it: a log axis cannot show 0
EXTRA_STYLE = ".headline div.drift { background: #fde2e1; } small { color: #666; }"


class MissingReference(RuntimeError):
    """The version's reference statistics cannot be found or read."""


def log_files(log_dir: str | Path) -> list[Path]:
    """The service's data logs, per worker oldest first (``.2``, ``.1``, then the live file)."""

    def age(path: Path):
        _, worker, _, *suffix = path.name.split(".", 3)
        suffix = suffix[0] if suffix else ""
        if not suffix:
            return (worker, 1, 0, "")
        # RotatingFileHandler: a higher number is older; TimedRotatingFileHandler: a date suffix.
        return (worker, 0, -int(suffix), "") if suffix.isdigit() else (worker, 0, 0, suffix)

    directory = Path(log_dir) / MONITOR_NAME / "data"
    return sorted((p for p in directory.glob("data.*.log*") if p.is_file()), key=age)


def view_size(card: ModelCard) -> int:
    """Values in one example's feature view, as logged."""
    return feature_view(np.zeros((1, *card.input.shape), dtype=np.float32), card).shape[1]


def parse_line(line: str, card: ModelCard, size: int | None = None) -> dict | None:
    """One logged record of ``card``'s model, or None if the line is not one (garbage, truncated,
    out of range, another model's)."""
    try:
        row = json.loads(line)
        if row["model"] != card.name:
            return None
        record = {
            "timestamp": datetime.datetime.fromisoformat(row["timestamp"]),
            "version": str(row["version"]),
            "request_id": str(row.get("request_id", "")),
            "pixels": np.asarray(row["pixels"], dtype=np.uint8 if card.is_image else np.float32).reshape(size or view_size(card)),  # >255 raises
        }
        if card.output.kind == "regression":  # one value per target; a non-finite one was logged as null
            values = [np.nan if v is None else float(v) for v in row["predicted_values"]]
            if len(values) != len(card.output.targets):
                return None
            record["predicted_values"] = np.asarray(values, dtype=np.float64)
            return record
        record["predicted_class"] = int(row["predicted_class"])
        record["confidence"] = float(row["confidence"])
    except (ValueError, TypeError, KeyError, OverflowError):
        return None
    if not 0 <= record["predicted_class"] < card.classes or not 0.0 <= record["confidence"] <= 1.0:
        return None
    return record


def read_records(log_dir: str | Path, card: ModelCard) -> tuple[list[dict], int]:
    """Every parsable record of ``card``'s version in the data logs sorted by time, and the count of
    skipped lines (other models' records are not counted)."""
    records, skipped, size = [], 0, view_size(card)
    for path in log_files(log_dir):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    continue
                record = parse_line(line, card, size)
                if record is None:
                    skipped += _model_of(line) in (card.name, None)
                elif record["version"] == card.version:
                    records.append(record)
    records.sort(key=lambda r: r["timestamp"])  # stable: one batch shares a timestamp, keeps its order
    return records, skipped


def _model_of(line: str) -> str | None:
    try:
        return json.loads(line).get("model")
    except (ValueError, AttributeError):
        return None


def features(records: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the live window holds per prediction: the input's feature view, confidence and predicted class.

    The window computes its statistics from the logged pixels with the serving code's own
    ``image_features``, rather than from the logged ``mean_intensity``.
    """
    images = np.stack([r["pixels"] for r in records])
    confidence = np.array([r["confidence"] for r in records], dtype=np.float64)
    predicted = np.array([r["predicted_class"] for r in records], dtype=np.intp)
    return images, confidence, predicted


def window_bounds(count: int, window: int, min_samples: int) -> list[tuple[int, int]]:
    """Consecutive ``[start, stop)`` windows of ``window`` records.

    A last partial window is kept if it has ``min_samples`` records, or if it is the only one
    (its verdict is then "too few predictions").
    """
    bounds = [(start, min(start + window, count)) for start in range(0, count, window)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_samples:
        bounds.pop()
    return bounds


def predicted_values(records: list[dict]) -> np.ndarray:
    """A regressor's records' predicted values (N, targets)."""
    return np.stack([r["predicted_values"] for r in records])


def window_reports(records: list[dict], reference: dict, window: int, thresholds: DriftThresholds, card: ModelCard) -> list[dict]:
    """The live drift report of each window, with its number, time range and record rows."""
    reports = []
    for number, (start, stop) in enumerate(window_bounds(len(records), window, thresholds.min_samples), 1):
        rolling = RollingWindow(stop - start, card)
        if card.output.kind == "regression":
            rolling.add_values_views(np.stack([r["pixels"] for r in records[start:stop]]), predicted_values(records[start:stop]))
        else:
            rolling.add_views(*features(records[start:stop]))
        reports.append(
            {
                "number": number,
                "start": _time(records[start]["timestamp"]),
                "end": _time(records[stop - 1]["timestamp"]),
                "rows": [start, stop],
                **drift_report(reference, rolling, thresholds),
            }
        )
    return reports


def load_card_and_reference(model: str, version: str, path: str | Path | None = None) -> tuple[ModelCard, dict, str]:
    """The version's card (from the store) and reference statistics (from ``path``, else stored next
    to the model), and where the reference came from."""
    try:
        stored = store.get(model, version)
        card = store.load_card(model, version, stored)
    except store.ModelStoreError as exc:
        raise MissingReference(str(exc)) from None
    card = drift_card(card) or card  # named inputs: the vector of their values the records hold
    if path is not None:
        try:
            return card, json.loads(Path(path).read_text()), str(path)
        except (OSError, ValueError) as exc:
            raise MissingReference(f"cannot read reference {path}: {exc}") from None
    content = store.read_file(stored, REFERENCE_FILE)
    if content is None:
        raise MissingReference(f"{card.tag} has no {REFERENCE_FILE} (imported without evaluation data?); pass --reference PATH")
    return card, json.loads(content), f"model store {stored.tag} ({REFERENCE_FILE})"


def render(card: ModelCard, records: list[dict], reports: list[dict], reference: dict, thresholds: DriftThresholds, skipped: int = 0, details: dict | None = None) -> str:
    """The report page: headline, table of windows, figures, settings."""
    import matplotlib

    matplotlib.use("Agg")
    last = reports[-1]
    drifted = sum(r["verdict"] == "drift" for r in reports)
    last_records = records[slice(*last["rows"])]
    title = f"{_e(card.tag)} drift report"
    regression = card.output.kind == "regression"
    columns = regression_columns(reports) if regression else STATISTICS
    parts = [
        f"<h1>{title}</h1>",
        f"<p class=sub>{len(records):,} logged predictions from {_time(records[0]['timestamp'])} to {_time(records[-1]['timestamp'])}, "
        f"in windows of {reports[0]['window']['capacity']:,}, compared with the reference of {reference['images']:,} held-out test {'examples' if regression else 'images'} "
        f"by the same code as <code>GET /models/{_e(card.name)}/{_e(card.version)}/drift</code>. "
        f"{skipped:,} unparsable log line{'s' if skipped != 1 else ''} skipped.</p>",
        "<div class=headline>"
        f"<div>records<b>{len(records):,}</b></div>"
        f"<div>time range<b style='font-size:1em'>{_time(records[0]['timestamp'])}<br>{_time(records[-1]['timestamp'])}</b></div>"
        f"<div>windows<b>{len(reports)}</b></div>"
        f"<div{' class=drift' if drifted else ''}>drifted windows<b>{drifted}</b></div>"
        f"<div{' class=drift' if last['verdict'] == 'drift' else ''}>last window<b>{_e(last['verdict'])}</b></div>"
        "</div>",
        "<h2>Windows</h2>",
        f"<p>Drift: PSI above {thresholds.psi:g}, or a test's p-value below {thresholds.p_value:g}; "
        f"no verdict under {thresholds.min_samples} predictions. Drifted statistics are highlighted.</p>",
        _windows_table(reports, columns),
        "<h2>Statistics over windows</h2>",
        figure_html(_statistics_chart(reports, thresholds, columns)),
        f"<h2>Last window (#{last['number']}, {last['window']['size']:,} predictions) against the reference</h2>",
        figure_html(_intensity_chart(reference, last_records, card)) if reference["intensity"]["shares"] is not None else "",
    ]
    if regression:
        parts += [
            "<p>Per input and per target, a two-sample KS test; the p-values of each family (inputs, targets) are "
            "Bonferroni-adjusted: multiplied by the number of tests in it.</p>",
            figure_html(_values_chart(reference, last_records, card)),
        ]
    else:
        parts += [figure_html(_class_chart(reference, last, card.labels)), figure_html(_confidence_chart(reference, last_records))]
    if card.is_image:
        parts += [
            "<h3>Mean image</h3><p>Red: brighter than the reference on average, blue: darker. "
            "A dark square shows an occlusion mask; an image that is red where the reference is dark shows inversion.</p>",
            figure_html(_mean_images(reference, last_records, card)),
        ]
    if details:
        parts += ["<h2>Settings</h2>", "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in details.items()) + "</table>"]
    return f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title><style>{STYLE}{EXTRA_STYLE}</style></head><body>{''.join(parts)}</body></html>"


def regression_columns(reports: list[dict]) -> dict[str, str]:
    """A regressor's statistics in the order its reports give them, with their labels ("price KS", "input bmi KS")."""
    names: dict[str, str] = {}
    for report in reports:
        for name, row in report["statistics"].items():
            if "target" in row:
                names.setdefault(name, f"{row['target']} KS")
            elif "input" in row:
                names.setdefault(name, f"input {row['input']} KS")
            else:
                names.setdefault(name, STATISTICS.get(name, name))
    return names


def _windows_table(reports: list[dict], columns: dict[str, str] = STATISTICS) -> str:
    head = "<tr><th>#</th><th>start</th><th>end</th><th>size</th>" + "".join(f"<th>{_e(n)}</th>" for n in columns.values()) + "<th>drifted</th></tr>"
    rows = []
    for r in reports:
        cells = [f"<td class=n>{r['number']}</td><td>{_e(r['start'])}</td><td>{_e(r['end'])}</td><td class=n>{r['window']['size']:,}</td>"]
        for name in columns:
            row = r["statistics"].get(name)
            if row is None:
                cells.append("<td></td>")
                continue
            text = f"{row['value']:.4f}" + (f" <small>p {row['p_value']:.2g}</small>" if "p_value" in row else "")
            cells.append(f"<td class='n{' worst' if row['drifted'] else ''}'>{text}</td>")
        verdict = {"drift": "yes", "no drift": "no"}.get(r["verdict"], r["verdict"])
        cells.append(f"<td{' class=worst' if r['verdict'] == 'drift' else ''}>{_e(verdict)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _statistics_chart(reports: list[dict], thresholds: DriftThresholds, columns: dict[str, str] = STATISTICS):
    import matplotlib.pyplot as plt

    if columns is not STATISTICS:
        return _p_value_chart(reports, thresholds, columns)
    numbers = [r["number"] for r in reports]
    fig, axes = plt.subplots(1, len(STATISTICS), figsize=(11, 2.9))
    for ax, (name, label) in zip(axes, STATISTICS.items(), strict=True):
        rows = [r["statistics"].get(name) for r in reports]
        if name == "intensity_psi":
            values = [row["value"] if row else np.nan for row in rows]
            ax.axhline(thresholds.psi, color="#d62728", linestyle="--", linewidth=1, label=f"threshold {thresholds.psi:g}")
            ax.set_ylabel("PSI")
        else:
            values = [max(row["p_value"], P_FLOOR) if row else np.nan for row in rows]
            ax.axhline(thresholds.p_value, color="#d62728", linestyle="--", linewidth=1, label=f"p = {thresholds.p_value:g}")
            ax.set_yscale("log")
            ax.set_ylabel(f"p-value (floor {P_FLOOR:g})")
        ax.plot(numbers, values, marker="o", markersize=3, color="#1f77b4")
        hits = [(n, v) for n, v, row in zip(numbers, values, rows, strict=True) if row and row["drifted"]]
        if hits:
            ax.scatter(*zip(*hits, strict=True), color="#d62728", zorder=3, s=18, label="drifted")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("window")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _p_value_chart(reports: list[dict], thresholds: DriftThresholds, columns: dict[str, str]):
    """A regressor's statistics over windows: the PSI (with a value range) and every test's p-value on one
    log axis (inputs that never drifted thin and grey, drifted ones dashed, the mean intensity and each target bold)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    numbers = [r["number"] for r in reports]
    psi = "intensity_psi" in columns
    fig, axes = plt.subplots(1, 2 if psi else 1, figsize=(11, 3.4), squeeze=False, gridspec_kw={"width_ratios": [1, 3]} if psi else None)
    if psi:
        ax = axes[0][0]
        values = [r["statistics"]["intensity_psi"]["value"] if "intensity_psi" in r["statistics"] else np.nan for r in reports]
        ax.plot(numbers, values, marker="o", markersize=3, color="#1f77b4")
        ax.axhline(thresholds.psi, color="#d62728", linestyle="--", linewidth=1, label=f"threshold {thresholds.psi:g}")
        ax.set(title=columns["intensity_psi"], xlabel="window", ylabel="PSI")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax = axes[0][-1]
    ax.set_prop_cycle(color=["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"])  # red marks drift
    for name, label in columns.items():
        if name == "intensity_psi":
            continue
        rows = [r["statistics"].get(name) for r in reports]
        values = [max(row["p_value"], P_FLOOR) if row else np.nan for row in rows]
        quiet = any(row is not None and "input" in row for row in rows) and not any(row is not None and row["drifted"] for row in rows)  # an input that never drifted
        style = {"linewidth": 0.8, "color": "#9a9a9a"} if quiet else {"linewidth": 1.8, "label": label, "linestyle": "--" if "input" in label else "-"}
        ax.plot(numbers, values, marker="o", markersize=3, **style)
        hits = [(n, v) for n, v, row in zip(numbers, values, rows, strict=True) if row and row["drifted"]]
        if hits:
            ax.scatter(*zip(*hits, strict=True), color="#d62728", zorder=3, s=18)
    ax.axhline(thresholds.p_value, color="#d62728", linestyle="--", linewidth=1, label=f"p = {thresholds.p_value:g}")
    ax.plot([], [], color="#9a9a9a", linewidth=0.8, label="inputs that never drifted")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title="p-values (red: drifted)", xlabel="window", ylabel=f"p-value (floor {P_FLOOR:g})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def _values_chart(reference: dict, records: list[dict], card: ModelCard):
    """Each target's predicted values in the last window against the reference's, as shares of common bins."""
    import matplotlib.pyplot as plt

    window = predicted_values(records)
    targets = reference["targets"]
    fig, axes = plt.subplots(1, len(targets["names"]), figsize=(11, 3), squeeze=False)
    for index, (ax, name, unit) in enumerate(zip(axes[0], targets["names"], targets["units"], strict=True)):
        expected, live = np.asarray(targets["values"][index], dtype=np.float64), window[:, index][np.isfinite(window[:, index])]
        both = np.concatenate([expected, live])
        edges = np.histogram_bin_edges(both if both.size else np.zeros(1), bins=20)
        ax.hist(expected, bins=edges, weights=np.full(len(expected), 1 / max(len(expected), 1)), alpha=0.6, label="reference", color="#7f7f7f")
        ax.hist(live, bins=edges, weights=np.full(len(live), 1 / max(len(live), 1)), alpha=0.6, label="last window", color="#1f77b4")
        ax.set(title=f"predicted {name}", xlabel=unit or "value", ylabel="share")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _paired_bars(ax, x, reference, window, width, tick_labels=None):
    ax.bar(np.asarray(x) - width / 2, reference, width=width, label="reference", color="#7f7f7f")
    ax.bar(np.asarray(x) + width / 2, window, width=width, label="last window", color="#1f77b4")
    if tick_labels is not None:
        ax.set_xticks(x, tick_labels, rotation=20)
    ax.set_ylabel("share")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()


def _intensity_chart(reference: dict, records: list[dict], card: ModelCard):
    import matplotlib.pyplot as plt

    counts = image_features(np.stack([r["pixels"] for r in records]), card)[1].sum(axis=0)
    low, high = card.input.value_range
    edges = np.linspace(low, high, INTENSITY_BINS + 1)
    digits = ".0f" if high - low >= 100 else ".3g"  # a range of 0..1 or -1..1 has its bins' edges in fractions
    fig, ax = plt.subplots(figsize=(11, 3))
    _paired_bars(ax, np.arange(INTENSITY_BINS), reference["intensity"]["shares"], counts / max(counts.sum(), 1), 0.4, [f"{a:{digits}}–{b:{digits}}" for a, b in pairwise(edges)])
    ax.set_title("pixel intensity shares", fontsize=10)
    ax.set_yscale("log")  # the dark background bin holds half the pixels; the rest would vanish
    return fig


def _class_chart(reference: dict, last: dict, names: tuple[str, ...]):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 3))
    _paired_bars(ax, np.arange(len(names)), reference["classes"]["shares"], last["class_shares"]["window"], 0.4, names)
    ax.set_title("predicted class shares", fontsize=10)
    return fig


def _confidence_chart(reference: dict, records: list[dict]):
    import matplotlib.pyplot as plt

    edges = np.asarray(reference["confidence"]["edges"], dtype=np.float64)
    counts = np.histogram(features(records)[2], bins=edges)[0]
    fig, ax = plt.subplots(figsize=(11, 3))
    _paired_bars(ax, (edges[:-1] + edges[1:]) / 2, reference["confidence"]["shares"], counts / max(counts.sum(), 1), np.diff(edges).min() * 0.4)
    ax.set_xticks(edges)
    ax.set_xlabel("confidence of the predicted class")
    ax.set_title("confidence", fontsize=10)
    return fig


def _mean_images(reference: dict, records: list[dict], card: ModelCard):
    """Mean images on the feature view's grid; colour images are shown as their mean over channels."""
    import matplotlib.pyplot as plt

    full = np.asarray(reference["pixels"]["mean"], dtype=np.float64).reshape(card.input.shape)
    scale = card.input.value_range[1] if card.input.value_range else 255.0  # the reference's means are of values over the range's top
    expected = feature_view((full * scale)[None], card).reshape(-1) / 255  # the reference on the same grid (8-bit levels) as the logs
    grid = view_grid(card)
    window = (np.stack([r["pixels"] for r in records]).mean(axis=0) / 255).reshape(grid).mean(axis=2)
    expected = expected.reshape(grid).mean(axis=2)
    difference = window - expected
    limit = max(float(np.abs(difference).max()), 0.05)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    for ax, image, label in ((axes[0], window, "last window"), (axes[1], expected, "reference")):
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{label} mean image", fontsize=10)
    shown = axes[2].imshow(difference, cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[2].set_title("difference (window − reference)", fontsize=10)
    fig.colorbar(shown, ax=axes[2], fraction=0.046, pad=0.04)
    for ax in axes:
        ax.axis("off")
    return fig


def _time(value: datetime.datetime) -> str:
    return value.isoformat(sep=" ", timespec="milliseconds")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lifecycle.drift_report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the served model whose logs are read, e.g. clothes")
    parser.add_argument("--version", required=True, help="the version whose logs are read, e.g. v1")
    parser.add_argument("--logs", default="monitoring", help="BentoML's monitoring log_path (default: monitoring)")
    parser.add_argument("--reference", help=f"a {REFERENCE_FILE} (default: the one stored next to the model)")
    parser.add_argument("--window", type=int, help="records per window (default: monitoring.window of the configuration)")
    parser.add_argument("--out", help="the HTML file to write (default: drift-<model>-<version>.html)")
    args = parser.parse_args(argv)
    if args.window is not None and args.window < 2:
        parser.error("--window must be at least 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        monitoring = load_config().monitoring
    except ConfigError as exc:
        print(f"drift_report: {exc}", file=sys.stderr)
        return 1
    window = args.window or monitoring.window
    thresholds = monitoring.thresholds
    try:
        card, reference, source = load_card_and_reference(args.model, args.version, args.reference)
    except MissingReference as exc:
        print(f"drift_report: no reference: {exc}", file=sys.stderr)
        return 1
    records, skipped = read_records(args.logs, card)
    if not records:
        where = Path(args.logs) / MONITOR_NAME / "data"
        print(f"drift_report: no records of {card.tag} in {where} ({skipped} unparsable lines); is monitoring on and log_sample_rate > 0?", file=sys.stderr)
        return 1
    reports = window_reports(records, reference, window, thresholds, card)
    details = {
        "logs": str(Path(args.logs) / MONITOR_NAME / "data"),
        "files read": len(log_files(args.logs)),
        "unparsable lines skipped": skipped,
        "reference": f"{source}, {reference['images']:,} {'examples' if card.output.kind == 'regression' else 'images'}",
        "window": window,
        "thresholds": f"p-value < {thresholds.p_value:g}, PSI > {thresholds.psi:g}, min samples {thresholds.min_samples}",
    }
    out = Path(args.out or f"drift-{card.name}-{card.version}.html")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(card, records, reports, reference, thresholds, skipped=skipped, details=details), encoding="utf-8")
    drifted = sum(r["verdict"] == "drift" for r in reports)
    print(f"{len(records)} records ({skipped} unparsable lines skipped), {len(reports)} windows of {window}, {drifted} drifted (last: {reports[-1]['verdict']}) -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
