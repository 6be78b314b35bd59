"""What ComfyUI-Manager and the Comfy Registry get: requirements.txt, and the zip `comfy node pack` makes
(git-tracked files minus .comfyignore's gitwildmatch patterns, comfy-cli 1.23 ``file_utils.zip_files``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def ignore_patterns() -> list[str]:
    lines = (ROOT / ".comfyignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """The patterns this file uses: a folder ("tests/") or a file name, as gitwildmatch reads them."""
    for pattern in patterns:
        assert re.fullmatch(r"[\w.-]+/?", pattern), f"extend this test for the pattern {pattern!r}"
        if pattern.endswith("/") and (path.startswith(pattern) or f"/{pattern}" in path):
            return True
        if path == pattern or path.endswith("/" + pattern):
            return True
    return False


def test_requirements_list_every_runtime_dependency_and_never_torch():
    # Windows portable installs with `python_embeded\python.exe -m pip install -r requirements.txt`:
    # it must name what pyproject.toml names, and never torch (ComfyUI's own build).
    def name(line):
        return re.split(r"[<>=!~ ;\[]", line.strip(), 1)[0].lower()
    required = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    declared = re.search(r"^dependencies = \[(.*?)^\]", (ROOT / "pyproject.toml").read_text(), re.S | re.M).group(1)
    listed = [name(item) for item in re.findall(r'^\s*"([^"]+)"', declared, re.M)]
    assert sorted(map(name, required)) == sorted(listed) and "filelock" in listed
    assert "torch" not in listed


def test_the_registry_zip_holds_the_nodes_and_no_development_files():
    try:
        tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True,
                                 check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: comfy node pack would zip the whole tree")
    patterns = ignore_patterns()
    packed = {path for path in tracked if not ignored(path, patterns)}
    assert not [p for p in packed if p.split("/")[0] in ("tests", "bench", "tools", ".ci")]
    needed = {"__init__.py", "pyproject.toml", "requirements.txt", "README.md", "nodes/extension.py",
              "nodes/fal/edit/pipeline.py", "nodes/fakefal/server.py"}
    assert needed <= packed
    assert {p for p in tracked if p.startswith("example_workflows/")} <= packed
    locales = {p for p in tracked if p.startswith("locales/")}
    assert {"locales/en/nodeDefs.json", "locales/zh/nodeDefs.json", "locales/zh/main.json"} <= locales <= packed


def test_a_non_editable_install_holds_every_package_and_runs_the_demo(tmp_path):
    """pyproject.toml lists its packages by hand: a subpackage missing there is missing from the wheel
    that the README's main command (``pip install .``) installs, though an editable install still finds it."""
    source, target = tmp_path / "source", tmp_path / "site"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "build", "*.egg-info", "edited", "bench.json",  # builds happen in-tree
        ".mypy_cache"))  # tests/test_types.py: a cache per platform, tens of MB each
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(source)], check=True, capture_output=True, timeout=300)
    python_folders = {p.parent.relative_to(ROOT) for p in (ROOT / "nodes").rglob("*.py")}
    installed = {p.parent.relative_to(target / "comfyui_fal_qwen_edit")
                 for p in (target / "comfyui_fal_qwen_edit" / "nodes").rglob("*.py")}
    assert python_folders <= installed, f"missing from the wheel: {sorted(map(str, python_folders - installed))}"
    shipped = {str(p.relative_to(ROOT)) for p in (ROOT / "locales").rglob("*.json")}
    wheel = {str(p.relative_to(target / "comfyui_fal_qwen_edit"))
             for p in (target / "comfyui_fal_qwen_edit" / "locales").rglob("*.json")}
    assert shipped and shipped == wheel, f"locales missing from the wheel: {sorted(shipped - wheel)}"
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import comfyui_fal_qwen_edit as p; print(p.__file__)"],
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(target)  # the installed copy runs, not this checkout
    demo = subprocess.run([str(target / "bin" / "fal-qwen-edit"), "--demo", "--out", str(tmp_path / "edited")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert demo.returncode == 0, demo.stderr[-2000:]
    written = sorted(p.name for p in (tmp_path / "edited").glob("*.png"))
    assert len(written) == 2 and written[0] == "demo-input.png" and written[1].startswith("edit-"), written
