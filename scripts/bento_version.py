"""Print a Bento version derived from what goes into the Bento, so an unchanged tree maps to the same
Bento and image tag (scripts/build-container.sh reuses them) and any change gives a new one.

    .venv/bin/python scripts/bento_version.py       # e.g. c3f1a9e07b2d4e15

Hashed: bentofile.yaml, the files its `include` patterns select, its requirements file and
Dockerfile template, and the model store's files of every version configuration.yaml serves.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import load_config  # noqa: E402


def inputs(root: Path) -> list[Path]:
    bentofile = yaml.safe_load((root / "bentofile.yaml").read_text())
    files = {root / "bentofile.yaml"}
    for pattern in bentofile.get("include") or ["*"]:
        files.update(p for p in root.glob(pattern) if p.is_file())
    for extra in ((bentofile.get("python") or {}).get("requirements_txt"), (bentofile.get("docker") or {}).get("dockerfile_template")):
        if extra:
            files.add(root / extra)
    return sorted(files)


def model_files(root: Path) -> list[tuple[str, Path]]:
    config = load_config(root / "configuration.yaml")
    home = Path(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml")
    files = []
    for name, version in config.served():
        model_dir = home / "models" / name / version
        if not model_dir.is_dir():
            sys.exit(f"{name}:{version} is not in the model store {home}: run `make models` first")
        files.extend((f"store/{p.relative_to(home)}", p) for p in sorted(model_dir.rglob("*")) if p.is_file())
    return files


def version(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    named = [(str(p.relative_to(root)), p) for p in inputs(root)] + model_files(root)
    for name, path in named:
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


if __name__ == "__main__":
    print(version())
