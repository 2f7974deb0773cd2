"""The type checker catches what the registry's annotations promise (pyproject.toml's [tool.mypy]).

An alias's target (``Target``: a version name, or a split's weights) passed where a version name is
expected is a type error: ``ServedModel.resolve(model.aliases["stable"])`` must not pass mypy.
"""

from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parents[2]

WRONG = """
from serving.registry import ServedModel

def answer(model: ServedModel) -> None:
    model.resolve(model.aliases["stable"])  # a Target (str | dict[str, int]), not a version name
"""

RIGHT = """
from serving.registry import ServedModel, targets

def answer(model: ServedModel) -> None:
    model.resolve("stable", key="user-42")
    for version in targets(model.aliases["stable"]):
        model.resolve(version)
"""


def check(tmp_path: Path, source: str) -> tuple[str, int]:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(source)
    # The project's settings, on the snippet alone (it imports serving from ROOT); no cache beside the tree.
    stdout, stderr, status = mypy_api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mypy_cache"),
            str(snippet),
        ]
    )
    return stdout + stderr, status


@pytest.fixture(autouse=True)
def _from_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # serving, config and models are found from the project root
    monkeypatch.setenv("MYPYPATH", str(ROOT))


def test_a_target_where_a_version_name_is_expected_is_a_type_error(tmp_path):
    output, status = check(tmp_path, WRONG)
    assert status == 1, output
    assert "snippet.py:5: error:" in output and "[arg-type]" in output, output
    assert '"resolve" of "ServedModel" has incompatible type "str | dict[str, int]"; expected "str"' in output, output


def test_names_resolved_properly_pass(tmp_path):
    output, status = check(tmp_path, RIGHT)
    assert status == 0, output
