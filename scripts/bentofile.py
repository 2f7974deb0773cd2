"""Write the bentofile of this deployment: bentofile.yaml, with the requirements of the engines the served
versions run on (each engine's ``packages``, models/engines/): TensorFlow's only when a served version
runs on TensorFlow (configured so, or without a verified ONNX export).

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


def engine_versions() -> dict[str, list[str]]:
    """The engine each served version's runner would use -> those versions ("name:version")."""
    config = load_config()
    used: dict[str, list[str]] = {}
    for name, version in config.served():
        preferred = config.runner(name, version).engine
        try:
            card = store.load_card(name, version)
        except store.ModelStoreError:
            continue  # not in the store: `bentoml build` packs nothing for it, its runner loads nothing
        used.setdefault(engines.choose(card, preferred), []).append(f"{name}:{version}")
    return used


def requirements(used: dict[str, list[str]]) -> str:
    """The one requirements file that covers every engine in ``used`` (BentoML takes one)."""
    files = sorted({file for engine in used for file in engines.get(engine).packages})
    if len(files) > 1:
        sys.exit(
            f"the served versions' engines need {', '.join(files)}, and a Bento installs one requirements file: write one that includes them (-r) and name it in the engines' packages"
        )
    return files[0] if files else SERVING


def write(path: Path) -> Path:
    bentofile = load_yaml((ROOT / "bentofile.yaml").read_text(), ROOT / "bentofile.yaml")
    used = engine_versions()
    bentofile["python"]["requirements_txt"] = requirements(used)  # paths resolve against the build context, ROOT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(bentofile, sort_keys=False))
    extra = [f"{engines.get(engine).title} for {', '.join(versions)}" for engine, versions in used.items() if engines.get(engine).packages]
    unused = [cls.title for cls in engines.ENGINES.values() if cls.packages and cls.name not in used]
    why = (
        "; ".join(extra)
        or f"no {', '.join(unused) or 'packages beyond ' + SERVING}: every served version runs on {', '.join(engines.get(engine).title for engine in used) or engines.get(engines.DEFAULT).title}"
    )
    print(f"{path}: {why}", file=sys.stderr)
    return path


if __name__ == "__main__":
    write(Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build" / "bentofile.yaml"))
