"""The BentoML model store: a model's files and its card, saved together, read back safely.

>>> saved = save(card, keras_model, files={"report.html": html})   # <name>:<version>, holding model.keras
>>> saved = save(card, None, files={"model.onnx": onnx_bytes})     # an imported ONNX or scikit-learn model
>>> card = load_card("clothes", "v1")                             # no TensorFlow needed
>>> model = load_keras("clothes", "v1")                           # checks TF/Keras versions first
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import threading
import zipfile
import zlib

from models.card import CARD_FORMAT, ModelCard

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
ONNX_FILE = "model.onnx"  # a version's ONNX file: a verified export (training/export.py) or the imported model itself
KERAS_ARCHIVE_MEMBERS = {"metadata.json", "config.json", "model.weights.h5"}  # what keras.saving writes

# Every BentoML store call reads or writes a model.yaml: cattrs structuring and a metadata check that
# looks scipy.sparse up in sys.modules, which fails while another thread is still importing it
# ("partially initialized module 'scipy.sparse'"). Versions load in parallel (serving/inprocess.py) and
# a replica fetches a version while serving: one store call at a time, a few milliseconds each,
# and never during import_module. Re-entrant: save() reads what it wrote.
_STORE_LOCK = threading.RLock()


class ModelStoreError(RuntimeError):
    """A version is missing from the store, or cannot be loaded here."""


class VersionMismatch(ModelStoreError):
    """The model was saved by a TensorFlow or Keras of another major version."""


def tag(name: str, version: str) -> str:
    return f"{name}:{version}"


def not_in_store(name: str, version: str) -> str:
    # The store cannot tell a recipe's model from an imported one: it names both ways, the server's log and answers too.
    return (
        f"{tag(name, version)} is not in the model store; train it with train_and_save.py train {name} {version} (a model with a recipe), "
        f"or import it with train_and_save.py import FILE --name {name} --version {version}"
    )


def get(name: str, version: str):
    """The stored model (BentoML's handle), or ModelStoreError."""
    import bentoml

    try:
        with _STORE_LOCK:
            return bentoml.models.get(tag(name, version))
    except bentoml.exceptions.NotFound:
        raise ModelStoreError(not_in_store(name, version)) from None
    except ExceptionGroup as exc:  # cattrs' "While structuring ModelInfo (1 sub-exception)" names no cause
        raise ModelStoreError(f"{tag(name, version)}: its model.yaml cannot be read: {leaf_messages(exc)}") from exc


def import_module(name: str):
    """``name`` imported while no model.yaml is being read in this process.

    BentoML's metadata check looks scipy.sparse up in ``sys.modules`` on every read and fails on a
    module another thread is still initialising ("While structuring ModelInfo").
    """
    with _STORE_LOCK:
        return importlib.import_module(name)


def leaf_messages(group: BaseExceptionGroup) -> str:
    """Every exception a group holds, by type and message: what the group's own text leaves out."""
    leaves = []
    for exc in group.exceptions:
        leaves.append(leaf_messages(exc) if isinstance(exc, BaseExceptionGroup) else f"{type(exc).__name__}: {exc}")
    return f"{group.message}: " + "; ".join(leaves)


def exists(name: str, version: str) -> bool:
    try:
        get(name, version)
    except ModelStoreError:
        return False
    return True


def versions(name: str) -> list[str]:
    """The versions of ``name`` in the store, oldest first."""
    import bentoml

    try:
        with _STORE_LOCK:
            stored = [m for m in bentoml.models.list(name) if m.tag.name == name]
    except bentoml.exceptions.NotFound:
        return []
    return [str(m.tag.version) for m in sorted(stored, key=lambda m: m.info.creation_time)]


def load_card(name: str, version: str, stored=None) -> ModelCard:
    stored = stored or get(name, version)
    try:
        return ModelCard.from_metadata(stored.info.metadata)
    except ValueError as exc:
        raise ModelStoreError(f"{tag(name, version)}: {exc}") from None


def is_current(name: str, version: str) -> bool:
    """The version is in the store with a card of this code's format."""
    try:
        return load_card(name, version).format >= CARD_FORMAT
    except (ModelStoreError, ValueError):
        return False


def read_file(stored, filename: str) -> bytes | None:
    """A file stored next to the model (report.html, reference.json), or None."""
    path = stored.path_of(filename)
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return f.read()


def framework_versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "keras": keras.__version__}


def installed_framework_versions() -> dict[str, str]:
    """TensorFlow's and Keras' installed versions, from package metadata (importing them takes seconds)."""
    from importlib import metadata

    found = {}
    for framework, packages in {"tensorflow": ("tensorflow", "tensorflow-cpu"), "keras": ("keras",)}.items():
        for package in packages:
            try:
                found[framework] = metadata.version(package)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def save(card: ModelCard, model, files: dict[str, str | bytes] | None = None, force: bool = False):
    """Save ``model`` (Keras; None for a version that is its ONNX file alone) as <name>:<version> with
    its card and ``files`` next to it; refuse to overwrite unless ``force``."""
    import bentoml

    if model is None and ONNX_FILE not in (files or {}):
        raise ModelStoreError(f"{card.tag}: a version holds a Keras model or an ONNX file ({ONNX_FILE}); got neither")
    if exists(card.name, card.version):
        if not force:
            raise ModelStoreError(f"{card.tag} already exists in the store; pass --force to replace it")
        with _STORE_LOCK:
            bentoml.models.delete(card.tag)
    card = card.model_copy(update={"files": tuple(sorted(files or {}))})
    framework = "keras" if model is not None else card.training.get("framework", "onnx")
    with _STORE_LOCK, bentoml.models.create(card.tag, labels={"framework": framework, "task": card.task}, metadata=card.to_metadata()) as stored:
        if model is not None:
            model.save(stored.path_of(MODEL_FILE))
        for filename, content in (files or {}).items():
            with open(stored.path_of(filename), "wb") as f:
                f.write(content.encode() if isinstance(content, str) else content)
    return get(card.name, card.version)


