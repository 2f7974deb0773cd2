"""The evaluation report of a version: one self-contained HTML page with figures (matplotlib).

Written by train_and_save.py, stored next to the model as ``report.html`` and served at
``GET /models/<name>/<version>/report``. Everything it names comes from the model's card.

    >>> html = evaluation_report(card, x_test, y_test, probabilities)
    >>> html = regression_report(card, y_test, predicted)      # a regressor: errors per target, residual plots
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np

from lifecycle.slices import apply_shift
from models.card import ModelCard

REPORT_FILE = "report.html"
MISCLASSIFIED_SHOWN = 32

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: .2em; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: .5em 0 1.5em; } td, th { padding: .25em .7em; border-bottom: 1px solid #ddd; }
th { text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.worst { background: #fde2e1; } .figure { margin: 1em 0 2em; } img { max-width: 100%; }
.headline { display: flex; gap: 2em; } .headline div { background: #f3f5f8; padding: .8em 1.2em; border-radius: 6px; }
.headline b { display: block; font-size: 1.6em; }
"""


def evaluation_report(card: ModelCard, images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray) -> str:
    import matplotlib

    matplotlib.use("Agg")
    metrics, slices, names = card.metrics, card.slices, card.labels
    if metrics is None or slices is None:
        raise ValueError(f"{card.tag}: the card has no metrics or slices to report (an evaluated version's card has both)")
    images = np.asarray(images).reshape(len(images), *card.input.shape)
    worst = slices["worst"]
    parts = [
        f"<h1>{_e(card.tag)} evaluation report</h1>",
        f"<p class=sub>{_e(card.description)} {card.number_of_parameters:,} parameters; "
        f"evaluated on {metrics['test_images']:,} held-out examples from {_e(card.data['source'])}.</p>",
        "<div class=headline>"
        f"<div>accuracy<b>{metrics['accuracy']:.4f}</b></div>"
        f"<div>macro F1<b>{metrics['macro_f1']:.4f}</b></div>"
        f"<div>worst slice: {_e(worst['slice'])}<b>{worst['accuracy']:.4f}</b></div>"
        "</div>",
        "<h2>Per-class precision, recall and F1</h2>",
        figure_html(_per_class_chart(metrics, names)),
        _per_class_table(metrics),
        "<h2>Confusion matrix</h2>",
        figure_html(_confusion_matrix(metrics["confusion_matrix"], names)),
        "<h2>Training and validation curves</h2>",
        figure_html(_curves(card.history or {})),
        "<h2>Slices: accuracy per class and under shifts</h2>",
        "<p>Each shift is applied to every test image (seeded, the same for every version). "
        "A slice tells how the model does on that kind of input; it does not predict how often such inputs arrive.</p>",
        figure_html(_slices_chart(slices)),
        _slices_table(slices),
        figure_html(_shift_examples(images, slices["shift_specs"])) if slices["shift_specs"] else "",
        "<h2>Misclassified test images</h2>" if card.is_image else "<h2>Misclassified test examples</h2>",
        figure_html(_misclassified(images, labels, probabilities, names)) if card.is_image else _misclassified_table(labels, probabilities, names),
        "<h2>Training settings</h2>",
        _key_values({**card.training, **card.framework_versions}),
    ]
    return f"<!doctype html><html><head><meta charset=utf-8><title>{_e(card.tag)} evaluation</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"


