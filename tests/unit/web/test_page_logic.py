"""The web page's own logic (web/logic.mjs), tested in its language by Node's built-in runner
(web/logic.test.mjs; no npm package needed): run here so that `make test` covers it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

WEB = Path(__file__).resolve().parents[3] / "web"


def test_node_tests_of_the_page_logic_pass():
    node = shutil.which("node")
    assert node, "Node.js is needed for the page's unit tests (Debian: apt-get install nodejs)"
    result = subprocess.run([node, "--test", str(WEB)], capture_output=True, text=True, timeout=120, cwd=WEB.parent)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed = int(re.search(r"^# pass (\d+)$", result.stdout, re.M).group(1))
    assert passed >= 10 and re.search(r"^# fail 0$", result.stdout, re.M), result.stdout[-2000:]
