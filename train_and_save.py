"""Train a version of the clothes classifier, evaluate it, and save it to the BentoML model store.

    python train_and_save.py --version v1            # the course's LeNet-5, 20 epochs
    python train_and_save.py --version v2 --force    # the improved network, replacing clothes:v2
    python train_and_save.py --version v1 --epochs 1 --train-limit 2000 --test-limit 500   # seconds, for tests
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

from models import store, training  # noqa: E402
from models.data import DatasetError, load_fashion_mnist  # noqa: E402
from models.evaluation import format_report  # noqa: E402
from models.specs import RECIPES  # noqa: E402


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if store.exists(args.version) and args.if_missing and not args.force:
        print(f"{store.tag(args.version)} is already in the store")
        return 0
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
    saved = store.save(args.version, run.model, training.metadata(run, data), force=args.force)
    print(f"Saved {saved.tag} ({run.metrics['accuracy']:.4f} test accuracy, {run.settings['training_seconds']} s) to {saved.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