def regression_report(card: ModelCard, truth: np.ndarray, predicted: np.ndarray) -> str:
    """A regressor's evaluation report: MAE, RMSE and R² per target (the card's metrics), and for each
    target predicted against true values and the residuals' distribution."""
    import matplotlib

    matplotlib.use("Agg")
    metrics = card.metrics
    if metrics is None or "per_target" not in metrics:
        raise ValueError(f"{card.tag}: the card has no regression metrics to report")
    truth, predicted = np.asarray(truth, np.float64).reshape(len(truth), -1), np.asarray(predicted, np.float64).reshape(len(predicted), -1)
    units = {target.name: target.unit for target in card.output.targets}
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td>{_e(units.get(name) or '')}</td><td class=n>{row['mae']:.4g}</td><td class=n>{row['rmse']:.4g}</td>"
        f"<td class=n>{'' if row['r2'] is None else format(row['r2'], '.4f')}</td></tr>"
        for name, row in metrics["per_target"].items()
    )
    parts = [
        f"<h1>{_e(card.tag)} evaluation report</h1>",
        f"<p class=sub>{_e(card.description)} {card.number_of_parameters:,} parameters; evaluated on {metrics['test_examples']:,} held-out examples"
        f" from {_e(card.data.get('source'))}.</p>",
        f"<div class=headline><div>MAE (mean over targets)<b>{metrics['mae']:.4g}</b></div><div>RMSE<b>{metrics['rmse']:.4g}</b></div></div>",
        "<h2>Errors per target</h2>",
        f"<table><tr><th>target</th><th>unit</th><th>MAE</th><th>RMSE</th><th>R²</th></tr>{rows}</table>",
        "<h2>Predicted against true, and the residuals</h2>",
        figure_html(_residual_plots(truth, predicted, [target.name for target in card.output.targets], units)),
        "<h2>Import settings</h2>",
        _key_values({**card.training, **card.framework_versions}),
    ]
    return f"<!doctype html><html><head><meta charset=utf-8><title>{_e(card.tag)} evaluation</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"


def _residual_plots(truth: np.ndarray, predicted: np.ndarray, names: list[str], units: dict):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(names), 2, figsize=(9, 3.2 * len(names)), squeeze=False)
    for index, name in enumerate(names):
        unit = f" ({units[name]})" if units.get(name) else ""
        scatter, histogram = axes[index]
        scatter.scatter(truth[:, index], predicted[:, index], s=6, alpha=0.5)
        low, high = float(min(truth[:, index].min(), predicted[:, index].min())), float(max(truth[:, index].max(), predicted[:, index].max()))
        scatter.plot([low, high], [low, high], color="#999", linewidth=1)
        scatter.set(xlabel=f"true {name}{unit}", ylabel=f"predicted {name}{unit}")
        histogram.hist(predicted[:, index] - truth[:, index], bins=30, color="#4c72b0")
        histogram.set(xlabel=f"residual: predicted - true{unit}", ylabel="examples")
    fig.tight_layout()
    return fig


