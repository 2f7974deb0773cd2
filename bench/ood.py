"""How well each out-of-distribution score tells held-out images from shifted and foreign ones (AUROC).

    python -m bench.ood                    # the shipped versions of both models; updates docs/lifecycle.md
    python -m bench.ood --no-report

For every version shipped in models/shipped/ (imported into a scratch BentoML home, so the store the
tests train into is left alone), on ONNX Runtime in this process: the held-out images (clean), each
of the recipe's shifts applied to them (lifecycle/slices.py), and the other model's images sent to
this one as a client would send them (an encoded file decoded by this card's preprocessing: damage
JPEGs to clothes, clothes PNGs to damage). For each score of lifecycle/ood.py: the AUROC of clean
against each set (scikit-learn's ``roc_auc_score``), and the share flagged at the threshold that
flags 1% of the clean images.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "lifecycle.md"
BEGIN, END = "<!-- ood:begin -->", "<!-- ood:end -->"
CLEAN_FPR = 0.01
PER_SET = 2000


def encoded(images: np.ndarray, fmt: str) -> list[bytes]:
    from PIL import Image

    files = []
    for image in images.astype(np.uint8):
        buffer = io.BytesIO()
        Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(buffer, format=fmt)
        files.append(buffer.getvalue())
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args(argv)
    os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="ood-bench-")  # before BentoML is imported
    from sklearn.metrics import roc_auc_score

    from lifecycle.ood import SCORES, reference_of
    from lifecycle.slices import apply_shift
    from models import engines, store
    from models.preprocessing import values_from_image
    from training.recipes import clothes, damage

    data = {"clothes": clothes.load_data(allow_download=False), "damage": damage.load_data(allow_download=False)}
    rng = np.random.default_rng(0)
    held_out = {}
    for name, dataset in data.items():
        x = dataset.x_test.reshape(len(dataset.x_test), *(dataset.x_test.shape[1:3]), -1)
        held_out[name] = x[rng.permutation(len(x))[:PER_SET]]
    foreign = {"clothes": ("damage", "JPEG"), "damage": ("clothes", "PNG")}
    recipes = {"clothes": clothes.RECIPE, "damage": damage.RECIPE}
    lines = [
        f"Measured by `python -m bench.ood`: the shipped versions on ONNX Runtime; clean = {PER_SET:,} held-out images (fewer where the split is smaller); "
        f"AUROC of each score, clean against each set; 'flagged' = the share of the set past the threshold that flags {CLEAN_FPR:.0%} of the clean images.",
    ]
    for name in ("clothes", "damage"):
        for archive in sorted((ROOT / "models" / "shipped" / name).glob(f"*{store.ARCHIVE_SUFFIX}")):
            version = store.import_archive(archive, force=True)[0].split(":")[1]
            stored = store.get(name, version)
            card = store.load_card(name, version, stored)
            engine = engines.load(stored, card, "onnxruntime")
            reference = reference_of(json.loads(store.read_file(stored, "reference.json") or b"null"), card)
            clean = held_out[name]
            sets = {f"shift: {shift}": apply_shift(spec, clean) for shift, spec in recipes[name].shifts.items()}
            other, fmt = foreign[name]
            sets[f"{other} images ({fmt} files)"] = np.concatenate([values_from_image(f, card) for f in encoded(held_out[other][:PER_SET], fmt)])
            inputs = {"clean": clean, **sets}
            probabilities = {key: np.concatenate([engine(batch) for batch in np.array_split(values, max(1, len(values) // 256))]) for key, values in inputs.items()}
            results: dict[str, dict[str, tuple[float, float]]] = {key: {} for key in sets}
            thresholds = {}
            for score_name, score in SCORES.items():
                scores = {key: score(inputs[key], probabilities[key], reference) for key in inputs}
                thresholds[score_name] = float(np.quantile(scores["clean"], 1 - CLEAN_FPR))
                for key in sets:
                    truth = np.r_[np.zeros(len(scores["clean"])), np.ones(len(scores[key]))]
                    results[key][score_name] = (roc_auc_score(truth, np.r_[scores["clean"], scores[key]]), float((scores[key] > thresholds[score_name]).mean()))
            names = list(SCORES)
            lines += [
                "",
                f"**{name} {version}** ({len(clean):,} clean; thresholds at 1% of clean: " + ", ".join(f"{n} {thresholds[n]:.4g}" for n in names) + ")",
                "",
                "| set | " + " | ".join(f"{n} AUROC (flagged)" for n in names) + " |",
                "|---|" + "---:|" * len(names),
            ]
            for key, row in results.items():
                lines.append(f"| {key} | " + " | ".join(f"{row[n][0]:.3f} ({row[n][1]:.1%})" for n in names) + " |")
            print("\n".join(lines[-len(results) - 4 :]), flush=True)
    text = "\n".join(lines)
    print(text)
    if not args.no_report:
        report = REPORT.read_text()
        if BEGIN not in report:
            print(f"{REPORT} has no {BEGIN} ... {END}", file=sys.stderr)
            return 1
        head, rest = report.split(BEGIN, 1)
        REPORT.write_text(head + BEGIN + "\n" + text + "\n" + END + rest.split(END, 1)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
