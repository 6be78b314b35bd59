"""The Windows tier we can run here: the state, journal, ledger, history, batch-resume and two-process
tests, and ``fal-qwen-edit --demo``, in a Python where ``fcntl``, ``termios``, ``pwd``, ``grp`` and
``resource`` cannot be imported (tests/no_posix/sitecustomize.py). Locks then fall back to lock files
that a successor takes over when their owner died. What only a Windows machine can prove (msvcrt
locks, sharing violations raised by the OS itself, paths with drive letters) is listed in docs/testing.md."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCKER = ROOT / "tests" / "no_posix"
TESTS = ["test_portable_state.py", "test_journal.py", "test_budget.py", "test_history.py", "test_runner.py",
         "test_runner_cli.py", "test_recovery.py", "test_lost_submits.py", "test_state_compat.py", "test_soak.py"]
POSIX_ONLY = {"fcntl", "termios", "pwd", "grp", "resource", "posix", "tty", "pty", "crypt", "spwd", "nis", "syslog"}


def blocked_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
    env["PYTHONPATH"] = os.pathsep.join([str(BLOCKER), *filter(None, [env.get("PYTHONPATH")])])
    env.update(HOME=str(tmp_path), FAL_QWEN_EDIT_CONFIG=str(tmp_path / "none.ini"))
    return env


def test_no_module_of_the_pack_imports_a_posix_only_module():
    found = []
    for path in (ROOT / "nodes").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            found += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.split(".")[0] in POSIX_ONLY]
    assert found == []


def test_the_state_tests_pass_without_posix_modules(tmp_path):
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", *(f"tests/{t}" for t in TESTS)],
                         cwd=ROOT, env=blocked_env(tmp_path), capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert " passed" in run.stdout.splitlines()[-1] and "failed" not in run.stdout.splitlines()[-1]


def test_the_demo_runs_without_posix_modules(tmp_path):
    run = subprocess.run([sys.executable, "-m", "comfyui_fal_qwen_edit.nodes.fal.cli.main", "--demo",
                          "--out", str(tmp_path / "edited")], cwd=tmp_path, env=blocked_env(tmp_path),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "edited" / "demo-input.png").is_file()
    assert "Traceback" not in run.stderr
