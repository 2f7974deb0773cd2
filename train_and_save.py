"""Train, import and promote models: everything that puts a version into the BentoML model store.

    python train_and_save.py train clothes v1                 # a recipe's version (training/recipes/), evaluated and stored
    python train_and_save.py train clothes v2 --force         # replace clothes:v2
    python train_and_save.py train clothes v1 --epochs 1 --train-limit 2000 --test-limit 500   # seconds, for tests
    python train_and_save.py import net.keras --name shapes --version v1 --labels circle,square,star
    python train_and_save.py promote clothes v2               # the promotion gate: v2 against clothes' stable version
    python train_and_save.py rollback clothes                 # stable back to the version before the last promotion
    python train_and_save.py install                          # put the shipped models (models/shipped/) missing from the store into it
    python train_and_save.py install --configured             # and train every configured version still missing (make models)
    python train_and_save.py ship clothes v1                  # the stored clothes:v1 into models/shipped/, for the repository
    python train_and_save.py publish clothes v3               # into the shared model repository (repository.path) every replica fetches from
    python train_and_save.py export-tfserving --name clothes --version v1 --out export   # export/clothes/1/: a SavedModel for TF Serving
    python train_and_save.py measure-pipeline pair-chain --eval-data held.npz   # a configured pipeline's metrics, for its card

Every stored version carries its card (models/card.py). Training and an import with evaluation data
also store an HTML evaluation report, slice results and reference statistics for drift monitoring
(a regressor's: its report and its reference, of its inputs and its predicted values per target).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

from config import ConfigError, load_config  # noqa: E402
from lifecycle.gate import decide, format_table, write_decision  # noqa: E402
from lifecycle.reference import REFERENCE_FILE, build_reference, build_regression_reference, drift_card, drift_values  # noqa: E402
from lifecycle.report import REPORT_FILE, evaluation_report, regression_report  # noqa: E402
from lifecycle.slices import default_shifts, evaluate_slices  # noqa: E402
from models import repository, store  # noqa: E402
from models.card import InputSpec, ModelCard  # noqa: E402
from models.inference import predict_probabilities  # noqa: E402
from training import evaluation, fit, recipes  # noqa: E402
from training.datasets import DatasetError  # noqa: E402
from training.evaluation import format_report  # noqa: E402
from training.export import probe_examples, with_onnx  # noqa: E402
from training.importing import DEFAULT_MAX_BYTES, ImportRefused, check_evaluation, dynamic_range, inspect_keras, parse_labels, read_evaluation  # noqa: E402
from training.onnx_import import inspect_onnx  # noqa: E402
from training.savedmodel_import import inspect_savedmodel  # noqa: E402
from training.sklearn_import import inspect_sklearn  # noqa: E402
from training.tasks import TASKS, parse_targets  # noqa: E402

SHIPPED = Path(__file__).resolve().parent / "models" / "shipped"  # the trained models the repository carries


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a version of a recipe, evaluate it and store it")
    train.add_argument("model", choices=recipes.names(), help="the recipe (training/recipes/)")
    train.add_argument("version", help="the recipe's version to train, stored as <model>:<version>")
    train.add_argument("--data-dir", help="where the recipe's data is (default: the recipe's own search)")
    train.add_argument("--no-download", action="store_true", help="never fall back to a downloader")
    train.add_argument("--epochs", type=int, help="override the recipe's epochs")
    train.add_argument("--seed", type=int, help="override the recipe's seed")
    train.add_argument("--train-limit", type=int, help="train on the first N training examples only")
    train.add_argument("--test-limit", type=int, help="evaluate on the first N held-out examples only")
    train.add_argument("--force", action="store_true", help="replace the version if it is already in the store")
    train.add_argument("--if-missing", action="store_true", help="do nothing when the version is already in the store")
    train.add_argument("--quiet", action="store_true", help="no per-epoch progress")

    imported = commands.add_parser("import", help="store a model trained elsewhere (.keras, a SavedModel directory, .onnx, or a scikit-learn .joblib/.pkl/.pickle), with its card")
    imported.add_argument("path", help="the .keras file, a SavedModel directory, the .onnx file, or a scikit-learn estimator or pipeline in a .joblib, .pkl or .pickle file")
    imported.add_argument("--name", required=True, help="the model name it is served under")
    imported.add_argument("--version", required=True, help="the version it is stored as")
    imported.add_argument(
        "--labels",
        help="class labels in output order: a comma-separated list, or a file with one label per line (Keras' folder loader numbers classes alphabetically). "
        "Needed for classification and multilabel; a scikit-learn classifier's default is its classes_",
    )
    imported.add_argument(
        "--task",
        choices=list(TASKS),
        default="classification",
        help="what the output is: classification (one class: softmax, or one sigmoid unit for two labels), multilabel (one sigmoid per label), "
        "regression (one unit per target), embedding (a vector), tensor (any shape, answered as it is). Default classification; "
        "a scikit-learn regressor is regression",
    )
    imported.add_argument("--targets", help="regression: the targets in output order, name[:unit],... (default value, or value_0, value_1, ...)")
    imported.add_argument("--threshold", type=float, default=0.5, help="multilabel: the probability that gives a label (default 0.5)")
    imported.add_argument("--output", help="Keras, ONNX, SavedModel: the output to serve, when there are several")
    imported.add_argument(
        "--max-bytes",
        type=int,
        default=DEFAULT_MAX_BYTES,
        help=f"a string input (a Keras model's, an ONNX graph's STRING, a scikit-learn text pipeline's text): the longest value taken, in bytes (default {DEFAULT_MAX_BYTES}; longer ones are refused with 422)",
    )
    imported.add_argument(
        "--max-dim",
        type=int,
        help="an input with dynamic dimensions besides the batch axis (a sequence of any length): the largest size each takes "
        "(required for such a model; larger examples are refused with 422)",
    )
    imported.add_argument("--min-dim", type=int, help="with --max-dim: the smallest size a dynamic dimension takes (default 1; a convolution needs its kernel's size)")
    imported.add_argument("--signature", default="serving_default", help="SavedModel: the signature to serve (default serving_default)")
    imported.add_argument(
        "--input-names", help="a vector input: each value's name, comma-separated (the page labels its fields with them; a scikit-learn model fitted on a DataFrame has them)"
    )
    imported.add_argument(
        "--trust-pickle",
        action="store_true",
        help="scikit-learn: load the pickle (loading runs code from the file: only a file you trust). The import converts it to ONNX (skl2onnx); the server stores and runs only that, never the pickle",
    )
    imported.add_argument(
        "--scale",
        choices=["255", "none"],
        help="how client values become the model's input. 255: clients send 0..255 and the server divides by 255 (a model trained on values divided by 255); "
        "none: the server passes them as they are (a model trained on raw values, or one that rescales itself). Default: decided from the model "
        "(a Rescaling or Normalization layer at its input: none; an image input without one: 255) and from --eval-data's accuracy; a tensor input "
        "that neither decides needs the flag",
    )
    imported.add_argument("--description", help="what the model does, for its card")
    imported.add_argument("--kind", choices=["image", "tensor"], help="image (H x W x 1 or 3) or tensor; default: image when the input looks like one")
    imported.add_argument(
        "--range",
        help="LOW,HIGH of the values clients send (default: 0,255 with --scale 255; with --scale none any finite number for a tensor, 0,255 for an image "
        "model that rescales itself). Image inputs with --scale none: the range the model takes, image files' 0..255 levels are mapped into it. "
        "A negative LOW is written --range=-1,1",
    )
    imported.add_argument("--resize", default="bilinear", help="image inputs: PIL's resampling filter for uploaded files (default bilinear)")
    imported.add_argument(
        "--aspect",
        choices=["pad", "stretch", "crop"],
        help="image inputs: how an uploaded file of other proportions is fitted to the input: pad (with its border's colour), stretch, or crop (centre). "
        "A model trained with Keras' image_dataset_from_directory (default crop_to_aspect_ratio=False) saw stretched images: pass stretch. Default pad",
    )
    imported.add_argument("--positive-label", help="one sigmoid unit: the label it gives the probability of (default: the second)")
    imported.add_argument(
        "--eval-data",
        help="an .npz with x (client values; or an array per named input) and y (label indices in the order of --labels; a regressor's values; a tagger's 0/1): "
        "metrics by task, and a report, slices and drift reference where the task has them; it also decides "
        "--scale when one choice is far more accurate, and refuses labels in an order another one beats by far",
    )
    imported.add_argument("--force", action="store_true", help="replace the version if it is already in the store")

    promote = commands.add_parser("promote", help="move a model's promoted alias to a version if it passes the gate")
    promote.add_argument("model", help="a configured model with a promotion policy")
    promote.add_argument("candidate", help="the stored version to promote")
    promote.add_argument("--data-dir", help="where the recipe's data is")
    promote.add_argument("--no-download", action="store_true", help="never fall back to a downloader")
    promote.add_argument("--test-limit", type=int, help="compare on the first N held-out examples only")
    promote.add_argument("--min-improvement", type=float, help="required overall accuracy gain (default: the configuration's)")
    promote.add_argument("--max-class-regression", type=float, help="allowed accuracy loss on any class (default: the configuration's)")
    promote.add_argument("--max-slice-regression", type=float, help="allowed accuracy loss under any shift (default: the configuration's)")
    promote.add_argument("--dry-run", action="store_true", help="print the decision without recording it")
    promote.add_argument("--min-shadow-agreement", type=float, help="also require this agreement with stable's answers on live traffic, as its shadow")
    promote.add_argument("--min-shadow-examples", type=int, default=200, help="shadowed examples that agreement needs (default %(default)s)")
    promote.add_argument("--min-live-examples", type=int, help="also require live accuracy from feedback on the server: this many labelled examples of each version")
    server_option(promote)

    rollback = commands.add_parser("rollback", help="move a model's promoted alias back to the version it served before")
    rollback.add_argument("model")
    rollback.add_argument("--to", help="the version to roll back to (default: the one before the last promotion)")
    server_option(rollback)

    install = commands.add_parser("install", help="put the shipped models (models/shipped/) into the store")
    install.add_argument("--force", action="store_true", help="replace versions already in the store")
    install.add_argument("--from", dest="directory", default=str(SHIPPED), help="where the archives are (default: models/shipped)")
    install.add_argument("--configured", action="store_true", help="then train every version the configuration serves that is still missing, with its recipe")

    ship = commands.add_parser("ship", help="export a stored version into models/shipped/, for the repository")
    ship.add_argument("model")
    ship.add_argument("version")
    ship.add_argument("--to", dest="directory", default=str(SHIPPED), help="where to write the archive (default: models/shipped)")

    publish_parser = commands.add_parser("publish", help="put a stored version into the shared model repository every replica fetches from")
    publish_parser.add_argument("model")
    publish_parser.add_argument("version")
    publish_parser.add_argument("--to", dest="directory", help="the repository (default: repository.path of the configuration)")

    tfserving = commands.add_parser("export-tfserving", help="write a stored version as a SavedModel TF Serving loads (<out>/<name>/<n>/)")
    tfserving.add_argument("--name", required=True, help="the stored model")
    tfserving.add_argument("--version", required=True, help="the stored version; v<n> or <n> is TF Serving's version <n>")
    tfserving.add_argument("--out", required=True, help="TF Serving's model base directory's parent: writes <out>/<name>/<n>/")
    tfserving.add_argument("--number", type=int, help="TF Serving's version number (default: the one in the version's name)")

    measured = commands.add_parser("measure-pipeline", help="measure a configured pipeline on evaluation data: the metrics its card shows")
    measured.add_argument("pipeline", help="a pipeline of the configuration (pipelines:)")
    measured.add_argument("--eval-data", required=True, help="an .npz as an import's: x, or an array per named input, and y (true answers)")
    return parser.parse_args(argv)


def server_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        default=os.environ.get("MODEL_SERVER_URL", "http://127.0.0.1:3000"),
        help="a running server to move the alias in as well (default: $MODEL_SERVER_URL or %(default)s)",
    )


def call_server(url: str, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict | None:
    """A JSON call to the running server; None when nothing answers there."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url.rstrip("/") + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"content-type": "application/json", **({"authorization": f"Bearer {token}"} if token else {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')}") from None
    except (OSError, urllib.error.URLError):
        return None


