"""Print a Bento version derived from what goes into the Bento, so an unchanged tree maps to the same
Bento and image tag (scripts/build-container.sh reuses them) and any change gives a new one.

    .venv/bin/python scripts/bento_version.py build/bentofile.yaml     # e.g. c3f1a9e07b2d4e15

Hashed: the bentofile (scripts/bentofile.py writes it), the files its `include` patterns select,
the requirements files and Dockerfile template, and the model store's files of every version
configuration.yaml serves.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import load_config  # noqa: E402
from config.settings import load_yaml  # noqa: E402


def inputs(root: Path, bentofile_path: Path) -> list[Path]:
    bentofile = load_yaml(bentofile_path.read_text(), bentofile_path)
    files = {bentofile_path, *root.glob("requirements*.txt")}
    for pattern in bentofile.get("include") or ["*"]:
        files.update(p for p in root.glob(pattern) if p.is_file())
    template = (bentofile.get("docker") or {}).get("dockerfile_template")
    if template:
        files.add(root / template)
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


def version(bentofile: Path, root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    named = [(str(p.relative_to(root)) if p.is_relative_to(root) else str(p), p) for p in inputs(root, bentofile)] + model_files(root)
    for name, path in named:
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


if __name__ == "__main__":
    print(version(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT / "bentofile.yaml"))
