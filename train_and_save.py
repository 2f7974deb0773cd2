"""Train a version of the clothes classifier, evaluate it, and save it to the BentoML model store.

    python train_and_save.py --version v1            # the course's LeNet-5, 20 epochs
    python train_and_save.py --version v2 --force    # the improved network, replacing clothes:v2
    python train_and_save.py --version v1 --epochs 1 --train-limit 2000 --test-limit 500   # seconds, for tests
    python train_and_save.py promote v2              # the promotion gate: v2 against the current stable

Training also evaluates the version per class and under shifts (lifecycle/slices.py), and stores an
HTML evaluation report and reference statistics for drift monitoring next to the model.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

from lifecycle.gate import Policy, decide, format_table, write_decision  # noqa: E402
from lifecycle.reference import REFERENCE_FILE, build_reference  # noqa: E402
from lifecycle.report import REPORT_FILE, evaluation_report  # noqa: E402
from lifecycle.slices import evaluate_slices  # noqa: E402
from models import store, training  # noqa: E402
from models.data import DatasetError, load_fashion_mnist  # noqa: E402
from models.evaluation import format_report  # noqa: E402
from models.specs import RECIPES  # noqa: E402
from serving.settings import load_settings  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", required=True, choices=sorted(RECIPES), help="which recipe to train and the store version to save")
    parser.add_argument("--data-dir", help="directory with the four Fashion-MNIST IDX .gz files (default: $FASHION_MNIST_DIR, then the Debian package)")
    parser.add_argument("--no-download", action="store_true", help="never fall back to Keras' downloader")
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs")
    parser.add_argument("--seed", type=int, help="override the recipe's seed")
    parser.add_argument("--train-limit", type=int, help="train on the first N training images only")
    parser.add_argument("--test-limit", type=int, help="evaluate on the first N test images only")
    parser.add_argument("--force", action="store_true", help="replace the version if it is already in the store")
    parser.add_argument("--if-missing", action="store_true", help="do nothing when the version is already in the store")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    return parser.parse_args(argv)


def parse_promote_args(argv: list[str]) -> argparse.Namespace:
    policy = load_settings().promotion.policy
    parser = argparse.ArgumentParser(prog="train_and_save.py promote", description="Promote a version to the stable alias if it passes the gate.")
    parser.add_argument("candidate", help="the stored version to promote")
    parser.add_argument("--data-dir", help="directory with the Fashion-MNIST IDX .gz files")
    parser.add_argument("--no-download", action="store_true", help="never fall back to Keras' downloader")
    parser.add_argument("--test-limit", type=int, help="compare on the first N test images only")
    parser.add_argument("--min-improvement", type=float, default=policy.min_improvement, help="required overall accuracy gain (default %(default)s)")
    parser.add_argument("--max-class-regression", type=float, default=policy.max_class_regression, help="allowed accuracy loss on any class (default %(default)s)")
    parser.add_argument("--max-slice-regression", type=float, default=policy.max_slice_regression, help="allowed accuracy loss under any shift (default %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="print the decision without recording it")
    return parser.parse_args(argv)


def promote(argv: list[str]) -> int:
    args = parse_promote_args(argv)
    settings = load_settings()
    if not settings.promotion.record:
        print(f"error: {settings.path} has no clothes.promotion.record to record decisions in", file=sys.stderr)
        return 2
    stable = settings.resolve(settings.promotion.alias)
    if args.candidate == stable:
        print(f"{args.candidate} is already {settings.promotion.alias}; nothing to decide")
        return 0
    try:
        data = load_fashion_mnist(args.data_dir, allow_download=not args.no_download)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    images, labels = data.x_test[: args.test_limit], data.y_test[: args.test_limit]
    evaluations = {}
    for version in (stable, args.candidate):
        try:
            model, _ = store.load(version)
        except store.ModelStoreError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        evaluations[version] = evaluate_slices(functools.partial(training.predict_probabilities, model), images, labels)
    policy = Policy(args.min_improvement, args.max_class_regression, args.max_slice_regression)
    decision = decide(args.candidate, evaluations[args.candidate], stable, evaluations[stable], policy)
    print(format_table(decision))
    if not args.dry_run:
        write_decision(settings.promotion.record, decision)
        print(f"decision recorded in {settings.promotion.record}")
    return 0 if decision.accepted else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["promote"]:
        return promote(argv[1:])
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if store.is_current(args.version) and args.if_missing and not args.force:
        print(f"{store.tag(args.version)} is already in the store")
        return 0
    if store.exists(args.version) and args.if_missing and not args.force:
        print(f"{store.tag(args.version)} was stored by an older version of this code (no report or reference); retraining it")
        args.force = True
    if store.exists(args.version) and not args.force:
        print(f"error: {store.tag(args.version)} already exists in the store; pass --force to replace it", file=sys.stderr)
        return 1
    try:
        data = load_fashion_mnist(args.data_dir, allow_download=not args.no_download)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    recipe = training.recipe_for(args.version, epochs=args.epochs, seed=args.seed)
    print(f"Training {store.tag(args.version)}: {recipe.architecture}, {recipe.epochs} epochs, data from {data.source}")
    run = training.train(data, recipe, args.train_limit, args.test_limit, verbose=0 if args.quiet else 2)
    print(format_report(run.metrics))
    slices = evaluate_slices(functools.partial(training.predict_probabilities, run.model), run.images, run.labels)
    print(f"worst slice {slices['worst']['slice']}: {slices['worst']['accuracy']:.4f} (overall {slices['overall']:.4f})")
    metadata = training.metadata(run, data, slices)
    files = {
        REPORT_FILE: evaluation_report(args.version, metadata, run.images, run.labels, run.probabilities),
        REFERENCE_FILE: json.dumps(build_reference(run.images, run.probabilities)),
    }
    saved = store.save(args.version, run.model, metadata, force=args.force, files=files)
    print(f"Saved {saved.tag} ({run.metrics['accuracy']:.4f} test accuracy, {run.settings['training_seconds']} s) to {saved.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