def move_live(config, model: str, alias: str, version: str, server: str, promotion: bool = False) -> None:
    """Move the alias in the running server too (the record keeps it for the next start). A promotion goes
    through the server's promote route, so that its desired state records it (and can roll it back)."""
    try:
        if promotion:
            moved = call_server(server, "POST", f"/models/{model}/promote", {"version": version}, config.security.api_token)
        else:
            moved = call_server(server, "PUT", f"/models/{model}/aliases/{alias}", {"version": version}, config.security.api_token)
    except RuntimeError as exc:
        print(f"the server at {server} refused to move {alias}: {exc}; it moves at the next start", file=sys.stderr)
        return
    print(f"{model}:{alias} -> {version} in the server at {server} too" if moved is not None else f"no server answered at {server}; {alias} moves at its next start")


def has_recipe(name: str, version: str) -> bool:
    return name in recipes.names() and version in recipes.get(name).versions


def store_error(exc: store.ModelStoreError, name: str, version: str) -> str:
    """The store's error; for a missing version no recipe trains (an imported one), the import that makes it
    again instead of the store's "train it"."""
    if str(exc) != store.not_in_store(name, version) or has_recipe(name, version):
        return str(exc)
    return f"{store.tag(name, version)} is not in the model store, and no recipe trains it: {reimport(name, version)}"


