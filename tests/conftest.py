"""Shared fixtures. Every test session gets its own BentoML home, set before BentoML is imported."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SESSION_HOME = tempfile.mkdtemp(prefix="clothes-test-bentoml-")
os.environ["BENTOML_HOME"] = SESSION_HOME
os.environ["BENTOML_DO_NOT_TRACK"] = "true"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(ROOT))
