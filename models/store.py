"""The BentoML model store: save a trained version with its metadata, load it back safely.

    >>> saved = save("v1", keras_model, metadata)        # clothes:v1, holding model.keras
    >>> model, info = load("v1")                          # checks TF/Keras versions first
"""

from __future__ import annotations

import logging

from models.specs import MODEL_NAME

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
KERAS_ARCHIVE_MEMBERS = {"metadata.json", "config.json", "model.weights.h5"}  # what keras.saving writes
# Bumped when what a stored version holds changes; older versions are retrained by --if-missing.
# 2: evaluation report, reference statistics and slice results stored with the model.
STORE_FORMAT = 2


class ModelStoreError(RuntimeError):
    """A version is missing from the store, or cannot be loaded here."""


class VersionMismatch(ModelStoreError):
    """The model was saved by a TensorFlow or Keras of another major version."""


def tag(version: str) -> str:
    return f"{MODEL_NAME}:{version}"


def framework_versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "keras": keras.__version__}


def exists(version: str) -> bool:
    import bentoml

    try:
        bentoml.models.get(tag(version))
    except bentoml.exceptions.NotFound:
        return False
    return True


def not_in_store(version: str) -> str:
    return f"{tag(version)} is not in the model store; train it with train_and_save.py --version {version}"


def check(version: str) -> None:
    """Raise ModelStoreError if clothes:<version> is missing or visibly cannot load; no TensorFlow needed.

    Reads the archive (every member against its CRC) and the recorded framework versions: this finds a
    missing version or model file, a truncated, overwritten or bit-flipped archive, and a model saved by
    another major TensorFlow or Keras, in milliseconds. What only Keras can tell, ``load`` reports.
    """
    import json
    import zipfile
    import zlib

    import bentoml

    try:
        stored = bentoml.models.get(tag(version))
    except bentoml.exceptions.NotFound:
        raise ModelStoreError(not_in_store(version)) from None
    try:
        with zipfile.ZipFile(stored.path_of(MODEL_FILE)) as archive:
            damaged = archive.testzip()
            missing = sorted(KERAS_ARCHIVE_MEMBERS - set(archive.namelist()))
            if not damaged and not missing:
                json.loads(archive.read("config.json"))
    except (OSError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
        raise ModelStoreError(f"{tag(version)} cannot be loaded: {MODEL_FILE} is not a readable Keras archive: {exc}") from None
    if damaged or missing:
        problem = f"{damaged} fails its checksum" if damaged else f"it lacks {', '.join(missing)}"
        raise ModelStoreError(f"{tag(version)} cannot be loaded: {MODEL_FILE} is damaged: {problem}")
    check_versions(stored.info.metadata.get("framework_versions", {}), installed_framework_versions())


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


def is_current(version: str) -> bool:
    """The version is in the store and holds everything this code stores with a model."""
    import bentoml

    try:
        stored = bentoml.models.get(tag(version))
    except bentoml.exceptions.NotFound:
        return False
    return stored.info.metadata.get("store_format", 1) >= STORE_FORMAT


def read_file(stored, name: str) -> bytes | None:
    """A file stored next to the model (report.html, reference.json), or None."""
    import os

    path = stored.path_of(name)
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return f.read()


def save(version: str, model, metadata: dict, force: bool = False, files: dict[str, str | bytes] | None = None):
    """Save ``model`` as clothes:<version> with ``files`` next to it. Refuse to overwrite unless ``force``."""
    import bentoml

    if exists(version):
        if not force:
            raise ModelStoreError(f"{tag(version)} already exists in the store; pass --force to replace it")
        bentoml.models.delete(tag(version))
    metadata = {**metadata, "framework_versions": framework_versions(), "store_format": STORE_FORMAT, "files": sorted(files or {})}
    with bentoml.models.create(tag(version), labels={"framework": "keras"}, metadata=metadata) as stored:
        model.save(stored.path_of(MODEL_FILE))
        for name, content in (files or {}).items():
            with open(stored.path_of(name), "wb") as f:
                f.write(content.encode() if isinstance(content, str) else content)
    return bentoml.models.get(tag(version))


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
                f"model saved with {framework} {saved_with} cannot be loaded by {framework} {running}: "
                f"major versions differ; retrain it or install {framework}=={saved_with}"
            )
        if saved_minor != run_minor:
            warnings.append(f"model saved with {framework} {saved_with}, running {running}: minor versions differ")
    return warnings


def load(version: str, stored=None):
    """Load clothes:<version> (or an already resolved stored model) as a Keras model plus its info."""
    import bentoml
    import keras

    if stored is None:
        try:
            stored = bentoml.models.get(tag(version))
        except bentoml.exceptions.NotFound:
            raise ModelStoreError(not_in_store(version)) from None
    metadata = dict(stored.info.metadata)
    for warning in check_versions(metadata.get("framework_versions", {}), framework_versions()):
        log.warning("%s: %s", tag(version), warning)
    try:
        model = keras.models.load_model(stored.path_of(MODEL_FILE), compile=False)
    except Exception as exc:
        raise ModelStoreError(f"{tag(version)} could not be loaded: {exc}") from exc
    return model, model_info(version, stored)


def model_info(version: str, stored) -> dict:
    """What the model info route shows: metadata from the store plus the store's own facts."""
    metadata = dict(stored.info.metadata)
    return {
        "name": MODEL_NAME,
        "version": version,
        "tag": str(stored.tag),
        "created": stored.info.creation_time.isoformat(),
        **metadata,
    }


def _major_minor(version: str) -> tuple[int, int]:
    parts = (version.split(".") + ["0", "0"])[:2]
    return tuple(int("".join(ch for ch in p if ch.isdigit()) or 0) for p in parts)
