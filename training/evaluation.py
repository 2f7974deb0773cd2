"""Test-set metrics: accuracy, macro and per-class precision/recall/F1, the confusion matrix; a
regressor's MAE, RMSE and R² per target; a multi-label tagger's per-label precision, recall and F1.

scikit-learn computes them (the field's reference implementation, with defined zero-division
behaviour); this module only shapes the result into plain JSON-able values for the store.
"""

from __future__ import annotations

import numpy as np


def evaluate(y_true: np.ndarray, probabilities: np.ndarray, names: tuple[str, ...]) -> dict:
    """Metrics of class probabilities (N, len(names)) against true label indices."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    y_pred = np.asarray(probabilities).argmax(axis=1)
    labels = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    macro = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 6),
        "macro_precision": round(float(macro[0]), 6),
        "macro_recall": round(float(macro[1]), 6),
        "macro_f1": round(float(macro[2]), 6),
        "per_class": {
            name: {
                "precision": round(float(p), 6),
                "recall": round(float(r), 6),
                "f1": round(float(f), 6),
                "support": int(s),
            }
            for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "test_images": int(len(y_true)),
    }


def evaluate_regression(y_true: np.ndarray, predicted: np.ndarray, targets: list[str]) -> dict:
    """A regressor's held-out error: MAE, RMSE and R² of each target (y_true and predicted (N, targets)), and their mean."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y_true, predicted = np.asarray(y_true, np.float64).reshape(len(y_true), -1), np.asarray(predicted, np.float64).reshape(len(predicted), -1)
    per_target = {
        name: {
            "mae": round(float(mean_absolute_error(y_true[:, i], predicted[:, i])), 6),
            "rmse": round(float(np.sqrt(mean_squared_error(y_true[:, i], predicted[:, i]))), 6),
            "r2": round(float(r2_score(y_true[:, i], predicted[:, i])), 6) if len(y_true) > 1 else None,
        }
        for i, name in enumerate(targets)
    }
    mean = {key: round(float(np.mean([row[key] for row in per_target.values()])), 6) for key in ("mae", "rmse")}
    return {**mean, "per_target": per_target, "test_examples": int(len(y_true))}


def evaluate_multilabel(y_true: np.ndarray, probabilities: np.ndarray, names: tuple[str, ...], thresholds: tuple[float, ...]) -> dict:
    """A tagger's held-out scores: each label given past its threshold, against y_true (N, labels) of 0 and 1."""
    from sklearn.metrics import precision_recall_fscore_support

    given = np.asarray(probabilities) >= np.asarray(thresholds)
    precision, recall, f1, support = precision_recall_fscore_support(np.asarray(y_true).astype(bool), given, zero_division=0)
    micro = precision_recall_fscore_support(np.asarray(y_true).astype(bool), given, average="micro", zero_division=0)
    return {
        "micro_precision": round(float(micro[0]), 6),
        "micro_recall": round(float(micro[1]), 6),
        "micro_f1": round(float(micro[2]), 6),
        "exact_match": round(float((given == np.asarray(y_true).astype(bool)).all(axis=1).mean()), 6),
        "per_label": {
            name: {"precision": round(float(p), 6), "recall": round(float(r), 6), "f1": round(float(f), 6), "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
        },
        "test_examples": int(len(y_true)),
    }


def evaluate_by_task(card, y_true: np.ndarray, answers: np.ndarray) -> dict:
    """The metrics of a model's answers by its card's task: errors per target, per-label scores, or class metrics."""
    output = card.output
    if output.kind == "regression":
        return evaluate_regression(y_true, answers, [target.name for target in output.targets])
    if output.kind == "multilabel":
        return evaluate_multilabel(y_true, answers, output.labels, output.thresholds)
    return evaluate(y_true, answers, card.labels)


def format_report(metrics: dict) -> str:
    """A plain-text table for the console."""
    if "per_target" in metrics:
        width = max(12, *map(len, metrics["per_target"]))
        lines = [f"MAE {metrics['mae']:.4g}  RMSE {metrics['rmse']:.4g} (means over the targets)", f"{'target':<{width}} {'MAE':>10} {'RMSE':>10} {'R2':>8}"]
        for name, row in metrics["per_target"].items():
            lines.append(f"{name:<{width}} {row['mae']:>10.4g} {row['rmse']:>10.4g} {row['r2'] if row['r2'] is None else format(row['r2'], '.4f'):>8}")
        return "\n".join(lines)
    if "per_label" in metrics:
        width = max(12, *map(len, metrics["per_label"]))
        lines = [f"micro F1 {metrics['micro_f1']:.4f}  exact match {metrics['exact_match']:.4f}", f"{'label':<{width}} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}"]
        lines += [f"{name:<{width}} {r['precision']:>9.4f} {r['recall']:>7.4f} {r['f1']:>7.4f} {r['support']:>8}" for name, r in metrics["per_label"].items()]
        return "\n".join(lines)
    width = max(12, *map(len, metrics["per_class"]))
    lines = [
        f"accuracy {metrics['accuracy']:.4f}  macro precision {metrics['macro_precision']:.4f}  macro recall {metrics['macro_recall']:.4f}  macro F1 {metrics['macro_f1']:.4f}",
        f"{'class':<{width}} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}",
    ]
    for name, row in metrics["per_class"].items():
        lines.append(f"{name:<{width}} {row['precision']:>9.4f} {row['recall']:>7.4f} {row['f1']:>7.4f} {row['support']:>8}")
    lines.append("confusion matrix (rows: true, columns: predicted)")
    lines.extend(" ".join(f"{v:>5}" for v in row) for row in metrics["confusion_matrix"])
    return "\n".join(lines)
