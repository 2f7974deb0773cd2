"""Write the bentofile of this deployment: bentofile.yaml, with TensorFlow's requirements only when a
served version runs on TensorFlow (configured so, or without a verified ONNX export).

    .venv/bin/python scripts/bentofile.py build/bentofile.yaml    # prints why, writes the file

The Bento then holds the packages its runners import: an image that serves every version on ONNX
Runtime has no TensorFlow in it (about 1 GB less).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import load_config  # noqa: E402
from config.settings import load_yaml  # noqa: E402
from models import engines, store  # noqa: E402

SERVING = "requirements.txt"
WITH_TENSORFLOW = "requirements-tensorflow.txt"


def tensorflow_versions() -> list[str]:
    """The served versions whose runners would import TensorFlow."""
    config = load_config()
    needed = []
    for name, version in config.served():
        preferred = config.runner(name, version).engine
        try:
            card = store.load_card(name, version)
        except store.ModelStoreError:
            continue  # not in the store: `bentoml build` packs nothing for it, its runner loads nothing
        if engines.choose(card, preferred) == "tensorflow":
            needed.append(f"{name}:{version}")
    return needed


def write(path: Path) -> Path:
    bentofile = load_yaml((ROOT / "bentofile.yaml").read_text(), ROOT / "bentofile.yaml")
    needed = tensorflow_versions()
    bentofile["python"]["requirements_txt"] = WITH_TENSORFLOW if needed else SERVING  # paths resolve against the build context, ROOT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(bentofile, sort_keys=False))
    why = f"TensorFlow for {', '.join(needed)}" if needed else "no TensorFlow: every served version runs on ONNX Runtime"
    print(f"{path}: {why}", file=sys.stderr)
    return path


if __name__ == "__main__":
    write(Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build" / "bentofile.yaml"))