def check(name: str, version: str) -> ModelCard:
    """The card, if <name>:<version> is in the store and visibly loadable; ModelStoreError otherwise.

    Needs no TensorFlow: reads the card, the archive (every member against its CRC) and the recorded
    framework versions. This finds a missing version or model file, a truncated, overwritten or
    bit-flipped archive, and a model saved by another major TensorFlow or Keras, in milliseconds.
    What only Keras can tell, ``load_keras`` reports.
    """
    stored = get(name, version)
    card = load_card(name, version, stored)
    label = tag(name, version)
    if not has_keras(card):
        _check_onnx(label, card, stored)
        return card
    try:
        with zipfile.ZipFile(stored.path_of(MODEL_FILE)) as archive:
            damaged = archive.testzip()
            missing = sorted(KERAS_ARCHIVE_MEMBERS - set(archive.namelist()))
            if not damaged and not missing:
                json.loads(archive.read("config.json"))
    except (OSError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
        raise ModelStoreError(f"{label} cannot be loaded: {MODEL_FILE} is not a readable Keras archive: {exc}") from None
    if damaged or missing:
        problem = f"{damaged} fails its checksum" if damaged else f"it lacks {', '.join(missing)}"
        raise ModelStoreError(f"{label} cannot be loaded: {MODEL_FILE} is damaged: {problem}")
    check_versions(card.framework_versions, installed_framework_versions())
    return card


def has_keras(card: ModelCard) -> bool:
    """The version holds a Keras model (trained here, or imported from .keras; cards from before engines
    were recorded list none); else only its ONNX file (imported as ONNX or from scikit-learn)."""
    return "tensorflow" in card.engines or "onnxruntime" not in card.engines


def _check_onnx(label: str, card: ModelCard, stored) -> None:
    """An ONNX-only version's file is there and, when the card records its checksum, intact."""
    import hashlib

    entry = card.engines.get("onnxruntime", {})
    try:
        with open(stored.path_of(ONNX_FILE), "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as exc:
        raise ModelStoreError(f"{label} cannot be loaded: {ONNX_FILE} is missing or unreadable: {exc}") from None
    if entry.get("sha256") and digest != entry["sha256"]:
        raise ModelStoreError(f"{label} cannot be loaded: {ONNX_FILE} is damaged (its sha256 is not the card's); import it again")


def load_keras(name: str, version: str, stored=None):
    """The Keras model of <name>:<version>, after checking the framework versions it was saved with."""
    import keras

    stored = stored or get(name, version)
    card = load_card(name, version, stored)
    for warning in check_versions(card.framework_versions, framework_versions()):
        log.warning("%s: %s", card.tag, warning)
    try:
        return keras.models.load_model(stored.path_of(MODEL_FILE), compile=False)
    except Exception as exc:
        raise ModelStoreError(f"{card.tag} could not be loaded: {exc}") from exc


ARCHIVE_SUFFIX = ".bentomodel"


def archive_path(directory: str | os.PathLike, name: str, version: str) -> str:
    """``<directory>/<name>/<version>.bentomodel``."""
    return os.path.join(os.fspath(directory), name, version + ARCHIVE_SUFFIX)


def export_archive(name: str, version: str, directory: str | os.PathLike) -> str:
    """<name>:<version> as one portable file (BentoML's model archive: files, card and all)."""
    import bentoml

    get(name, version)
    path = archive_path(directory, name, version)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        os.remove(path)
    with _STORE_LOCK:
        return bentoml.models.export_model(tag(name, version), path)


def import_archive(path: str | os.PathLike, force: bool = False) -> tuple[str, bool]:
    """Put an archive's model into the store: (its tag, whether it was imported). One already in the
    store is left alone unless ``force``."""
    import bentoml

    path = os.fspath(path)
    name, version = os.path.basename(os.path.dirname(path)), os.path.basename(path).removesuffix(ARCHIVE_SUFFIX)
    if exists(name, version):
        if not force:
            return tag(name, version), False
        with _STORE_LOCK:
            bentoml.models.delete(tag(name, version))
    with _STORE_LOCK:
        imported = bentoml.models.import_model(os.fspath(path))
    if str(imported.tag) != tag(name, version):
        raise ModelStoreError(f"{path} holds {imported.tag}, not {tag(name, version)} as its name says")
    return str(imported.tag), True


def check_versions(recorded: dict[str, str], installed: dict[str, str]) -> list[str]:
    """Compare framework versions. Raise on a major mismatch; return warnings for minor ones."""
    warnings = []
    for framework, saved_with in recorded.items():
        running = installed.get(framework)
        if running is None:
            continue
        saved_major, saved_minor = _major_minor(saved_with)
        run_major, run_minor = _major_minor(running)
        if saved_major != run_major:
            raise VersionMismatch(
                f"model saved with {framework} {saved_with} cannot be loaded by {framework} {running}: major versions differ; retrain it or install {framework}=={saved_with}"
            )
        if saved_minor != run_minor:
            warnings.append(f"model saved with {framework} {saved_with}, running {running}: minor versions differ")
    return warnings


def _major_minor(version: str) -> tuple[int, int]:
    major, minor = (int("".join(ch for ch in p if ch.isdigit()) or 0) for p in (version.split(".") + ["0", "0"])[:2])
    return major, minor
