"""serving/process.py: the `bentoml serve` arbiter is told from a worker, a test or a script."""

from __future__ import annotations

import click
from click.testing import CliRunner

from serving.process import is_arbiter, is_worker


def test_only_code_running_under_a_serve_command_is_the_arbiter():
    seen = {}

    @click.group()
    def bentoml():
        pass

    @bentoml.command()
    def serve():
        seen["serve"] = is_arbiter()

    @bentoml.command()
    def build():
        seen["build"] = is_arbiter()

    runner = CliRunner()
    assert runner.invoke(bentoml, ["serve"]).exit_code == 0 and runner.invoke(bentoml, ["build"]).exit_code == 0
    assert seen == {"serve": True, "build": False}
    assert not is_arbiter() and not is_worker()  # pytest is neither