def figure_html(fig) -> str:
    """A matplotlib figure as an inline PNG <img> (the page stays one self-contained file)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f"<div class=figure><img alt='' src='data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}'></div>"


def _per_class_chart(metrics: dict, names: tuple[str, ...]):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 3.6))
    x = np.arange(len(names))
    for offset, key in zip((-0.27, 0, 0.27), ("precision", "recall", "f1"), strict=True):
        ax.bar(x + offset, [metrics["per_class"][c][key] for c in names], width=0.27, label=key)
    ax.set_xticks(x, names, rotation=20)
    ax.set_ylim(0, 1.05)
    ax.legend(loc="lower right", ncols=3)
    ax.grid(axis="y", alpha=0.3)
    return fig


def _confusion_matrix(matrix: list[list[int]], names: tuple[str, ...]):
    import matplotlib.pyplot as plt

    m = np.asarray(matrix)
    side = 1.5 + 0.6 * len(names)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    ax.imshow(m, cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8, color="white" if v > m.max() / 2 else "black")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return fig


def _curves(history: dict):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    for ax, key in zip(axes, ("loss", "accuracy"), strict=True):
        for prefix, label in (("", "training"), ("val_", "validation")):
            values = history.get(prefix + key)
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def _slices_chart(slices: dict):
    import matplotlib.pyplot as plt

    names = [*slices["classes"], *slices["shifts"]]
    values = [*slices["classes"].values(), *slices["shifts"].values()]
    worst = slices["worst"]["slice"].split(":", 1)[1]
    colors = ["#d62728" if n == worst else ("#1f77b4" if i < len(slices["classes"]) else "#ff7f0e") for i, n in enumerate(names)]
    fig, ax = plt.subplots(figsize=(11, 3.6))
    ax.bar(range(len(names)), values, color=colors)
    ax.axhline(slices["overall"], color="black", linestyle="--", linewidth=1, label=f"overall {slices['overall']:.3f}")
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return fig


def _show(ax, image: np.ndarray) -> None:
    """One image of (H, W, C) levels: grey or colour."""
    image = np.clip(np.asarray(image), 0, 255)
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(image.astype(np.uint8))


def _shift_examples(images: np.ndarray, shifts: dict[str, dict]):
    import matplotlib.pyplot as plt

    sample = np.asarray(images[:1], dtype=np.float32)
    fig, axes = plt.subplots(1, len(shifts) + 1, figsize=(11, 1.9))
    _show(axes[0], sample[0])
    axes[0].set_title("original", fontsize=8)
    for ax, (name, spec) in zip(axes[1:], shifts.items(), strict=True):
        _show(ax, apply_shift(spec, sample)[0])
        ax.set_title(name, fontsize=8)
    for ax in axes:
        ax.axis("off")
    return fig


def _misclassified(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, names: tuple[str, ...]):
    import matplotlib.pyplot as plt

    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)[:MISCLASSIFIED_SHOWN]
    columns = 8
    rows = max(1, -(-len(wrong) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(11, 1.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, wrong, strict=False):  # fewer mistakes than panels: the rest stay blank
        _show(ax, images[index])
        ax.set_title(f"{names[labels[index]]}\n→ {names[predicted[index]]} {probabilities[index].max():.2f}", fontsize=7)
    return fig


def _misclassified_table(labels: np.ndarray, probabilities: np.ndarray, names: tuple[str, ...]) -> str:
    """Examples that are not images (a tabular model's rows): which ones, true and predicted class."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)[:MISCLASSIFIED_SHOWN]
    rows = "".join(
        f"<tr><td class=n>{index}</td><td>{_e(names[labels[index]])}</td><td>{_e(names[predicted[index]])}</td><td class=n>{probabilities[index].max():.2f}</td></tr>"
        for index in wrong
    )
    return "<table><tr><th>example</th><th>true</th><th>predicted</th><th>probability</th></tr>" + rows + "</table>"


def _per_class_table(metrics: dict) -> str:
    rows = "".join(
        f"<tr><td>{_e(name)}</td>" + "".join(f"<td class=n>{row[k]:.4f}</td>" for k in ("precision", "recall", "f1")) + f"<td class=n>{row['support']}</td></tr>"
        for name, row in metrics["per_class"].items()
    )
    return (
        "<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
        + rows
        + f"<tr><th>macro</th><td class=n>{metrics['macro_precision']:.4f}</td><td class=n>{metrics['macro_recall']:.4f}</td>"
        f"<td class=n>{metrics['macro_f1']:.4f}</td><td class=n>{metrics['test_images']}</td></tr></table>"
    )


def _slices_table(slices: dict) -> str:
    worst = slices["worst"]["slice"]
    rows = [f"<tr><td>overall</td><td></td><td class=n>{slices['overall']:.4f}</td></tr>"]
    for kind, group in (("class", slices["classes"]), ("shift", slices["shifts"])):
        for name, value in group.items():
            what = slices["shift_specs"][name].get("about", "") if kind == "shift" else "test images of this class"
            css = " class=worst" if worst == f"{kind}:{name}" else ""
            rows.append(f"<tr{css}><td>{kind}: {_e(name)}</td><td>{_e(what)}</td><td class=n>{value:.4f}</td></tr>")
    return "<table><tr><th>slice</th><th>what</th><th>accuracy</th></tr>" + "".join(rows) + "</table>"


def _key_values(values: dict) -> str:
    return "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in values.items()) + "</table>"


def _e(value) -> str:
    return html.escape(str(value))
