"""The frontend's pure logic (web/lib/), run by Node's own test runner from the one test command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from comfyui_fal_qwen_edit.nodes.fal.edit.node_values import models_answer

ROOT = Path(__file__).resolve().parents[1]
NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed: the web/lib tests need Node 20's test runner")
def test_web_lib_passes_nodes_test_runner(tmp_path):
    # the model rules are checked against the backend's own table, as GET /fal_qwen_edit/models answers it
    table = tmp_path / "models.json"
    table.write_text(json.dumps(models_answer()))
    done = subprocess.run([NODE, "--test", str(ROOT / "tests" / "web")], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={**os.environ, "FAL_MODELS_JSON": str(table)})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout and "# pass 0" not in done.stdout and "# skipped 0" in done.stdout


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_every_frontend_module_parses():
    for path in sorted((ROOT / "web").rglob("*.js")):
        done = subprocess.run([NODE, "--check", str(path)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{path.relative_to(ROOT)}: {done.stderr}"


def test_the_frontends_list_of_advanced_inputs_is_the_schemas():
    """web/lib/widget_rules.js keeps the advanced inputs for ComfyUIs whose schema cannot carry the mark."""
    import ast
    import re
    tree = ast.parse((ROOT / "nodes" / "qwen_edit_node.py").read_text())
    marked = [call.args[0].value for call in ast.walk(tree)
              if isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Constant)
              and any(kw.arg is None and isinstance(kw.value, ast.Call) and getattr(kw.value.func, "id", "") == "advanced"
                      for kw in call.keywords)]
    listed = re.search(r"ADVANCED_INPUTS = \[([^\]]*)\]", (ROOT / "web" / "lib" / "widget_rules.js").read_text())
    assert marked and re.findall(r'"([a-z_0-9]+)"', listed.group(1)) == marked
