"""Test-set metrics: accuracy, macro and per-class precision/recall/F1, the confusion matrix.

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


def format_report(metrics: dict) -> str:
    """A plain-text table for the console."""
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