def reimport(name: str, version: str) -> str:
    return f"import it (again) from the .keras file it came from: train_and_save.py import <file>.keras --name {name} --version {version} --labels ... (see train_and_save.py import --help)"


def evaluate_and_save(card: ModelCard, model, images, labels, probabilities, shifts: dict, force: bool, predict=None, files: dict | None = None):
    """Slices, evaluation report, drift reference and the verified ONNX export of a version, then the
    store: one path for trained and imported models (``model`` None: a version that is its ONNX file,
    in ``files``, answering with ``predict``)."""
    predict = predict or (lambda values: predict_probabilities(model, values, card))
    slices = evaluate_slices(predict, images, labels, card.labels, shifts, card.input.shape)
    print(f"worst slice {slices['worst']['slice']}: {slices['worst']['accuracy']:.4f} (overall {slices['overall']:.4f})")
    card = card.model_copy(update={"slices": slices})
    files = {**(files or {}), REPORT_FILE: evaluation_report(card, images, labels, probabilities)}
    watched = drift_card(card)  # named inputs: their numeric values as one vector (none when all are text)
    if watched is not None:
        files[REFERENCE_FILE] = json.dumps(build_reference(drift_values(images, card), probabilities, watched))
    if model is not None:
        card = with_onnx(card, model, images, files)
    return store.save(card, model, files, force=force)


