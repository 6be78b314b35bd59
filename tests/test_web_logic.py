"""The frontend's pure logic (web/lib/), run by Node's own test runner from the one test command."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed: the web/lib tests need Node 20's test runner")
def test_web_lib_passes_nodes_test_runner():
    done = subprocess.run([NODE, "--test", str(ROOT / "tests" / "web")], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout and "# pass 0" not in done.stdout


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_every_frontend_module_parses():
    for path in sorted((ROOT / "web").rglob("*.js")):
        done = subprocess.run([NODE, "--check", str(path)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{path.relative_to(ROOT)}: {done.stderr}"
