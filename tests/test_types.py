"""mypy finds no error in nodes/ for any platform the pack runs on.

The settings are pyproject.toml's [tool.mypy] (files, Python version, the modules that exist only
inside ComfyUI); only the platform changes here, since the code branches on sys.platform (file
locks, state folders). Each platform keeps its own cache under .mypy_cache: a cold run takes about
15 s, a run with nothing changed about 1 s.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("platform", ["win32", "darwin", "linux"])
def test_mypy_finds_no_error_in_nodes(platform, record_property):
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed: pip install -e '.[test]' brings it")
    started = time.monotonic()
    # From the repository root: [tool.mypy] names modules from there (explicit_package_bases).
    run = subprocess.run([sys.executable, "-m", "mypy", "--platform", platform,
                          "--cache-dir", str(Path(".mypy_cache") / platform)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - started
    record_property("mypy_seconds", round(seconds, 1))
    print(f"mypy --platform {platform}: {seconds:.1f} s")
    assert run.returncode == 0, f"mypy --platform {platform} (exit {run.returncode}):\n{run.stdout}{run.stderr}"