def train(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    recipe = recipes.get(args.model)
    recipe.training(args.version)  # an unknown version fails here, before any data is read
    tag = store.tag(args.model, args.version)
    if store.is_current(args.model, args.version) and args.if_missing and not args.force:
        print(f"{tag} is already in the store")
        return 0
    if store.exists(args.model, args.version) and args.if_missing and not args.force:
        print(f"{tag} was stored by an older version of this code (no card); retraining it")
        args.force = True
    if store.exists(args.model, args.version) and not args.force:
        print(f"error: {tag} already exists in the store; pass --force to replace it", file=sys.stderr)
        return 1
    try:
        data = recipe.load_data(args.data_dir, allow_download=not args.no_download)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    settings = recipe.training(args.version, epochs=args.epochs, seed=args.seed)
    print(f"Training {tag}: {settings.architecture}, {settings.epochs} epochs, data from {data.source}")
    run = fit.train(recipe, args.version, data, args.train_limit, args.test_limit, verbose=0 if args.quiet else 2, epochs=args.epochs, seed=args.seed)
    print(format_report(run.metrics))
    card = fit.card_for(recipe, run, data, slices=None)
    saved = evaluate_and_save(card, run.model, run.images, run.labels, run.probabilities, recipe.shifts, force=args.force)
    print(f"Saved {saved.tag} ({run.metrics['accuracy']:.4f} held-out accuracy, {run.settings['training_seconds']} s) to {saved.path}")
    return 0


PICKLES = (".joblib", ".pkl", ".pickle")


def import_model(args: argparse.Namespace) -> int:
    """A model trained elsewhere into the store: a .keras file as it is (with its verified ONNX export), a
    SavedModel's signature and a scikit-learn estimator converted to ONNX, an ONNX file as it is;
    evaluated when --eval-data is given."""
    suffix = Path(args.path).suffix.lower()
    model, files, predict = None, {}, None
    try:
        value_range = tuple(float(v) for v in args.range.split(",")) if args.range else None
        if value_range is not None and (len(value_range) != 2 or not value_range[0] < value_range[1]):
            raise ImportRefused(f"--range: expected LOW,HIGH with LOW < HIGH, got {args.range!r}")
        dim_range = dynamic_range(args.min_dim, args.max_dim)
        labels = parse_labels(args.labels) if args.labels else None
        targets = parse_targets(args.targets) if args.targets else None
        if store.exists(args.name, args.version) and not args.force:
            raise ImportRefused(f"{store.tag(args.name, args.version)} already exists in the store; pass --force to replace it")
        held_out = read_evaluation(args.eval_data) if args.eval_data else None
        plain = held_out if held_out is not None and not isinstance(held_out[0], dict) else None  # x: what importers check a conversion on
        if Path(args.path).is_dir():
            card, files[store.ONNX_FILE], predict = inspect_savedmodel(
                args.path,
                args.name,
                args.version,
                labels,
                args.signature,
                args.output,
                args.task,
                targets,
                args.threshold,
                args.kind,
                value_range,
                255.0 if args.scale == "255" else None,
                args.positive_label,
                args.description,
                plain[0] if plain is not None else None,
                dim_range,
            )
        elif suffix == ".onnx":
            card, files[store.ONNX_FILE] = inspect_onnx(
                args.path,
                args.name,
                args.version,
                labels,
                args.output,
                args.task,
                targets,
                args.threshold,
                args.kind,
                value_range,
                None if args.scale in (None, "none") else 255.0,
                args.positive_label,
                args.description,
                args.max_bytes,
                dim_range,
            )
            predict = onnx_predict(files[store.ONNX_FILE], card)
        elif suffix in PICKLES:
            if plain is None and held_out is not None and len(held_out[0]) == 1:  # a text pipeline's one named input, text
                plain = (next(iter(held_out[0].values())), held_out[1])
            evaluation_x = check_evaluation_x(plain) if plain is not None else None
            card, files[store.ONNX_FILE], predict = inspect_sklearn(
                args.path,
                args.name,
                args.version,
                labels,
                args.trust_pickle,
                targets,
                value_range,
                args.description,
                (evaluation_x, plain[1]) if plain is not None else None,
                args.max_bytes,
            )
        else:
            model, card = inspect_keras(
                args.path,
                args.name,
                args.version,
                labels,
                scale=args.scale,
                description=args.description,
                kind=args.kind,
                value_range=value_range,
                resize=args.resize,
                positive_label=args.positive_label,
                aspect=args.aspect,
                evaluation=plain,
                task=args.task,
                targets=targets,
                threshold=args.threshold,
                output=args.output,
                dim_range=dim_range,
                max_bytes=args.max_bytes,
            )
            predict = lambda values: predict_probabilities(model, values, card)  # noqa: E731
        if args.input_names:
            card = card.model_copy(update={"input": InputSpec(**{**card.input.model_dump(), "names": tuple(n.strip() for n in args.input_names.split(","))})})
        images, truth = check_evaluation(*held_out, card) if held_out is not None else (None, None)
    except (ImportRefused, ValueError) as exc:
        print(f"error: {exc}; nothing was saved", file=sys.stderr)
        return 1
    output = card.output
    answers = (
        f"{output.kind} over {card.classes} labels"
        if output.labels
        else (f"{output.kind} of {len(output.targets)} target(s)" if output.targets else f"{output.kind} {list(output.answer_shape)}")
    )
    if card.outputs:
        answers = "outputs " + ", ".join(map(str, card.outputs))
    taken = "inputs " + ", ".join(map(str, card.inputs)) if card.inputs else f"{card.input.kind} input {list(card.input.shape)}"
    print(f"{card.tag}: {taken}, {answers}, {card.number_of_parameters:,} parameters")
    if images is None:
        if model is not None:
            card = with_onnx(card, model, probe_examples(card), files)  # verified on random examples in the card's range
        saved = store.save(card, model, files, force=args.force)
        print(f"Saved {saved.tag} without evaluation (no --eval-data: no metrics, report or drift reference) to {saved.path}")
        return 0
    predicted = predict(images)
    metrics = evaluation.evaluate_by_task(card, truth, predicted)
    print(format_report(metrics))
    card = card.model_copy(update={"metrics": metrics, "data": {**card.data, "source": os.path.basename(args.eval_data)}})
    if not card.is_classifier:  # slices read classes; a regressor has its own report, a regressor and a tagger their drift reference
        if output.kind == "regression":
            files[REPORT_FILE] = regression_report(card, truth, predicted)
        watched = drift_card(card) if output.kind in ("regression", "multilabel") else None
        if watched is not None:  # a tagger's: its labels' probabilities, as a regressor's targets (lifecycle/reference.drift_card)
            files[REFERENCE_FILE] = json.dumps(build_regression_reference(drift_values(images, card), predicted, watched))
        if model is not None:
            card = with_onnx(card, model, images, files)
        saved = store.save(card, model, files, force=args.force)
        print(f"Saved {saved.tag} (evaluated on {len(images)} examples) to {saved.path}")
        return 0
    # The shifts of slices work on 0..255 levels: an image model taking other values is sliced by class only.
    shifts = default_shifts(card.input.shape) if card.is_image and card.input.value_range == (0, 255) else {}
    saved = evaluate_and_save(card, model, images, truth, predicted, shifts, force=args.force, predict=predict, files=files)
    print(f"Saved {saved.tag} ({metrics['accuracy']:.4f} accuracy on {len(images)} evaluation examples) to {saved.path}")
    return 0


def check_evaluation_x(held_out: tuple):
    """A scikit-learn import's evaluation examples, as float32 rows (their card is made from the estimator afterwards)."""
    import numpy as np

    values = np.asarray(held_out[0])
    if values.dtype.kind in "USO":  # texts, for a text pipeline (the import says what other estimators take)
        return values.astype(object)
    try:
        return values.astype(np.float32).reshape(len(values), -1)
    except ValueError:
        return values.astype(object)


def onnx_predict(content: bytes, card: ModelCard):
    """The answers of an imported ONNX file on client values, as the server computes them (its engine)."""
    from models.engines.onnxruntime import OnnxRuntimeEngine

    return OnnxRuntimeEngine(content, card, threads=2)


def promote(args: argparse.Namespace) -> int:
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = config.models.get(args.model)
    if settings is None or settings.promotion is None or config.record() is None:
        print(f"error: {config.path} has no promotion policy for {args.model} (models.{args.model}.promotion) or no promotion_record", file=sys.stderr)
        return 2
    overrides = {k: getattr(args, k) for k in ("min_improvement", "max_class_regression", "max_slice_regression") if getattr(args, k) is not None}
    policy = settings.promotion.model_copy(update=overrides)
    stable = settings.resolve(policy.alias)
    if args.candidate == stable:
        print(f"{args.model}:{args.candidate} is already {policy.alias}; nothing to decide")
        return 0
    try:
        recipe = recipes.get(args.model)
    except ValueError:
        print(
            f"error: the promotion gate compares {args.model}'s versions on its recipe's held-out data, and {args.model} has no recipe (training/recipes/):"
            f" an imported model is promoted by a rollout (POST /models/{args.model}/rollouts, judged on live traffic) or by POST /models/{args.model}/promote (the alias, recorded)",
            file=sys.stderr,
        )
        return 2
    try:
        data = recipe.load_data(args.data_dir, allow_download=not args.no_download)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    images, labels = data.x_test[: args.test_limit], data.y_test[: args.test_limit]
    evaluations = {}
    for version in (stable, args.candidate):
        try:
            card = store.load_card(args.model, version)
            model = store.load_keras(args.model, version)
        except store.ModelStoreError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        predict = lambda values, model=model, card=card: predict_probabilities(model, values, card)  # noqa: E731
        evaluations[version] = evaluate_slices(predict, images, labels, card.labels, recipe.shifts, card.input.shape)
    shadow = None
    if args.min_shadow_agreement is not None:
        try:
            shadow = call_server(args.server, "GET", f"/models/{args.model}/shadow", token=config.security.api_token)
        except RuntimeError as exc:
            print(f"error: the shadow of {args.model} could not be read: {exc}", file=sys.stderr)
            return 2
    live = {}
    if args.min_live_examples is not None:
        for version in (stable, args.candidate):
            try:
                live[version] = call_server(args.server, "GET", f"/models/{args.model}/{version}/live", token=config.security.api_token)
            except RuntimeError as exc:
                print(f"error: the live accuracy of {args.model}:{version} could not be read: {exc}", file=sys.stderr)
                return 2
    decision = decide(
        args.model,
        args.candidate,
        evaluations[args.candidate],
        stable,
        evaluations[stable],
        policy,
        shadow=shadow,
        min_shadow_agreement=args.min_shadow_agreement,
        min_shadow_examples=args.min_shadow_examples,
        live=live,
        min_live_examples=args.min_live_examples,
    )
    print(format_table(decision))
    if not args.dry_run:
        write_decision(config.record(), decision)
        print(f"decision recorded in {config.record().path}")
        if decision.accepted:
            move_live(config, args.model, policy.alias, args.candidate, args.server, promotion=True)
    return 0 if decision.accepted else 1


def rollback(args: argparse.Namespace) -> int:
    """The promoted alias back to the version it served before the last accepted promotion (or ``--to``)."""
    import datetime

    config = load_config()
    settings = config.models.get(args.model)
    record = config.record()
    if settings is None or settings.promotion is None or record is None:
        print(f"error: {config.path} has no promotion policy for {args.model} or no promotion_record", file=sys.stderr)
        return 2
    alias, current = settings.promotion.alias, settings.resolve(settings.promotion.alias)
    promotions = [d for d in record.of(args.model)["decisions"] if d.get("accepted") and d.get("candidate") == current]
    target = args.to or (promotions[-1]["stable_before"] if promotions else None)
    if target is None or target not in settings.versions:
        print(f"error: no version to roll {args.model}:{alias} back to (served: {current}); name one with --to", file=sys.stderr)
        return 2
    record.append(
        args.model,
        {"decided_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "action": "rollback", "from": current, "to": target, "accepted": True},
        stable=target,
    )
    print(f"{args.model}:{alias} rolled back from {current} to {target}; recorded in {record.path}")
    move_live(config, args.model, alias, target, args.server)
    return 0


def install(args: argparse.Namespace) -> int:
    """The shipped models into the store: seconds, where training them takes the better part of an hour."""
    archives = sorted(Path(args.directory).glob(f"*/*{store.ARCHIVE_SUFFIX}"))
    if not archives:
        print(f"no model archives under {args.directory}")
    for archive in archives:
        tag, imported = store.import_archive(archive, force=args.force)
        print(f"{tag}: {'imported from ' + str(archive) if imported else 'already in the store'}")
    return train_configured() if args.configured else 0


def train_configured() -> int:
    """Every version the configuration (MODEL_SERVER_CONFIG or configuration.yaml) serves that the store
    lacks, trained with its recipe; a version without one has to be imported, and this says so."""
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, model in config.models.items():
        for version in model.versions:
            if store.is_current(name, version):
                continue
            if not has_recipe(name, version):
                print(
                    f"error: {store.tag(name, version)} is served by the configuration but is not in the store, and no recipe trains it: {reimport(name, version)}", file=sys.stderr
                )
                return 1
            code = train(parse_args(["train", name, version, "--if-missing"]))
            if code:
                return code
    return 0


def publish(args: argparse.Namespace) -> int:
    """A stored version into the shared repository (models/repository.py): its archive, then its checksum."""
    try:
        directory = args.directory or load_config().repository_dir()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if directory is None:
        print("error: no repository: set repository.path in the configuration, or give --to", file=sys.stderr)
        return 1
    try:
        path = repository.publish(directory, args.model, args.version)
    except store.ModelStoreError as exc:
        print(f"error: {store_error(exc, args.model, args.version)}", file=sys.stderr)
        return 1
    print(f"{store.tag(args.model, args.version)} -> {path} ({os.path.getsize(path) / 1e6:.1f} MB, sha256 beside it); replicas fetch it when told to load it")
    return 0


def ship(args: argparse.Namespace) -> int:
    try:
        path = store.export_archive(args.model, args.version, args.directory)
    except store.ModelStoreError as exc:
        print(f"error: {store_error(exc, args.model, args.version)}", file=sys.stderr)
        return 1
    print(f"{store.tag(args.model, args.version)} -> {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
    return 0


def export_tfserving(args: argparse.Namespace) -> int:
    """The SavedModel, checked: loaded back with tf.saved_model.load, it answers Keras' probabilities."""
    import numpy as np
    import tensorflow as tf

    from serving.dataplane import version_number
    from training.export import SIGNATURE, SIGNATURE_INPUT, SIGNATURE_OUTPUT, tfserving_export

    number = args.number if args.number is not None else version_number(args.version)
    if number is None or number < 0:
        print(f"error: {args.version} has no version number (v<n> or <n>); pass --number N", file=sys.stderr)
        return 1
    try:
        card = store.load_card(args.name, args.version)
        model = store.load_keras(args.name, args.version)
        path = tfserving_export(model, card, args.out, number)
    except store.ModelStoreError as exc:
        print(f"error: {store_error(exc, args.name, args.version)}", file=sys.stderr)
        return 1
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    examples = probe_examples(card, 256)
    exported = tf.saved_model.load(str(path)).signatures[SIGNATURE](**{SIGNATURE_INPUT: tf.constant(examples)})[SIGNATURE_OUTPUT].numpy()
    difference = float(np.abs(exported - predict_probabilities(model, examples, card)).max())
    print(f"{card.tag} -> {path} (TF Serving's version {number}); on {len(examples)} probe examples, max |difference| from Keras {difference:.2g}")
    print(f"docker run -p 8501:8501 -v {Path(args.out).resolve() / card.name}:/models/{card.name} -e MODEL_NAME={card.name} tensorflow/serving")
    return 0


def measure_pipeline(args: argparse.Namespace) -> int:
    """A configured pipeline on evaluation data, with its steps' stored versions (training/pipeline_metrics.py)."""
    from training import pipeline_metrics

    try:
        config = load_config()
        entry = pipeline_metrics.measure_file(config, args.pipeline, args.eval_data)
        path = pipeline_metrics.record(config, args.pipeline, entry)
    except (ConfigError, ImportRefused) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    metrics = entry["metrics"]
    print(format_report(metrics))
    print(f"{args.pipeline}: measured on {metrics['examples']} examples of {metrics['data']}, {metrics['compute_us_per_example']} us of compute per example;")
    print(f"recorded in {path} with its steps' cards ({', '.join(entry['steps'])}): served cards show it while their steps are these")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    commands = {
        "train": train,
        "import": import_model,
        "promote": promote,
        "rollback": rollback,
        "install": install,
        "ship": ship,
        "publish": publish,
        "export-tfserving": export_tfserving,
        "measure-pipeline": measure_pipeline,
    }
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
