"""Loaded by a Python started with this folder on PYTHONPATH (tests/test_no_posix.py): the modules that
only POSIX has cannot be imported, as on Windows, so the pack's code runs without them for real
(cross-process locks fall back to filelock's lock files). Every child process the tests start inherits
PYTHONPATH, and so the block."""

import os
import sys

BLOCKED = ("fcntl", "termios", "pwd", "grp", "resource")

for name in BLOCKED:
    sys.modules[name] = None  # "import fcntl" now raises ModuleNotFoundError, as on Windows
os.environ["FAL_QWEN_EDIT_NO_POSIX_TIER"] = "1"
