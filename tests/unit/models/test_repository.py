"""models/repository.py: versions published into a shared directory, fetched into a store only when their
archive matches the published checksum. The "replica" here is a second BentoML home in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from models import repository, store
from tests.conftest import ROOT
from tests.unit.cards import clothes_card, keras_model_for

NAME = "repogrey"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    card = clothes_card(name=NAME, version="v1")
    store.save(card, keras_model_for(card), force=True)
    directory = tmp_path_factory.mktemp("repository")
    path = repository.publish(directory, NAME, "v1")
    return directory, path


def replica(home, *lines: str) -> subprocess.CompletedProcess:
    """Python in another BentoML home (a replica's own store)."""
    code = "import json, sys; from models import repository, store\n" + "\n".join(lines)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "BENTOML_HOME": str(home)}, capture_output=True, text=True, timeout=120)


def test_publish_writes_the_archive_then_its_checksum(published):
    directory, path = published
    assert path == directory / NAME / "v1.bentomodel" and path.exists()
    digest, filename = (directory / NAME / "v1.bentomodel.sha256").read_text().split()
    assert digest == repository.digest(path) and filename == "v1.bentomodel"
    assert repository.published(directory, NAME, "v1") and repository.versions(directory, NAME) == ["v1"]
    assert not repository.published(directory, NAME, "v2") and not repository.published(None, NAME, "v1")


def test_a_replica_lacking_a_version_fetches_it_once(published, tmp_path):
    directory, _ = published
    result = replica(
        tmp_path,
        f"print(json.dumps([repository.ensure_local({str(directory)!r}, {NAME!r}, 'v1'), repository.ensure_local({str(directory)!r}, {NAME!r}, 'v1'),",
        f"                  store.load_card({NAME!r}, 'v1').version]))",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1]) == [True, False, "v1"]  # fetched, then already there


def test_a_damaged_archive_is_not_imported(published, tmp_path):
    directory, path = published
    damaged = tmp_path / "damaged"
    (damaged / NAME).mkdir(parents=True)
    (damaged / NAME / "v1.bentomodel").write_bytes(path.read_bytes()[:-100] + b"x" * 100)
    (damaged / NAME / "v1.bentomodel.sha256").write_text((directory / NAME / "v1.bentomodel.sha256").read_text())
    result = replica(tmp_path / "home", f"repository.ensure_local({str(damaged)!r}, {NAME!r}, 'v1')")
    assert result.returncode != 0 and "does not match its checksum" in result.stderr and "publish it again" in result.stderr
    result = replica(tmp_path / "home", f"print(store.exists({NAME!r}, 'v1'))")
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_a_version_neither_stored_nor_published_is_named_with_where_it_was_looked_for(published, tmp_path):
    directory, _ = published
    with pytest.raises(store.ModelStoreError, match=f"{NAME}:v9 is not in the local store, nor published in the repository {directory}"):
        repository.ensure_local(directory, NAME, "v9")
    with pytest.raises(store.ModelStoreError, match="no repository is configured"):
        repository.ensure_local(None, NAME, "v9")
