"""The command line and the Bento: real training runs and a real `bentoml build`."""

from __future__ import annotations

import os
import subprocess
import sys

import bentoml

from tests.e2e.conftest import ROOT, run_training


def test_saving_over_an_existing_version_needs_force(trained_versions):
    refused = run_training("train", "clothes", "v1", "--epochs", "1", "--train-limit", "100", "--quiet")
    assert refused.returncode == 1 and "already exists" in refused.stderr and "--force" in refused.stderr
    skipped = run_training("train", "clothes", "v1", "--if-missing")
    assert skipped.returncode == 0 and "already in the store" in skipped.stdout


def test_missing_data_names_the_install_command(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import models.recipes.clothes as c, pathlib; c.DEBIAN_DIR = pathlib.Path('/nonexistent'); c.load_data(allow_download=False)"],
        cwd=ROOT, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "FASHION_MNIST_DIR": str(tmp_path)},
    )
    assert result.returncode != 0 and "apt-get install dataset-fashion-mnist" in result.stderr


def test_bento_holds_code_configuration_and_both_models(trained_versions):
    result = subprocess.run([sys.executable, "-m", "bentoml", "build", "--output", "tag"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    bento = bentoml.get(result.stdout.strip().splitlines()[-1].removeprefix("__tag__:"))
    assert {str(m.tag) for m in bento.info.all_models} >= {"clothes:v1", "clothes:v2"}
    src = bento.path_of("src")
    for name in ("service.py", "configuration.yaml", "config/settings.py", "models/store.py", "models/recipes/clothes.py", "serving/protocols/course.py",
                 "serving/protocols/page.py", "web/index.html", "web/app.mjs", "web/logic.mjs", "web/page.css", "web/docs.html"):
        assert (ROOT / name).read_bytes() == open(f"{src}/{name}", "rb").read()
    assert not os.path.exists(f"{src}/web/logic.test.mjs")
    requirements = open(bento.path_of("env/python/requirements.txt")).read()
    assert "bentoml==1.4.40" in requirements and "tensorflow-cpu==2.21.0" in requirements
