"""Serving and training live apart: nothing the server runs imports training/ or TensorFlow.

training/ (recipes, data sets, architectures, fitting, evaluation, export, importing) is left out of the
Bento (bentofile.yaml), so a served module that imported it would fail in the container; TensorFlow is
imported only where a model is trained or runs on the TensorFlow engine, never at import.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVED = ("models", "serving", "config")  # with service.py: what the Bento carries and the server imports
TRAINING_ONLY = ("training", "tensorflow", "keras", "tf2onnx")


def served_files() -> list[Path]:
    return [ROOT / "service.py"] + sorted(p for package in SERVED for p in (ROOT / package).rglob("*.py"))


def imported_names(path: Path) -> list[tuple[int, str]]:
    """Every absolute import in ``path``, at module level or inside a function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_no_served_module_imports_training():
    files = served_files()
    assert len(files) > 20 and ROOT / "models" / "card.py" in files and ROOT / "serving" / "dataplane.py" in files
    offending = [f"{path.relative_to(ROOT)}:{line}: {name}" for path in files for line, name in imported_names(path) if name == "training" or name.startswith("training.")]
    assert offending == []


def test_importing_the_server_loads_neither_training_nor_tensorflow():
    """``import service`` (as `bentoml serve` does) and every served module: no training code, no TensorFlow."""
    script = f"""
import importlib, json, pkgutil, sys
import service
for package in {SERVED!r}:
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {TRAINING_ONLY!r})
print(json.dumps({{"loaded": loaded, "served": sorted(m for m in sys.modules if m.split(".")[0] in {SERVED!r} + ("lifecycle", "service"))}}))
"""
    env = {**os.environ, "MODEL_SERVER_CONFIG": str(ROOT / "configuration.yaml")}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"service", "models.card", "models.engines", "serving.dataplane", "config.settings", "lifecycle.drift"} <= set(report["served"])
    assert report["loaded"] == []
