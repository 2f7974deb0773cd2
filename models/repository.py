"""A model repository every replica reads: versions published once into a shared directory (a volume, a
ReadWriteMany claim), fetched into each replica's own store when it is told to load one it lacks.

    <repository>/<model>/<version>.bentomodel          BentoML's model archive (card, files, exports)
    <repository>/<model>/<version>.bentomodel.sha256   its SHA-256, written last: a version without it is not published

    >>> publish("/shared/models", "clothes", "v3")     # train_and_save.py publish clothes v3
    >>> ensure_local("/shared/models", "clothes", "v3")  # in the store already, or fetched and verified
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from models import store

CHECKSUM_SUFFIX = ".sha256"


class ChecksumMismatch(store.ModelStoreError):
    """A fetched archive is not what was published: nothing was imported."""


def archive(directory: str | os.PathLike, name: str, version: str) -> Path:
    return Path(store.archive_path(directory, name, version))


def checksum_file(directory: str | os.PathLike, name: str, version: str) -> Path:
    path = archive(directory, name, version)
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def published(directory: str | os.PathLike | None, name: str, version: str) -> bool:
    return directory is not None and checksum_file(directory, name, version).exists()


def versions(directory: str | os.PathLike | None, name: str) -> list[str]:
    """The published versions of ``name``, oldest first (by when they were published), as the store lists its own."""
    if directory is None:
        return []
    suffix = store.ARCHIVE_SUFFIX + CHECKSUM_SUFFIX
    published = sorted((path.stat().st_mtime_ns, path.name.removesuffix(suffix)) for path in (Path(directory) / name).glob(f"*{suffix}"))
    return [version for _, version in published]


def publish(directory: str | os.PathLike, name: str, version: str) -> Path:
    """The stored version into the repository: its archive, then its checksum (the mark of a finished publish)."""
    target = archive(directory, name, version)
    temporary = Path(store.export_archive(name, version, Path(directory) / ".publishing" / str(os.getpid())))
    checksum_file(directory, name, version).unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(temporary, target)
    _write(checksum_file(directory, name, version), f"{digest(target)}  {target.name}\n")
    return target


def fetch(directory: str | os.PathLike, name: str, version: str) -> str:
    """A published version into the local store, once its archive matches its published checksum."""
    path, expected_file = archive(directory, name, version), checksum_file(directory, name, version)
    try:
        expected = expected_file.read_text().split()[0]
    except (OSError, IndexError) as exc:
        raise store.ModelStoreError(f"{store.tag(name, version)} is not published in {directory}: {exc}") from None
    actual = digest(path)
    if actual != expected:
        raise ChecksumMismatch(f"{path} does not match its checksum ({actual[:12]}... against {expected[:12]}...): not imported; publish it again")
    return store.import_archive(path)[0]


def ensure_local(directory: str | os.PathLike | None, name: str, version: str) -> bool:
    """True once the version is in the local store: there already, or fetched (False: it was there)."""
    if store.exists(name, version):
        return False
    if not published(directory, name, version):
        where = f"nor published in the repository {directory}" if directory else "and no repository is configured (repository.path)"
        raise store.ModelStoreError(f"{store.tag(name, version)} is not in the local store, {where}")
    fetch(directory, name, version)  # type: ignore[arg-type]  # published() checked it is set
    return True


def _write(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
