"""The top-level locustfile drives a served process headless, with no failed request."""

from __future__ import annotations

import csv
import subprocess
import sys

from tests.e2e.conftest import ROOT


def test_locustfile_mixed_load(url, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            "locustfile.py",
            "--headless",
            "-u",
            "3",
            "-r",
            "3",
            "-t",
            "8s",
            "--host",
            url,
            "--csv",
            str(tmp_path / "run"),
            "--only-summary",
            "--stop-timeout",
            "5",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row["Name"]: row for row in csv.DictReader(open(tmp_path / "run_stats.csv"))}
    assert int(rows["Aggregated"]["Failure Count"]) == 0
    for name in ("json image", "png upload", "raw batch 64", "model info"):
        assert int(rows[name]["Request Count"]) > 0, name
