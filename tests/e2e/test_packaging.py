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
        [sys.executable, "-c", "import training.recipes.clothes as c, pathlib; c.DEBIAN_DIR = pathlib.Path('/nonexistent'); c.load_data(allow_download=False)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "FASHION_MNIST_DIR": str(tmp_path)},
    )
    assert result.returncode != 0 and "apt-get install dataset-fashion-mnist" in result.stderr


def test_bento_holds_code_configuration_and_the_models(trained_versions):
    result = subprocess.run([sys.executable, "-m", "bentoml", "build", "--output", "tag"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    bento = bentoml.get(result.stdout.strip().splitlines()[-1].removeprefix("__tag__:"))
    assert {str(m.tag) for m in bento.info.all_models} >= {"clothes:v1", "clothes:v2"}
    src = bento.path_of("src")
    for name in (
        "service.py",
        "configuration.yaml",
        "config/settings.py",
        "models/store.py",
        "serving/protocols/course.py",
        "serving/protocols/page.py",
        "web/index.html",
        "web/app.mjs",
        "web/logic.mjs",
        "web/page.css",
        "web/docs.html",
    ):
        assert (ROOT / name).read_bytes() == open(f"{src}/{name}", "rb").read()
    assert not os.path.exists(f"{src}/web/logic.test.mjs")
    assert not os.path.exists(f"{src}/training")  # training code is no part of the served Bento
    requirements = open(bento.path_of("env/python/requirements.txt")).read()
    # every version here has a verified ONNX export: the Bento serves on ONNX Runtime, without TensorFlow
    assert "bentoml==1.4.40" in requirements and "onnxruntime==1.31.1" in requirements
    pinned = {line.split("==")[0].strip().lower() for line in requirements.splitlines() if "==" in line and not line.lstrip().startswith("#")}
    assert not {"tensorflow", "tensorflow-cpu", "keras"} & pinned


def test_bentofile_adds_tensorflow_only_for_a_tensorflow_runner(tmp_path):
    """scripts/bentofile.py: the ONNX default packs no TensorFlow; `engine: tensorflow` for one version does."""
    import yaml

    def written(config_path=None):
        env = {**os.environ, **({"MODEL_SERVER_CONFIG": str(config_path)} if config_path else {})}
        result = subprocess.run([sys.executable, "scripts/bentofile.py", str(tmp_path / "bentofile.yaml")], cwd=ROOT, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return yaml.safe_load((tmp_path / "bentofile.yaml").read_text())["python"]["requirements_txt"], result.stderr

    requirements, why = written()
    assert requirements == "requirements.txt" and "no TensorFlow" in why
    config = yaml.safe_load((ROOT / "configuration.yaml").read_text())
    name = next(iter(config["models"]))
    versions = config["models"][name]["versions"]
    version = next(iter(versions))
    versions[version] = {**(versions[version] or {}), "engine": "tensorflow"}
    tensorflow_config = tmp_path / "configuration.yaml"
    tensorflow_config.write_text(yaml.safe_dump(config))
    requirements, why = written(tensorflow_config)
    assert requirements == "requirements-tensorflow.txt" and f"TensorFlow for {name}:{version}" in why
